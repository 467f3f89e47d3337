// Internals shared by runtime/rootfs*.cpp and runtime/safe_path.cpp (and their unit tests).
// Not part of the rootfs interface.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.hpp"
#include "runtime/rootfs.hpp"
#include "runtime/spec.hpp"

namespace barge::rootfs::detail {

// ---- mount options (rootfs_options.cpp) ----

// A spec mount's "options" split into what mount(2), mount_setattr(2) and the filesystem get.
struct MountOptions {
  unsigned long flags = 0;                 // MS_* (including MS_BIND/MS_REC for bind/rbind)
  std::vector<unsigned long> propagation;  // MS_SHARED|MS_REC ..., applied in order after mounting
  uint64_t recursive_set = 0;              // MOUNT_ATTR_* from rro, rnosuid, ... (whole subtree)
  uint64_t recursive_clear = 0;
  std::string data;      // everything else, comma-joined: "size=64k,mode=755"
  bool copy_up = false;  // "tmpcopyup" (runc's extension): a tmpfs starts with what it covers

  bool is_bind() const;
  bool is_recursive_bind() const;
};

MountOptions parse_mount_options(std::span<const std::string> options);
// Every option name parse_mount_options understands as a flag (for `barge features`).
std::vector<std::string> known_mount_options();
// "rslave" -> MS_SLAVE|MS_REC ...; nullopt for anything that is not a propagation name.
std::optional<unsigned long> parse_propagation(std::string_view name);
// MOUNT_ATTR_* equivalents of the per-mount MS_* bits (ro nosuid nodev noexec atime nodiratime).
uint64_t mount_attrs_from_flags(unsigned long flags);
bool is_bind_mount(const spec::Mount& mount);

// ---- /proc/self/mountinfo (rootfs_options.cpp) ----

struct MountInfo {
  int id = 0;
  int parent = 0;
  std::string root;         // path of the mount's root inside its filesystem
  std::string mount_point;  // unescaped
  std::string mount_options;
  std::string optional_fields;  // "shared:1 master:2"
  std::string fs_type;
  std::string source;
  std::string super_options;
};
// Only the mounts of the given filesystem types, unless fs_types is empty.
std::vector<MountInfo> parse_mountinfo(std::string_view text,
                                       std::span<const std::string_view> fs_types = {});
std::vector<MountInfo> read_mountinfo(std::span<const std::string_view> fs_types = {});

// ---- path helpers (safe_path.cpp) ----

// Components of a path, dropping empty ones and "." ("/a//./b/" -> {"a","b"}).
std::vector<std::string> split_path(std::string_view path);
// "/dev/net/tun" -> {"/dev/net", "tun"}.
std::pair<std::string, std::string> split_parent(std::string_view path);
// The magic link through which mount(2) reaches what fd refers to.
std::string fd_path(int fd);

// ---- mounting (rootfs_mounts.cpp) ----

// A mount source as a host path: relative sources resolve against the bundle.
std::string absolute_source(const std::string& source, const Options& options);
// Mounts every spec.mounts[] entry under rootfd, in order.
void mount_all(int rootfd, const spec::Spec& spec, const Options& options);
// Clones source (a host path, or "" with source_fd) as a detached mount tree, applies the MS_*
// flags of a bind remount to it, then attaches it onto target_fd.
void bind_onto(const std::string& source, int target_fd, const MountOptions& options);
// open_tree(OPEN_TREE_CLONE) of an fd's location.
UniqueFd clone_mount_tree(int dirfd, const std::string& path, bool recursive);
void move_mount_onto(int tree_fd, int target_fd);
// mount_setattr on the mount at fd.
void set_mount_attrs(int fd, uint64_t set, uint64_t clear, bool recursive);

// ---- /dev (rootfs_dev.cpp) ----

// Device nodes (defaults when dev_mounted, plus linux.devices), /dev symlinks and ptmx.
void setup_dev(int rootfd, const spec::Spec& spec, const Options& options, bool dev_mounted);

}  // namespace barge::rootfs::detail

// Building the container's filesystem view, run by the container init inside its new mount
// namespace (before pivot_root) and finishing after it. Every path under the rootfs is resolved
// with openat2(RESOLVE_IN_ROOT) so a hostile rootfs cannot redirect a mount onto the host.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "common/fd.hpp"
#include "runtime/spec.hpp"

namespace barge::rootfs {

struct Options {
  std::string bundle_dir;    // absolute; relative mount sources and root.path resolve against it
  bool no_pivot = false;     // --no-pivot: MS_MOVE + chroot instead of pivot_root
  bool new_user_ns = false;  // sysfs may need a bind, devices need bind mounts
  bool new_net_ns = true;    // sysfs can only be mounted fresh with its own network namespace
  bool new_cgroup_ns = true;
  std::string cgroup_path;  // the container's cgroup ("/barge/ID"), for `cgroup` mounts on v1
  std::string mount_label;  // linux.mountLabel: SELinux context of tmpfs/devpts mounts
  // Runs after every mount and /dev are in place, before pivot_root, with the host's paths still
  // visible: where the runtime-spec wants createContainer hooks. Tests use it to inspect mounts.
  std::function<void()> before_pivot;
  // mounts[] index -> detached id-mapped bind tree (an fd the parent made before the clone).
  std::map<size_t, int> idmapped_trees;
};

// Parent side, as the host's root before the init exists: a detached bind tree for every mounts[]
// entry with uidMappings/gidMappings, id-mapped with MOUNT_ATTR_IDMAP. Only the host's root may
// id-map a host filesystem, so an init inside a user namespace could not do it itself.
std::map<size_t, UniqueFd> prepare_idmapped_mounts(const spec::Spec& spec, const Options& options);

// Step 1 (in the container's mount namespace, as root of it): set root propagation, bind the
// rootfs onto itself, mount every spec.mounts[] entry in order, /dev (tmpfs + default devices,
// linux.devices, symlinks, devpts/ptmx) when the spec mounts a tmpfs there, then pivot_root (or
// move+chroot) and chdir("/").
void prepare(const spec::Spec& spec, const Options& options);

// Step 2 (after pivot_root, before dropping privileges): maskedPaths, readonlyPaths,
// root.readonly remount, and the final rootfsPropagation.
void finalize(const spec::Spec& spec);

// Opens path (relative to root or absolute-in-container) under rootfd, never escaping it.
// Falls back to a manual component walk when openat2 is unavailable.
UniqueFd open_in_root(int rootfd, const std::string& path, int flags, mode_t mode = 0);
// Same, but an invalid fd (no exception) when the path or one of its directories is missing.
UniqueFd open_in_root_if_exists(int rootfd, const std::string& path, int flags);
// mkdir -p under rootfd without following symlinks out of it; returns an O_PATH fd of the
// final directory (or file when make_file is true: the last component is created as a file).
UniqueFd mkdir_all_in_root(int rootfd, const std::string& path, bool make_file = false);

// Tests only: makes open_in_root/mkdir_all_in_root skip openat2 and use the manual walk.
void force_manual_path_walk_for_testing(bool forced);

}  // namespace barge::rootfs

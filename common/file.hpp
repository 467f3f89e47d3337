// Small file helpers that throw barge::Error naming the path.
#pragma once

#include <sys/stat.h>

#include <string>
#include <string_view>

#include "common/fd.hpp"

namespace barge {

std::string read_file(const std::string& path);
// Reads a file relative to dirfd (openat semantics).
std::string read_file_at(int dirfd, const std::string& name);
void write_file(const std::string& path, std::string_view content);
// write(2) until all of content is written (name is for the error message).
void write_all(int fd, std::string_view content, const std::string& name);
// Writes name in dirfd atomically: temp file in the same directory, fsync-free rename.
void write_file_atomic_at(int dirfd, const std::string& name, std::string_view content);
void write_file_atomic(const std::string& path, std::string_view content);
// Replaces path atomically for readers (a temp file exchanged with it, renameat2
// RENAME_EXCHANGE, then unlinked) but without write_file_atomic's durability: ext4 writes a file's
// data out before renaming it over another (auto_da_alloc: ~4 ms per call on this VM's disk), not
// on an exchange, so after a power loss the file may be empty. For state under /run that a reboot
// makes meaningless anyway. Writers must be serialized: the temp name (.NAME.tmp) is fixed.
void replace_file_volatile(const std::string& path, std::string_view content);
UniqueFd open_or_throw(const std::string& path, int flags, mode_t mode = 0);
UniqueFd open_at_or_throw(int dirfd, const std::string& name, int flags, mode_t mode = 0);
bool path_exists(const std::string& path);
// mkdir -p; existing directories are fine.
void make_dirs(const std::string& path, mode_t mode = 0755);
// rm -rf of a host path we own (state dirs); never follows symlinks.
void remove_tree(const std::string& path);
// cp -a of everything inside from_dir into to_dir (both directory fds): directories, files,
// symlinks, device nodes, fifos and sockets keep their owner, mode and times. Never follows
// symlinks; hard links become separate copies.
void copy_directory_contents(int from_dir, int to_dir);
// The rest of fd from into fd to.
void copy_file_data(int from, int to, const std::string& display);
// Owner, mode (not for symlinks) and times of st on dir/name, never following a symlink. Owner
// first: chown clears set-id bits.
void copy_attributes_at(int dir, const char* name, const struct stat& st,
                        const std::string& display);
// Copies the extended attributes of from_dir/from_name to to_dir/to_name, never following a
// final symlink ("." names the directory itself). Names starting with skip_prefix, and names the
// target refuses (ENOTSUP, EPERM), are skipped.
void copy_xattrs_at(int from_dir, const std::string& from_name, int to_dir,
                    const std::string& to_name, std::string_view skip_prefix);

}  // namespace barge

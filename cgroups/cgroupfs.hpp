// Internal: small syscall-level helpers for cgroupfs files and directories. Values are written in
// one write(2) (the kernel parses each write separately); errors name the file.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace barge::cgroups::fs {

// Writes value to path (no O_CREAT: cgroupfs files exist or the controller is missing).
void write(const std::string& path, std::string_view value);
// Same, returning the errno instead of throwing (0 on success).
int try_write(const std::string& path, std::string_view value);
std::string read(const std::string& path);
// nullopt when the file does not exist.
std::optional<std::string> try_read(const std::string& path);
std::string_view trim(std::string_view text);

// mkdir -p, trying the leaf first (the common case: the parents already exist).
void make_dirs(const std::string& dir);
// Immediate sub-directories (names); empty when dir does not exist.
std::vector<std::string> subdirs(const std::string& dir);
// Pids in dir/cgroup.procs and in every sub-cgroup's; empty when dir does not exist.
std::vector<pid_t> procs_recursive(const std::string& dir);
// rmdir of dir after its sub-cgroups, deepest first. Returns 0 (also when dir is already gone)
// or the errno of the first failure, with failed_dir naming it.
int remove_tree(const std::string& dir, std::string& failed_dir);

}  // namespace barge::cgroups::fs

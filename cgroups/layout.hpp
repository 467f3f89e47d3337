// Internal: how the host mounts its cgroup hierarchies, parsed from mountinfo text, and the pure
// path logic behind resolve_path. Everything taking text is pure so unit tests can feed fixtures.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cgroups/cgroup.hpp"

namespace barge::cgroups::detail {

struct Hierarchy {
  std::string mount_point;
  // The mount's root inside the hierarchy ("/" unless a sub-cgroup was bind-mounted).
  std::string root = "/";
  std::vector<std::string> controllers;  // v1 only: "cpu", "name=systemd", ...
};

struct HostLayout {
  Layout layout = Layout::legacy;
  std::vector<Hierarchy> v1;         // empty on unified
  std::optional<Hierarchy> unified;  // the cgroup2 mount, if any
};

// Parses /proc/self/mountinfo text (fstype cgroup and cgroup2 entries).
HostLayout parse_mountinfo(std::string_view mountinfo);
// The host's layout, read from /proc/self/mountinfo once per process.
const HostLayout& host();

// The calling process's cgroup from /proc/self/cgroup text: the "0::" line on unified; on
// hybrid/legacy the memory controller's line (the controller whose placement matters most to a
// container and that systemd always manages), else the first v1 controller line, else "0::".
std::string own_cgroup(std::string_view proc_self_cgroup, Layout layout);

// resolve_path with the caller's cgroup given (only consulted for relative paths).
std::string resolve_path(std::string_view cgroups_path, std::string_view container_id,
                         std::string_view own_cgroup);

// The directory of cgroup path (absolute, normalised) in a hierarchy.
std::string dir_in(const Hierarchy& hierarchy, std::string_view path);

class CgroupAccess {
 public:
  // Cgroup::create / open against an explicit layout (the public ones use host()).
  static Cgroup create(const HostLayout& layout, const std::string& path);
  static Cgroup open(const HostLayout& layout, const std::string& path);
};

}  // namespace barge::cgroups::detail

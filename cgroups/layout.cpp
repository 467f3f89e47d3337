#include "cgroups/layout.hpp"

#include <algorithm>

#include "common/error.hpp"
#include "common/file.hpp"

namespace barge::cgroups {
namespace detail {
namespace {

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  for (;;) {
    auto pos = text.find(sep);
    parts.push_back(text.substr(0, pos));
    if (pos == std::string_view::npos) return parts;
    text.remove_prefix(pos + 1);
  }
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_octal(std::string_view field) {
  auto is_octal = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && is_octal(field[i + 1]) &&
        is_octal(field[i + 2]) && is_octal(field[i + 3])) {
      out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                               (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

// Super options of a v1 cgroup mount that are not controllers.
bool is_controller_option(std::string_view option) {
  static constexpr std::string_view kNotControllers[] = {
      "rw", "ro", "noprefix", "xattr", "clone_children", "cpuset_v2_mode", "none", "all"};
  if (option.empty() || option.starts_with("release_agent=")) return false;
  return std::find(std::begin(kNotControllers), std::end(kNotControllers), option) ==
         std::end(kNotControllers);
}

struct MountEntry {
  std::string root, mount_point, fstype, super_options;
};

std::optional<MountEntry> parse_mountinfo_line(std::string_view line) {
  auto fields = split(line, ' ');
  auto dash = std::find(fields.begin(), fields.end(), "-");
  if (fields.size() < 6 || dash == fields.end() || fields.end() - dash < 4) return std::nullopt;
  return MountEntry{unescape_octal(fields[3]), unescape_octal(fields[4]), std::string(dash[1]),
                    std::string(dash[3])};
}

// Prefers the canonical mount points when a hierarchy is mounted more than once.
int unified_mount_rank(std::string_view mount_point) {
  if (mount_point == "/sys/fs/cgroup") return 0;
  if (mount_point == "/sys/fs/cgroup/unified") return 1;
  return 2;
}

std::string join_normalised(std::string_view base, std::string_view relative,
                            std::string_view original) {
  std::string out(base == "/" ? "" : base);
  for (auto component : split(relative, '/')) {
    if (component.empty() || component == ".") continue;
    if (component == "..")
      throw_error("linux.cgroupsPath: \"" + std::string(original) +
                  R"(" must not contain ".." components)");
    out += '/';
    out += component;
  }
  return out;
}

// runc's systemd form "slice:prefix:name" (never absolute).
bool is_systemd_form(std::string_view cgroups_path) {
  return !cgroups_path.starts_with('/') &&
         std::count(cgroups_path.begin(), cgroups_path.end(), ':') == 2;
}

}  // namespace

HostLayout parse_mountinfo(std::string_view mountinfo) {
  HostLayout layout;
  for (auto line : split(mountinfo, '\n')) {
    auto entry = parse_mountinfo_line(line);
    if (!entry) continue;
    if (entry->fstype == "cgroup2") {
      if (!layout.unified ||
          unified_mount_rank(entry->mount_point) < unified_mount_rank(layout.unified->mount_point))
        layout.unified = Hierarchy{entry->mount_point, entry->root, {}};
    } else if (entry->fstype == "cgroup") {
      Hierarchy hierarchy{entry->mount_point, entry->root, {}};
      for (auto option : split(entry->super_options, ','))
        if (is_controller_option(option)) hierarchy.controllers.emplace_back(option);
      bool seen = std::any_of(layout.v1.begin(), layout.v1.end(), [&](const Hierarchy& h) {
        return h.controllers == hierarchy.controllers;
      });
      if (!seen && !hierarchy.controllers.empty()) layout.v1.push_back(std::move(hierarchy));
    }
  }
  bool unified_at_root = layout.unified && layout.unified->mount_point == "/sys/fs/cgroup";
  if (unified_at_root || (layout.v1.empty() && layout.unified)) {
    layout.layout = Layout::unified;
    layout.v1.clear();
  } else {
    layout.layout = layout.unified ? Layout::hybrid : Layout::legacy;
  }
  return layout;
}

const HostLayout& host() {
  static const HostLayout layout = parse_mountinfo(read_file("/proc/self/mountinfo"));
  return layout;
}

std::string own_cgroup(std::string_view proc_self_cgroup, Layout layout) {
  std::optional<std::string_view> v2, memory, first_v1;
  for (auto line : split(proc_self_cgroup, '\n')) {
    auto fields = split(line, ':');
    if (fields.size() < 3) continue;
    // The path itself may contain ':'; it is everything after the second colon.
    std::string_view path = line.substr(fields[0].size() + fields[1].size() + 2);
    if (fields[0] == "0" && fields[1].empty()) {
      v2 = path;
      continue;
    }
    auto controllers = split(fields[1], ',');
    if (std::find(controllers.begin(), controllers.end(), "memory") != controllers.end())
      memory = path;
    if (!first_v1 && !fields[1].empty()) first_v1 = path;
  }
  std::optional<std::string_view> chosen =
      layout == Layout::unified ? v2 : (memory ? memory : (first_v1 ? first_v1 : v2));
  if (!chosen) throw_error("/proc/self/cgroup: no entry for the calling process's cgroup");
  return std::string(*chosen);
}

std::string resolve_path(std::string_view cgroups_path, std::string_view container_id,
                         std::string_view own) {
  if (is_systemd_form(cgroups_path))
    throw_error("linux.cgroupsPath: systemd cgroup path \"" + std::string(cgroups_path) +
                "\" needs --systemd-cgroup, which is not supported yet");
  std::string path;
  if (cgroups_path.empty())
    path = join_normalised("/barge", container_id, container_id);
  else if (cgroups_path.front() == '/')
    path = join_normalised("/", cgroups_path, cgroups_path);
  else
    path = join_normalised(join_normalised("/", own, own), cgroups_path, cgroups_path);
  if (path.empty())
    throw_error("linux.cgroupsPath: \"" + std::string(cgroups_path) +
                "\" names the root cgroup, which a container cannot own");
  return path;
}

std::string dir_in(const Hierarchy& hierarchy, std::string_view path) {
  // A bind-mounted sub-tree (root "/docker/x") shows the paths below its root.
  std::string_view root = hierarchy.root;
  if (root != "/" && path.starts_with(root) &&
      (path.size() == root.size() || path[root.size()] == '/'))
    path.remove_prefix(root.size());
  return hierarchy.mount_point + std::string(path);
}

}  // namespace detail

Layout host_layout() {
  return detail::host().layout;
}

std::string_view layout_name(Layout layout) {
  switch (layout) {
    case Layout::unified:
      return "unified";
    case Layout::hybrid:
      return "hybrid";
    case Layout::legacy:
      return "legacy";
  }
  return "unknown";
}

std::string resolve_path(std::string_view cgroups_path, std::string_view container_id) {
  bool relative = !cgroups_path.empty() && cgroups_path.front() != '/' &&
                  !detail::is_systemd_form(cgroups_path);
  std::string own =
      relative ? detail::own_cgroup(read_file("/proc/self/cgroup"), host_layout()) : "/";
  return detail::resolve_path(cgroups_path, container_id, own);
}

}  // namespace barge::cgroups

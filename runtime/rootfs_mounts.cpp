// spec.mounts[]: every destination is resolved to an O_PATH fd inside the rootfs first, and the
// mount is then placed on that fd, never on a path the kernel would resolve again.
//
// Two ways of mounting onto an fd, each where it fits best:
//  - bind mounts use the new mount API: open_tree(OPEN_TREE_CLONE) makes a detached copy of the
//    source, mount_setattr sets ro/nosuid/... on it before anyone can see it (no bind-then-remount
//    window, and locked flags are simply left alone), and move_mount attaches it to the target fd.
//  - new filesystems (proc, tmpfs, devpts, ...) use mount(2) on /proc/self/fd/N (runc's way): the
//    data string goes to the filesystem verbatim, so every filesystem's option syntax just works.
//    The host's /proc is still mounted at this point (we run before pivot_root).
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <set>
#include <sstream>

#include "common/error.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "runtime/lsm.hpp"
#include "runtime/namespaces.hpp"
#include "runtime/rootfs_internal.hpp"

namespace barge::rootfs::detail {
namespace {

constexpr uint64_t kPerMountAttrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                    MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NODIRATIME;
constexpr unsigned long kAtimeFlags = MS_NOATIME | MS_RELATIME | MS_STRICTATIME;

int mount_setattr_fd(int fd, unsigned int at_flags, mount_attr& attr) {
  return ::mount_setattr(fd, "", AT_EMPTY_PATH | at_flags, &attr, sizeof attr);
}

// What the mount at fd has now, in MOUNT_ATTR_* terms (statvfs reports per-mount flags).
uint64_t current_attrs(int fd) {
  struct statvfs st {};
  if (::fstatvfs(fd, &st) < 0) throw_errno("statvfs");
  uint64_t attrs = 0;
  if (st.f_flag & ST_RDONLY) attrs |= MOUNT_ATTR_RDONLY;
  if (st.f_flag & ST_NOSUID) attrs |= MOUNT_ATTR_NOSUID;
  if (st.f_flag & ST_NODEV) attrs |= MOUNT_ATTR_NODEV;
  if (st.f_flag & ST_NOEXEC) attrs |= MOUNT_ATTR_NOEXEC;
  if (st.f_flag & ST_NODIRATIME) attrs |= MOUNT_ATTR_NODIRATIME;
  if (st.f_flag & ST_NOATIME)
    attrs |= MOUNT_ATTR_NOATIME;
  else if (!(st.f_flag & ST_RELATIME))
    attrs |= MOUNT_ATTR_STRICTATIME;
  return attrs;
}

// The remount half of a bind: like MS_REMOUNT|MS_BIND|flags, the listed flags are set and the
// other per-mount flags cleared; atime is only touched when an atime option was given.
void apply_bind_flags(int tree_fd, unsigned long flags) {
  if ((flags & ~(MS_BIND | MS_REC | MS_REMOUNT)) == 0) return;  // plain bind keeps the source's
  mount_attr attr{};
  attr.attr_set = mount_attrs_from_flags(flags);
  attr.attr_clr = kPerMountAttrs & ~attr.attr_set;
  const bool change_atime = (flags & kAtimeFlags) != 0;
  if (change_atime)
    attr.attr_clr |= MOUNT_ATTR__ATIME;
  else
    attr.attr_set &= ~uint64_t{MOUNT_ATTR__ATIME};
  if (mount_setattr_fd(tree_fd, 0, attr) == 0) return;
  if (errno != EPERM) throw_errno("set bind mount flags");
  // A mount namespace owned by a user namespace inherits locked nosuid/nodev/noexec/ro/atime
  // from the source; keep what the source has (runc does the same on this failure).
  const uint64_t source = current_attrs(tree_fd);
  attr.attr_clr &= ~(source & kPerMountAttrs);
  if (change_atime)
    attr.attr_set = (attr.attr_set & ~uint64_t{MOUNT_ATTR__ATIME}) | (source & MOUNT_ATTR__ATIME);
  if (mount_setattr_fd(tree_fd, 0, attr) < 0) throw_errno("set bind mount flags");
}

void apply_recursive_attrs(int fd, const MountOptions& options) {
  if (options.recursive_set == 0 && options.recursive_clear == 0) return;
  set_mount_attrs(fd, options.recursive_set, options.recursive_clear, true);
}

void apply_propagation(int fd, const MountOptions& options) {
  for (unsigned long propagation : options.propagation) {
    mount_attr attr{};
    attr.propagation = propagation & ~MS_REC;
    if (mount_setattr_fd(fd, (propagation & MS_REC) ? AT_RECURSIVE : 0, attr) < 0)
      throw_errno("set mount propagation");
  }
}

void mount_new_fs(const std::string& source, int target_fd, const std::string& type,
                  unsigned long flags, const std::string& data) {
  const std::string target = fd_path(target_fd);
  if (::mount(source.empty() ? type.c_str() : source.c_str(), target.c_str(), type.c_str(), flags,
              data.empty() ? nullptr : data.c_str()) < 0)
    throw_errno("mount " + type);
}

UniqueFd make_bind_target(int rootfd, const std::string& source, const std::string& destination) {
  struct stat st {};
  if (::stat(source.c_str(), &st) < 0) throw_errno("stat " + source);
  return mkdir_all_in_root(rootfd, destination, !S_ISDIR(st.st_mode));
}

// ---- cgroup ----

struct Hierarchy {
  std::string mount_point;  // on the host: /sys/fs/cgroup/memory
  std::string fs_type;      // cgroup or cgroup2
  std::string subsystems;   // v1 mount data: "cpu,cpuacct" or "name=systemd"
  std::string root;         // the hierarchy mount's root inside the cgroup tree
};

std::set<std::string> known_controllers() {
  std::set<std::string> names;
  std::istringstream lines(read_file("/proc/cgroups"));
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line.front() != '#') names.insert(line.substr(0, line.find('\t')));
  return names;
}

std::string v1_subsystems(const std::string& super_options, const std::set<std::string>& known) {
  std::string out;
  std::istringstream parts(super_options);
  for (std::string part; std::getline(parts, part, ',');) {
    if (!known.contains(part) && !part.starts_with("name=")) continue;
    if (!out.empty()) out += ',';
    out += part;
  }
  return out;
}

// The host's cgroup mounts under /sys/fs/cgroup; one entry with mount_point /sys/fs/cgroup when
// the host is cgroup v2 only.
std::vector<Hierarchy> host_hierarchies() {
  const std::string base = "/sys/fs/cgroup";
  std::set<std::string> known;
  std::vector<Hierarchy> found;
  constexpr std::string_view kCgroupTypes[] = {"cgroup", "cgroup2"};
  for (const MountInfo& info : read_mountinfo(kCgroupTypes)) {
    if (info.mount_point != base && !info.mount_point.starts_with(base + "/")) continue;
    std::erase_if(found, [&](const Hierarchy& h) { return h.mount_point == info.mount_point; });
    Hierarchy h{info.mount_point, info.fs_type, "", info.root};
    if (info.fs_type == "cgroup") {
      if (known.empty()) known = known_controllers();
      h.subsystems = v1_subsystems(info.super_options, known);
    }
    found.push_back(std::move(h));
  }
  // Anything mounted below a cgroup2 root at /sys/fs/cgroup is not a hierarchy of its own.
  auto unified_root = std::find_if(found.begin(), found.end(), [&](const Hierarchy& h) {
    return h.mount_point == base && h.fs_type == "cgroup2";
  });
  if (unified_root != found.end()) return {*unified_root};
  std::erase_if(found, [&](const Hierarchy& h) { return h.mount_point == base; });
  return found;
}

bool same_controller_set(std::string_view a, std::string_view b) {
  auto as_set = [](std::string_view list) {
    std::set<std::string> out;
    std::istringstream parts{std::string(list)};
    for (std::string part; std::getline(parts, part, ',');) out.insert(part);
    return out;
  };
  return as_set(a) == as_set(b);
}

// Where this process sits in h, from /proc/self/cgroup ("ID:controllers:/path").
std::string own_cgroup(const Hierarchy& h) {
  std::istringstream lines(read_file("/proc/self/cgroup"));
  for (std::string line; std::getline(lines, line);) {
    size_t first = line.find(':');
    size_t second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    std::string controllers = line.substr(first + 1, second - first - 1);
    bool match = h.fs_type == "cgroup2" ? controllers.empty()
                                        : same_controller_set(controllers, h.subsystems);
    if (match) return line.substr(second + 1);
  }
  throw_error("no entry for " + h.mount_point + " in /proc/self/cgroup");
}

// The host directory of the container's cgroup in h: options.cgroup_path when it exists there,
// else the cgroup the init process already runs in.
std::string container_cgroup_dir(const Hierarchy& h, const Options& options) {
  auto in_mount = [&](std::string path) {
    if (h.root != "/" && path.starts_with(h.root)) path.erase(0, h.root.size());
    return h.mount_point + (path == "/" ? "" : path);
  };
  if (!options.cgroup_path.empty()) {
    std::string dir = in_mount(options.cgroup_path);
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return dir;
  }
  return in_mount(own_cgroup(h));
}

void bind_container_cgroup(const Hierarchy& h, int target_fd, const MountOptions& options,
                           const Options& rootfs_options) {
  MountOptions bind = options;
  bind.flags |= MS_BIND | MS_REC;
  bind_onto(container_cgroup_dir(h, rootfs_options), target_fd, bind);
}

void mount_hierarchy(const Hierarchy& h, int target_fd, const spec::Mount& m,
                     const MountOptions& options, const Options& rootfs_options) {
  if (!rootfs_options.new_cgroup_ns) {
    bind_container_cgroup(h, target_fd, options, rootfs_options);
    return;
  }
  const unsigned long flags = options.flags & ~(MS_BIND | MS_REC);
  const std::string data = h.fs_type == "cgroup2" ? options.data : h.subsystems;
  const std::string target = fd_path(target_fd);
  if (::mount(m.source.empty() ? "cgroup" : m.source.c_str(), target.c_str(), h.fs_type.c_str(),
              flags, data.empty() ? nullptr : data.c_str()) == 0)
    return;
  if (errno != EPERM && errno != EBUSY) throw_errno("mount " + h.fs_type + " " + h.mount_point);
  log::debug("rootfs: mount " + h.fs_type + " refused, binding the container's cgroup instead");
  bind_container_cgroup(h, target_fd, options, rootfs_options);
}

std::string base_name(const std::string& path) {
  return path.substr(path.rfind('/') + 1);
}

// v1 and hybrid hosts: a tmpfs holding one directory per hierarchy, like the host's layout.
void mount_cgroup_v1_tree(int rootfd, const spec::Mount& m, const MountOptions& options,
                          const Options& rootfs_options, const std::vector<Hierarchy>& hierarchies,
                          int target_fd) {
  mount_new_fs("tmpfs", target_fd, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755");
  UniqueFd tmpfs = open_in_root(rootfd, m.destination, O_PATH | O_DIRECTORY);
  for (const Hierarchy& h : hierarchies) {
    const std::string name = base_name(h.mount_point);
    if (::mkdirat(tmpfs.get(), name.c_str(), 0755) < 0 && errno != EEXIST)
      throw_errno("mkdir " + name);
    UniqueFd dir(
        ::openat(tmpfs.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir) throw_errno("open " + name);
    with_context(name, [&] { mount_hierarchy(h, dir.get(), m, options, rootfs_options); });
    // Co-mounted controllers ("cpu,cpuacct") also get a symlink per controller, as on hosts.
    if (name.find(',') == std::string::npos) continue;
    std::istringstream parts(name);
    for (std::string part; std::getline(parts, part, ',');)
      if (::symlinkat(name.c_str(), tmpfs.get(), part.c_str()) < 0 && errno != EEXIST)
        throw_errno("symlink " + part);
  }
  if (options.flags & MS_RDONLY) set_mount_attrs(tmpfs.get(), MOUNT_ATTR_RDONLY, 0, false);
}

void mount_cgroup(int rootfd, const spec::Mount& m, const MountOptions& options,
                  const Options& rootfs_options, int target_fd) {
  auto hierarchies = host_hierarchies();
  if (hierarchies.empty()) throw_error("no cgroup hierarchy mounted under /sys/fs/cgroup");
  if (hierarchies.size() == 1 && hierarchies.front().mount_point == "/sys/fs/cgroup") {
    mount_hierarchy(hierarchies.front(), target_fd, m, options, rootfs_options);
    return;
  }
  mount_cgroup_v1_tree(rootfd, m, options, rootfs_options, hierarchies, target_fd);
}

// ---- sysfs ----

void bind_host_sys(int target_fd, const MountOptions& options) {
  MountOptions bind = options;
  bind.flags |= MS_BIND | MS_REC;
  bind_onto("/sys", target_fd, bind);
}

void mount_sysfs(const spec::Mount& m, const MountOptions& options, const Options& rootfs_options,
                 int target_fd) {
  // sysfs shows the network devices of the mounting process's network namespace; without its
  // own, the kernel refuses a fresh mount, so the container sees the host's /sys (read-only when
  // asked) like under runc.
  if (!rootfs_options.new_net_ns) {
    bind_host_sys(target_fd, options);
    return;
  }
  const std::string target = fd_path(target_fd);
  if (::mount(m.source.empty() ? "sysfs" : m.source.c_str(), target.c_str(), "sysfs", options.flags,
              options.data.empty() ? nullptr : options.data.c_str()) == 0)
    return;
  if (errno != EPERM) throw_errno("mount sysfs");
  log::debug("rootfs: mount sysfs refused, binding /sys instead");
  bind_host_sys(target_fd, options);
}

// ---- tmpfs and devpts ----

// The permission bits of the directory a tmpfs is about to cover, when it exists.
std::optional<mode_t> covered_dir_mode(int rootfd, const std::string& path) {
  try {
    UniqueFd fd = open_in_root(rootfd, path, O_PATH);
    struct stat st {};
    if (::fstat(fd.get(), &st) == 0 && S_ISDIR(st.st_mode)) return st.st_mode & 07777;
  } catch (const Error& e) {
    if (e.code() != ENOENT) throw;
  }
  return std::nullopt;
}

// A tmpfs over an existing directory keeps that directory's mode unless the options set one (as
// runc >= 1.1.8 and crun do: /tmp stays 1777, /run 0755). tmpcopyup: the directory fd taken
// before mounting still reaches what the tmpfs then covers, so the copy needs no temporary mount
// point; nothing runs in the container yet to see it half done.
void mount_labeled_fs(int rootfd, const spec::Mount& m, const MountOptions& options,
                      const Options& rootfs_options, std::optional<mode_t> covered_mode,
                      int target_fd) {
  std::string data = runtime::lsm::with_mount_label(options.data, rootfs_options.mount_label);
  if (m.type == "tmpfs" && covered_mode) {
    std::ostringstream mode;
    mode << "mode=" << std::oct << *covered_mode;
    data = data.empty() ? mode.str() : mode.str() + "," + data;  // a later mode= wins
  }
  if (m.type != "tmpfs" || !options.copy_up) {
    mount_new_fs(m.source, target_fd, m.type, options.flags, data);
    return;
  }
  UniqueFd covered(::openat(target_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!covered) throw_errno("open " + m.destination);
  mount_new_fs(m.source, target_fd, m.type, options.flags, data);
  UniqueFd tmpfs = open_in_root(rootfd, m.destination, O_RDONLY | O_DIRECTORY);
  with_context("tmpcopyup", [&] { copy_directory_contents(covered.get(), tmpfs.get()); });
}

// ---- one mount ----

void attach_idmapped_tree(int tree_fd, int target_fd, const MountOptions& options) {
  apply_bind_flags(tree_fd, options.flags);
  apply_recursive_attrs(tree_fd, options);
  move_mount_onto(tree_fd, target_fd);
  apply_propagation(tree_fd, options);
}

void mount_one(int rootfd, size_t index, const spec::Mount& m, const Options& rootfs_options) {
  MountOptions options = parse_mount_options(m.options);
  if (m.type == "bind") options.flags |= MS_BIND;

  if (auto tree = rootfs_options.idmapped_trees.find(index);
      tree != rootfs_options.idmapped_trees.end()) {
    const std::string source = absolute_source(m.source, rootfs_options);
    UniqueFd target = make_bind_target(rootfd, source, m.destination);
    attach_idmapped_tree(tree->second, target.get(), options);
    return;
  }
  if (!m.uid_mappings.empty() || !m.gid_mappings.empty())
    throw_error("uidMappings: id-mapped mount was not prepared");  // prepare_idmapped_mounts
  if (options.is_bind()) {
    const std::string source = absolute_source(m.source, rootfs_options);
    UniqueFd target = make_bind_target(rootfd, source, m.destination);
    bind_onto(source, target.get(), options);
    return;
  }
  std::optional<mode_t> covered_mode;
  if (m.type == "tmpfs") covered_mode = covered_dir_mode(rootfd, m.destination);
  UniqueFd target = mkdir_all_in_root(rootfd, m.destination);
  if (m.type == "sysfs")
    mount_sysfs(m, options, rootfs_options, target.get());
  else if (m.type == "cgroup")
    mount_cgroup(rootfd, m, options, rootfs_options, target.get());
  else if (m.type == "tmpfs" || m.type == "devpts")
    mount_labeled_fs(rootfd, m, options, rootfs_options, covered_mode, target.get());
  else
    mount_new_fs(m.source, target.get(), m.type, options.flags, options.data);

  if (options.propagation.empty() && options.recursive_set == 0 && options.recursive_clear == 0)
    return;
  // The fd above still names the directory underneath; look the path up again to reach the new
  // mount on top of it.
  UniqueFd mounted = open_in_root(rootfd, m.destination, O_PATH);
  apply_recursive_attrs(mounted.get(), options);
  apply_propagation(mounted.get(), options);
}

}  // namespace

std::string absolute_source(const std::string& source, const Options& options) {
  if (!source.empty() && source.front() == '/') return source;
  return options.bundle_dir + "/" + source;
}

// Bind targets take the shape of their source: a directory, or an empty file to mount over.
UniqueFd clone_mount_tree(int dirfd, const std::string& path, bool recursive) {
  unsigned int flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
  if (recursive) flags |= AT_RECURSIVE;
  if (path.empty()) flags |= AT_EMPTY_PATH;
  UniqueFd tree(::open_tree(dirfd, path.c_str(), flags));
  if (!tree) throw_errno("open_tree " + (path.empty() ? std::string("fd") : path));
  return tree;
}

void move_mount_onto(int tree_fd, int target_fd) {
  if (::move_mount(tree_fd, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) <
      0)
    throw_errno("move_mount");
}

void set_mount_attrs(int fd, uint64_t set, uint64_t clear, bool recursive) {
  mount_attr attr{};
  attr.attr_set = set;
  attr.attr_clr = clear;
  if (mount_setattr_fd(fd, recursive ? AT_RECURSIVE : 0, attr) < 0) throw_errno("mount_setattr");
}

void bind_onto(const std::string& source, int target_fd, const MountOptions& options) {
  UniqueFd tree = clone_mount_tree(AT_FDCWD, source, options.is_recursive_bind());
  apply_bind_flags(tree.get(), options.flags);
  apply_recursive_attrs(tree.get(), options);
  move_mount_onto(tree.get(), target_fd);
  // After move_mount the tree fd names the attached mount, so propagation needs no lookup.
  apply_propagation(tree.get(), options);
}

void mount_all(int rootfd, const spec::Spec& spec, const Options& options) {
  for (size_t i = 0; i < spec.mounts.size(); ++i) {
    const spec::Mount& m = spec.mounts[i];
    with_context("mounts[" + std::to_string(i) + "] (" + m.destination + ")", [&] {
      log::debug("rootfs: mount " + m.type + " " + m.source + " on " + m.destination);
      mount_one(rootfd, i, m, options);
    });
  }
}

}  // namespace barge::rootfs::detail

namespace barge::rootfs {

std::map<size_t, UniqueFd> prepare_idmapped_mounts(const spec::Spec& spec, const Options& options) {
  std::map<size_t, UniqueFd> trees;
  for (size_t i = 0; i < spec.mounts.size(); ++i) {
    const spec::Mount& m = spec.mounts[i];
    if (m.uid_mappings.empty() && m.gid_mappings.empty()) continue;
    const std::string field = "mounts[" + std::to_string(i) + "]";
    with_context(field + " (" + m.destination + ")", [&] {
      if (!detail::is_bind_mount(m)) throw Error("uidMappings: only bind mounts can be id-mapped");
      detail::MountOptions parsed = detail::parse_mount_options(m.options);
      UniqueFd userns = runtime::make_user_namespace(m.uid_mappings, m.gid_mappings, field);
      UniqueFd tree = detail::clone_mount_tree(AT_FDCWD, detail::absolute_source(m.source, options),
                                               parsed.is_recursive_bind());
      mount_attr attr{};
      attr.attr_set = MOUNT_ATTR_IDMAP;
      attr.userns_fd = static_cast<uint64_t>(userns.get());
      if (::mount_setattr(tree.get(), "",
                          AT_EMPTY_PATH | (parsed.is_recursive_bind() ? AT_RECURSIVE : 0), &attr,
                          sizeof attr) < 0)
        throw_errno("id-map the mount (MOUNT_ATTR_IDMAP; does " + m.source +
                    "'s filesystem support id-mapped mounts?)");
      trees.emplace(i, std::move(tree));
    });
  }
  return trees;
}

}  // namespace barge::rootfs

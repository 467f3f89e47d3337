// The container's filesystem view: prepare() before pivot_root, finalize() after it.
// Mounting itself lives in rootfs_mounts.cpp, /dev in rootfs_dev.cpp, path resolution in
// safe_path.cpp.
#include "runtime/rootfs.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "common/error.hpp"
#include "common/log.hpp"
#include "runtime/rootfs_internal.hpp"

namespace barge::rootfs {
namespace {

std::string rootfs_path(const spec::Spec& spec, const Options& options) {
  std::string path = spec.root.path;
  if (path.empty() || path.front() != '/') path = options.bundle_dir + "/" + path;
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) throw_errno("root.path " + path);
  return resolved;
}

std::string root_propagation_name(const spec::Spec& spec) {
  return spec.linux ? spec.linux->rootfs_propagation : std::string();
}

unsigned long root_propagation(const spec::Spec& spec) {
  const std::string name = root_propagation_name(spec);
  if (name.empty()) return 0;
  auto flags = detail::parse_propagation(name);
  if (!flags) throw_error("linux.rootfsPropagation: unknown value \"" + name + "\"");
  return *flags;
}

// Nothing we mount may reach the host: make every mount a slave (or what the spec asks).
// Returns the flags applied.
unsigned long set_root_propagation(const spec::Spec& spec) {
  unsigned long flags = root_propagation(spec);
  if (flags == 0) flags = MS_SLAVE | MS_REC;
  if (::mount(nullptr, "/", nullptr, flags, nullptr) < 0) throw_errno("set propagation of /");
  return flags;
}

// After a recursive change of / to anything but shared, no mount of ours is shared.
bool mounts_may_be_shared(unsigned long root_propagation_flags) {
  return (root_propagation_flags & MS_REC) == 0 || (root_propagation_flags & MS_SHARED) != 0;
}

bool is_under(const std::string& path, const std::string& mount_point) {
  if (mount_point == "/") return true;
  return path == mount_point || (path.starts_with(mount_point) && path[mount_point.size()] == '/');
}

// pivot_root refuses a new root whose parent mount is shared; with a shared rootfsPropagation
// that parent must be made private first.
void make_parent_mount_private(const std::string& rootfs) {
  const detail::MountInfo* parent = nullptr;
  auto mounts = detail::read_mountinfo();
  for (const auto& info : mounts) {
    if (!is_under(rootfs, info.mount_point)) continue;
    if (!parent || info.mount_point.size() >= parent->mount_point.size()) parent = &info;
  }
  if (!parent || parent->optional_fields.find("shared:") == std::string::npos) return;
  if (::mount(nullptr, parent->mount_point.c_str(), nullptr, MS_PRIVATE, nullptr) < 0)
    throw_errno("make " + parent->mount_point + " private");
}

bool spec_mounts_dev(const spec::Spec& spec) {
  for (const auto& m : spec.mounts) {
    if (detail::split_path(m.destination) == std::vector<std::string>{"dev"})
      return !detail::is_bind_mount(m);
  }
  return false;
}

// pivot_root(".", ".") stacks the old root on top of the new one; unmounting "." then removes
// it without needing a put_old directory inside the rootfs.
void pivot_into(int rootfd) {
  UniqueFd old_root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!old_root) throw_errno("open /");
  if (::fchdir(rootfd) < 0) throw_errno("chdir to rootfs");
  if (::syscall(SYS_pivot_root, ".", ".") < 0) throw_errno("pivot_root");
  // Our unmount must not propagate to the host's copies of these mounts. mount(2) on "." would
  // name the new root here (and slave every container mount), so the old root is named by fd.
  mount_attr slave{};
  slave.propagation = MS_SLAVE;
  if (::mount_setattr(old_root.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &slave, sizeof slave) < 0)
    throw_errno("make old root slave");
  if (::umount2(".", MNT_DETACH) < 0) throw_errno("unmount old root");
  if (::chdir("/") < 0) throw_errno("chdir /");
}

void move_into(int rootfd, const std::string& rootfs) {
  if (::fchdir(rootfd) < 0) throw_errno("chdir to rootfs");
  if (::mount(rootfs.c_str(), "/", nullptr, MS_MOVE, nullptr) < 0) throw_errno("move rootfs to /");
  if (::chroot(".") < 0) throw_errno("chroot");
  if (::chdir("/") < 0) throw_errno("chdir /");
}

// ---- finalize ----

UniqueFd open_root() {
  UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) throw_errno("open /");
  return root;
}

// The container's /dev/null, checked to be the real null device before it hides anything.
UniqueFd open_dev_null(int rootfd) {
  UniqueFd null = open_in_root(rootfd, "/dev/null", O_PATH | O_NOFOLLOW);
  struct stat st {};
  if (::fstat(null.get(), &st) < 0) throw_errno("stat /dev/null");
  if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
    throw_error("/dev/null is not the null device");
  return null;
}

void mask_directory(int target_fd) {
  UniqueFd fs(::fsopen("tmpfs", FSOPEN_CLOEXEC));
  if (!fs) throw_errno("fsopen tmpfs");
  if (::fsconfig(fs.get(), FSCONFIG_SET_FLAG, "ro", nullptr, 0) < 0) throw_errno("fsconfig ro");
  if (::fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0)
    throw_errno("create tmpfs");
  UniqueFd mnt(
      ::fsmount(fs.get(), FSMOUNT_CLOEXEC,
                MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC));
  if (!mnt) throw_errno("fsmount tmpfs");
  detail::move_mount_onto(mnt.get(), target_fd);
}

// The last component is not followed: a masked path that is a symlink would otherwise hide
// whatever it points at instead of itself, so symlinks are left as they are.
void mask_path(int rootfd, const std::string& path, UniqueFd& dev_null) {
  UniqueFd target = open_in_root_if_exists(rootfd, path, O_PATH | O_NOFOLLOW);
  if (!target) return;
  struct stat st {};
  if (::fstat(target.get(), &st) < 0) throw_errno("stat");
  if (S_ISLNK(st.st_mode)) {
    log::debug("rootfs: not masking " + path + ": it is a symlink");
    return;
  }
  if (S_ISDIR(st.st_mode)) {
    mask_directory(target.get());
    return;
  }
  if (!dev_null) dev_null = open_dev_null(rootfd);
  UniqueFd tree = detail::clone_mount_tree(dev_null.get(), "", false);
  detail::move_mount_onto(tree.get(), target.get());
}

void make_path_readonly(int rootfd, const std::string& path) {
  UniqueFd target = open_in_root_if_exists(rootfd, path, O_PATH);
  if (!target) return;
  UniqueFd tree = detail::clone_mount_tree(target.get(), "", true);
  // Recursive, so submounts (binfmt_misc under /proc/sys) cannot be written either.
  detail::set_mount_attrs(
      tree.get(), MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, 0,
      true);
  detail::move_mount_onto(tree.get(), target.get());
}

// Only the read-only bit changes, so flags the kernel locks (nosuid, nodev...) stay as they are.
void make_root_readonly() {
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (::mount_setattr(AT_FDCWD, "/", 0, &attr, sizeof attr) < 0) throw_errno("remount / read-only");
}

}  // namespace

void prepare(const spec::Spec& spec, const Options& options) {
  const std::string rootfs = rootfs_path(spec, options);
  // (The default, rslave, skips reading mountinfo: in the init every page it allocates is
  // charged to the container.)
  if (mounts_may_be_shared(set_root_propagation(spec))) make_parent_mount_private(rootfs);
  if (::mount(rootfs.c_str(), rootfs.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
    throw_errno("bind mount rootfs " + rootfs);
  // Opened after the bind so the fd is the root of the new mount, not the directory under it.
  UniqueFd rootfd(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!rootfd) throw_errno("open rootfs " + rootfs);

  detail::mount_all(rootfd.get(), spec, options);
  detail::setup_dev(rootfd.get(), spec, options, spec_mounts_dev(spec));
  if (options.before_pivot) options.before_pivot();
  if (options.no_pivot)
    move_into(rootfd.get(), rootfs);
  else
    pivot_into(rootfd.get());
  log::debug("rootfs: entered " + rootfs);
}

void finalize(const spec::Spec& spec) {
  UniqueFd root = open_root();
  if (spec.linux) {
    const auto& paths = spec.linux->readonly_paths;
    for (size_t i = 0; i < paths.size(); ++i)
      with_context(
          [&] { return "linux.readonlyPaths[" + std::to_string(i) + "] (" + paths[i] + ")"; },
          [&] { make_path_readonly(root.get(), paths[i]); });
    UniqueFd dev_null;
    const auto& masked = spec.linux->masked_paths;
    for (size_t i = 0; i < masked.size(); ++i)
      with_context(
          [&] { return "linux.maskedPaths[" + std::to_string(i) + "] (" + masked[i] + ")"; },
          [&] { mask_path(root.get(), masked[i], dev_null); });
  }
  if (spec.root.readonly) make_root_readonly();
  const unsigned long propagation = root_propagation(spec);
  if (propagation != 0 && ::mount(nullptr, "/", nullptr, propagation, nullptr) < 0)
    throw_errno("linux.rootfsPropagation: set propagation of /");
}

}  // namespace barge::rootfs

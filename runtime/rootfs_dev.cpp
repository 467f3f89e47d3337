// /dev inside the container: device nodes, the /proc/self/fd symlinks and ptmx.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <array>

#include "common/error.hpp"
#include "common/log.hpp"
#include "runtime/rootfs_internal.hpp"

namespace barge::rootfs::detail {
namespace {

// Device nodes are created with exactly the spec's mode; the umask must not trim it.
class UmaskZero {
 public:
  UmaskZero() : saved_(::umask(0)) {}
  ~UmaskZero() { ::umask(saved_); }
  UmaskZero(const UmaskZero&) = delete;
  UmaskZero& operator=(const UmaskZero&) = delete;

 private:
  mode_t saved_;
};

spec::Device char_device(const char* path, int64_t major, int64_t minor) {
  return spec::Device{"c", path, major, minor, 0666, 0, 0};
}

// Every container gets these (runc's default device list).
std::vector<spec::Device> default_devices() {
  return {char_device("/dev/null", 1, 3),    char_device("/dev/zero", 1, 5),
          char_device("/dev/full", 1, 7),    char_device("/dev/random", 1, 8),
          char_device("/dev/urandom", 1, 9), char_device("/dev/tty", 5, 0)};
}

mode_t file_type(const spec::Device& device) {
  if (device.type == "c" || device.type == "u") return S_IFCHR;
  if (device.type == "b") return S_IFBLK;
  if (device.type == "p") return S_IFIFO;
  throw_error("unknown device type \"" + device.type + "\"");
}

// In a user namespace mknod is refused: mount the host's node over an empty file instead.
void bind_host_device(int parent_fd, const std::string& name, const spec::Device& device) {
  UniqueFd created(
      ::openat(parent_fd, name.c_str(), O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0000));
  if (!created && errno != EEXIST) throw_errno("create mount point");
  UniqueFd target(::openat(parent_fd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!target) throw_errno("open mount point");
  UniqueFd tree = clone_mount_tree(AT_FDCWD, device.path, false);
  move_mount_onto(tree.get(), target.get());
}

void create_device(int rootfd, const spec::Device& device, bool bind) {
  auto [parent, name] = split_parent(device.path);
  if (name.empty()) throw_error("bad device path");
  UniqueFd parent_fd = mkdir_all_in_root(rootfd, parent);
  if (bind) {
    bind_host_device(parent_fd.get(), name, device);
    return;
  }
  const mode_t mode = file_type(device) | (device.file_mode.value_or(0666) & 07777);
  const dev_t dev =
      makedev(static_cast<unsigned>(device.major), static_cast<unsigned>(device.minor));
  if (::mknodat(parent_fd.get(), name.c_str(), mode, dev) < 0) {
    if (errno == EEXIST) return;  // the rootfs ships it; leave it alone like runc
    if (errno != EPERM) throw_errno("mknod");
    log::debug("rootfs: mknod " + device.path + " refused, binding the host's node");
    bind_host_device(parent_fd.get(), name, device);
    return;
  }
  if (::fchownat(parent_fd.get(), name.c_str(), device.uid.value_or(0), device.gid.value_or(0),
                 AT_SYMLINK_NOFOLLOW) < 0)
    throw_errno("chown");
}

void make_symlink(int dev_fd, const char* target, const char* name) {
  if (::symlinkat(target, dev_fd, name) < 0 && errno != EEXIST)
    throw_errno(std::string("symlink /dev/") + name);
}

void create_dev_symlinks(int rootfd) {
  UniqueFd dev = open_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY);
  make_symlink(dev.get(), "/proc/self/fd", "fd");
  make_symlink(dev.get(), "/proc/self/fd/0", "stdin");
  make_symlink(dev.get(), "/proc/self/fd/1", "stdout");
  make_symlink(dev.get(), "/proc/self/fd/2", "stderr");
  if (::access("/proc/kcore", F_OK) == 0) make_symlink(dev.get(), "/proc/kcore", "core");
  // ptmx always points at the container's own devpts instance.
  if (::unlinkat(dev.get(), "ptmx", 0) < 0 && errno != ENOENT) throw_errno("remove /dev/ptmx");
  make_symlink(dev.get(), "pts/ptmx", "ptmx");
}

}  // namespace

void setup_dev(int rootfd, const spec::Spec& spec, const Options& options, bool dev_mounted) {
  std::vector<spec::Device> devices;
  if (spec.linux) devices = spec.linux->devices;
  if (dev_mounted) {
    for (spec::Device& device : default_devices()) {
      bool listed = std::any_of(devices.begin(), devices.end(),
                                [&](const spec::Device& d) { return d.path == device.path; });
      if (!listed) devices.push_back(std::move(device));
    }
  }
  {
    UmaskZero umask_zero;
    for (size_t i = 0; i < devices.size(); ++i) {
      const bool from_spec = spec.linux && i < spec.linux->devices.size();
      const std::string context =
          from_spec ? "linux.devices[" + std::to_string(i) + "] (" + devices[i].path + ")"
                    : "device " + devices[i].path;
      with_context(context, [&] { create_device(rootfd, devices[i], options.new_user_ns); });
    }
  }
  if (dev_mounted) with_context("/dev", [&] { create_dev_symlinks(rootfd); });
}

}  // namespace barge::rootfs::detail

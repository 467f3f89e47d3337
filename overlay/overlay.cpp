#include "overlay/overlay.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <exception>
#include <string_view>
#include <thread>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/file.hpp"
#include "common/log.hpp"

namespace barge::overlay {
namespace {

// Kernel messages an fs context fd collected ("e overlay: ..."), for error reports.
std::string context_messages(int fsfd) {
  std::string out;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(fsfd, buf, sizeof buf);
    if (n <= 0) break;
    if (!out.empty()) out += "; ";
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

[[noreturn]] void throw_fs(int fsfd, const std::string& what, int err) {
  std::string messages = context_messages(fsfd);
  throw_errno(what + (messages.empty() ? "" : " (" + messages + ")"), err);
}

// Returns false (errno kept) when the kernel does not know "lowerdir+": the caller falls back.
bool mount_new_api(const std::string& target, const Layers& layers) {
  UniqueFd fsfd(::fsopen("overlay", FSOPEN_CLOEXEC));
  if (!fsfd) {
    if (errno == ENOSYS) return false;
    throw_errno("fsopen overlay");
  }
  for (size_t i = 0; i < layers.lower.size(); ++i) {
    if (::fsconfig(fsfd.get(), FSCONFIG_SET_STRING, "lowerdir+", layers.lower[i].c_str(), 0) != 0) {
      if (i == 0 && errno == EINVAL) return false;
      throw_fs(fsfd.get(), "overlay lowerdir+ " + layers.lower[i], errno);
    }
  }
  auto set = [&](const char* key, const std::string& value) {
    if (::fsconfig(fsfd.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) != 0)
      throw_fs(fsfd.get(), std::string("overlay ") + key + " " + value, errno);
  };
  if (!layers.upper.empty()) {
    set("upperdir", layers.upper);
    set("workdir", layers.work);
  }
  if (::fsconfig(fsfd.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0)
    throw_fs(fsfd.get(), "create overlay for " + target, errno);
  UniqueFd mnt(::fsmount(fsfd.get(), FSMOUNT_CLOEXEC, 0));
  if (!mnt) throw_fs(fsfd.get(), "fsmount overlay", errno);
  if (::move_mount(mnt.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0)
    throw_errno("move overlay mount to " + target);
  return true;
}

std::string join_lower(const std::vector<std::string>& dirs, size_t strip) {
  std::string out;
  for (const auto& dir : dirs) out += (out.empty() ? "" : ":") + dir.substr(strip);
  return out;
}

std::string options(const Layers& layers, size_t strip) {
  std::string data = "lowerdir=" + join_lower(layers.lower, strip);
  if (!layers.upper.empty()) data += ",upperdir=" + layers.upper + ",workdir=" + layers.work;
  return data;
}

// Length of the directory prefix ("/a/b/") every lower shares.
size_t common_dir_prefix(const std::vector<std::string>& dirs) {
  std::string prefix = dirs.front();
  for (const auto& dir : dirs) {
    size_t n = 0;
    while (n < prefix.size() && n < dir.size() && prefix[n] == dir[n]) ++n;
    prefix.resize(n);
  }
  auto slash = prefix.rfind('/');
  return slash == std::string::npos ? 0 : slash + 1;
}

// mount(2) with data whose relative lowerdirs resolve against dir: in a thread that has its own
// fs struct, so the process's cwd never changes (containerd's trick).
void mount_relative_to(const std::string& dir, const std::string& target, const std::string& data) {
  std::exception_ptr failure;
  std::thread([&] {
    try {
      if (::unshare(CLONE_FS) != 0) throw_errno("unshare CLONE_FS");
      if (::chdir(dir.c_str()) != 0) throw_errno("chdir " + dir);
      if (::mount("overlay", target.c_str(), "overlay", 0, data.c_str()) != 0)
        throw_errno("mount overlay on " + target);
    } catch (...) {
      failure = std::current_exception();
    }
  }).join();
  if (failure) std::rethrow_exception(failure);
}

// Layers whose lowers are link_dir/0, link_dir/1, ... (symlinks to the real ones, made here).
// The kernel resolves them at mount time; they are not needed afterwards.
Layers with_short_links(const Layers& layers) {
  make_dirs(layers.link_dir, 0700);
  Layers linked = layers;
  for (size_t i = 0; i < layers.lower.size(); ++i) {
    std::string link = layers.link_dir + "/" + std::to_string(i);
    ::unlink(link.c_str());
    if (::symlink(layers.lower[i].c_str(), link.c_str()) != 0) throw_errno("symlink " + link);
    linked.lower[i] = link;
  }
  return linked;
}

void mount_legacy(const std::string& target, const Layers& layers) {
  const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::string data = options(layers, 0);
  if (data.size() < page) {
    if (::mount("overlay", target.c_str(), "overlay", 0, data.c_str()) != 0)
      throw_errno("mount overlay on " + target);
    return;
  }
  const Layers* used = &layers;
  size_t strip = common_dir_prefix(layers.lower);
  data = options(layers, strip);
  Layers linked;
  if ((strip == 0 || data.size() >= page) && !layers.link_dir.empty()) {
    linked = with_short_links(layers);
    used = &linked;
    strip = common_dir_prefix(linked.lower);
    data = options(linked, strip);
    log::debug("overlay: " + std::to_string(layers.lower.size()) +
               " lowers through short links in " + layers.link_dir);
  }
  if (strip == 0 || data.size() >= page)
    throw_error("overlay on " + target + ": " + std::to_string(layers.lower.size()) +
                " layers do not fit in one page of mount options and this kernel lacks "
                "lowerdir+ (Linux >= 6.8)");
  mount_relative_to(used->lower.front().substr(0, strip), target, data);
}

bool mount2_forced() {
  const char* value = std::getenv("BARGE_OVERLAY_MOUNT2");
  return value != nullptr && std::string_view(value) == "1";
}

}  // namespace

void mount(const std::string& target, const Layers& layers) {
  if (layers.lower.empty()) throw_error("overlay on " + target + ": no lower layers");
  if (layers.upper.empty() && layers.lower.size() < 2)
    throw_error("overlay on " + target + ": a read-only overlay needs two lower layers");
  if (mount2_forced()) {
    log::debug("overlay: BARGE_OVERLAY_MOUNT2=1, using mount(2)");
  } else if (mount_new_api(target, layers)) {
    return;
  } else {
    log::debug("overlay: new mount API without lowerdir+ (errno " + std::to_string(errno) +
               "), using mount(2)");
  }
  mount_legacy(target, layers);
}

void unmount(const std::string& target) {
  if (::umount2(target.c_str(), UMOUNT_NOFOLLOW) == 0) return;
  if (errno == EINVAL || errno == ENOENT) return;  // not a mount point (any more)
  if (errno != EBUSY) throw_errno("unmount " + target);
  log::warn("unmount " + target + ": busy, detaching lazily");
  if (::umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0)
    throw_errno("unmount " + target);
}

MountGuard::~MountGuard() {
  if (target_.empty()) return;
  if (::umount2(target_.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0 && errno != EINVAL)
    log::warn("unmount " + target_ + " during cleanup failed");
}

}  // namespace barge::overlay

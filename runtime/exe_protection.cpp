// The scheme, cheapest correct choice first:
//
//  0. Nothing to do when /proc/self/exe is already unwritable: a fully sealed memfd, or a file on
//     a read-only mount (barge installed on a read-only /usr; a host mount of another mount
//     namespace cannot be remounted, cloned or reconfigured from inside a container).
//  1. A private overlayfs without an upper layer, made with fsopen/fsconfig/fsmount: lower layers
//     are the binary's directory and an empty detached tmpfs (an overlay without upper needs two
//     lower layers). It is attached nowhere (no mount namespace shows it, no path reaches it), the
//     binary is opened from it and re-exec'd, so /proc/<pid>/exe of every barge process of the
//     command, and of the container processes cloned from it, names the overlay's file. An
//     overlay without an upper layer has a read-only superblock: even a container with
//     CAP_SYS_ADMIN, which can clear the read-only flag of a detached mount with mount_setattr,
//     cannot write through it (that is why this is not a read-only bind mount of the binary,
//     crun's first choice). No copy is made: the cost is ~0.2 ms of mount setup plus one execve of
//     barge. runc >= 1.2 protects its binary the same way.
//  2. Fallback (no overlayfs or fsopen, an unprivileged caller, a kernel without fd-specified
//     overlay layers, or a binary directory overlayfs refuses): a memfd copy of the binary, sealed
//     against write, grow, shrink and further sealing. It costs a copy of the binary (~3 MB of
//     memory per running command), which is why it is not the first choice.
//
// The re-exec'd process finds a marker in its environment naming its own pid (execve keeps the
// pid, so a marker inherited by any other process never matches) and removes it at once: it can
// cause no loop and reaches neither hooks nor the container.
#include "runtime/exe_protection.hpp"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/log.hpp"

namespace barge::runtime {
namespace {

constexpr const char* kReexecMarker = "_BARGE_EXE_PROTECTED";
constexpr unsigned kMfdExec = 0x0010U;  // MFD_EXEC (Linux 6.3), not in glibc 2.36's headers
constexpr int kRequiredSeals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

bool is_reexecuted_copy() {
  const char* marker = std::getenv(kReexecMarker);
  if (marker == nullptr) return false;
  bool ours = std::to_string(::getpid()) == marker;
  ::unsetenv(kReexecMarker);
  return ours;
}

bool is_unwritable(int exe_fd) {
  int seals = ::fcntl(exe_fd, F_GET_SEALS);
  if (seals >= 0) return (seals & kRequiredSeals) == kRequiredSeals;
  struct statfs fs {};
  return ::fstatfs(exe_fd, &fs) == 0 && (fs.f_flags & ST_RDONLY) != 0;
}

std::string own_binary_path() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf);
  if (n < 0 || n == static_cast<ssize_t>(sizeof buf)) throw_errno("readlink /proc/self/exe");
  return std::string(buf, static_cast<size_t>(n));
}

// fsmount of a configured fs context (closes it).
UniqueFd mount_context(UniqueFd context, const char* what, unsigned attributes) {
  if (::fsconfig(context.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0)
    throw_errno(std::string("create ") + what);
  UniqueFd mount(::fsmount(context.get(), FSMOUNT_CLOEXEC, attributes));
  if (!mount) throw_errno(std::string("fsmount ") + what);
  return mount;
}

UniqueFd empty_detached_tmpfs() {
  UniqueFd context(::fsopen("tmpfs", FSOPEN_CLOEXEC));
  if (!context) throw_errno("fsopen tmpfs");
  return mount_context(std::move(context), "tmpfs", MOUNT_ATTR_RDONLY);
}

UniqueFd open_through_private_overlay(const std::string& binary) {
  auto slash = binary.rfind('/');
  if (binary.front() != '/' || slash == std::string::npos)
    throw Error("not an absolute path: " + binary);
  std::string dir = slash == 0 ? "/" : binary.substr(0, slash);
  std::string name = binary.substr(slash + 1);
  UniqueFd empty = empty_detached_tmpfs();
  UniqueFd context(::fsopen("overlay", FSOPEN_CLOEXEC));
  if (!context) throw_errno("fsopen overlay");
  // The binary's directory on top, so a file of that name in the other layer cannot shadow it.
  if (::fsconfig(context.get(), FSCONFIG_SET_STRING, "lowerdir+", dir.c_str(), 0) != 0)
    throw_errno("overlay lower layer " + dir);
  if (::fsconfig(context.get(), FSCONFIG_SET_FD, "lowerdir+", nullptr, empty.get()) != 0)
    throw_errno("overlay lower layer from a detached tmpfs");
  // Only avoids dmesg noise when the layers are on different filesystems.
  (void)::fsconfig(context.get(), FSCONFIG_SET_STRING, "xino", "off", 0);
  UniqueFd mount = mount_context(std::move(context), "overlay",
                                 MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID);
  UniqueFd binary_fd(::openat(mount.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!binary_fd) throw_errno("open " + name + " in the private overlay");
  return binary_fd;
}

UniqueFd sealed_memfd_copy(int exe_fd) {
  // MFD_EXEC (Linux 6.3) keeps the copy executable under vm.memfd_noexec=1; older kernels
  // reject the flag and make memfds executable anyway.
  UniqueFd copy(::memfd_create("barge:/proc/self/exe", MFD_CLOEXEC | MFD_ALLOW_SEALING | kMfdExec));
  if (!copy && errno == EINVAL)
    copy.reset(::memfd_create("barge:/proc/self/exe", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!copy) throw_errno("memfd_create");
  struct stat st {};
  if (::fstat(exe_fd, &st) != 0) throw_errno("fstat /proc/self/exe");
  off_t offset = 0;
  while (offset < st.st_size) {
    ssize_t sent =
        ::sendfile(copy.get(), exe_fd, &offset, static_cast<size_t>(st.st_size - offset));
    if (sent < 0) throw_errno("copy /proc/self/exe into a memfd");
    if (sent == 0) throw Error("copy /proc/self/exe into a memfd: the binary shrank");
  }
  if (::fcntl(copy.get(), F_ADD_SEALS, kRequiredSeals) != 0) throw_errno("seal the memfd copy");
  return copy;
}

UniqueFd unwritable_binary(int exe_fd) {
  try {
    UniqueFd binary = open_through_private_overlay(own_binary_path());
    log::debug("exe protection: re-executing from a private read-only overlay");
    return binary;
  } catch (const Error& e) {
    log::debug(std::string("exe protection: no private overlay (") + e.what() +
               "), using a sealed memfd copy");
  }
  return sealed_memfd_copy(exe_fd);
}

}  // namespace

void run_from_unwritable_binary(char** argv) {
  if (is_reexecuted_copy()) return;
  UniqueFd exe(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  if (!exe) throw_errno("open /proc/self/exe");
  if (is_unwritable(exe.get())) return;
  UniqueFd binary = with_context("protect the barge binary (CVE-2019-5736)",
                                 [&] { return unwritable_binary(exe.get()); });
  exe.reset();
  if (::setenv(kReexecMarker, std::to_string(::getpid()).c_str(), 1) != 0)
    throw_errno("setenv " + std::string(kReexecMarker));
  ::execveat(binary.get(), "", argv, environ, AT_EMPTY_PATH);
  int err = errno;
  ::unsetenv(kReexecMarker);
  throw_errno("protect the barge binary (CVE-2019-5736): re-exec", err);
}

}  // namespace barge::runtime

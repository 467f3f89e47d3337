#include "runtime/lsm.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "common/error.hpp"
#include "common/file.hpp"

namespace barge::runtime::lsm {
namespace {

// /proc/thread-self/attr/<lsm>/exec exists on kernels with LSM stacking (5.8+); the legacy
// attr/exec belongs to whichever LSM is "major".
void write_exec_attr(const std::string& lsm_dir, const std::string& value,
                     const std::string& field) {
  std::string specific = "/proc/thread-self/attr/" + lsm_dir + "/exec";
  std::string path =
      ::access(specific.c_str(), F_OK) == 0 ? specific : "/proc/thread-self/attr/exec";
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) throw_errno(field + ": open " + path);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
    throw_errno(field + ": set \"" + value + "\" (is it loaded?)");
}

}  // namespace

bool apparmor_enabled() {
  std::string enabled;
  try {
    enabled = read_file("/sys/module/apparmor/parameters/enabled");
  } catch (const Error&) {
    return false;
  }
  return !enabled.empty() && enabled[0] == 'Y';
}

bool selinux_enabled() {
  return ::access("/sys/fs/selinux/enforce", F_OK) == 0;
}

void require_support(const spec::Process& process, const std::string& mount_label) {
  if (!process.apparmor_profile.empty() && !apparmor_enabled())
    throw Error("process.apparmorProfile: AppArmor is not enabled on this host (profile \"" +
                process.apparmor_profile + "\")");
  if (!process.selinux_label.empty() && !selinux_enabled())
    throw Error("process.selinuxLabel: SELinux is not enabled on this host");
  if (!mount_label.empty() && !selinux_enabled())
    throw Error("linux.mountLabel: SELinux is not enabled on this host");
}

void set_exec_labels(const spec::Process& process) {
  if (!process.apparmor_profile.empty())
    write_exec_attr("apparmor", "exec " + process.apparmor_profile, "process.apparmorProfile");
  if (!process.selinux_label.empty())
    write_exec_attr("selinux", process.selinux_label, "process.selinuxLabel");
}

std::string with_mount_label(const std::string& data, const std::string& mount_label) {
  if (mount_label.empty()) return data;
  std::string context = "context=\"" + mount_label + "\"";
  return data.empty() ? context : data + "," + context;
}

}  // namespace barge::runtime::lsm

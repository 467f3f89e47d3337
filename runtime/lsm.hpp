// Linux security modules: the AppArmor profile and SELinux labels a config asks for.
// A label the host cannot apply is an error (naming the field), never silently dropped.
#pragma once

#include <string>

#include "runtime/spec.hpp"

namespace barge::runtime::lsm {

bool apparmor_enabled();
bool selinux_enabled();

// Throws when process.apparmorProfile, process.selinuxLabel or linux.mountLabel is set and the
// host lacks that LSM. Runs in the parent, before anything is created.
void require_support(const spec::Process& process, const std::string& mount_label);

// Arms the process's AppArmor profile and SELinux label for its next execve (attr/exec), so
// barge's own setup keeps running unconfined and the user process starts confined.
void set_exec_labels(const spec::Process& process);

// "context=\"LABEL\"" appended to a mount's data for filesystems that accept it (SELinux only).
std::string with_mount_label(const std::string& data, const std::string& mount_label);

}  // namespace barge::runtime::lsm

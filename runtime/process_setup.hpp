// The process attributes a process entering the container (the init, or an `exec`) applies to
// itself just before execve: rlimits, oom score, scheduling, personality, LSM labels, seccomp,
// identity (groups, gid, uid) with capabilities kept across the switch, cwd, no_new_privs,
// umask, fd hygiene, and the executable lookup inside the container.
#pragma once

#include <sys/capability.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/seccomp.hpp"
#include "runtime/spec.hpp"

namespace barge::runtime {

// The five capability sets resolved to numbers (in the parent, so bad names fail early).
struct CapabilitySets {
  bool configured = false;
  std::vector<cap_value_t> bounding, effective, inheritable, permitted, ambient;
};

// ---- the whole sequence (init and exec share it, so every security setting lands once) -------

struct ProcessSetup {
  const spec::Process* process = nullptr;
  const CapabilitySets* capabilities = nullptr;
  const seccomp::Filter* seccomp = nullptr;        // nullptr: no filter
  const spec::Personality* personality = nullptr;  // nullptr: keep the runtime's
  int preserve_fds = 0;
  // Receives a SCMP_ACT_NOTIFY listener fd (the init hands it to the parent); required when the
  // filter has one.
  std::function<void(int listener_fd)> hand_over_listener;
};

struct PreparedProcess {
  std::string path;  // resolved inside the container before any privilege is dropped
  std::vector<std::string> args;
  std::vector<std::string> env;
  const seccomp::Filter* late_seccomp = nullptr;  // loaded right before execve
};

// Applies everything in the order the kernel requires: a filter without no_new_privs needs
// CAP_SYS_ADMIN so it loads before capabilities drop; with no_new_privs it loads as late as
// possible (a listener must reach the parent first, so that case loads at the end here).
PreparedProcess prepare_process(const ProcessSetup& setup);
// Loads a pending filter and execve's; throws (with errno) when execve fails.
[[noreturn]] void exec_prepared(PreparedProcess& prepared);

// ---- the steps -----------------------------------------------------------------------------

// Unknown names are an error naming the field; names of capabilities newer than the running
// kernel (above /proc/sys/kernel/cap_last_cap) are skipped with one warning, as runc does.
CapabilitySets resolve_capabilities(const std::optional<spec::Capabilities>& caps);
// The same against a given last capability (tests).
CapabilitySets resolve_capabilities(const std::optional<spec::Capabilities>& caps,
                                    cap_value_t last_cap);
// The highest capability number the running kernel knows.
cap_value_t kernel_last_capability();
// Resolves rlimit names to RLIMIT_* numbers; throws naming process.rlimits[i].type.
int rlimit_resource(const std::string& name);

void apply_rlimits(const std::vector<spec::Rlimit>& rlimits);
void apply_oom_score_adj(std::optional<int> score);
// Drops the bounding set, switches to user.uid/gid/additionalGids keeping capabilities, then
// sets effective/permitted/inheritable and raises ambient.
void switch_user_and_capabilities(const spec::User& user, const CapabilitySets& caps);
void apply_no_new_privileges(bool enabled);
void apply_scheduler(const spec::Scheduler& scheduler);
void apply_io_priority(const spec::IoPriority& priority);
// cpus in cpuset list form ("0-3,6"); "" keeps the current affinity.
void apply_cpu_affinity(const std::string& cpus, const std::string& field);
void apply_personality(const spec::Personality& personality);
// Marks every fd >= 3 + preserve_fds close-on-exec and clears it on 3 .. 3+preserve_fds-1.
void seal_file_descriptors(int preserve_fds);
// PATH lookup inside the (pivoted) container, like execvp but checked before exec so a missing
// executable fails `create`. Throws runc's messages: `exec: "name": executable file not found in
// $PATH`, `exec: "/path": stat /path: No such file or directory`, `exec: "/path": Permission
// denied`.
std::string find_executable(const std::string& name, const std::vector<std::string>& env);
// The NULL-terminated char* array execve wants, pointing into strings (which must outlive it).
std::vector<char*> as_argv(std::vector<std::string>& strings);
// Adds HOME from the container's /etc/passwd (or "/") when env lacks it, as runc does.
std::vector<std::string> with_home(std::vector<std::string> env, uint32_t uid);
// chdir into cwd (the init created it if missing, an exec fails on it as with runc, which podman
// turns into exit code 127); verifies the result is inside the container.
void enter_working_directory(const std::string& cwd);

}  // namespace barge::runtime

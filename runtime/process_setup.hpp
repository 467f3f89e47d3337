// The process attributes the container init applies to itself just before exec:
// rlimits, oom score, identity (groups, gid, uid) with capabilities kept across the switch,
// no_new_privs, umask, fd hygiene, and the executable lookup inside the container.
#pragma once

#include <sys/capability.h>

#include <memory>
#include <string>
#include <vector>

#include "runtime/spec.hpp"

namespace barge::runtime {

// The five capability sets resolved to numbers (in the parent, so bad names fail early).
struct CapabilitySets {
  bool configured = false;
  std::vector<cap_value_t> bounding, effective, inheritable, permitted, ambient;
};

CapabilitySets resolve_capabilities(const std::optional<spec::Capabilities>& caps);
// Resolves rlimit names to RLIMIT_* numbers; throws naming process.rlimits[i].type.
int rlimit_resource(const std::string& name);

void apply_rlimits(const std::vector<spec::Rlimit>& rlimits);
void apply_oom_score_adj(std::optional<int> score);
// Drops the bounding set, switches to user.uid/gid/additionalGids keeping capabilities, then
// sets effective/permitted/inheritable and raises ambient.
void switch_user_and_capabilities(const spec::User& user, const CapabilitySets& caps);
void apply_no_new_privileges(bool enabled);
// Marks every fd >= 3 + preserve_fds close-on-exec and clears it on 3 .. 3+preserve_fds-1.
void seal_file_descriptors(int preserve_fds);
// PATH lookup inside the (pivoted) container, like execvp but checked before exec so a missing
// executable fails `create`. Throws `exec: "name": executable file not found in $PATH`.
std::string find_executable(const std::string& name, const std::vector<std::string>& env);
// The NULL-terminated char* array execve wants, pointing into strings (which must outlive it).
std::vector<char*> as_argv(std::vector<std::string>& strings);
// Adds HOME from the container's /etc/passwd (or "/") when env lacks it, as runc does.
std::vector<std::string> with_home(std::vector<std::string> env, uint32_t uid);
// chdir into cwd, creating it if needed; verifies the result is inside the container.
void enter_working_directory(const std::string& cwd);

}  // namespace barge::runtime

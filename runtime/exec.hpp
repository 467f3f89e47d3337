// `exec`: run another process in a running container — its namespaces, cgroup, user,
// capabilities and rootfs — with the container's config.json process as the base (runc's rule).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/container.hpp"

namespace barge::runtime {

struct ExecOptions {
  std::string process_file;       // --process: a runtime-spec process JSON (replaces the rest)
  std::vector<std::string> args;  // command and arguments
  bool detach = false;
  std::string pid_file;
  std::string console_socket;
  bool tty = false;
  std::vector<std::string> env;  // KEY=VALUE, added to / replacing the config's
  std::string cwd;
  std::string user;  // uid[:gid]
  std::vector<uint32_t> additional_gids;
  std::vector<std::string> capabilities;  // added to every set
  bool no_new_privs = false;
  int preserve_fds = 0;
  std::string process_label;     // --process-label: SELinux label
  std::string apparmor_profile;  // --apparmor
};

// Returns the exec'd process's exit code in the foreground (128+signal when killed), 0 detached.
int exec(const GlobalOptions& global, const std::string& id, const ExecOptions& options);

}  // namespace barge::runtime

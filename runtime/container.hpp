// The runc-compatible lifecycle: create, start, run, state, kill, delete, list.
// Every operation throws barge::Error with a runc-like message on failure.
#pragma once

#include <string>
#include <vector>

#include "runtime/state.hpp"

namespace barge::runtime {

struct GlobalOptions {
  std::string root = "/run/barge";
};

struct CreateOptions {
  std::string bundle = ".";
  std::string pid_file;
  std::string console_socket;
  bool no_pivot = false;
  bool no_new_keyring = false;
  int preserve_fds = 0;
  int console_fd = -1;  // internal: a connected console socket (foreground run relays itself)
};

void create(const GlobalOptions& global, const std::string& id, const CreateOptions& options);
void start(const GlobalOptions& global, const std::string& id);
// create + start; in the foreground waits for the process, forwarding signals, deletes the
// container and returns its exit code (128+signal when killed). Detached returns 0.
int run(const GlobalOptions& global, const std::string& id, const CreateOptions& options,
        bool detach);

struct ContainerInfo {
  ContainerState state;
  Status status = Status::stopped;
};

ContainerInfo inspect(const GlobalOptions& global, const std::string& id);
std::string state_json(const GlobalOptions& global, const std::string& id);
void kill(const GlobalOptions& global, const std::string& id, int signal, bool all);
void remove(const GlobalOptions& global, const std::string& id, bool force);
std::vector<ContainerInfo> list(const GlobalOptions& global);

// "KILL", "SIGKILL", "9" → 9; throws on unknown names.
int parse_signal(const std::string& text);

}  // namespace barge::runtime

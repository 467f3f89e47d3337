// start, run, state, kill, delete, list.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <optional>

#include "cgroups/cgroup.hpp"
#include "common/error.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "common/syscalls.hpp"
#include "image/image.hpp"
#include "runtime/container.hpp"
#include "runtime/create_internal.hpp"
#include "runtime/foreground.hpp"
#include "runtime/hooks.hpp"
#include "runtime/terminal.hpp"

namespace barge::runtime {
namespace {

constexpr int kStopTimeoutMs = 10000;

void require_created(const std::string& id, Status status) {
  switch (status) {
    case Status::created:
      return;
    case Status::running:
      throw Error("cannot start an already running container: " + id);
    case Status::stopped:
      throw Error("cannot start a container that has stopped: " + id);
    case Status::paused:
      throw Error("cannot start a paused container: " + id);
    case Status::creating:
      throw Error("cannot start a container that is being created: " + id);
  }
}

// Reads the go-ahead byte the init writes once a reader opens the fifo; watches the init so a
// dead init fails start instead of hanging it. The pidfd comes first: once the fifo is open the
// init may exec, finish and be reaped before this process runs again.
void release_init(const StateDir& dir, const ContainerState& state) {
  UniqueFd pidfd(sys::pidfd_open(state.pid));
  if (!pidfd || process_start_time(state.pid) != state.pid_start_time)
    throw Error("container init exited before start");
  UniqueFd fifo(::openat(dir.fd(), "exec.fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fifo) throw_errno("open exec fifo");
  std::array<pollfd, 2> fds{{{fifo.get(), POLLIN, 0}, {pidfd.get(), POLLIN, 0}}};
  for (;;) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      throw_errno("wait for container init");
    }
    if (fds[0].revents & POLLIN) break;
    if (fds[1].revents & POLLIN) throw Error("container init exited before start");
    if (fds[0].revents & (POLLHUP | POLLERR)) throw Error("exec fifo closed before start");
  }
  char byte = 0;
  if (::read(fifo.get(), &byte, 1) != 1) throw Error("container init did not confirm start");
  if (::unlinkat(dir.fd(), "exec.fifo", 0) != 0) throw_errno("remove exec fifo");
}

void signal_init(const ContainerState& state, int sig) {
  UniqueFd pidfd(sys::pidfd_open(state.pid));
  // Checked after pidfd_open: the pidfd pins the process, so the start time check is race-free.
  if (!pidfd || process_start_time(state.pid) != state.pid_start_time)
    throw Error("container not running", ESRCH);
  if (sys::pidfd_send_signal(pidfd.get(), sig) != 0) throw_errno("kill container init");
}

spec::Hooks saved_hooks(const StateDir& dir) {
  if (::faccessat(dir.fd(), "hooks.json", F_OK, AT_SYMLINK_NOFOLLOW) != 0) return {};
  return hooks_from_json(read_file_at(dir.fd(), "hooks.json"));
}

// A rootfs `barge image bundle` mounted goes with the container (the annotation names its
// store); gone already (`image unmount`) is fine.
void release_image_rootfs(const ContainerState& state) {
  auto storage = state.annotations.find(image::kStorageAnnotation);
  if (storage == state.annotations.end()) return;
  try {
    image::unmount_image(storage->second, state.rootfs);
  } catch (const Error& e) {
    if (e.code() != ENOENT) throw;
  }
}

void destroy_resources(const StateDir& dir, const ContainerState& state) {
  spec::Hooks hooks = saved_hooks(dir);
  if (!state.cgroup_path.empty()) cgroups::Cgroup::open(state.cgroup_path).destroy();
  release_image_rootfs(state);
  dir.remove();
  run_hooks_warning_only(hooks.poststop, "poststop", to_oci_state_json(state, Status::stopped));
}

void kill_and_destroy(const StateDir& dir, const ContainerState& state, Status status) {
  if (status != Status::stopped) {
    if (!state.cgroup_path.empty()) {
      auto cgroup = cgroups::Cgroup::open(state.cgroup_path);
      cgroup.signal_all(SIGKILL);
      if (status == Status::paused) cgroup.thaw();
    }
    try {
      signal_init(state, SIGKILL);
    } catch (const Error&) {
    }
    if (!wait_for_exit(state.pid, kStopTimeoutMs))
      throw Error("container init " + std::to_string(state.pid) + " did not exit after SIGKILL");
  }
  destroy_resources(dir, state);
}

// runc compat: `delete --force` of a container that does not exist succeeds, so cleanup paths
// (containerd's shim, podman) can call it unconditionally.
std::optional<StateDir> open_for_delete(const GlobalOptions& global, const std::string& id,
                                        bool force) {
  try {
    return StateDir::open(global.root, id);
  } catch (const Error& e) {
    if (force && e.code() == ENOENT) return std::nullopt;
    throw;
  }
}

}  // namespace

void start(const GlobalOptions& global, const std::string& id) {
  StateDir dir = StateDir::open(global.root, id);
  if (!dir.has_state()) require_created(id, Status::creating);
  ContainerState state = dir.load();  // pid 0 (unfinished create) reports "creating" below
  require_created(id, dir.status(state));
  release_init(dir, state);
  spec::Hooks hooks = saved_hooks(dir);
  run_hooks_warning_only(hooks.poststart, "poststart", to_oci_state_json(state, Status::running));
}

int run(const GlobalOptions& global, const std::string& id, const CreateOptions& options,
        bool detach) {
  // Blocked before the init exists so no signal meant for the container is lost; the init
  // unblocks them for itself before exec.
  sigset_t set = forwarded_set();
  if (!detach) ::sigprocmask(SIG_BLOCK, &set, nullptr);
  // In the foreground without --console-socket, barge itself receives the pty master.
  CreateOptions create_options = options;
  std::pair<UniqueFd, UniqueFd> console;
  if (!detach && options.console_socket.empty()) {
    console = console_socket_pair();
    create_options.console_fd = console.second.get();
  }
  CreatedContainer created = create_container(global, id, create_options);
  console.second.reset();
  std::optional<TerminalRelay> relay;
  if (created.terminal && console.first) relay.emplace(receive_fd(console.first.get()));
  try {
    start(global, id);
  } catch (const Error&) {
    try {
      remove(global, id, true);
    } catch (const Error& e) {
      log::warn(std::string("cleanup after failed start: ") + e.what());
    }
    throw;
  }
  if (detach) return 0;
  int code = wait_forwarding_signals(created.pid, relay ? &*relay : nullptr);
  relay.reset();
  remove(global, id, true);
  return code;
}

ContainerInfo inspect(const GlobalOptions& global, const std::string& id) {
  StateDir dir = StateDir::open(global.root, id, StateDir::Lock::no);
  ContainerInfo info;
  if (!dir.has_state()) {
    info.state.id = id;
    info.status = Status::creating;
    return info;
  }
  info.state = dir.load();
  info.status = dir.status(info.state);
  return info;
}

std::string state_json(const GlobalOptions& global, const std::string& id) {
  ContainerInfo info = inspect(global, id);
  return to_oci_state_json(info.state, info.status);
}

void kill(const GlobalOptions& global, const std::string& id, int sig, bool all) {
  StateDir dir = StateDir::open(global.root, id);
  if (!dir.has_state()) throw Error("container " + id + " is being created");
  ContainerState state = dir.load();
  Status status = dir.status(state);
  if (status == Status::creating) throw Error("container " + id + " is being created");
  if (all) {
    if (!state.cgroup_path.empty()) cgroups::Cgroup::open(state.cgroup_path).signal_all(sig);
  } else {
    if (status == Status::stopped) throw Error("container not running", ESRCH);
    signal_init(state, sig);
  }
  // A frozen process dies of SIGKILL only once thawed (cgroup v1); runc thaws too, and podman
  // waits for the exit after `kill` of a paused container.
  if (sig == SIGKILL && status == Status::paused && !state.cgroup_path.empty())
    cgroups::Cgroup::open(state.cgroup_path).thaw();
}

void remove(const GlobalOptions& global, const std::string& id, bool force) {
  std::optional<StateDir> opened = open_for_delete(global, id, force);
  if (!opened) return;
  StateDir& dir = *opened;
  if (!dir.has_state()) {
    dir.remove();  // a create that crashed before its first record: nothing else exists
    return;
  }
  ContainerState state = dir.load();
  Status status = dir.status(state);
  if (status == Status::creating) {
    // We hold the lock, so the create that wrote this record is gone (crashed or killed).
    destroy_resources(dir, state);
    return;
  }
  if ((status == Status::running || status == Status::paused) && !force)
    throw Error("cannot delete container " + id + " that is not stopped: " + status_name(status));
  kill_and_destroy(dir, state, status);
}

std::vector<ContainerInfo> list(const GlobalOptions& global) {
  std::vector<ContainerInfo> result;
  for (const auto& id : list_ids(global.root)) {
    try {
      result.push_back(inspect(global, id));
    } catch (const Error& e) {
      log::debug(std::string("list: skipping ") + id + ": " + e.what());
    }
  }
  return result;
}

int parse_signal(const std::string& text) {
  if (!text.empty() &&
      std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
    int number = std::stoi(text);
    if (number > 0 && number < NSIG) return number;
    throw Error("invalid signal: " + text);
  }
  std::string name = text;
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  if (name.rfind("SIG", 0) == 0) name = name.substr(3);
  for (int sig = 1; sig < SIGRTMIN; ++sig) {
    const char* abbrev = sigabbrev_np(sig);
    if (abbrev != nullptr && name == abbrev) return sig;
  }
  if (name.rfind("RTMIN", 0) == 0 || name.rfind("RTMAX", 0) == 0) {
    int base = name[2] == 'M' && name[3] == 'I' ? SIGRTMIN : SIGRTMAX;
    std::string offset = name.substr(5);
    int value = offset.empty() ? 0 : std::stoi(offset);
    int sig = base + value;
    if (sig >= SIGRTMIN && sig <= SIGRTMAX) return sig;
  }
  throw Error("invalid signal: " + text);
}

}  // namespace barge::runtime

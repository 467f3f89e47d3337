// exec: parent verifies the init, opens its namespaces, joins pid/time (they apply to children),
// clones into the cgroup; the child joins the rest (user first), sets the process up and execs.
// The sync socket closing on exec tells the parent the exec happened; an error packet that it
// did not.
#include "runtime/exec.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "cgroups/cgroup.hpp"
#include "common/error.hpp"
#include "common/file.hpp"
#include "common/syscalls.hpp"
#include "runtime/foreground.hpp"
#include "runtime/lsm.hpp"
#include "runtime/namespaces.hpp"
#include "runtime/process_setup.hpp"
#include "runtime/seccomp.hpp"
#include "runtime/spec.hpp"
#include "runtime/state.hpp"
#include "runtime/sync.hpp"
#include "runtime/terminal.hpp"

namespace barge::runtime {
namespace {

struct ExecPlan {
  spec::Process process;
  std::vector<NamespaceJoin> joins;  // user first; pid and time are joined by the parent
  bool joins_user = false;
  CapabilitySets capabilities;
  std::string cgroup_path;
  std::optional<seccomp::Filter> seccomp;  // the container's filter applies to exec'd processes
  std::optional<spec::Personality> personality;
};

const char* proc_ns_name(const std::string& type) {
  if (type == "network") return "net";
  if (type == "mount") return "mnt";
  return type.c_str();
}

spec::Process process_from_file(const std::string& path) {
  std::string text = read_file(path);
  // The spec parser knows the process object; wrap it in a minimal config to reuse it.
  spec::Spec wrapped = spec::parse(
      R"({"ociVersion":"1.0.0","root":{"path":"rootfs"},"process":)" + text + "}", path);
  return *wrapped.process;
}

void set_env(std::vector<std::string>& env, const std::string& entry) {
  auto eq = entry.find('=');
  std::string key = entry.substr(0, eq == std::string::npos ? entry.size() : eq + 1);
  auto same_key = [&](const std::string& e) { return e.rfind(key, 0) == 0; };
  env.erase(std::remove_if(env.begin(), env.end(), same_key), env.end());
  env.push_back(entry);
}

void apply_user_option(spec::User& user, const std::string& text) {
  auto colon = text.find(':');
  try {
    user.uid = static_cast<uint32_t>(std::stoul(text.substr(0, colon)));
    if (colon != std::string::npos)
      user.gid = static_cast<uint32_t>(std::stoul(text.substr(colon + 1)));
  } catch (const std::exception&) {
    throw Error("--user: expected uid[:gid], got \"" + text + "\"");
  }
}

void add_capabilities(spec::Process& process, const std::vector<std::string>& caps) {
  if (caps.empty()) return;
  if (!process.capabilities) process.capabilities.emplace();
  auto& sets = *process.capabilities;
  for (auto* set :
       {&sets.bounding, &sets.effective, &sets.permitted, &sets.ambient, &sets.inheritable}) {
    if (!*set) set->emplace();
    for (const auto& cap : caps)
      if (std::find((*set)->begin(), (*set)->end(), cap) == (*set)->end()) (*set)->push_back(cap);
  }
}

void apply_label_options(spec::Process& process, const ExecOptions& options) {
  if (!options.apparmor_profile.empty()) process.apparmor_profile = options.apparmor_profile;
  if (!options.process_label.empty()) process.selinux_label = options.process_label;
}

spec::Process build_process(const spec::Spec& config, const ExecOptions& options) {
  if (!options.process_file.empty()) {
    auto process =
        with_context("--process", [&] { return process_from_file(options.process_file); });
    apply_label_options(process, options);
    return process;
  }
  if (options.args.empty()) throw Error("exec: no command given (args or --process)");
  spec::Process process = config.process.value_or(spec::Process{});
  process.args = options.args;
  process.terminal = options.tty;
  process.console_size.reset();
  for (const auto& entry : options.env) set_env(process.env, entry);
  if (!options.cwd.empty()) process.cwd = options.cwd;
  if (!options.user.empty()) apply_user_option(process.user, options.user);
  if (!options.additional_gids.empty()) process.user.additional_gids = options.additional_gids;
  add_capabilities(process, options.capabilities);
  if (options.no_new_privs) process.no_new_privileges = true;
  apply_label_options(process, options);
  return process;
}

void require_running(const std::string& id, Status status) {
  if (status == Status::running || status == Status::created) return;
  if (status == Status::paused) throw Error("cannot exec in a paused container: " + id);
  throw Error("cannot exec in a stopped container: " + id);
}

// Opens the init's namespaces through a pidfd-pinned, start-time-checked pid.
std::vector<NamespaceJoin> open_init_namespaces(const spec::Spec& config,
                                                const ContainerState& state) {
  UniqueFd pidfd(sys::pidfd_open(state.pid));
  if (!pidfd || process_start_time(state.pid) != state.pid_start_time)
    throw Error("container not running", ESRCH);
  std::vector<NamespaceJoin> joins;
  for (const auto& ns : config.linux->namespaces) {
    std::string path = "/proc/" + std::to_string(state.pid) + "/ns/" + proc_ns_name(ns.type);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_errno("open " + path);
    joins.push_back({namespace_clone_flag(ns.type), ns.type, UniqueFd(fd)});
  }
  std::stable_partition(joins.begin(), joins.end(),
                        [](const NamespaceJoin& j) { return j.clone_flag == CLONE_NEWUSER; });
  return joins;
}

struct ExecChild {
  const ExecPlan* plan;
  const cgroups::JoinHandles* cgroup_join;
  int sync_fd;
  int console_fd;
  int preserve_fds;
};

[[noreturn]] void run_exec_child(const ExecChild& child) noexcept {
  try {
    // Non-dumpable until execve: container processes cannot open our /proc/PID/exe (the barge
    // binary) while we sit in their pid namespace (CVE-2019-5736). execve resets it.
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    auto go = sync::receive(child.sync_fd);
    if (!go) ::_exit(1);
    child.cgroup_join->join_self();
    const ExecPlan& plan = *child.plan;
    for (const auto& join : plan.joins)
      if (join.clone_flag != CLONE_NEWPID && join.clone_flag != CLONE_NEWTIME) join_namespace(join);
    if (plan.joins_user) {
      if (::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0)
        throw_errno("become root of the container's user namespace");
      ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    const spec::Process& process = plan.process;
    if (child.console_fd >= 0) set_up_terminal(child.console_fd, process.console_size, false);
    ProcessSetup setup;
    setup.process = &process;
    setup.capabilities = &plan.capabilities;
    setup.seccomp = plan.seccomp ? &*plan.seccomp : nullptr;
    setup.personality = plan.personality ? &*plan.personality : nullptr;
    setup.preserve_fds = child.preserve_fds;
    PreparedProcess prepared = prepare_process(setup);
    if (process.exec_cpu_affinity)
      apply_cpu_affinity(process.exec_cpu_affinity->final_, "process.execCPUAffinity.final");
    ::prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);  // survives execve; a detached exec outlives us
    exec_prepared(prepared);
  } catch (const std::exception& e) {
    try {
      sync::send(child.sync_fd, sync::Message::error, e.what());
    } catch (...) {
    }
    ::_exit(127);
  }
}

pid_t clone_exec_child(const ExecPlan& plan, const ExecChild& child, int parent_end) {
  for (const auto& join : plan.joins)
    if (join.clone_flag == CLONE_NEWPID || join.clone_flag == CLONE_NEWTIME) join_namespace(join);
  const cgroups::JoinHandles& cgroup_join = *child.cgroup_join;
  clone_args args{};
  args.exit_signal = SIGCHLD;
  if (cgroup_join.unified_dir) {
    args.flags = CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(cgroup_join.unified_dir.get());
  }
  long pid = sys::clone3(&args);
  if (pid < 0) throw_errno("clone exec process");
  if (pid == 0) {
    ::close(parent_end);
    run_exec_child(child);
  }
  return static_cast<pid_t>(pid);
}

// EOF: the child exec'd. An error packet: it did not, and says why.
void wait_for_exec(int sync_fd, pid_t pid) {
  auto packet = sync::receive(sync_fd);
  if (!packet) return;
  ::waitpid(pid, nullptr, 0);
  if (packet->type == sync::Message::error) throw Error(packet->payload);
  throw Error("sync: unexpected message from exec process");
}

}  // namespace

int exec(const GlobalOptions& global, const std::string& id, const ExecOptions& options) {
  StateDir dir = StateDir::open(global.root, id, StateDir::Lock::no);
  if (!dir.has_state()) throw Error("container " + id + " is being created");
  ContainerState state = dir.load();
  require_running(id, dir.status(state));
  spec::Spec config = spec::load_bundle_config(state.bundle);
  if (!config.linux) throw Error("linux: required on Linux");

  ExecPlan plan;
  plan.process = build_process(config, options);
  if (plan.process.args.empty()) throw Error("process.args: must not be empty");
  if (plan.process.terminal && options.console_socket.empty() && options.detach)
    throw Error("--tty: cannot allocate a terminal for a detached exec without --console-socket");
  plan.capabilities = resolve_capabilities(plan.process.capabilities);
  lsm::require_support(plan.process, "");
  plan.personality = config.linux->personality;
  if (config.linux->seccomp) {
    plan.seccomp = seccomp::compile_cached(*config.linux->seccomp, seccomp_cache_dir(global.root));
    // The notify listener belongs to the container's init; exec'd processes get no agent.
    if (plan.seccomp->has_listener())
      throw Error("exec: containers with SCMP_ACT_NOTIFY seccomp rules are not supported yet");
  }
  plan.joins = open_init_namespaces(config, state);
  plan.joins_user = std::any_of(plan.joins.begin(), plan.joins.end(), [](const NamespaceJoin& j) {
    return j.clone_flag == CLONE_NEWUSER;
  });
  auto cgroup = cgroups::Cgroup::open(state.cgroup_path);

  sigset_t forwarded = forwarded_set();
  if (!options.detach) ::sigprocmask(SIG_BLOCK, &forwarded, nullptr);
  UniqueFd console;
  std::pair<UniqueFd, UniqueFd> relay_pair;
  if (plan.process.terminal) {
    if (!options.console_socket.empty()) {
      console = connect_console_socket(options.console_socket);
    } else {
      relay_pair = console_socket_pair();
      console = std::move(relay_pair.second);
    }
  }
  if (plan.process.exec_cpu_affinity)
    apply_cpu_affinity(plan.process.exec_cpu_affinity->initial, "process.execCPUAffinity.initial");
  auto [parent_end, child_end] = sync::make_pair();
  cgroups::JoinHandles cgroup_join = cgroup.open_join_handles();
  ExecChild child{&plan, &cgroup_join, child_end.get(), console.get(), options.preserve_fds};
  pid_t pid = clone_exec_child(plan, child, parent_end.get());
  child_end.reset();
  console.reset();
  sync::send(parent_end.get(), sync::Message::go);
  wait_for_exec(parent_end.get(), pid);
  if (!options.pid_file.empty())
    with_context("--pid-file", [&] { write_file_atomic(options.pid_file, std::to_string(pid)); });
  if (options.detach) return 0;
  std::optional<TerminalRelay> relay;
  if (relay_pair.first) relay.emplace(receive_fd(relay_pair.first.get()));
  return wait_forwarding_signals(pid, relay ? &*relay : nullptr);
}

}  // namespace barge::runtime

// `create`: the parent side of the bootstrap described in bootstrap.hpp.
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <optional>

#include "cgroups/cgroup.hpp"
#include "common/error.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "common/syscalls.hpp"
#include "common/time.hpp"
#include "runtime/bootstrap.hpp"
#include "runtime/container.hpp"
#include "runtime/create_internal.hpp"
#include "runtime/hooks.hpp"
#include "runtime/lsm.hpp"
#include "runtime/seccomp.hpp"
#include "runtime/sync.hpp"
#include "runtime/terminal.hpp"

namespace barge::runtime {
namespace {

std::string absolute_path(const std::string& path, const std::string& what) {
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) throw_errno(what + ": " + path);
  return resolved;
}

// Everything decided from the config before anything is created on the host.
struct Plan {
  spec::Spec spec;
  std::string bundle;
  std::string rootfs;
  NamespacePlan namespaces;
  CapabilitySets capabilities;
  std::string cgroup_path;
  std::optional<seccomp::Filter> seccomp;
};

void check_process(const spec::Spec& spec, const CreateOptions& options) {
  const auto& process = *spec.process;  // rlimit names were checked by spec::validate
  if (process.terminal && options.console_socket.empty() && options.console_fd < 0)
    throw Error("process.terminal: cannot allocate a terminal without --console-socket");
  if (options.preserve_fds < 0) throw Error("--preserve-fds: must not be negative");
  lsm::require_support(process, spec.linux->mount_label);
  if (spec.linux->intel_rdt)
    throw Error("linux.intelRdt: Intel RDT (resctrl) is not supported by barge");
  if (!spec.linux->net_devices.empty())
    throw Error("linux.netDevices: moving host network devices is not supported yet");
}

Plan make_plan(const GlobalOptions& global, const std::string& id, const CreateOptions& options) {
  Plan plan;
  plan.bundle = absolute_path(options.bundle, "bundle");
  plan.spec = spec::load_bundle_config(plan.bundle);
  spec::validate(plan.spec);
  if (!plan.spec.process) throw Error("process: required to create a container");
  if (!plan.spec.linux) throw Error("linux: required on Linux");
  check_process(plan.spec, options);
  plan.namespaces = plan_namespaces(plan.spec);
  if (!plan.namespaces.creates(CLONE_NEWNS))
    throw Error("linux.namespaces: a new mount namespace is required");
  const std::string& root = plan.spec.root.path;
  plan.rootfs = absolute_path(root.front() == '/' ? root : plan.bundle + "/" + root, "root.path");
  plan.capabilities = resolve_capabilities(plan.spec.process->capabilities);
  plan.cgroup_path = cgroups::resolve_path(plan.spec.linux->cgroups_path, id);
  if (plan.spec.linux->seccomp)
    plan.seccomp =
        seccomp::compile_cached(*plan.spec.linux->seccomp, seccomp_cache_dir(global.root));
  return plan;
}

// Undoes a partial create unless commit() is called: kills the init, removes cgroup and state.
class Rollback {
 public:
  explicit Rollback(const StateDir& dir) : dir_(dir) {}
  Rollback(const Rollback&) = delete;
  Rollback& operator=(const Rollback&) = delete;
  ~Rollback() {
    if (committed_) return;
    if (child_ > 0) {
      ::kill(child_, SIGKILL);
      ::waitpid(child_, nullptr, 0);
    }
    try {
      if (cgroup_) cgroup_->destroy();
    } catch (const Error& e) {
      log::warn(std::string("cleanup after failed create: ") + e.what());
    }
    try {
      dir_.remove();
    } catch (const Error& e) {
      log::warn(std::string("cleanup after failed create: ") + e.what());
    }
  }
  void track_cgroup(cgroups::Cgroup cgroup) { cgroup_ = std::move(cgroup); }
  void track_child(pid_t pid) { child_ = pid; }
  void commit() { committed_ = true; }

 private:
  const StateDir& dir_;
  std::optional<cgroups::Cgroup> cgroup_;
  pid_t child_ = -1;
  bool committed_ = false;
};

UniqueFd make_exec_fifo(const StateDir& dir) {
  if (::mkfifoat(dir.fd(), "exec.fifo", 0622) != 0) throw_errno("mkfifo " + dir.fifo_path());
  // Past the umask: an init running as a mapped (non-host-root) uid must be able to write it.
  if (::fchmodat(dir.fd(), "exec.fifo", 0622, 0) != 0) throw_errno("chmod " + dir.fifo_path());
  return open_at_or_throw(dir.fd(), "exec.fifo", O_PATH);
}

// Joins and new namespaces that only take effect for children must be entered by the parent.
void enter_parent_side_namespaces(const Plan& plan) {
  for (const auto& join : plan.namespaces.joins)
    if (join.clone_flag == CLONE_NEWPID || join.clone_flag == CLONE_NEWTIME) join_namespace(join);
  if (!plan.namespaces.creates(CLONE_NEWTIME)) return;
  if (::unshare(CLONE_NEWTIME) != 0) throw_errno("unshare time namespace");
  std::string offsets;
  for (const auto& [clock, offset] : plan.spec.linux->time_offsets)
    offsets +=
        clock + " " + std::to_string(offset.secs) + " " + std::to_string(offset.nanosecs) + "\n";
  if (!offsets.empty())
    with_context("linux.timeOffsets", [&] { write_file("/proc/self/timens_offsets", offsets); });
}

// placed: the clone put the child into the cgroup2 tree (false after falling back to clone).
pid_t clone_init(const Plan& plan, int cgroup_fd, bool& placed) {
  clone_args args{};
  args.flags = plan.namespaces.clone_flags();
  args.exit_signal = SIGCHLD;
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(cgroup_fd);
  }
  long pid = sys::clone3(&args);
  placed = cgroup_fd >= 0;
  if (pid < 0 && errno == ENOSYS) {
    pid = ::syscall(SYS_clone, (args.flags & ~CLONE_INTO_CGROUP) | SIGCHLD, nullptr, nullptr,
                    nullptr, nullptr);
    placed = false;
  }
  if (pid < 0) throw_errno("clone container init");
  return static_cast<pid_t>(pid);
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + sigabbrev_np(WTERMSIG(status));
  return "status " + std::to_string(status);
}

bool has_create_hooks(const spec::Spec& spec) {
  if (!spec.hooks) return false;
  const auto& h = *spec.hooks;
  return !h.prestart.empty() || !h.create_runtime.empty() || !h.create_container.empty() ||
         !h.start_container.empty();
}

// prestart (deprecated) and createRuntime run in the runtime's namespaces once the init has
// its namespaces and mounts; the init gets the state JSON for its own hooks in the reply.
void run_runtime_hooks(int sync_fd, const spec::Spec& spec, const ContainerState& state) {
  std::string state_json = to_oci_state_json(state, Status::creating);
  run_hooks(spec.hooks->prestart, "prestart", state_json);
  run_hooks(spec.hooks->create_runtime, "createRuntime", state_json);
  sync::send(sync_fd, sync::Message::hooks_done, state_json);
}

// SCMP_ACT_NOTIFY: the agent at listenerPath gets the init's listener fd and the state.
void send_seccomp_listener(int listener_fd, const spec::Spec& spec, const ContainerState& state) {
  if (listener_fd < 0) throw Error("sync: seccomp listener message without an fd");
  const auto& config = *spec.linux->seccomp;
  seccomp::send_listener(listener_fd, config.listener_path, config.listener_metadata,
                         to_oci_state_json(state, Status::creating), state.pid);
}

void wait_until_ready(int sync_fd, pid_t child, const spec::Spec& spec, ContainerState state) {
  state.pid = child;
  for (;;) {
    auto packet = sync::receive(sync_fd);
    if (!packet) {
      int status = 0;
      ::waitpid(child, &status, 0);
      throw Error("container init exited during setup (" + describe_exit(status) + ")");
    }
    switch (packet->type) {
      case sync::Message::ready:
        return;
      case sync::Message::error:
        throw Error(packet->payload);
      case sync::Message::hooks:
        run_runtime_hooks(sync_fd, spec, state);
        break;
      case sync::Message::seccomp_listener:
        send_seccomp_listener(packet->fd.get(), spec, state);
        break;
      default:
        throw Error("sync: unexpected message from init");
    }
  }
}

void save_late_hooks(const StateDir& dir, const spec::Spec& spec) {
  if (!spec.hooks || (spec.hooks->poststart.empty() && spec.hooks->poststop.empty())) return;
  write_file_atomic_at(dir.fd(), "hooks.json", hooks_to_json(*spec.hooks));
}

// Every device the container is given (linux.devices) is also allowed in the device cgroup,
// after the configured rules: a configured device should be usable. (runc 1.1.5 leaves it denied.)
spec::Resources resources_with_devices(const spec::Linux& linux_config) {
  spec::Resources resources = *linux_config.resources;
  if (resources.devices.empty()) return resources;
  for (const auto& device : linux_config.devices) {
    if (device.type == "p") continue;  // fifos are not device-cgroup controlled
    resources.devices.push_back({.allow = true,
                                 .type = device.type == "u" ? "c" : device.type,
                                 .major = device.major,
                                 .minor = device.minor,
                                 .access = "rwm"});
  }
  return resources;
}

ContainerState initial_state(const std::string& id, const Plan& plan) {
  ContainerState state;
  state.id = id;
  state.oci_version = plan.spec.oci_version;
  state.bundle = plan.bundle;
  state.rootfs = plan.rootfs;
  state.cgroup_path = plan.cgroup_path;
  state.annotations = plan.spec.annotations;
  state.created = rfc3339_now();
  return state;
}

}  // namespace

CreatedContainer create_container(const GlobalOptions& global, const std::string& id,
                                  const CreateOptions& options) {
  validate_id(id);
  Plan plan = make_plan(global, id, options);
  StateDir dir = StateDir::claim(global.root, id);
  Rollback rollback(dir);
  // Saved before anything else exists, so a delete after a crashed create finds the cgroup.
  ContainerState state = initial_state(id, plan);
  dir.save(state);

  UniqueFd exec_fifo = make_exec_fifo(dir);
  auto cgroup = cgroups::Cgroup::create(plan.cgroup_path);
  rollback.track_cgroup(cgroup);
  if (plan.spec.linux->resources) cgroup.apply_resources(resources_with_devices(*plan.spec.linux));
  cgroups::JoinHandles cgroup_join = cgroup.open_join_handles();

  UniqueFd console;
  if (plan.spec.process->terminal) {
    console = options.console_fd >= 0 ? UniqueFd(::fcntl(options.console_fd, F_DUPFD_CLOEXEC, 3))
                                      : connect_console_socket(options.console_socket);
    if (!console) throw_errno("console socket");
  }
  auto [parent_end, child_end] = sync::make_pair();
  InitContext context;
  context.seccomp = plan.seccomp ? &*plan.seccomp : nullptr;
  context.spec = &plan.spec;
  context.namespaces = &plan.namespaces;
  context.rootfs = {.bundle_dir = plan.bundle,
                    .no_pivot = options.no_pivot,
                    .new_user_ns = plan.namespaces.creates(CLONE_NEWUSER),
                    .new_net_ns = plan.namespaces.creates(CLONE_NEWNET),
                    .new_cgroup_ns = plan.namespaces.creates(CLONE_NEWCGROUP),
                    .cgroup_path = plan.cgroup_path,
                    .mount_label = plan.spec.linux->mount_label};
  auto idmapped_trees = rootfs::prepare_idmapped_mounts(plan.spec, context.rootfs);
  for (const auto& [index, tree] : idmapped_trees)
    context.rootfs.idmapped_trees[index] = tree.get();
  context.capabilities = plan.capabilities;
  context.cgroup_join = &cgroup_join;
  context.sync_fd = child_end.get();
  context.exec_fifo_fd = exec_fifo.get();
  context.preserve_fds = options.preserve_fds;
  context.container_id = id;
  context.has_create_hooks = has_create_hooks(plan.spec);
  context.console_socket_fd = console.get();
  context.new_session_keyring = !options.no_new_keyring;

  enter_parent_side_namespaces(plan);
  bool placed_by_clone = false;
  pid_t pid = clone_init(plan, cgroup_join.unified_dir.get(), placed_by_clone);
  if (pid == 0) {
    parent_end.reset();
    // The flock lives on the open file description we share: holding it would block start.
    ::close(dir.fd());
    run_container_init(context);
  }
  rollback.track_child(pid);
  child_end.reset();

  if (plan.namespaces.creates(CLONE_NEWUSER))
    write_id_maps(pid, plan.spec.linux->uid_mappings, plan.spec.linux->gid_mappings, "linux");
  if (!placed_by_clone) cgroup.add_process_unified(pid);
  sync::send(parent_end.get(), sync::Message::go);  // the init joins the v1 hierarchies itself
  wait_until_ready(parent_end.get(), pid, plan.spec, state);

  state.pid = pid;
  state.pid_start_time = process_start_time(pid).value_or(0);
  save_late_hooks(dir, plan.spec);
  dir.save(state);
  if (!options.pid_file.empty())
    with_context("--pid-file", [&] { write_file_atomic(options.pid_file, std::to_string(pid)); });
  rollback.commit();
  return {pid, plan.spec.process->terminal};
}

void create(const GlobalOptions& global, const std::string& id, const CreateOptions& options) {
  create_container(global, id, options);
}

}  // namespace barge::runtime

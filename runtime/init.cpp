#include <fcntl.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/error.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "runtime/bootstrap.hpp"
#include "runtime/hooks.hpp"
#include "runtime/sync.hpp"
#include "runtime/terminal.hpp"

namespace barge::runtime {
namespace {

void wait_for_go(int sync_fd) {
  auto packet = sync::receive(sync_fd);
  if (!packet) ::_exit(1);  // the parent is gone: nothing to report to
  if (packet->type != sync::Message::go) throw Error("sync: unexpected message from parent");
}

void enter_namespaces(const NamespacePlan& plan) {
  for (const auto& join : plan.joins) {
    if (join.clone_flag == CLONE_NEWPID || join.clone_flag == CLONE_NEWTIME) continue;
    join_namespace(join);
  }
  // The time namespace was unshared by the parent before the clone (it applies to children).
  auto flags = static_cast<int>(plan.create_flags & ~(plan.clone_flags() | CLONE_NEWTIME));
  if (flags != 0 && ::unshare(flags) != 0) throw_errno("unshare namespaces");
}

// In a user namespace the init starts as the overflow uid; files it creates (tmpfs /dev...)
// need a mapped owner, so it becomes the namespace's root first.
void become_namespace_root() {
  if (::setresgid(0, 0, 0) != 0) throw_errno("setresgid 0 in the user namespace (is 0 mapped?)");
  if (::setresuid(0, 0, 0) != 0) throw_errno("setresuid 0 in the user namespace (is 0 mapped?)");
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);  // credential changes clear it
}

void set_host_and_domain_name(const spec::Spec& spec) {
  if (!spec.hostname.empty() && ::sethostname(spec.hostname.data(), spec.hostname.size()) != 0)
    throw_errno("hostname: sethostname");
  if (!spec.domainname.empty() &&
      ::setdomainname(spec.domainname.data(), spec.domainname.size()) != 0)
    throw_errno("domainname: setdomainname");
}

// "net.ipv4.ip_forward" -> /proc/sys/net/ipv4/ip_forward (inside the container's /proc).
std::string sysctl_path(const std::string& key) {
  if (key.empty() || key.find("..") != std::string::npos || key.find('/') != std::string::npos)
    throw Error("linux.sysctl: invalid key \"" + key + "\"");
  std::string path = "/proc/sys/" + key;
  std::replace(path.begin() + 10, path.end(), '.', '/');
  return path;
}

void apply_sysctls(const spec::Spec& spec) {
  if (!spec.linux) return;
  for (const auto& entry : spec.linux->sysctl) {
    std::string path = sysctl_path(entry.first);
    with_context("linux.sysctl." + entry.first, [&] { write_file(path, entry.second); });
  }
}

// Blocks until `barge start` opens the fifo for reading, then hands it the go-ahead byte.
void wait_for_start(int exec_fifo_fd) {
  std::string path = "/proc/self/fd/" + std::to_string(exec_fifo_fd);
  UniqueFd fifo(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fifo) throw_errno("open exec fifo");
  if (::write(fifo.get(), "0", 1) != 1) throw_errno("write exec fifo");
}

// A fresh session keyring keeps the host's keys (and other containers') out of reach.
void join_new_session_keyring(const std::string& id) {
  std::string name = "_ses." + id;
  if (::syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.c_str()) < 0 && errno != ENOSYS)
    throw_errno("join session keyring");
}

// Runs at the last moment the host's paths are visible: the parent's hooks first, then
// createContainer in our namespaces. Returns the state JSON the parent sent for later hooks.
std::string run_create_hooks(const InitContext& ctx) {
  sync::send(ctx.sync_fd, sync::Message::hooks);
  auto reply = sync::receive(ctx.sync_fd);
  if (!reply) ::_exit(1);
  if (reply->type != sync::Message::hooks_done) throw Error("sync: unexpected message from parent");
  if (ctx.spec->hooks)
    run_hooks(ctx.spec->hooks->create_container, "createContainer", reply->payload);
  return reply->payload;
}

struct InitSetup {
  PreparedProcess process;
  std::string hook_state;  // state JSON for startContainer hooks
};

InitSetup set_up_container(const InitContext& ctx) {
  const spec::Spec& spec = *ctx.spec;
  const spec::Process& process = *spec.process;
  enter_namespaces(*ctx.namespaces);
  if (ctx.namespaces->creates(CLONE_NEWUSER) || ctx.namespaces->joins_type(CLONE_NEWUSER))
    become_namespace_root();
  if (ctx.new_session_keyring) join_new_session_keyring(ctx.container_id);
  std::string hook_state;
  rootfs::Options rootfs_options = ctx.rootfs;
  if (ctx.has_create_hooks)
    rootfs_options.before_pivot = [&] { hook_state = run_create_hooks(ctx); };
  rootfs::prepare(spec, rootfs_options);
  // As runc: pivoted (paths stay inside), still root and before a read-only root is remounted.
  if (!process.cwd.empty()) with_context("process.cwd", [&] { make_dirs(process.cwd, 0755); });
  set_host_and_domain_name(spec);
  apply_sysctls(spec);
  if (ctx.console_socket_fd >= 0) {
    set_up_terminal(ctx.console_socket_fd, process.console_size);
    ::close(ctx.console_socket_fd);
  }
  rootfs::finalize(spec);
  ProcessSetup setup;
  setup.process = &process;
  setup.capabilities = &ctx.capabilities;
  setup.seccomp = ctx.seccomp;
  setup.personality = spec.linux && spec.linux->personality ? &*spec.linux->personality : nullptr;
  setup.preserve_fds = ctx.preserve_fds;
  setup.hand_over_listener = [&](int listener) {
    sync::send_with_fd(ctx.sync_fd, sync::Message::seccomp_listener, listener);
  };
  return {prepare_process(setup), hook_state};
}

}  // namespace

void run_container_init(const InitContext& ctx) noexcept {
  try {
    // Non-dumpable until execve (which resets it): container processes cannot open our
    // /proc/PID/exe, the barge binary, while we sit in their namespaces (CVE-2019-5736).
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // `run` blocks signals it forwards
    wait_for_go(ctx.sync_fd);
    ctx.cgroup_join->join_self();
    InitSetup setup = set_up_container(ctx);
    ::prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
    sync::send(ctx.sync_fd, sync::Message::ready);
    if (ctx.exec_fifo_fd >= 0) wait_for_start(ctx.exec_fifo_fd);
    if (ctx.spec->hooks)
      run_hooks(ctx.spec->hooks->start_container, "startContainer", setup.hook_state);
    try {
      exec_prepared(setup.process);
    } catch (const std::exception& e) {
      // After READY nobody listens on the channel: the container's stderr is all that's left.
      std::string message = std::string(e.what()) + "\n";
      ssize_t ignored = ::write(STDERR_FILENO, message.data(), message.size());
      (void)ignored;
      ::_exit(127);
    }
  } catch (const std::exception& e) {
    try {
      sync::send(ctx.sync_fd, sync::Message::error, e.what());
    } catch (...) {
      // After READY nobody listens on the channel: the container's stderr is all that's left.
      std::string message = std::string("barge init: ") + e.what() + "\n";
      ssize_t ignored = ::write(STDERR_FILENO, message.data(), message.size());
      (void)ignored;
    }
    ::_exit(1);
  }
}

}  // namespace barge::runtime

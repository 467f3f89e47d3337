// How barge starts a container (crun's shape: one binary, clone3, one socketpair, exec fifo).
//
//   barge create (parent)                         container init (child of clone3)
//   ---------------------                         ---------------------------------
//   1 parse + validate config.json; open the
//     namespace paths to join; resolve caps,
//     cgroup path; seccomp program (compiled,
//     or from --root/@seccomp-cache)
//   2 claim --root/<id> (mkdir = id claim, flock)
//   3 mkfifo exec.fifo; create the cgroup; open
//     its v1 tasks files (cgroups::JoinHandles)
//   4 setns pid/time joins, unshare a new time ns
//     (they apply to children only)
//   5 clone3(NEWUSER? | NEWPID? | INTO_CGROUP?    ->  a  PDEATHSIG=KILL; wait for GO
//     | NEWNS|NEWUTS|NEWIPC|NEWNET? when only
//     pid/time are joined: see clone_flags())
//   6 write uid/gid maps; send GO               ->  b  join the v1 cgroups ("0" to each tasks
//                                                     fd: a parent writing the pid would wait
//                                                     for an RCU grace period); setns joins
//                                                     (user first); unshare the other new
//                                                     namespaces (cgroup — after the cgroup
//                                                     join — and those the clone did not make)
//                                                  c  rootfs::prepare: mounts, /dev, then
//   c' on HOOKS: run prestart + createRuntime    <-     (if hooks) send HOOKS, wait HOOKS_DONE,
//      hooks; send HOOKS_DONE + state JSON       ->     run createContainer hooks; pivot_root
//                                                  d  hostname, domainname, sysctl
//                                                  e  rootfs::finalize (masked, readonly, ro /)
//                                                  f  oom score, rlimits, exec lookup, cwd,
//                                                     user + capabilities, no_new_privs, umask,
//                                                     every fd >= 3 (+preserve) close-on-exec
//   7 wait for READY or ERROR                   <-  g  send READY (or ERROR + message, exit)
//   8 write state.json + pid file; exit 0          h  open exec.fifo for writing: blocks
//
//   barge start: open exec.fifo for reading      ->  i  write one byte; startContainer hooks;
//                read the byte; unlink the fifo;          execve the user process
//                poststart hooks (warn on failure)
//   barge delete: kill, remove cgroup and state; poststop hooks (warn on failure)
//
// Any failure before 8 kills the child and removes the cgroup and the state dir, so a failed
// create leaves nothing behind. Later issues slot in here: seccomp (last, in f).
#pragma once

#include <string>

#include "cgroups/cgroup.hpp"
#include "runtime/namespaces.hpp"
#include "runtime/process_setup.hpp"
#include "runtime/rootfs.hpp"
#include "runtime/seccomp.hpp"
#include "runtime/spec.hpp"

namespace barge::runtime {

struct InitContext {
  const spec::Spec* spec = nullptr;
  const NamespacePlan* namespaces = nullptr;
  rootfs::Options rootfs;
  CapabilitySets capabilities;
  const seccomp::Filter* seccomp = nullptr;
  const cgroups::JoinHandles* cgroup_join = nullptr;
  int sync_fd = -1;       // the child's end of the socketpair
  int exec_fifo_fd = -1;  // O_PATH fd of exec.fifo; -1 for exec (no fifo)
  int preserve_fds = 0;
  int console_socket_fd = -1;  // connected --console-socket when process.terminal
  std::string container_id;
  bool has_create_hooks = false;    // prestart, createRuntime, createContainer or startContainer
  bool new_session_keyring = true;  // runc's default; --no-new-keyring turns it off
};

// Runs in the child after clone3; never returns (execs the user process or exits non-zero
// after reporting the error to the parent).
[[noreturn]] void run_container_init(const InitContext& context) noexcept;

}  // namespace barge::runtime

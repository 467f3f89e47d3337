// A container's cgroup, in whatever hierarchy the host has: unified (v2), hybrid (v1 controllers
// plus a cgroup2 mount), or legacy (v1 only). One object spans every hierarchy the container is in.
// Resource limits (linux.resources) are applied by apply_resources; see the cgroups issue.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "cgroups/stats.hpp"
#include "common/fd.hpp"
#include "runtime/spec.hpp"

namespace barge::cgroups {

enum class Layout { unified, hybrid, legacy };

class Cgroup;
namespace detail {
class CgroupAccess;  // cgroups/layout.hpp: builds a Cgroup against a given layout (tests)
// The container's directory in one v1 hierarchy and that hierarchy's controllers
// ("cpu", "cpuacct", "name=systemd", ...).
struct V1Dir {
  std::string dir;
  std::vector<std::string> controllers;
};
}  // namespace detail

// Reads /proc/self/mountinfo once per process (cached).
Layout host_layout();
std::string_view layout_name(Layout layout);

// Turns linux.cgroupsPath into an absolute cgroup path ("/barge/ID" when empty; a relative path
// is relative to the calling process's own cgroup: its cgroup2 one on unified hosts, its memory
// controller's on hybrid/legacy ones). "slice:prefix:name" (systemd form) throws
// "needs --systemd-cgroup". Rejects ".." components and the root cgroup itself.
std::string resolve_path(std::string_view cgroups_path, std::string_view container_id);

// Becomes readable (poll POLLIN on fd()) when the kernel reports OOM in the cgroup: v1 through
// an eventfd registered on memory.oom_control, v2 through inotify on memory.events.
class OomNotifier {
 public:
  int fd() const { return fd_.get(); }
  // Call after fd() polled readable: the number of OOM events to report (v2: new oom_kill
  // count; v1: 1 per wakeup); 0 for a wakeup that was not one, e.g. the cgroup going away.
  uint64_t consume();

 private:
  friend class Cgroup;
  bool v2_ = false;
  UniqueFd fd_;                  // v1: the eventfd; v2: inotify
  UniqueFd oom_control_;         // v1: stays open while the eventfd is registered
  std::string file_;             // v1: cgroup.event_control; v2: memory.events
  uint64_t last_oom_kills_ = 0;  // v2
};

// How a new process enters a container's cgroup without its parent writing the new pid to a
// v1 cgroup.procs, which waits for an RCU grace period (7-15 ms on the test VM): clone3 puts it
// into the cgroup2 directory (CLONE_INTO_CGROUP), and the process itself writes "0" to each v1
// hierarchy's tasks file (a single-threaded task moving itself skips the kernel's global
// threadgroup lock). Both files are opened by the parent, so their permission checks are its.
struct JoinHandles {
  struct TasksFile {
    UniqueFd fd;  // O_WRONLY
    std::string path;
  };
  UniqueFd unified_dir;             // O_PATH; invalid when the host has no cgroup2 tree
  std::vector<TasksFile> v1_tasks;  // one per v1 hierarchy

  // Call in the new process while it is still single-threaded.
  void join_self() const;
};

class Cgroup {
 public:
  // mkdir -p the path in every hierarchy (v1: each mounted controller hierarchy including
  // name=systemd; v2: the unified tree), initialising v1 cpuset.cpus/mems from the parent and
  // enabling controllers in the v2 ancestors' cgroup.subtree_control.
  static Cgroup create(const std::string& path);
  // The cgroup of an existing container (no filesystem changes).
  static Cgroup open(const std::string& path);

  const std::string& path() const { return path_; }
  // Moves pid into the cgroup in every hierarchy.
  void add_process(pid_t pid) const;
  // Moves pid into the cgroup2 tree only (for a clone that could not use CLONE_INTO_CGROUP).
  void add_process_unified(pid_t pid) const;
  // See JoinHandles: opened once per new process, before its clone.
  JoinHandles open_join_handles() const;
  // Every pid in the cgroup (and its sub-cgroups), from cgroup.procs.
  std::vector<pid_t> processes() const;
  // Sends sig to every process (cgroup.kill for SIGKILL on v2 when present).
  void signal_all(int sig) const;
  void freeze() const;  // returns once the kernel reports frozen
  void thaw() const;
  bool frozen() const;
  // Applies linux.resources (the cgroups issue fills this in; today: pids, memory, cpu basics).
  void apply_resources(const spec::Resources& resources) const;
  // Usage counters from whichever hierarchy holds each controller.
  Stats stats() const;
  // Watches for OOM events (throws when no memory controller is available).
  OomNotifier watch_oom() const;
  // Kills what is left, then removes the cgroup and every sub-cgroup in every hierarchy,
  // retrying while the kernel still reports it populated. Throws if it cannot.
  void destroy() const;

 private:
  friend class detail::CgroupAccess;
  explicit Cgroup(std::string path) : path_(std::move(path)) {}

  // The v1 directory of the hierarchy holding controller (nullptr when not mounted).
  const detail::V1Dir* v1_dir(std::string_view controller) const;
  // The directory processes() and signal_all() read cgroup.procs from.
  const std::string& procs_dir() const;
  // Every directory of this cgroup: v1 hierarchies first, then the cgroup2 tree.
  std::vector<std::string> all_dirs() const;
  void apply_resources_v1(const spec::Resources& resources) const;
  void apply_resources_v2(const spec::Resources& resources) const;

  std::string path_;
  Layout layout_ = Layout::unified;
  std::string unified_dir_;  // empty when the host has no cgroup2 tree
  std::vector<detail::V1Dir> v1_dirs_;
};

}  // namespace barge::cgroups

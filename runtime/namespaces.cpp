#include "runtime/namespaces.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "common/error.hpp"
#include "common/file.hpp"

namespace barge::runtime {

int namespace_clone_flag(const std::string& type) {
  if (type == "pid") return CLONE_NEWPID;
  if (type == "network") return CLONE_NEWNET;
  if (type == "mount") return CLONE_NEWNS;
  if (type == "ipc") return CLONE_NEWIPC;
  if (type == "uts") return CLONE_NEWUTS;
  if (type == "user") return CLONE_NEWUSER;
  if (type == "cgroup") return CLONE_NEWCGROUP;
  if (type == "time") return CLONE_NEWTIME;
  return 0;
}

bool NamespacePlan::joins_type(int flag) const {
  return std::any_of(joins.begin(), joins.end(),
                     [flag](const NamespaceJoin& j) { return j.clone_flag == flag; });
}

// user and pid (pid only applies to children) always; mount, uts, ipc and network too when
// nothing but pid or time (entered by the parent before the clone) is joined: a joined user
// namespace must own them, so they follow the joins then. The kernel memory of namespaces made
// by clone3 is charged to the caller's cgroup, not to the container's (crun does the same), even
// with CLONE_INTO_CGROUP. A new cgroup namespace is never made here: its root is its creator's
// cgroup, so the init unshares it once it is in the container's cgroup (v1: after the parent's
// cgroup.procs write).
unsigned long long NamespacePlan::clone_flags() const {
  constexpr unsigned long long kAlways = CLONE_NEWUSER | CLONE_NEWPID;
  constexpr unsigned long long kWithoutJoins =
      CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET;
  bool only_parent_side_joins = std::all_of(joins.begin(), joins.end(), [](const NamespaceJoin& j) {
    return j.clone_flag == CLONE_NEWPID || j.clone_flag == CLONE_NEWTIME;
  });
  return create_flags & (only_parent_side_joins ? kAlways | kWithoutJoins : kAlways);
}

NamespacePlan plan_namespaces(const spec::Spec& spec) {
  NamespacePlan plan;
  if (!spec.linux) return plan;
  const auto& namespaces = spec.linux->namespaces;
  for (size_t i = 0; i < namespaces.size(); ++i) {
    const auto& ns = namespaces[i];
    int flag = namespace_clone_flag(ns.type);
    if (flag == 0)
      throw Error("linux.namespaces[" + std::to_string(i) + "].type: unknown namespace \"" +
                  ns.type + "\"");
    if (ns.path.empty()) {
      plan.create_flags |= static_cast<unsigned long long>(flag);
      continue;
    }
    int fd = ::open(ns.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_errno("linux.namespaces[" + std::to_string(i) + "].path: open " + ns.path);
    plan.joins.push_back({flag, ns.type, UniqueFd(fd)});
  }
  std::stable_partition(plan.joins.begin(), plan.joins.end(),
                        [](const NamespaceJoin& j) { return j.clone_flag == CLONE_NEWUSER; });
  return plan;
}

void join_namespace(const NamespaceJoin& join) {
  if (::setns(join.fd.get(), join.clone_flag) != 0) throw_errno("join " + join.type + " namespace");
}

namespace {

std::string id_map_text(const std::vector<spec::IdMapping>& mappings) {
  std::string text;
  for (const auto& m : mappings)
    text += std::to_string(m.container_id) + " " + std::to_string(m.host_id) + " " +
            std::to_string(m.size) + "\n";
  return text;
}

}  // namespace

void write_id_maps(pid_t pid, const std::vector<spec::IdMapping>& uids,
                   const std::vector<spec::IdMapping>& gids, const std::string& field) {
  std::string proc = "/proc/" + std::to_string(pid);
  with_context(field + ".uidMappings", [&] { write_file(proc + "/uid_map", id_map_text(uids)); });
  with_context(field + ".gidMappings", [&] { write_file(proc + "/gid_map", id_map_text(gids)); });
}

UniqueFd make_user_namespace(const std::vector<spec::IdMapping>& uids,
                             const std::vector<spec::IdMapping>& gids, const std::string& field) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw_errno("pipe");
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);
  long pid = ::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (pid < 0) throw_errno("clone a user namespace for " + field);
  if (pid == 0) {
    // Holds the namespace alive until the parent has its fd; never runs anything else.
    char byte = 0;
    write_end.reset();
    ssize_t ignored = ::read(read_end.get(), &byte, 1);
    (void)ignored;
    ::_exit(0);
  }
  read_end.reset();
  auto reap = [&] {
    write_end.reset();
    ::waitpid(static_cast<pid_t>(pid), nullptr, 0);
  };
  try {
    write_id_maps(static_cast<pid_t>(pid), uids, gids, field);
    std::string path = "/proc/" + std::to_string(pid) + "/ns/user";
    UniqueFd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns) throw_errno("open " + path);
    reap();
    return ns;
  } catch (...) {
    reap();
    throw;
  }
}

}  // namespace barge::runtime

#include "runtime/namespaces.hpp"

#include <fcntl.h>
#include <sched.h>

#include <algorithm>

#include "common/error.hpp"

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

}  // namespace barge::runtime

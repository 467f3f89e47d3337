// Which namespaces a container creates and which it joins, from linux.namespaces.
#pragma once

#include <string>
#include <vector>

#include "common/fd.hpp"
#include "runtime/spec.hpp"

namespace barge::runtime {

struct NamespaceJoin {
  int clone_flag;  // CLONE_NEW* of the namespace type
  std::string type;
  UniqueFd fd;  // opened by the parent before clone, so the path is checked early
};

struct NamespacePlan {
  unsigned long long create_flags = 0;  // CLONE_NEW* to create
  std::vector<NamespaceJoin> joins;     // user first, so later joins happen with its privileges

  bool creates(unsigned long long flag) const { return (create_flags & flag) != 0; }
  bool joins_type(int flag) const;
  // The new namespaces the init's clone3 creates; the init unshares the rest (after its joins).
  unsigned long long clone_flags() const;
};

// CLONE_NEW* for a runtime-spec namespace type, or 0 if unknown.
int namespace_clone_flag(const std::string& type);
NamespacePlan plan_namespaces(const spec::Spec& spec);
// setns into one joined namespace; the error names the type.
void join_namespace(const NamespaceJoin& join);

// Writes /proc/<pid>/uid_map and gid_map (field names the JSON path prefix for errors, e.g.
// "linux" -> "linux.uidMappings").
void write_id_maps(pid_t pid, const std::vector<spec::IdMapping>& uids,
                   const std::vector<spec::IdMapping>& gids, const std::string& field);
// A user namespace holding only these mappings (for MOUNT_ATTR_IDMAP): a short-lived child
// creates it, the parent writes the maps and keeps an fd to it.
UniqueFd make_user_namespace(const std::vector<spec::IdMapping>& uids,
                             const std::vector<spec::IdMapping>& gids, const std::string& field);

}  // namespace barge::runtime

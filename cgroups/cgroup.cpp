// STUB: replaced by the cgroups work.
#include "cgroups/cgroup.hpp"

#include "common/error.hpp"

namespace barge::cgroups {
Layout host_layout() { return Layout::hybrid; }
std::string_view layout_name(Layout) { return "hybrid"; }
std::string resolve_path(std::string_view p, std::string_view id) {
  return p.empty() ? "/barge/" + std::string(id) : std::string(p);
}
Cgroup Cgroup::create(const std::string& path) { return Cgroup(path); }
Cgroup Cgroup::open(const std::string& path) { return Cgroup(path); }
void Cgroup::add_process(pid_t) const {}
UniqueFd Cgroup::unified_dir_fd() const { return UniqueFd(); }
std::vector<pid_t> Cgroup::processes() const { return {}; }
void Cgroup::signal_all(int) const {}
void Cgroup::freeze() const {}
void Cgroup::thaw() const {}
bool Cgroup::frozen() const { return false; }
void Cgroup::apply_resources(const spec::Resources&) const {}
void Cgroup::destroy() const {}
}  // namespace barge::cgroups

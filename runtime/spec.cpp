// STUB: replaced by the spec parser work.
#include "runtime/spec.hpp"

#include "common/error.hpp"

namespace barge::spec {
const Namespace* Linux::find_namespace(const std::string& type) const {
  for (const auto& ns : namespaces)
    if (ns.type == type) return &ns;
  return nullptr;
}
Spec parse(const std::string&, const std::string&) { throw_error("spec::parse: not implemented"); }
Spec load_bundle_config(const std::string&) { throw_error("not implemented"); }
void validate(const Spec&) {}
std::string default_config_json(bool) { throw_error("not implemented"); }
}  // namespace barge::spec

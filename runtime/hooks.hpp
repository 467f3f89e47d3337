// OCI lifecycle hooks: each runs path with args and env, the container state JSON on stdin,
// killed after its timeout. Where each phase runs is in bootstrap.hpp.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "runtime/spec.hpp"

namespace barge::runtime {

// Runs hooks in order; the first failure throws "hooks.<phase>[i] (<path>): <why>".
void run_hooks(const std::vector<spec::Hook>& hooks, std::string_view phase,
               const std::string& state_json);
// Same, but failures are logged as warnings and the remaining hooks still run
// (poststart and poststop, as the runtime-spec says).
void run_hooks_warning_only(const std::vector<spec::Hook>& hooks, std::string_view phase,
                            const std::string& state_json);

// The hooks needed after create (poststart, poststop) are kept in the state dir, since the
// bundle's config.json may change or vanish before delete.
std::string hooks_to_json(const spec::Hooks& hooks);
spec::Hooks hooks_from_json(const std::string& text);

}  // namespace barge::runtime

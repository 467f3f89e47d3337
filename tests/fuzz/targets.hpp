// What the fuzz targets run, shared with tests/unit/fuzz_regressions_test.cpp so every saved
// crash is replayed by the normal (gcc and ASan) unit tests through exactly the same code.
// Bad input must end in barge::Error; a broken invariant traps; anything else escaping is a bug.
#pragma once

#include <cstdint>
#include <string>

#include "cgroups/layout.hpp"
#include "cgroups/resources_json.hpp"
#include "common/error.hpp"
#include "runtime/process_setup.hpp"
#include "runtime/seccomp.hpp"
#include "runtime/spec.hpp"

namespace barge::fuzz {

// resources -> JSON -> resources reaches a fixed point, and merging a change into itself or
// into nothing (device rules are not updatable) keeps it: what `update` persists reads back.
inline void check_resources(const spec::Resources& parsed) {
  std::string persisted = cgroups::resources_to_json(parsed);
  if (cgroups::resources_to_json(cgroups::parse_resources_json(persisted, "state")) != persisted)
    __builtin_trap();
  if (cgroups::resources_to_json(cgroups::merge_resources(parsed, parsed)) != persisted)
    __builtin_trap();
  spec::Resources into_nothing = cgroups::merge_resources({}, parsed);
  into_nothing.devices = parsed.devices;
  if (cgroups::resources_to_json(into_nothing) != persisted) __builtin_trap();
}

// config.json text through everything `barge create` decides before it touches the host
// (runtime/create.cpp make_plan): parse, validate, capability names, cgroup path, seccomp.
inline void plan_container(const std::string& config_json) {
  spec::Spec spec = spec::parse(config_json);
  spec::validate(spec);
  if (spec.process) runtime::resolve_capabilities(spec.process->capabilities);
  if (!spec.linux) return;
  cgroups::detail::resolve_path(spec.linux->cgroups_path, "fuzz", "/user.slice/fuzz");
  if (spec.linux->resources) check_resources(*spec.linux->resources);
  if (spec.linux->seccomp) {
    seccomp::Filter filter = seccomp::compile(*spec.linux->seccomp);
    if (filter.program().empty()) __builtin_trap();
  }
}

// What `barge update` reads: a linux.resources file (--resources) and runc's sizes (--memory).
inline void update_resources(const std::string& text) {
  check_resources(cgroups::parse_resources_json(text, "resources.json"));
}

inline void parse_memory_size(const std::string& text) {
  if (cgroups::parse_memory_size(text, "--memory") < -1) __builtin_trap();
}

}  // namespace barge::fuzz

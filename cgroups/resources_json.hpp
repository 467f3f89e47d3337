// linux.resources as JSON (the runtime-spec field names): what `update --resources FILE` reads
// and what barge persists per container after an update, plus the merge `update` performs and
// runc's size syntax for --memory and friends. Pure functions (unit-tested).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "runtime/spec.hpp"

namespace barge::cgroups {

// Parses a LinuxResources object; errors name the field ("linux.resources.memory.limit: ...")
// and source.
spec::Resources parse_resources_json(const std::string& text, const std::string& source);
std::string resources_to_json(const spec::Resources& resources);

// The fields set in changes replace those of base (per field, not per section: a change of
// memory.limit keeps base's memory.swap). Device rules are not updatable (as in runc).
spec::Resources merge_resources(spec::Resources base, const spec::Resources& changes);

// runc's RAMInBytes: "1024", "512k", "512m", "1.5g", "1GiB", "2 MB" (binary multiples), and "-1"
// (unlimited). flag names the option in errors.
int64_t parse_memory_size(std::string_view text, std::string_view flag);

}  // namespace barge::cgroups

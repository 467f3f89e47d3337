// `barge features`: the runtime-spec features document (features.md) describing what this
// build really supports, so callers (containerd, podman) can check before they ask.
#pragma once

#include <string>

namespace barge::runtime {

std::string features_json();

}  // namespace barge::runtime

// The on-disk cache behind seccomp::compile_cached: one file per compiled program, named by a
// sha256 over everything the program depends on, in a root-only directory of the state root.
#pragma once

#include <linux/filter.h>

#include <optional>
#include <string>
#include <vector>

#include "runtime/spec.hpp"

namespace barge::seccomp::cache {

struct Entry {
  std::vector<sock_filter> program;
  std::vector<std::string> warnings;  // rule warnings compile logged
};

// Hex key over the rules, this binary's ELF build id, libseccomp's version and the kernel; ""
// when the binary has no build id (then nothing is cached).
std::string key(const spec::Seccomp& config);

// The entry stored under key, or nullopt when there is none or it is malformed.
std::optional<Entry> read(const std::string& dir, const std::string& key);

// Stores entry under key (atomically; at most kMaxEntries files). Failures are logged at debug
// level and otherwise ignored: the cache only saves time.
void write(const std::string& dir, const std::string& key, const Entry& entry);

inline constexpr size_t kMaxEntries = 64;

// Serialised form (exposed for tests).
std::string encode(const Entry& entry);
std::optional<Entry> decode(std::string_view data);

}  // namespace barge::seccomp::cache

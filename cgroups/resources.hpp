// Internal: pure conversions from linux.resources values to cgroup file values (unit-tested).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/spec.hpp"

namespace barge::cgroups::detail {

// cpu.shares (v1, 2..262144) to cpu.weight (v2, 1..10000), runc's linear mapping; 0 stays 0
// ("unset").
uint64_t cpu_shares_to_weight(uint64_t shares);
// pids.max: a limit <= 0 means unlimited.
std::string pids_max_value(int64_t limit);
// memory.max / memory.low and friends: -1 means unlimited.
std::string v2_bytes_value(int64_t bytes);
// OCI's swap is memory+swap; cgroup2's memory.swap.max is swap alone. nullopt: leave it alone.
// Throws (naming linux.resources.memory.swap) on inconsistent values.
std::optional<std::string> v2_swap_max_value(std::optional<int64_t> swap,
                                             std::optional<int64_t> limit);
// cpu.max: "QUOTA PERIOD", "max PERIOD", or just the quota when no period is given; nullopt when
// neither is set.
std::optional<std::string> cpu_max_value(std::optional<int64_t> quota,
                                         std::optional<uint64_t> period);
// blkio weight (10..1000) to io.weight (1..10000), runc's conversion; 0 stays 0.
uint64_t blkio_weight_to_io_weight(uint64_t weight);
// An io.max rate: 0 (unset) is "max".
std::string io_max_rate(uint64_t rate);
// rdma.max line: "mlx5_1 hca_handle=3 hca_object=max".
std::string rdma_max_value(const std::string& device, const spec::RdmaLimit& limit);
// Keys of linux.resources.unified name a file in the cgroup directory: no '/', not "." or "..".
void validate_unified_key(std::string_view key);

}  // namespace barge::cgroups::detail

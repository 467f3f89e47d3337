#pragma once
// The JSON name of every member of the linux.resources structs, one table per struct. The config
// parser (runtime/spec.cpp) reads through these tables and cgroups/resources_json.cpp writes and
// merges through them, so adding a resource field means one new line here, not three lists.

#include <tuple>

#include "runtime/spec.hpp"

namespace barge::spec::fields {

template <typename Struct, typename Member>
struct Field {
  const char* name;
  Member Struct::*member;
};

template <typename Struct, typename Member>
constexpr Field<Struct, Member> field(const char* name, Member Struct::*member) {
  return {name, member};
}

// Calls visit(name, member_pointer) for each field of a table, in the table's order.
template <typename Table, typename Visit>
void for_each(const Table& table, Visit&& visit) {
  std::apply([&](const auto&... f) { (visit(f.name, f.member), ...); }, table);
}

inline constexpr auto kDeviceRule =
    std::tuple{field("allow", &DeviceCgroupRule::allow), field("type", &DeviceCgroupRule::type),
               field("major", &DeviceCgroupRule::major), field("minor", &DeviceCgroupRule::minor),
               field("access", &DeviceCgroupRule::access)};

inline constexpr auto kMemory =
    std::tuple{field("limit", &MemoryResources::limit),
               field("reservation", &MemoryResources::reservation),
               field("swap", &MemoryResources::swap),
               field("kernel", &MemoryResources::kernel),
               field("kernelTCP", &MemoryResources::kernel_tcp),
               field("swappiness", &MemoryResources::swappiness),
               field("disableOOMKiller", &MemoryResources::disable_oom_killer),
               field("useHierarchy", &MemoryResources::use_hierarchy),
               field("checkBeforeUpdate", &MemoryResources::check_before_update)};

inline constexpr auto kCpu = std::tuple{field("shares", &CpuResources::shares),
                                        field("quota", &CpuResources::quota),
                                        field("burst", &CpuResources::burst),
                                        field("period", &CpuResources::period),
                                        field("realtimeRuntime", &CpuResources::realtime_runtime),
                                        field("realtimePeriod", &CpuResources::realtime_period),
                                        field("cpus", &CpuResources::cpus),
                                        field("mems", &CpuResources::mems),
                                        field("idle", &CpuResources::idle)};

inline constexpr auto kWeightDevice = std::tuple{
    field("major", &WeightDevice::major), field("minor", &WeightDevice::minor),
    field("weight", &WeightDevice::weight), field("leafWeight", &WeightDevice::leaf_weight)};

inline constexpr auto kThrottleDevice =
    std::tuple{field("major", &ThrottleDevice::major), field("minor", &ThrottleDevice::minor),
               field("rate", &ThrottleDevice::rate)};

inline constexpr auto kBlockIo =
    std::tuple{field("weight", &BlockIoResources::weight),
               field("leafWeight", &BlockIoResources::leaf_weight),
               field("weightDevice", &BlockIoResources::weight_device),
               field("throttleReadBpsDevice", &BlockIoResources::throttle_read_bps_device),
               field("throttleWriteBpsDevice", &BlockIoResources::throttle_write_bps_device),
               field("throttleReadIOPSDevice", &BlockIoResources::throttle_read_iops_device),
               field("throttleWriteIOPSDevice", &BlockIoResources::throttle_write_iops_device)};

inline constexpr auto kHugepageLimit =
    std::tuple{field("pageSize", &HugepageLimit::page_size), field("limit", &HugepageLimit::limit)};

inline constexpr auto kNetworkPriority = std::tuple{field("name", &NetworkPriority::name),
                                                    field("priority", &NetworkPriority::priority)};

inline constexpr auto kRdmaLimit = std::tuple{field("hcaHandles", &RdmaLimit::hca_handles),
                                              field("hcaObjects", &RdmaLimit::hca_objects)};

}  // namespace barge::spec::fields

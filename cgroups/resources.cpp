// linux.resources → cgroup files, v1 and v2. Errors name the spec field, then the file:
// "linux.resources.memory.limit: write /sys/fs/cgroup/memory/x/memory.limit_in_bytes: ...".
#include "cgroups/resources.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>

#include "cgroups/cgroup.hpp"
#include "cgroups/cgroupfs.hpp"
#include "cgroups/devices.hpp"
#include "common/error.hpp"
#include "common/log.hpp"

namespace barge::cgroups {
namespace detail {

uint64_t cpu_shares_to_weight(uint64_t shares) {
  if (shares == 0) return 0;
  shares = std::clamp<uint64_t>(shares, 2, 262144);  // the kernel's cpu.shares range
  return 1 + ((shares - 2) * 9999) / 262142;
}

std::string pids_max_value(int64_t limit) {
  return limit <= 0 ? "max" : std::to_string(limit);
}

std::string v2_bytes_value(int64_t bytes) {
  return bytes == -1 ? "max" : std::to_string(bytes);
}

std::optional<std::string> v2_swap_max_value(std::optional<int64_t> swap,
                                             std::optional<int64_t> limit) {
  int64_t memory = limit.value_or(0);
  // Like runc: an unlimited memory with swap unset means unlimited swap too; 0 means unset.
  if (!swap || *swap == 0) return memory == -1 ? std::optional<std::string>("max") : std::nullopt;
  if (*swap == -1) return "max";
  const std::string field = "linux.resources.memory.swap: ";
  if (memory == 0 || memory == -1) throw_error(field + "a swap limit needs a memory limit");
  if (*swap < memory)
    throw_error(field + "memory+swap (" + std::to_string(*swap) +
                ") must not be below the memory limit (" + std::to_string(memory) + ")");
  return std::to_string(*swap - memory);
}

std::optional<std::string> cpu_max_value(std::optional<int64_t> quota,
                                         std::optional<uint64_t> period) {
  bool has_quota = quota && *quota != 0, has_period = period && *period != 0;
  if (!has_quota && !has_period) return std::nullopt;
  std::string value = has_quota && *quota > 0 ? std::to_string(*quota) : "max";
  if (has_period) value += " " + std::to_string(*period);
  return value;
}

uint64_t blkio_weight_to_io_weight(uint64_t weight) {
  if (weight == 0) return 0;
  weight = std::clamp<uint64_t>(weight, 10, 1000);
  return 1 + (weight - 10) * 9999 / 990;
}

std::string io_max_rate(uint64_t rate) {
  return rate == 0 ? "max" : std::to_string(rate);
}

std::string rdma_max_value(const std::string& device, const spec::RdmaLimit& limit) {
  auto value = [](const std::optional<uint32_t>& n) { return n ? std::to_string(*n) : "max"; };
  return device + " hca_handle=" + value(limit.hca_handles) +
         " hca_object=" + value(limit.hca_objects);
}

void validate_unified_key(std::string_view key) {
  std::string field = "linux.resources.unified: key \"" + std::string(key) + "\"";
  if (key.find('/') != std::string_view::npos || key.find("..") != std::string_view::npos)
    throw_error(field + " must be a file name (no '/' or \"..\")");
  if (key.empty() || key.front() == '.' || key.find('.') == std::string_view::npos)
    throw_error(field + " must have the form CONTROLLER.PARAMETER");
}

}  // namespace detail

namespace {

void set(std::string_view field, const std::string& file, std::string_view value) {
  with_context(field, [&] { fs::write(file, value); });
}

uint64_t read_uint(const std::string& file) {
  std::string text(fs::trim(fs::read(file)));
  uint64_t value = 0;
  if (std::from_chars(text.data(), text.data() + text.size(), value).ec != std::errc())
    throw_error(file + ": not a number: \"" + text + "\"");
  return value;
}

std::string device_key(int64_t major, int64_t minor) {
  return std::to_string(major) + ":" + std::to_string(minor);
}

bool exists(const std::string& file) {
  return ::access(file.c_str(), F_OK) == 0;
}

void apply_devices_v1(const std::string& dir, const std::vector<spec::DeviceCgroupRule>& rules) {
  auto rule_set = detail::reduce_device_rules(rules);
  for (const auto& [file, value] : detail::v1_device_writes(rule_set))
    set("linux.resources.devices", dir + "/" + file, value);
}

void apply_devices_v2(const std::string& dir, const std::vector<spec::DeviceCgroupRule>& rules) {
  detail::attach_device_filter(dir,
                               detail::device_filter_program(detail::reduce_device_rules(rules)));
}

// blkio.weight is CFQ's; kernels with blk-mq only have BFQ's blkio.bfq.weight (runc tries that
// first too).
std::string v1_weight_file(const std::string& dir, const std::string& suffix) {
  std::string bfq = dir + "/blkio.bfq." + suffix;
  return exists(bfq) ? bfq : dir + "/blkio." + suffix;
}

void apply_block_io_v1(const std::string& dir, const spec::BlockIoResources& b) {
  const std::string field = "linux.resources.blockIO.";
  if (b.weight && *b.weight != 0)
    set(field + "weight", v1_weight_file(dir, "weight"), std::to_string(*b.weight));
  if (b.leaf_weight && *b.leaf_weight != 0)
    set(field + "leafWeight", dir + "/blkio.leaf_weight", std::to_string(*b.leaf_weight));
  for (const auto& d : b.weight_device) {
    if (d.weight)
      set(field + "weightDevice", v1_weight_file(dir, "weight_device"),
          device_key(d.major, d.minor) + " " + std::to_string(*d.weight));
    if (d.leaf_weight)
      set(field + "weightDevice", dir + "/blkio.leaf_weight_device",
          device_key(d.major, d.minor) + " " + std::to_string(*d.leaf_weight));
  }
  auto throttle = [&](const char* name, const char* file,
                      const std::vector<spec::ThrottleDevice>& devices) {
    for (const auto& d : devices)
      set(field + name, dir + "/blkio.throttle." + file,
          device_key(d.major, d.minor) + " " + std::to_string(d.rate));
  };
  throttle("throttleReadBpsDevice", "read_bps_device", b.throttle_read_bps_device);
  throttle("throttleWriteBpsDevice", "write_bps_device", b.throttle_write_bps_device);
  throttle("throttleReadIOPSDevice", "read_iops_device", b.throttle_read_iops_device);
  throttle("throttleWriteIOPSDevice", "write_iops_device", b.throttle_write_iops_device);
}

void apply_block_io_v2(const std::string& dir, const spec::BlockIoResources& b) {
  const std::string field = "linux.resources.blockIO.";
  const std::string bfq_weight = dir + "/io.bfq.weight";
  bool has_bfq = exists(bfq_weight);
  if (b.weight && *b.weight != 0) {
    if (has_bfq)
      set(field + "weight", bfq_weight, std::to_string(*b.weight));
    else
      set(field + "weight", dir + "/io.weight",
          std::to_string(detail::blkio_weight_to_io_weight(*b.weight)));
  }
  if (b.leaf_weight) log::warn(field + "leafWeight has no cgroup v2 equivalent; ignored");
  for (const auto& d : b.weight_device) {
    if (!d.weight) continue;
    if (has_bfq)
      set(field + "weightDevice", bfq_weight,
          device_key(d.major, d.minor) + " " + std::to_string(*d.weight));
    else
      set(field + "weightDevice", dir + "/io.weight",
          device_key(d.major, d.minor) + " " +
              std::to_string(detail::blkio_weight_to_io_weight(*d.weight)));
  }
  auto throttle = [&](const char* name, const char* key,
                      const std::vector<spec::ThrottleDevice>& devices) {
    for (const auto& d : devices)
      set(field + name, dir + "/io.max",
          device_key(d.major, d.minor) + " " + key + "=" + detail::io_max_rate(d.rate));
  };
  throttle("throttleReadBpsDevice", "rbps", b.throttle_read_bps_device);
  throttle("throttleWriteBpsDevice", "wbps", b.throttle_write_bps_device);
  throttle("throttleReadIOPSDevice", "riops", b.throttle_read_iops_device);
  throttle("throttleWriteIOPSDevice", "wiops", b.throttle_write_iops_device);
}

// v1: hugetlb.2MB.limit_in_bytes; v2: hugetlb.2MB.max.
void apply_hugepages(const std::string& dir, const std::vector<spec::HugepageLimit>& limits,
                     const char* file_suffix) {
  for (size_t i = 0; i < limits.size(); ++i) {
    std::string field = "linux.resources.hugepageLimits[" + std::to_string(i) + "]";
    std::string file = dir + "/hugetlb." + limits[i].page_size + "." + file_suffix;
    if (limits[i].page_size.find('/') != std::string::npos || !exists(file))
      throw_error(field + ".pageSize: \"" + limits[i].page_size +
                  "\" is not a huge page size of this host (no " + file + ")");
    set(field + ".limit", file, std::to_string(limits[i].limit));
  }
}

void apply_rdma(const std::string& dir, const std::map<std::string, spec::RdmaLimit>& rdma) {
  for (const auto& [device, limit] : rdma)
    set("linux.resources.rdma." + device, dir + "/rdma.max", detail::rdma_max_value(device, limit));
}

void apply_network_v1(const detail::V1Dir* net_cls, const detail::V1Dir* net_prio,
                      const spec::NetworkResources& n) {
  if (n.class_id) {
    if (net_cls == nullptr)
      log::warn(
          "linux.resources.network.classID: the net_cls cgroup controller is not mounted; "
          "ignored");
    else
      set("linux.resources.network.classID", net_cls->dir + "/net_cls.classid",
          std::to_string(*n.class_id));
  }
  if (n.priorities.empty()) return;
  if (net_prio == nullptr) {
    log::warn(
        "linux.resources.network.priorities: the net_prio cgroup controller is not "
        "mounted; ignored");
    return;
  }
  for (const auto& p : n.priorities)
    set("linux.resources.network.priorities", net_prio->dir + "/net_prio.ifpriomap",
        p.name + " " + std::to_string(p.priority));
}

void apply_memory_v1(const std::string& dir, const spec::MemoryResources& m) {
  const std::string limit_file = dir + "/memory.limit_in_bytes";
  const std::string swap_file = dir + "/memory.memsw.limit_in_bytes";
  auto set_limit = [&] {
    if (m.limit) set("linux.resources.memory.limit", limit_file, std::to_string(*m.limit));
  };
  std::optional<int64_t> swap = m.swap;
  if (m.limit == -1 && (!swap || *swap == 0) && fs::try_read(swap_file)) swap = -1;
  auto set_swap = [&] {
    if (swap && *swap != 0) set("linux.resources.memory.swap", swap_file, std::to_string(*swap));
  };
  // memsw must never drop below the memory limit, so raise it first when it grows.
  bool swap_first = false;
  if (m.limit && *m.limit != 0 && swap && *swap != 0)
    swap_first = *swap == -1 || read_uint(limit_file) < static_cast<uint64_t>(*swap);
  if (swap_first) {
    set_swap();
    set_limit();
  } else {
    set_limit();
    set_swap();
  }
  if (m.reservation)
    set("linux.resources.memory.reservation", dir + "/memory.soft_limit_in_bytes",
        std::to_string(*m.reservation));
  if (m.swappiness) {
    if (*m.swappiness > 100)
      throw_error("linux.resources.memory.swappiness: " + std::to_string(*m.swappiness) +
                  " is out of range 0-100");
    set("linux.resources.memory.swappiness", dir + "/memory.swappiness",
        std::to_string(*m.swappiness));
  }
  if (m.disable_oom_killer.value_or(false))
    set("linux.resources.memory.disableOOMKiller", dir + "/memory.oom_control", "1");
}

void apply_cpu_v1(const std::string& dir, const spec::CpuResources& c) {
  if (c.shares && *c.shares != 0)
    set("linux.resources.cpu.shares", dir + "/cpu.shares", std::to_string(*c.shares));
  // The period first: the kernel checks the quota against the current period.
  if (c.period && *c.period != 0)
    set("linux.resources.cpu.period", dir + "/cpu.cfs_period_us", std::to_string(*c.period));
  if (c.quota && *c.quota != 0)
    set("linux.resources.cpu.quota", dir + "/cpu.cfs_quota_us", std::to_string(*c.quota));
  if (c.burst)
    set("linux.resources.cpu.burst", dir + "/cpu.cfs_burst_us", std::to_string(*c.burst));
  if (c.realtime_period && *c.realtime_period != 0)
    set("linux.resources.cpu.realtimePeriod", dir + "/cpu.rt_period_us",
        std::to_string(*c.realtime_period));
  if (c.realtime_runtime && *c.realtime_runtime != 0)
    set("linux.resources.cpu.realtimeRuntime", dir + "/cpu.rt_runtime_us",
        std::to_string(*c.realtime_runtime));
  if (c.idle) set("linux.resources.cpu.idle", dir + "/cpu.idle", std::to_string(*c.idle));
}

void apply_cpuset(const std::string& dir, const spec::CpuResources& c) {
  if (!c.cpus.empty()) set("linux.resources.cpu.cpus", dir + "/cpuset.cpus", c.cpus);
  if (!c.mems.empty()) set("linux.resources.cpu.mems", dir + "/cpuset.mems", c.mems);
}

bool wants_cpu_controller(const spec::CpuResources& c) {
  return c.shares.value_or(0) != 0 || c.quota.value_or(0) != 0 || c.period.value_or(0) != 0 ||
         c.burst || c.realtime_period.value_or(0) != 0 || c.realtime_runtime.value_or(0) != 0 ||
         c.idle;
}

// memory.checkBeforeUpdate: a new limit below what the container already uses is refused
// instead of triggering the OOM killer.
void check_usage_below(const std::string& current_file, int64_t limit) {
  std::string text = with_context("linux.resources.memory.checkBeforeUpdate",
                                  [&] { return fs::read(current_file); });
  uint64_t usage = detail::parse_limit(text, current_file);
  if (usage > static_cast<uint64_t>(limit))
    throw_error("linux.resources.memory.checkBeforeUpdate: memory usage " + std::to_string(usage) +
                " is above the new limit " + std::to_string(limit));
}

void apply_memory_v2(const std::string& dir, const spec::MemoryResources& m) {
  if (auto swap_max = detail::v2_swap_max_value(m.swap, m.limit))
    set("linux.resources.memory.swap", dir + "/memory.swap.max", *swap_max);
  if (m.limit && *m.limit > 0 && m.check_before_update.value_or(false))
    check_usage_below(dir + "/memory.current", *m.limit);
  if (m.limit && *m.limit != 0)
    set("linux.resources.memory.limit", dir + "/memory.max", detail::v2_bytes_value(*m.limit));
  if (m.reservation && *m.reservation != 0)
    set("linux.resources.memory.reservation", dir + "/memory.low",
        detail::v2_bytes_value(*m.reservation));
  // No cgroup2 equivalent; runc ignores these as well.
  if (m.swappiness) log::debug("cgroups: memory.swappiness has no cgroup v2 equivalent; ignored");
  if (m.disable_oom_killer.value_or(false))
    throw_error(
        "linux.resources.memory.disableOOMKiller: cgroup v2 has no way to disable the OOM killer");
}

void apply_cpu_v2(const std::string& dir, const spec::CpuResources& c) {
  if (c.realtime_period.value_or(0) != 0 || c.realtime_runtime.value_or(0) != 0)
    throw_error("linux.resources.cpu.realtimePeriod/realtimeRuntime: not supported on cgroup v2");
  if (c.shares && *c.shares != 0)
    set("linux.resources.cpu.shares", dir + "/cpu.weight",
        std::to_string(detail::cpu_shares_to_weight(*c.shares)));
  if (auto max = detail::cpu_max_value(c.quota, c.period))
    set("linux.resources.cpu.quota", dir + "/cpu.max", *max);
  if (c.burst) set("linux.resources.cpu.burst", dir + "/cpu.max.burst", std::to_string(*c.burst));
  if (c.idle) set("linux.resources.cpu.idle", dir + "/cpu.idle", std::to_string(*c.idle));
}

}  // namespace

void Cgroup::apply_resources(const spec::Resources& resources) const {
  if (layout_ == Layout::unified)
    apply_resources_v2(resources);
  else
    apply_resources_v1(resources);
}

void Cgroup::apply_resources_v1(const spec::Resources& r) const {
  auto dir_of = [&](std::string_view field, std::string_view controller) -> const std::string& {
    const detail::V1Dir* v1 = v1_dir(controller);
    if (v1 == nullptr)
      throw_error(std::string(field) + ": the " + std::string(controller) +
                  " cgroup controller is not mounted");
    return v1->dir;
  };
  if (!r.unified.empty())
    throw_error("linux.resources.unified: needs cgroup v2, but this host's cgroups are " +
                std::string(layout_name(layout_)));
  if (r.memory) apply_memory_v1(dir_of("linux.resources.memory", "memory"), *r.memory);
  if (r.cpu) {
    if (wants_cpu_controller(*r.cpu)) apply_cpu_v1(dir_of("linux.resources.cpu", "cpu"), *r.cpu);
    if (!r.cpu->cpus.empty() || !r.cpu->mems.empty())
      apply_cpuset(dir_of("linux.resources.cpu.cpus", "cpuset"), *r.cpu);
  }
  if (r.pids_limit)
    set("linux.resources.pids.limit", dir_of("linux.resources.pids", "pids") + "/pids.max",
        detail::pids_max_value(*r.pids_limit));
  if (!r.devices.empty()) apply_devices_v1(dir_of("linux.resources.devices", "devices"), r.devices);
  if (r.block_io) apply_block_io_v1(dir_of("linux.resources.blockIO", "blkio"), *r.block_io);
  if (!r.hugepage_limits.empty()) {
    if (const detail::V1Dir* hugetlb = v1_dir("hugetlb"))
      apply_hugepages(hugetlb->dir, r.hugepage_limits, "limit_in_bytes");
    else  // runc skips controllers the host does not mount as v1 too
      log::warn("linux.resources.hugepageLimits: no v1 hugetlb cgroup controller on this " +
                std::string(layout_name(layout_)) + " host; ignored");
  }
  if (!r.rdma.empty()) apply_rdma(dir_of("linux.resources.rdma", "rdma"), r.rdma);
  if (r.network) apply_network_v1(v1_dir("net_cls"), v1_dir("net_prio"), *r.network);
}

void Cgroup::apply_resources_v2(const spec::Resources& r) const {
  const std::string& dir = unified_dir_;
  if (r.memory) apply_memory_v2(dir, *r.memory);
  if (r.cpu) {
    apply_cpu_v2(dir, *r.cpu);
    apply_cpuset(dir, *r.cpu);
  }
  if (r.pids_limit)
    set("linux.resources.pids.limit", dir + "/pids.max", detail::pids_max_value(*r.pids_limit));
  if (!r.devices.empty()) apply_devices_v2(dir, r.devices);
  if (r.block_io) apply_block_io_v2(dir, *r.block_io);
  if (!r.hugepage_limits.empty()) apply_hugepages(dir, r.hugepage_limits, "max");
  if (!r.rdma.empty()) apply_rdma(dir, r.rdma);
  if (r.network)
    log::warn(
        "linux.resources.network: net_cls/net_prio do not exist on cgroup v2 (use eBPF or "
        "the network namespace); ignored");
  // Last, so explicit unified values override the converted ones (as in runc).
  for (const auto& [key, value] : r.unified) {
    detail::validate_unified_key(key);
    set("linux.resources.unified." + key, dir + "/" + key, value);
  }
}

}  // namespace barge::cgroups

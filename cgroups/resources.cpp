// linux.resources → cgroup files, v1 and v2. Errors name the spec field, then the file:
// "linux.resources.memory.limit: write /sys/fs/cgroup/memory/x/memory.limit_in_bytes: ...".
#include "cgroups/resources.hpp"

#include <algorithm>
#include <charconv>

#include "cgroups/cgroup.hpp"
#include "cgroups/cgroupfs.hpp"
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

void warn_unsupported(const spec::Resources& r) {
  auto warn = [](std::string_view field) {
    log::warn(std::string(field) + " is not supported yet; ignored");
  };
  if (r.block_io) warn("linux.resources.blockIO");
  if (!r.hugepage_limits.empty()) warn("linux.resources.hugepageLimits");
  if (r.network) warn("linux.resources.network");
  if (!r.rdma.empty()) warn("linux.resources.rdma");
  // Every Docker/containerd spec carries device rules; not worth a warning each time.
  if (!r.devices.empty()) log::debug("cgroups: linux.resources.devices is not applied yet");
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

void apply_memory_v2(const std::string& dir, const spec::MemoryResources& m) {
  if (auto swap_max = detail::v2_swap_max_value(m.swap, m.limit))
    set("linux.resources.memory.swap", dir + "/memory.swap.max", *swap_max);
  if (m.limit && *m.limit != 0)
    set("linux.resources.memory.limit", dir + "/memory.max", detail::v2_bytes_value(*m.limit));
  if (m.reservation && *m.reservation != 0)
    set("linux.resources.memory.reservation", dir + "/memory.low",
        detail::v2_bytes_value(*m.reservation));
  // No cgroup2 equivalent; runc ignores these as well.
  if (m.swappiness) log::debug("cgroups: memory.swappiness has no cgroup v2 equivalent; ignored");
  if (m.disable_oom_killer.value_or(false))
    log::debug("cgroups: memory.disableOOMKiller has no cgroup v2 equivalent; ignored");
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
  warn_unsupported(resources);
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
  // Last, so explicit unified values override the converted ones (as in runc).
  for (const auto& [key, value] : r.unified) {
    detail::validate_unified_key(key);
    set("linux.resources.unified." + key, dir + "/" + key, value);
  }
}

}  // namespace barge::cgroups

// Kernel scheduling and execution-domain attributes of a container process: process.scheduler
// (sched_setattr), process.ioPriority (ioprio_set), process.execCPUAffinity (sched_setaffinity)
// and linux.personality.
#include <linux/ioprio.h>
#include <linux/sched.h>
#include <sched.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <charconv>
#include <string_view>
#include <utility>

#include "common/error.hpp"
#include "runtime/process_setup.hpp"

namespace barge::runtime {
namespace {

// linux/sched/types.h's struct sched_attr (SCHED_ATTR_SIZE_VER1); that header clashes with
// glibc's <sched.h>, and glibc 2.36 has no sched_setattr wrapper.
struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
  uint32_t sched_util_min;
  uint32_t sched_util_max;
};

template <size_t N>
uint64_t lookup(std::string_view name, const std::pair<std::string_view, uint64_t> (&table)[N],
                const std::string& field) {
  for (const auto& [known, value] : table)
    if (known == name) return value;
  throw Error(field + ": unknown value \"" + std::string(name) + "\"");
}

uint32_t scheduler_policy(const std::string& name) {
  static constexpr std::pair<std::string_view, uint64_t> kPolicies[] = {
      {"SCHED_OTHER", SCHED_NORMAL},     {"SCHED_FIFO", SCHED_FIFO}, {"SCHED_RR", SCHED_RR},
      {"SCHED_BATCH", SCHED_BATCH},      {"SCHED_ISO", 4},           {"SCHED_IDLE", SCHED_IDLE},
      {"SCHED_DEADLINE", SCHED_DEADLINE}};
  return static_cast<uint32_t>(lookup(name, kPolicies, "process.scheduler.policy"));
}

uint64_t scheduler_flags(const std::vector<std::string>& names) {
  static constexpr std::pair<std::string_view, uint64_t> kFlags[] = {
      {"SCHED_FLAG_RESET_ON_FORK", SCHED_FLAG_RESET_ON_FORK},
      {"SCHED_FLAG_RECLAIM", SCHED_FLAG_RECLAIM},
      {"SCHED_FLAG_DL_OVERRUN", SCHED_FLAG_DL_OVERRUN},
      {"SCHED_FLAG_KEEP_POLICY", SCHED_FLAG_KEEP_POLICY},
      {"SCHED_FLAG_KEEP_PARAMS", SCHED_FLAG_KEEP_PARAMS},
      {"SCHED_FLAG_UTIL_CLAMP_MIN", SCHED_FLAG_UTIL_CLAMP_MIN},
      {"SCHED_FLAG_UTIL_CLAMP_MAX", SCHED_FLAG_UTIL_CLAMP_MAX}};
  uint64_t flags = 0;
  for (const auto& name : names) flags |= lookup(name, kFlags, "process.scheduler.flags");
  return flags;
}

int io_priority_class(const std::string& name) {
  static constexpr std::pair<std::string_view, uint64_t> kClasses[] = {
      {"IOPRIO_CLASS_RT", IOPRIO_CLASS_RT},
      {"IOPRIO_CLASS_BE", IOPRIO_CLASS_BE},
      {"IOPRIO_CLASS_IDLE", IOPRIO_CLASS_IDLE}};
  return static_cast<int>(lookup(name, kClasses, "process.ioPriority.class"));
}

// "0-3,6" -> cpu_set_t; throws naming the field on malformed lists.
cpu_set_t parse_cpu_list(std::string_view list, const std::string& field) {
  cpu_set_t set;
  CPU_ZERO(&set);
  auto bad = [&] { return Error(field + ": invalid CPU list \"" + std::string(list) + "\""); };
  auto number = [&](std::string_view text) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value >= CPU_SETSIZE) throw bad();
    return value;
  };
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    auto dash = item.find('-');
    unsigned first = number(item.substr(0, dash));
    unsigned last = dash == std::string_view::npos ? first : number(item.substr(dash + 1));
    if (last < first) throw bad();
    for (unsigned cpu = first; cpu <= last; ++cpu) CPU_SET(cpu, &set);
  }
  if (CPU_COUNT(&set) == 0) throw bad();
  return set;
}

}  // namespace

void apply_scheduler(const spec::Scheduler& scheduler) {
  SchedAttr attr{};
  attr.size = sizeof attr;
  attr.sched_policy = scheduler_policy(scheduler.policy);
  attr.sched_flags = scheduler_flags(scheduler.flags);
  attr.sched_nice = scheduler.nice;
  attr.sched_priority = static_cast<uint32_t>(scheduler.priority);
  attr.sched_runtime = scheduler.runtime;
  attr.sched_deadline = scheduler.deadline;
  attr.sched_period = scheduler.period;
  if (::syscall(SYS_sched_setattr, 0, &attr, 0) != 0)
    throw_errno("process.scheduler: sched_setattr " + scheduler.policy);
}

void apply_io_priority(const spec::IoPriority& priority) {
  int value = IOPRIO_PRIO_VALUE(io_priority_class(priority.io_class), priority.priority);
  if (::syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) != 0)
    throw_errno("process.ioPriority: ioprio_set");
}

void apply_cpu_affinity(const std::string& cpus, const std::string& field) {
  if (cpus.empty()) return;
  cpu_set_t set = parse_cpu_list(cpus, field);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) throw_errno(field + ": sched_setaffinity");
}

void apply_personality(const spec::Personality& personality) {
  unsigned long domain = personality.domain == "LINUX32" ? PER_LINUX32 : PER_LINUX;
  if (::personality(domain) == -1)
    throw_errno("linux.personality: personality " + personality.domain);
}

}  // namespace barge::runtime

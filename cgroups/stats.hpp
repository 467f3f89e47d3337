// Usage statistics of a cgroup (Cgroup::stats) and their JSON form, which follows runc's
// `events --stats` output (libcontainer types/events.go) field by field, including Go's
// omitempty: zero counters that runc leaves out are left out here too.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace barge::cgroups {

// cgroup "max" (v2) reads as this, like runc's GetCgroupParamUint.
inline constexpr uint64_t kUnlimited = std::numeric_limits<uint64_t>::max();

struct CpuStats {
  uint64_t total_ns = 0, kernel_ns = 0, user_ns = 0;
  std::vector<uint64_t> percpu_ns, percpu_kernel_ns, percpu_user_ns;  // v1 only
  uint64_t periods = 0, throttled_periods = 0, throttled_ns = 0;
};

struct MemoryEntry {
  uint64_t limit = 0, usage = 0, max = 0, failcnt = 0;
};

struct MemoryStats {
  uint64_t cache = 0;
  MemoryEntry usage, swap, kernel, kernel_tcp;
  std::map<std::string, uint64_t> raw;  // memory.stat as is
};

struct PidsStats {
  uint64_t current = 0, limit = 0;  // limit 0: unlimited
};

struct BlkioEntry {
  uint64_t major = 0, minor = 0;
  std::string op;
  uint64_t value = 0;
  bool operator==(const BlkioEntry&) const = default;
};

struct BlkioStats {
  std::vector<BlkioEntry> service_bytes, serviced;
};

struct HugetlbStats {
  uint64_t usage = 0, max = 0, failcnt = 0;
};

// The cpus and mems a container may use (runc's "cpuset" stats: lists of numbers).
struct CpusetStats {
  std::vector<uint16_t> cpus;
  std::vector<uint16_t> mems;
};

struct Stats {
  CpuStats cpu;
  CpusetStats cpuset;
  MemoryStats memory;
  PidsStats pids;
  BlkioStats blkio;
  std::map<std::string, HugetlbStats> hugetlb;  // keyed by page size: "2MB", "1GB"
};

// runc's `data` object of a stats event.
nlohmann::ordered_json stats_to_json(const Stats& stats);

namespace detail {

// Pure parsers over the text of cgroup files (unit-tested against real fixture files).

// "key value" lines (memory.stat, cpu.stat, cpuacct.stat, memory.events, pids/hugetlb events);
// lines that do not parse are skipped.
std::map<std::string, uint64_t> parse_flat_keyed(std::string_view text);
// One value: a number, or "max" (kUnlimited). Throws naming file on anything else.
uint64_t parse_limit(std::string_view text, std::string_view file);
// A cpuset list ("0-2,4") as numbers; malformed parts are skipped.
std::vector<uint16_t> parse_cpuset_list(std::string_view text);
// Whitespace-separated numbers (cpuacct.usage_percpu).
std::vector<uint64_t> parse_uint_list(std::string_view text);
// cpuacct.usage_all: "cpu user system" header, then one line per cpu.
void parse_cpuacct_usage_all(std::string_view text, std::vector<uint64_t>& user_ns,
                             std::vector<uint64_t>& system_ns);
// v1 blkio files ("MAJ:MIN Op value" lines; "Total N" summary lines are skipped).
std::vector<BlkioEntry> parse_v1_blkio(std::string_view text);
// v2 io.stat ("MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=..") as runc reports
// it: bytes and ios as Read/Write entries.
BlkioStats parse_v2_io_stat(std::string_view text);
// /sys/kernel/mm/hugepages entry ("hugepages-2048kB") to the cgroup file infix ("2MB").
std::string hugepage_size_name(std::string_view dir_name);
// The user/system values of cpuacct.stat are in USER_HZ ticks; runc reports nanoseconds.
uint64_t clock_ticks_to_ns(uint64_t ticks, long ticks_per_second);

}  // namespace detail
}  // namespace barge::cgroups

// Cgroup::stats: usage counters from the v1 or v2 files, and their runc-shaped JSON.
#include "cgroups/stats.hpp"

#include <unistd.h>

#include <charconv>

#include "cgroups/cgroup.hpp"
#include "cgroups/cgroupfs.hpp"
#include "common/error.hpp"

namespace barge::cgroups {
namespace detail {
namespace {

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    auto eol = text.find('\n');
    if (auto line = fs::trim(text.substr(0, eol)); !line.empty()) lines.push_back(line);
    if (eol == std::string_view::npos) break;
    text.remove_prefix(eol + 1);
  }
  return lines;
}

std::vector<std::string_view> fields_of(std::string_view line) {
  std::vector<std::string_view> fields;
  while (true) {
    auto start = line.find_first_not_of(" \t");
    if (start == std::string_view::npos) return fields;
    line.remove_prefix(start);
    auto end = line.find_first_of(" \t");
    fields.push_back(line.substr(0, end));
    if (end == std::string_view::npos) return fields;
    line.remove_prefix(end);
  }
}

std::optional<uint64_t> to_uint(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// "254:0" → major, minor.
bool parse_device(std::string_view text, uint64_t& major, uint64_t& minor) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  auto maj = to_uint(text.substr(0, colon)), min = to_uint(text.substr(colon + 1));
  if (!maj || !min) return false;
  major = *maj;
  minor = *min;
  return true;
}

}  // namespace

std::map<std::string, uint64_t> parse_flat_keyed(std::string_view text) {
  std::map<std::string, uint64_t> out;
  for (auto line : lines_of(text)) {
    auto fields = fields_of(line);
    if (fields.size() != 2) continue;
    if (auto value = to_uint(fields[1])) out[std::string(fields[0])] = *value;
  }
  return out;
}

uint64_t parse_limit(std::string_view text, std::string_view file) {
  text = fs::trim(text);
  if (text == "max") return kUnlimited;
  if (auto value = to_uint(text)) return *value;
  throw_error(std::string(file) + ": not a number: \"" + std::string(text) + "\"");
}

std::vector<uint64_t> parse_uint_list(std::string_view text) {
  std::vector<uint64_t> out;
  for (auto field : fields_of(fs::trim(text)))
    if (auto value = to_uint(field)) out.push_back(*value);
  return out;
}

void parse_cpuacct_usage_all(std::string_view text, std::vector<uint64_t>& user_ns,
                             std::vector<uint64_t>& system_ns) {
  user_ns.clear();
  system_ns.clear();
  for (auto line : lines_of(text)) {
    auto fields = fields_of(line);
    if (fields.size() != 3 || !to_uint(fields[0])) continue;  // also skips the header
    user_ns.push_back(to_uint(fields[1]).value_or(0));
    system_ns.push_back(to_uint(fields[2]).value_or(0));
  }
}

std::vector<BlkioEntry> parse_v1_blkio(std::string_view text) {
  std::vector<BlkioEntry> out;
  for (auto line : lines_of(text)) {
    auto fields = fields_of(line);
    BlkioEntry entry;
    if (fields.size() != 3 || !parse_device(fields[0], entry.major, entry.minor)) continue;
    auto value = to_uint(fields[2]);
    if (!value) continue;
    entry.op = std::string(fields[1]);
    entry.value = *value;
    out.push_back(std::move(entry));
  }
  return out;
}

BlkioStats parse_v2_io_stat(std::string_view text) {
  BlkioStats out;
  for (auto line : lines_of(text)) {
    auto fields = fields_of(line);
    uint64_t major = 0, minor = 0;
    if (fields.empty() || !parse_device(fields[0], major, minor)) continue;
    for (size_t i = 1; i < fields.size(); ++i) {
      auto eq = fields[i].find('=');
      if (eq == std::string_view::npos) continue;
      std::string_view key = fields[i].substr(0, eq);
      uint64_t value = to_uint(fields[i].substr(eq + 1)).value_or(0);
      if (key == "rbytes") out.service_bytes.push_back({major, minor, "Read", value});
      if (key == "wbytes") out.service_bytes.push_back({major, minor, "Write", value});
      if (key == "rios") out.serviced.push_back({major, minor, "Read", value});
      if (key == "wios") out.serviced.push_back({major, minor, "Write", value});
    }
  }
  return out;
}

std::string hugepage_size_name(std::string_view dir_name) {
  constexpr std::string_view prefix = "hugepages-", suffix = "kB";
  if (!dir_name.starts_with(prefix) || !dir_name.ends_with(suffix)) return "";
  auto kib = to_uint(dir_name.substr(prefix.size(), dir_name.size() - prefix.size() - 2));
  if (!kib || *kib == 0) return "";
  static constexpr std::pair<uint64_t, const char*> kUnits[] = {
      {1ULL << 30, "TB"}, {1ULL << 20, "GB"}, {1ULL << 10, "MB"}, {1, "KB"}};
  for (auto [size, unit] : kUnits)
    if (*kib % size == 0) return std::to_string(*kib / size) + unit;
  return "";
}

uint64_t clock_ticks_to_ns(uint64_t ticks, long ticks_per_second) {
  if (ticks_per_second <= 0) return 0;
  return ticks * (1'000'000'000ULL / static_cast<uint64_t>(ticks_per_second));
}

}  // namespace detail

namespace {

using Json = nlohmann::ordered_json;

// Go's omitempty: zero numbers and empty lists are left out.
template <typename T>
void put_nonzero(Json& object, const char* key, const T& value) {
  if constexpr (std::is_integral_v<T>) {
    if (value != 0) object[key] = value;
  } else {
    if (!value.empty()) object[key] = value;
  }
}

Json memory_entry_json(const MemoryEntry& entry) {
  Json out = Json::object();
  out["limit"] = entry.limit;
  put_nonzero(out, "usage", entry.usage);
  put_nonzero(out, "max", entry.max);
  out["failcnt"] = entry.failcnt;
  return out;
}

Json blkio_entries_json(const std::vector<BlkioEntry>& entries) {
  Json out = Json::array();
  for (const auto& entry : entries) {
    Json item = Json::object();
    put_nonzero(item, "major", entry.major);
    put_nonzero(item, "minor", entry.minor);
    put_nonzero(item, "op", entry.op);
    put_nonzero(item, "value", entry.value);
    out.push_back(std::move(item));
  }
  return out;
}

Json cpu_json(const CpuStats& cpu) {
  Json usage = Json::object();
  put_nonzero(usage, "total", cpu.total_ns);
  put_nonzero(usage, "percpu", cpu.percpu_ns);
  put_nonzero(usage, "percpu_kernel", cpu.percpu_kernel_ns);
  put_nonzero(usage, "percpu_user", cpu.percpu_user_ns);
  usage["kernel"] = cpu.kernel_ns;
  usage["user"] = cpu.user_ns;
  Json throttling = Json::object();
  put_nonzero(throttling, "periods", cpu.periods);
  put_nonzero(throttling, "throttledPeriods", cpu.throttled_periods);
  put_nonzero(throttling, "throttledTime", cpu.throttled_ns);
  return Json{{"usage", usage}, {"throttling", throttling}};
}

Json memory_json(const MemoryStats& memory) {
  Json out = Json::object();
  put_nonzero(out, "cache", memory.cache);
  out["usage"] = memory_entry_json(memory.usage);
  out["swap"] = memory_entry_json(memory.swap);
  out["kernel"] = memory_entry_json(memory.kernel);
  out["kernelTCP"] = memory_entry_json(memory.kernel_tcp);
  if (!memory.raw.empty()) out["raw"] = memory.raw;
  return out;
}

}  // namespace

Json stats_to_json(const Stats& stats) {
  Json pids = Json::object();
  put_nonzero(pids, "current", stats.pids.current);
  put_nonzero(pids, "limit", stats.pids.limit);
  Json blkio = Json::object();
  if (!stats.blkio.service_bytes.empty())
    blkio["ioServiceBytesRecursive"] = blkio_entries_json(stats.blkio.service_bytes);
  if (!stats.blkio.serviced.empty())
    blkio["ioServicedRecursive"] = blkio_entries_json(stats.blkio.serviced);
  Json hugetlb = Json::object();
  for (const auto& [size, entry] : stats.hugetlb) {
    Json item = Json::object();
    put_nonzero(item, "usage", entry.usage);
    put_nonzero(item, "max", entry.max);
    item["failcnt"] = entry.failcnt;
    hugetlb[size] = std::move(item);
  }
  Json cpuset = Json::object();
  if (!stats.cpuset.cpus.empty()) cpuset["cpus"] = stats.cpuset.cpus;
  if (!stats.cpuset.mems.empty()) cpuset["mems"] = stats.cpuset.mems;
  return Json{{"cpu", cpu_json(stats.cpu)},
              {"cpuset", cpuset},
              {"memory", memory_json(stats.memory)},
              {"pids", pids},
              {"blkio", blkio},
              {"hugetlb", hugetlb},
              {"intel_rdt", Json::object()},
              {"network_interfaces", nullptr}};
}

namespace {

// A missing file (controller or feature absent) counts as zero, like runc.
uint64_t read_value(const std::string& file) {
  auto text = fs::try_read(file);
  if (!text || fs::trim(*text).empty()) return 0;
  return with_context("stats", [&] { return detail::parse_limit(*text, file); });
}

std::map<std::string, uint64_t> read_keyed(const std::string& file) {
  auto text = fs::try_read(file);
  return text ? detail::parse_flat_keyed(*text) : std::map<std::string, uint64_t>{};
}

uint64_t value_of(const std::map<std::string, uint64_t>& map, const std::string& key) {
  auto it = map.find(key);
  return it == map.end() ? 0 : it->second;
}

std::vector<std::string> hugepage_sizes() {
  std::vector<std::string> sizes;
  for (const auto& dir : fs::subdirs("/sys/kernel/mm/hugepages"))
    if (auto name = detail::hugepage_size_name(dir); !name.empty()) sizes.push_back(name);
  return sizes;
}

MemoryEntry v1_memory_entry(const std::string& dir, const std::string& prefix) {
  return MemoryEntry{read_value(dir + "/" + prefix + ".limit_in_bytes"),
                     read_value(dir + "/" + prefix + ".usage_in_bytes"),
                     read_value(dir + "/" + prefix + ".max_usage_in_bytes"),
                     read_value(dir + "/" + prefix + ".failcnt")};
}

void v1_memory_stats(const std::string& dir, MemoryStats& out) {
  out.raw = read_keyed(dir + "/memory.stat");
  out.cache = value_of(out.raw, "cache");
  out.usage = v1_memory_entry(dir, "memory");
  out.swap = v1_memory_entry(dir, "memory.memsw");
  out.kernel = v1_memory_entry(dir, "memory.kmem");
  out.kernel_tcp = v1_memory_entry(dir, "memory.kmem.tcp");
}

void v1_cpuacct_stats(const std::string& dir, CpuStats& out) {
  out.total_ns = read_value(dir + "/cpuacct.usage");
  if (auto percpu = fs::try_read(dir + "/cpuacct.usage_percpu"))
    out.percpu_ns = detail::parse_uint_list(*percpu);
  if (auto all = fs::try_read(dir + "/cpuacct.usage_all"))
    detail::parse_cpuacct_usage_all(*all, out.percpu_user_ns, out.percpu_kernel_ns);
  auto ticks = read_keyed(dir + "/cpuacct.stat");
  long hz = ::sysconf(_SC_CLK_TCK);
  out.user_ns = detail::clock_ticks_to_ns(value_of(ticks, "user"), hz);
  out.kernel_ns = detail::clock_ticks_to_ns(value_of(ticks, "system"), hz);
}

// runc's order: the first group whose first file has entries wins (BFQ, CFQ, then the
// throttle files, which only count I/O once a throttle limit is set on the device).
BlkioStats v1_blkio_stats(const std::string& dir) {
  static constexpr std::pair<const char*, const char*> kGroups[] = {
      {"blkio.bfq.io_service_bytes_recursive", "blkio.bfq.io_serviced_recursive"},
      {"blkio.io_service_bytes_recursive", "blkio.io_serviced_recursive"},
      {"blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_serviced_recursive"},
      {"blkio.throttle.io_service_bytes", "blkio.throttle.io_serviced"}};
  for (auto [bytes_file, ios_file] : kGroups) {
    auto bytes = fs::try_read(dir + "/" + bytes_file);
    if (!bytes) continue;
    BlkioStats out;
    out.service_bytes = detail::parse_v1_blkio(*bytes);
    if (out.service_bytes.empty()) continue;
    if (auto ios = fs::try_read(dir + "/" + ios_file)) out.serviced = detail::parse_v1_blkio(*ios);
    return out;
  }
  return {};
}

void v2_hugetlb_stats(const std::string& dir, std::map<std::string, HugetlbStats>& out) {
  for (const auto& size : hugepage_sizes()) {
    std::string prefix = dir + "/hugetlb." + size;
    if (!fs::try_read(prefix + ".current")) continue;
    out[size] = HugetlbStats{read_value(prefix + ".current"), 0,
                             value_of(read_keyed(prefix + ".events"), "max")};
  }
}

void v1_hugetlb_stats(const std::string& dir, std::map<std::string, HugetlbStats>& out) {
  for (const auto& size : hugepage_sizes()) {
    std::string prefix = dir + "/hugetlb." + size;
    if (!fs::try_read(prefix + ".usage_in_bytes")) continue;
    out[size] =
        HugetlbStats{read_value(prefix + ".usage_in_bytes"),
                     read_value(prefix + ".max_usage_in_bytes"), read_value(prefix + ".failcnt")};
  }
}

void v2_memory_stats(const std::string& dir, MemoryStats& out) {
  out.raw = read_keyed(dir + "/memory.stat");
  out.cache = value_of(out.raw, "file");
  out.usage.usage = read_value(dir + "/memory.current");
  out.usage.limit = read_value(dir + "/memory.max");
  // cgroup2 has no failcnt; memory.events "max" counts the times usage hit memory.max.
  out.usage.failcnt = value_of(read_keyed(dir + "/memory.events"), "max");
  // v1 reports memory+swap; runc converts v2's swap-only numbers the same way.
  out.swap.usage = read_value(dir + "/memory.swap.current") + out.usage.usage;
  out.swap.limit = read_value(dir + "/memory.swap.max");
  if (out.swap.limit != kUnlimited) out.swap.limit += out.usage.limit;
}

void v2_cpu_stats(const std::string& dir, CpuStats& out) {
  auto stat = read_keyed(dir + "/cpu.stat");
  out.total_ns = value_of(stat, "usage_usec") * 1000;
  out.user_ns = value_of(stat, "user_usec") * 1000;
  out.kernel_ns = value_of(stat, "system_usec") * 1000;
  out.periods = value_of(stat, "nr_periods");
  out.throttled_periods = value_of(stat, "nr_throttled");
  out.throttled_ns = value_of(stat, "throttled_usec") * 1000;
}

}  // namespace

namespace {

// The effective sets where the kernel exposes them (an empty cpuset.cpus means "the parent's").
CpusetStats cpuset_stats(const std::string& dir) {
  auto read_list = [&](const std::string& name) {
    auto effective = fs::try_read(dir + "/" + name + ".effective");
    auto text = effective ? effective : fs::try_read(dir + "/" + name);
    return text ? detail::parse_cpuset_list(*text) : std::vector<uint16_t>{};
  };
  return {read_list("cpuset.cpus"), read_list("cpuset.mems")};
}

}  // namespace

namespace detail {

std::vector<uint16_t> parse_cpuset_list(std::string_view text) {
  std::vector<uint16_t> out;
  while (!text.empty()) {
    auto comma = text.find(',');
    std::string_view item = fs::trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    unsigned first = 0, last = 0;
    auto dash = item.find('-');
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), first);
    if (ec != std::errc()) continue;
    last = first;
    if (dash != std::string_view::npos &&
        std::from_chars(item.data() + dash + 1, item.data() + item.size(), last).ec != std::errc())
      continue;
    (void)end;
    for (unsigned n = first; n <= last && n <= UINT16_MAX; ++n)
      out.push_back(static_cast<uint16_t>(n));
  }
  return out;
}

}  // namespace detail

Stats Cgroup::stats() const {
  Stats out;
  if (layout_ == Layout::unified) {
    const std::string& dir = unified_dir_;
    v2_cpu_stats(dir, out.cpu);
    v2_memory_stats(dir, out.memory);
    out.pids = {read_value(dir + "/pids.current"), read_value(dir + "/pids.max")};
    if (auto io = fs::try_read(dir + "/io.stat")) out.blkio = detail::parse_v2_io_stat(*io);
    v2_hugetlb_stats(dir, out.hugetlb);
    out.cpuset = cpuset_stats(dir);
  } else {
    if (const auto* cpuacct = v1_dir("cpuacct")) v1_cpuacct_stats(cpuacct->dir, out.cpu);
    if (const auto* cpu = v1_dir("cpu")) {
      auto stat = read_keyed(cpu->dir + "/cpu.stat");
      out.cpu.periods = value_of(stat, "nr_periods");
      out.cpu.throttled_periods = value_of(stat, "nr_throttled");
      out.cpu.throttled_ns = value_of(stat, "throttled_time");
    }
    if (const auto* memory = v1_dir("memory")) v1_memory_stats(memory->dir, out.memory);
    if (const auto* pids = v1_dir("pids"))
      out.pids = {read_value(pids->dir + "/pids.current"), read_value(pids->dir + "/pids.max")};
    if (const auto* blkio = v1_dir("blkio")) out.blkio = v1_blkio_stats(blkio->dir);
    if (const auto* hugetlb = v1_dir("hugetlb")) v1_hugetlb_stats(hugetlb->dir, out.hugetlb);
    if (const auto* cpuset = v1_dir("cpuset")) out.cpuset = cpuset_stats(cpuset->dir);
  }
  // runc reports an unlimited pids.max as no limit.
  if (out.pids.limit == kUnlimited) out.pids.limit = 0;
  return out;
}

}  // namespace barge::cgroups

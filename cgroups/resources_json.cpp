#include "cgroups/resources_json.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace barge::cgroups {
namespace {

using Json = nlohmann::ordered_json;

template <typename T>
void put(Json& object, const char* key, const std::optional<T>& value) {
  if (value) object[key] = *value;
}

void put(Json& object, const char* key, const std::string& value) {
  if (!value.empty()) object[key] = value;
}

Json device_rule_json(const spec::DeviceCgroupRule& rule) {
  Json out = {{"allow", rule.allow}};
  put(out, "type", rule.type);
  put(out, "major", rule.major);
  put(out, "minor", rule.minor);
  put(out, "access", rule.access);
  return out;
}

Json memory_json(const spec::MemoryResources& m) {
  Json out = Json::object();
  put(out, "limit", m.limit);
  put(out, "reservation", m.reservation);
  put(out, "swap", m.swap);
  put(out, "kernel", m.kernel);
  put(out, "kernelTCP", m.kernel_tcp);
  put(out, "swappiness", m.swappiness);
  put(out, "disableOOMKiller", m.disable_oom_killer);
  put(out, "useHierarchy", m.use_hierarchy);
  put(out, "checkBeforeUpdate", m.check_before_update);
  return out;
}

Json cpu_json(const spec::CpuResources& c) {
  Json out = Json::object();
  put(out, "shares", c.shares);
  put(out, "quota", c.quota);
  put(out, "burst", c.burst);
  put(out, "period", c.period);
  put(out, "realtimeRuntime", c.realtime_runtime);
  put(out, "realtimePeriod", c.realtime_period);
  put(out, "cpus", c.cpus);
  put(out, "mems", c.mems);
  put(out, "idle", c.idle);
  return out;
}

Json throttle_list_json(const std::vector<spec::ThrottleDevice>& devices) {
  Json out = Json::array();
  for (const auto& d : devices)
    out.push_back({{"major", d.major}, {"minor", d.minor}, {"rate", d.rate}});
  return out;
}

Json block_io_json(const spec::BlockIoResources& b) {
  Json out = Json::object();
  put(out, "weight", b.weight);
  put(out, "leafWeight", b.leaf_weight);
  if (!b.weight_device.empty()) {
    Json list = Json::array();
    for (const auto& d : b.weight_device) {
      Json item = {{"major", d.major}, {"minor", d.minor}};
      put(item, "weight", d.weight);
      put(item, "leafWeight", d.leaf_weight);
      list.push_back(std::move(item));
    }
    out["weightDevice"] = std::move(list);
  }
  auto put_list = [&](const char* key, const std::vector<spec::ThrottleDevice>& devices) {
    if (!devices.empty()) out[key] = throttle_list_json(devices);
  };
  put_list("throttleReadBpsDevice", b.throttle_read_bps_device);
  put_list("throttleWriteBpsDevice", b.throttle_write_bps_device);
  put_list("throttleReadIOPSDevice", b.throttle_read_iops_device);
  put_list("throttleWriteIOPSDevice", b.throttle_write_iops_device);
  return out;
}

template <typename T>
void overlay(std::optional<T>& base, const std::optional<T>& change) {
  if (change) base = change;
}

void overlay(std::string& base, const std::string& change) {
  if (!change.empty()) base = change;
}

template <typename T>
void overlay(std::vector<T>& base, const std::vector<T>& change) {
  if (!change.empty()) base = change;
}

void merge_memory(spec::MemoryResources& base, const spec::MemoryResources& change) {
  overlay(base.limit, change.limit);
  overlay(base.reservation, change.reservation);
  overlay(base.swap, change.swap);
  overlay(base.kernel, change.kernel);
  overlay(base.kernel_tcp, change.kernel_tcp);
  overlay(base.swappiness, change.swappiness);
  overlay(base.disable_oom_killer, change.disable_oom_killer);
  overlay(base.use_hierarchy, change.use_hierarchy);
  overlay(base.check_before_update, change.check_before_update);
}

void merge_cpu(spec::CpuResources& base, const spec::CpuResources& change) {
  overlay(base.shares, change.shares);
  overlay(base.quota, change.quota);
  overlay(base.burst, change.burst);
  overlay(base.period, change.period);
  overlay(base.realtime_runtime, change.realtime_runtime);
  overlay(base.realtime_period, change.realtime_period);
  overlay(base.cpus, change.cpus);
  overlay(base.mems, change.mems);
  overlay(base.idle, change.idle);
}

void merge_block_io(spec::BlockIoResources& base, const spec::BlockIoResources& change) {
  overlay(base.weight, change.weight);
  overlay(base.leaf_weight, change.leaf_weight);
  overlay(base.weight_device, change.weight_device);
  overlay(base.throttle_read_bps_device, change.throttle_read_bps_device);
  overlay(base.throttle_write_bps_device, change.throttle_write_bps_device);
  overlay(base.throttle_read_iops_device, change.throttle_read_iops_device);
  overlay(base.throttle_write_iops_device, change.throttle_write_iops_device);
}

template <typename Section, typename Merge>
void merge_section(std::optional<Section>& base, const std::optional<Section>& change,
                   Merge merge) {
  if (!change) return;
  if (!base) base.emplace();
  merge(*base, *change);
}

}  // namespace

spec::Resources parse_resources_json(const std::string& text, const std::string& source) {
  Json document;
  try {
    document = Json::parse(text);
  } catch (const Json::parse_error&) {
    spec::parse(text, source);  // throws the error with line and column
    throw;
  }
  if (!document.is_object()) throw_error(source + ": linux.resources: expected an object");
  Json wrapper = {{"ociVersion", spec::kRuntimeSpecVersion},
                  {"linux", {{"resources", std::move(document)}}}};
  return with_context(source,
                      [&] { return spec::parse(wrapper.dump(), source).linux->resources.value(); });
}

std::string resources_to_json(const spec::Resources& r) {
  Json out = Json::object();
  if (!r.devices.empty()) {
    Json devices = Json::array();
    for (const auto& rule : r.devices) devices.push_back(device_rule_json(rule));
    out["devices"] = std::move(devices);
  }
  if (r.memory) out["memory"] = memory_json(*r.memory);
  if (r.cpu) out["cpu"] = cpu_json(*r.cpu);
  if (r.pids_limit) out["pids"] = {{"limit", *r.pids_limit}};
  if (r.block_io) out["blockIO"] = block_io_json(*r.block_io);
  if (!r.hugepage_limits.empty()) {
    Json list = Json::array();
    for (const auto& h : r.hugepage_limits)
      list.push_back({{"pageSize", h.page_size}, {"limit", h.limit}});
    out["hugepageLimits"] = std::move(list);
  }
  if (r.network) {
    Json network = Json::object();
    put(network, "classID", r.network->class_id);
    if (!r.network->priorities.empty()) {
      Json list = Json::array();
      for (const auto& p : r.network->priorities)
        list.push_back({{"name", p.name}, {"priority", p.priority}});
      network["priorities"] = std::move(list);
    }
    out["network"] = std::move(network);
  }
  if (!r.rdma.empty()) {
    Json rdma = Json::object();
    for (const auto& [device, limit] : r.rdma) {
      Json item = Json::object();
      put(item, "hcaHandles", limit.hca_handles);
      put(item, "hcaObjects", limit.hca_objects);
      rdma[device] = std::move(item);
    }
    out["rdma"] = std::move(rdma);
  }
  if (!r.unified.empty()) out["unified"] = r.unified;
  return out.dump(2) + "\n";
}

spec::Resources merge_resources(spec::Resources base, const spec::Resources& changes) {
  merge_section(base.memory, changes.memory, merge_memory);
  merge_section(base.cpu, changes.cpu, merge_cpu);
  overlay(base.pids_limit, changes.pids_limit);
  merge_section(base.block_io, changes.block_io, merge_block_io);
  overlay(base.hugepage_limits, changes.hugepage_limits);
  if (changes.network) base.network = changes.network;
  for (const auto& [device, limit] : changes.rdma) base.rdma[device] = limit;
  for (const auto& [key, value] : changes.unified) base.unified[key] = value;
  return base;
}

int64_t parse_memory_size(std::string_view text, std::string_view flag) {
  auto invalid = [&]() -> int64_t {
    throw_error(std::string(flag) + ": invalid size: \"" + std::string(text) + "\"");
  };
  if (text == "-1") return -1;
  // The number: digits with at most one fraction part.
  size_t end = 0;
  while (end < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.'))
    ++end;
  std::string number(text.substr(0, end));
  if (number.empty() || number.front() == '.' || std::count(number.begin(), number.end(), '.') > 1)
    return invalid();
  std::string_view suffix = text.substr(end);
  if (suffix.starts_with(' ')) suffix.remove_prefix(1);
  uint64_t multiplier = 1;
  static constexpr std::string_view kUnits = "kmgtp";
  if (!suffix.empty()) {
    auto unit = kUnits.find(static_cast<char>(std::tolower(static_cast<unsigned char>(suffix[0]))));
    if (unit != std::string_view::npos) {
      multiplier = 1ULL << (10 * (unit + 1));
      suffix.remove_prefix(1);
      if (!suffix.empty() && (suffix[0] == 'i' || suffix[0] == 'I')) suffix.remove_prefix(1);
    }
  }
  if (suffix == "b" || suffix == "B") suffix.remove_prefix(1);
  if (!suffix.empty()) return invalid();
  double value = std::strtod(number.c_str(), nullptr) * static_cast<double>(multiplier);
  if (value >= 9.2e18) return invalid();
  return static_cast<int64_t>(value);
}

}  // namespace barge::cgroups

#include "cgroups/resources_json.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "runtime/spec_fields.hpp"

namespace barge::cgroups {
namespace {

using Json = nlohmann::ordered_json;

Json to_json(const spec::DeviceCgroupRule& r);
Json to_json(const spec::WeightDevice& d);
Json to_json(const spec::ThrottleDevice& d);
Json to_json(const spec::HugepageLimit& h);
Json to_json(const spec::NetworkPriority& p);

template <typename T>
void put(Json& object, const char* key, const T& value) {
  object[key] = value;
}

template <typename T>
void put(Json& object, const char* key, const std::optional<T>& value) {
  if (value) object[key] = *value;
}

void put(Json& object, const char* key, const std::string& value) {
  if (!value.empty()) object[key] = value;
}

template <typename T>
void put(Json& object, const char* key, const std::vector<T>& values) {
  if (values.empty()) return;
  Json list = Json::array();
  for (const auto& value : values) list.push_back(to_json(value));
  object[key] = std::move(list);
}

// An object with the members of a runtime/spec_fields.hpp table that are set.
template <typename Table, typename Struct>
Json to_json(const Table& table, const Struct& in) {
  Json out = Json::object();
  spec::fields::for_each(table, [&](const char* key, auto member) { put(out, key, in.*member); });
  return out;
}

Json to_json(const spec::DeviceCgroupRule& r) {
  return to_json(spec::fields::kDeviceRule, r);
}
Json to_json(const spec::WeightDevice& d) {
  return to_json(spec::fields::kWeightDevice, d);
}
Json to_json(const spec::ThrottleDevice& d) {
  return to_json(spec::fields::kThrottleDevice, d);
}
Json to_json(const spec::HugepageLimit& h) {
  return to_json(spec::fields::kHugepageLimit, h);
}
Json to_json(const spec::NetworkPriority& p) {
  return to_json(spec::fields::kNetworkPriority, p);
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

// Every member of a table that change sets replaces base's.
template <typename Table>
auto merge_with(const Table& table) {
  return [&table](auto& base, const auto& change) {
    spec::fields::for_each(
        table, [&](const char*, auto member) { overlay(base.*member, change.*member); });
  };
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
  } catch (const Json::exception&) {
    spec::parse(text, source);  // throws the error as barge::Error, with line and column
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
  put(out, "devices", r.devices);
  if (r.memory) out["memory"] = to_json(spec::fields::kMemory, *r.memory);
  if (r.cpu) out["cpu"] = to_json(spec::fields::kCpu, *r.cpu);
  if (r.pids_limit) out["pids"] = {{"limit", *r.pids_limit}};
  if (r.block_io) out["blockIO"] = to_json(spec::fields::kBlockIo, *r.block_io);
  put(out, "hugepageLimits", r.hugepage_limits);
  if (r.network) {
    Json network = Json::object();
    put(network, "classID", r.network->class_id);
    put(network, "priorities", r.network->priorities);
    out["network"] = std::move(network);
  }
  if (!r.rdma.empty()) {
    Json rdma = Json::object();
    for (const auto& [device, limit] : r.rdma)
      rdma[device] = to_json(spec::fields::kRdmaLimit, limit);
    out["rdma"] = std::move(rdma);
  }
  if (!r.unified.empty()) out["unified"] = r.unified;
  return out.dump(2) + "\n";
}

spec::Resources merge_resources(spec::Resources base, const spec::Resources& changes) {
  merge_section(base.memory, changes.memory, merge_with(spec::fields::kMemory));
  merge_section(base.cpu, changes.cpu, merge_with(spec::fields::kCpu));
  overlay(base.pids_limit, changes.pids_limit);
  merge_section(base.block_io, changes.block_io, merge_with(spec::fields::kBlockIo));
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

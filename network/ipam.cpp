#include "network/ipam.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <utility>

#include "common/error.hpp"
#include "common/file.hpp"
#include "runtime/state.hpp"

namespace barge::network {
namespace {

using Json = nlohmann::json;

Ipv4 address_from(const Json& json, const char* key) {
  auto address = parse_ipv4(json.at(key).get<std::string>());
  if (!address) throw Error(std::string("network state: bad address in \"") + key + "\"");
  return *address;
}

Json process_json(const ProcessRef& p) {
  return {{"pid", p.pid}, {"start", p.start}};
}

ProcessRef process_from(const Json& json) {
  return {json.at("pid").get<pid_t>(), json.at("start").get<unsigned long long>()};
}

Json endpoint_json(const Endpoint& e) {
  return {{"root", e.root},
          {"id", e.id},
          {"address", to_string(e.address)},
          {"ports", ports_to_json(e.ports)},
          {"owner", process_json(e.owner)},
          {"init", process_json(e.init)},
          {"rules", process_json(e.rules)},
          {"pending", e.pending}};
}

Endpoint endpoint_from(const Json& json) {
  Endpoint e;
  e.root = json.at("root").get<std::string>();
  e.id = json.at("id").get<std::string>();
  e.address = address_from(json, "address");
  e.ports = ports_from_json(json.at("ports"));
  e.owner = process_from(json.at("owner"));
  e.init = process_from(json.at("init"));
  e.rules = process_from(json.value("rules", Json{{"pid", 0}, {"start", 0}}));
  e.pending = json.at("pending").get<bool>();
  return e;
}

}  // namespace

bool ProcessRef::alive() const {
  return pid > 0 && runtime::process_start_time(pid) == start;
}

ProcessRef ProcessRef::of(pid_t pid) {
  return {pid, runtime::process_start_time(pid).value_or(0)};
}

Endpoint* NetworkRecord::find(const std::string& root, const std::string& id) {
  for (auto& e : endpoints)
    if (e.root == root && e.id == id) return &e;
  return nullptr;
}

std::string to_json(const NetworkRecord& r) {
  Json endpoints = Json::array();
  for (const auto& e : r.endpoints) endpoints.push_back(endpoint_json(e));
  Json json = {{"bridge", r.bridge},
               {"subnet", to_string(r.subnet)},
               {"chainPrefix", r.chain_prefix},
               {"last", to_string(r.last)},
               {"endpoints", endpoints}};
  return json.dump(2) + "\n";
}

NetworkRecord record_from_json(const std::string& text) {
  try {
    Json json = Json::parse(text);
    NetworkRecord r;
    r.bridge = json.at("bridge").get<std::string>();
    r.subnet = parse_subnet(json.at("subnet").get<std::string>(), "network state subnet");
    r.chain_prefix = json.at("chainPrefix").get<std::string>();
    r.last = address_from(json, "last");
    for (const auto& e : json.at("endpoints")) r.endpoints.push_back(endpoint_from(e));
    return r;
  } catch (const Json::exception& e) {
    throw Error(std::string("network state: ") + e.what());
  }
}

std::optional<Ipv4> next_free_address(const NetworkRecord& r) {
  if (r.subnet.prefix > 30) return std::nullopt;
  // Hosts are 2 .. size-2: 0 is the network, 1 the gateway, size-1 the broadcast address.
  uint32_t first = 2, last = static_cast<uint32_t>(r.subnet.size() - 2);
  uint32_t count = last - first + 1;
  uint32_t after = r.subnet.contains(r.last) ? r.last.value - r.subnet.base.value : 0;
  uint32_t start = after >= first && after <= last ? after + 1 : first;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t offset = first + (start - first + i) % count;
    Ipv4 candidate = r.subnet.host(offset);
    bool used = false;
    for (const auto& e : r.endpoints) used = used || e.address == candidate;
    if (!used) return candidate;
  }
  return std::nullopt;
}

const Endpoint* port_owner(const NetworkRecord& r, const PortMapping& mapping) {
  for (const auto& e : r.endpoints)
    for (const auto& p : e.ports)
      if (conflicts(p, mapping)) return &e;
  return nullptr;
}

LockedState::LockedState(std::string dir) : dir_(std::move(dir)) {
  make_dirs(dir_, 0700);
  lock_ = open_or_throw(dir_ + "/lock", O_RDWR | O_CREAT, 0600);
  while (::flock(lock_.get(), LOCK_EX) != 0) {
    if (errno != EINTR) throw_errno("lock " + dir_ + "/lock");
  }
  exists_ = path_exists(dir_ + "/state.json");
  if (exists_)
    record_ = with_context(dir_ + "/state.json",
                           [&] { return record_from_json(read_file(dir_ + "/state.json")); });
}

void LockedState::save() {
  replace_file_volatile(dir_ + "/state.json", to_json(record_));
  exists_ = true;
}

void LockedState::remove() {
  if (::unlink((dir_ + "/state.json").c_str()) != 0 && errno != ENOENT)
    throw_errno("remove " + dir_ + "/state.json");
  exists_ = false;
}

}  // namespace barge::network

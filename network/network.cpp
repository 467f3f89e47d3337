#include "network/network.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>

#include "common/error.hpp"
#include "common/failpoint.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "network/etc_files.hpp"
#include "network/netlink.hpp"
#include "runtime/foreground.hpp"

namespace barge::network {
namespace {

// Private ranges Docker and podman do not take by default (172.17/16, 10.88/16, 10.89/16).
constexpr const char* kSubnetCandidates[] = {"172.28.0.0/16",   "172.29.0.0/16", "172.30.0.0/16",
                                             "172.31.0.0/16",   "10.213.0.0/16", "10.214.0.0/16",
                                             "192.168.213.0/24"};
constexpr int kFallbackMtu = 1500;

struct HostRoute {
  std::string device;
  Subnet destination;
};

// IPv4 routes of the main table, from /proc/net/route (hex fields in network byte order).
std::vector<HostRoute> host_routes() {
  std::vector<HostRoute> routes;
  std::istringstream in(read_file("/proc/net/route"));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string device, destination, gateway, flags, refcnt, use, metric, mask;
    if (!(fields >> device >> destination >> gateway >> flags >> refcnt >> use >> metric >> mask))
      continue;
    uint32_t dst = ntohl(static_cast<uint32_t>(std::strtoul(destination.c_str(), nullptr, 16)));
    uint32_t m = ntohl(static_cast<uint32_t>(std::strtoul(mask.c_str(), nullptr, 16)));
    routes.push_back({device, Subnet{Ipv4{dst & m}, std::popcount(m)}});
  }
  return routes;
}

int default_route_mtu() {
  for (const auto& route : host_routes()) {
    if (route.destination.prefix != 0) continue;
    try {
      return std::stoi(read_file("/sys/class/net/" + route.device + "/mtu"));
    } catch (const std::exception&) {
      break;
    }
  }
  return kFallbackMtu;
}

// What a container subnet must not overlap: host routes (except the default route and the
// bridge's own) and the nameservers containers will be told to use.
std::vector<std::pair<Subnet, std::string>> taken_subnets(const std::string& bridge) {
  std::vector<std::pair<Subnet, std::string>> taken;
  for (const auto& route : host_routes()) {
    if (route.destination.prefix == 0 || route.device == bridge) continue;
    taken.emplace_back(route.destination,
                       "host route " + to_string(route.destination) + " dev " + route.device);
  }
  std::istringstream resolv(host_resolv_conf());
  for (std::string word, line; std::getline(resolv, line);) {
    std::istringstream fields(line);
    std::string server;
    if (fields >> word >> server && word == "nameserver") {
      if (auto address = parse_ipv4(server))
        taken.emplace_back(Subnet{*address, 32}, "nameserver " + server);
    }
  }
  return taken;
}

std::optional<Subnet> bridge_subnet(Netlink& netlink, int index) {
  for (auto [address, prefix] : netlink.addresses(index)) {
    Subnet subnet{address, prefix};
    subnet.base.value &= subnet.mask();
    return subnet;
  }
  return std::nullopt;
}

Subnet choose_subnet(const Config& config, Netlink& netlink) {
  auto taken = taken_subnets(config.bridge);
  auto collision = [&](const Subnet& s) -> std::string {
    for (const auto& [subnet, what] : taken)
      if (subnet.overlaps(s)) return what;
    return "";
  };
  if (int index = netlink.link_index(config.bridge)) {
    if (auto existing = bridge_subnet(netlink, index)) {
      if (!config.subnet.empty() && parse_subnet(config.subnet, "subnet") != *existing)
        throw_error("bridge " + config.bridge + " already has subnet " + to_string(*existing) +
                    ", not " + config.subnet);
      return *existing;
    }
  }
  if (!config.subnet.empty()) {
    Subnet subnet = parse_subnet(config.subnet, "subnet");
    if (subnet.prefix > 30)
      throw_error("subnet " + config.subnet + ": needs a prefix of /30 or less");
    if (auto what = collision(subnet); !what.empty())
      throw_error("subnet " + config.subnet + " overlaps " + what);
    return subnet;
  }
  std::vector<Subnet> taken_only;
  taken_only.reserve(taken.size());
  for (const auto& [subnet, what] : taken) taken_only.push_back(subnet);
  if (auto subnet = default_subnet(taken_only)) return *subnet;
  throw_error("no free subnet for bridge " + config.bridge +
              ": every candidate overlaps a host "
              "route; choose one with BARGE_NETWORK_SUBNET or --subnet");
}

std::string veth_name(Ipv4 address) {
  char name[16];
  std::snprintf(name, sizeof name, "vb%08x", address.value);
  return name;
}

// Locally administered and derived from the address, so a neighbour cache entry left from an
// earlier holder of the address stays right.
std::array<uint8_t, 6> mac_for(Ipv4 address) {
  uint32_t v = address.value;
  return {0x02,
          0x42,
          static_cast<uint8_t>(v >> 24),
          static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 8),
          static_cast<uint8_t>(v)};
}

void write_sysctl(const std::string& path, const char* value) {
  std::string current;
  try {
    current = read_file(path);
  } catch (const Error&) {
  }
  if (current.substr(0, current.find('\n')) != value) write_file(path, value);
}

iptables::BaseContext base_context(const NetworkRecord& record) {
  return {record.chain_prefix, record.bridge, record.subnet};
}

void install_base_rules(const NetworkRecord& record) {
  auto existing = iptables::parse_save(iptables::save());
  iptables::restore(iptables::base_batch(base_context(record), existing));
}

// The bridge with the gateway address, forwarding on and the base chains. Run under the lock;
// a bridge that exists already (the usual case) costs one netlink request.
int ensure_bridge(const NetworkRecord& record, Netlink& netlink, bool fresh_state, int mtu) {
  int index = netlink.link_index(record.bridge);
  bool created = index == 0;
  if (created) {
    netlink.create_bridge(record.bridge, mtu);
    index = netlink.link_index(record.bridge);
    log::debug("created bridge " + record.bridge + " " + to_string(record.subnet));
  }
  if (created || fresh_state) {
    netlink.add_address(index, record.gateway(), record.subnet.prefix);
    netlink.set_up(index);
    write_sysctl("/proc/sys/net/ipv4/conf/" + record.bridge + "/route_localnet", "1");
    install_base_rules(record);
  }
  write_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
  return index;
}

// Removes the endpoints' rules and veth pairs (whatever of them exists). Both wait for an RCU
// grace period in the kernel (netdev_run_todo's rcu_barrier for the veth; nf_tables frees the
// deleted rules when iptables-restore closes its socket), 10-20 ms each on a small VM: the rules
// go in a background iptables-restore while the veth is deleted, so the two waits overlap.
void tear_down(const NetworkRecord& record, const std::vector<Endpoint>& endpoints,
               Netlink& netlink) {
  std::vector<Ipv4> with_rules;
  for (const auto& e : endpoints)
    if (!e.ports.empty()) with_rules.push_back(e.address);
  std::optional<iptables::Restore> removal;
  if (!with_rules.empty())
    removal.emplace(iptables::Restore::start(
        iptables::remove_container_batch(record.chain_prefix, with_rules)));
  for (const auto& e : endpoints) netlink.delete_link(veth_name(e.address));
  if (!removal) return;
  try {
    removal->wait();
  } catch (const Error&) {
    // Part of them never existed (a crash midway): remove what is there.
    auto existing = iptables::parse_save(iptables::save());
    iptables::restore(iptables::remove_container_batch(record.chain_prefix, with_rules, existing));
  }
}

int reap_stale(NetworkRecord& record, Netlink& netlink) {
  std::vector<Endpoint> stale;
  for (const auto& e : record.endpoints)
    if (e.stale()) stale.push_back(e);
  if (stale.empty()) return 0;
  // A batch its dead creator started may still be running: removing first would race with it.
  for (const auto& e : stale)
    if (e.rules.alive()) runtime::wait_for_exit(e.rules.pid, -1);
  tear_down(record, stale, netlink);
  std::erase_if(record.endpoints, [](const Endpoint& e) { return e.stale(); });
  for (const auto& e : stale) log::debug("released stale endpoint of " + e.id);
  return static_cast<int>(stale.size());
}

// Ports of the bridge that no endpoint owns (left by a lost state).
int delete_unowned_links(const NetworkRecord& record, Netlink& netlink) {
  int bridge = netlink.link_index(record.bridge);
  if (bridge == 0) return 0;
  int deleted = 0;
  for (const auto& link : netlink.links()) {
    if (link.master != bridge) continue;
    bool owned = std::any_of(record.endpoints.begin(), record.endpoints.end(),
                             [&](const Endpoint& e) { return veth_name(e.address) == link.name; });
    if (!owned && netlink.delete_link(link.name)) ++deleted;
  }
  return deleted;
}

// Container chains that no endpoint owns.
int remove_unowned_chains(const NetworkRecord& record, const iptables::Existing& existing) {
  const std::string& prefix = record.chain_prefix;
  std::vector<Ipv4> orphans;
  for (const auto& chain : iptables::container_chains(prefix, existing)) {
    Ipv4 address{
        static_cast<uint32_t>(std::strtoul(chain.c_str() + prefix.size() + 1, nullptr, 16))};
    bool owned = std::any_of(record.endpoints.begin(), record.endpoints.end(),
                             [&](const Endpoint& e) { return e.address == address; });
    if (!owned) orphans.push_back(address);
  }
  if (!orphans.empty())
    iptables::restore(iptables::remove_container_batch(prefix, orphans, existing));
  return static_cast<int>(orphans.size());
}

NetworkRecord new_record(const Config& config, Netlink& netlink) {
  NetworkRecord record;
  record.bridge = config.bridge;
  record.chain_prefix = config.chain_prefix;
  record.subnet = choose_subnet(config, netlink);
  record.last = record.gateway();
  return record;
}

void check_matches(const Config& config, const NetworkRecord& record) {
  if (!config.subnet.empty() && parse_subnet(config.subnet, "subnet") != record.subnet)
    throw_error("network " + config.bridge + " already uses subnet " + to_string(record.subnet) +
                ", not " + config.subnet);
  if (config.chain_prefix != record.chain_prefix)
    throw_error("network " + config.bridge + " already uses chain prefix " + record.chain_prefix +
                ", not " + config.chain_prefix);
}

// Host ports for the requests: given ones checked, dynamic ones picked; errors name the port.
std::vector<PortMapping> resolve_ports(const NetworkRecord& record, const Config& config,
                                       const std::vector<PortMapping>& requests) {
  std::vector<PortMapping> out;
  auto taken_here = [&](const PortMapping& m) {
    return std::any_of(out.begin(), out.end(),
                       [&](const PortMapping& o) { return conflicts(o, m); });
  };
  for (const auto& request : requests) {
    if (request.host_port != 0) {
      if (taken_here(request))
        throw_error("port " + describe_host_port(request) + " is published twice");
      if (const Endpoint* owner = port_owner(record, request))
        throw_error("port " + describe_host_port(request) + " is already published by container " +
                    owner->id);
      if (!host_port_free(request))
        throw_error("port " + describe_host_port(request) +
                    " is already in use on the host (a process has it bound)");
      out.push_back(request);
      continue;
    }
    unsigned span = unsigned{config.dynamic_last} - config.dynamic_first + 1;
    std::random_device seed;
    unsigned start = seed() % span;
    bool found = false;
    for (unsigned i = 0; i < span && !found; ++i) {
      PortMapping candidate = request;
      candidate.host_port = static_cast<uint16_t>(config.dynamic_first + (start + i) % span);
      if (taken_here(candidate) || port_owner(record, candidate) || !host_port_free(candidate))
        continue;
      out.push_back(candidate);
      found = true;
    }
    if (!found)
      throw_error("no free host port in " + std::to_string(config.dynamic_first) + "-" +
                  std::to_string(config.dynamic_last) + " for container port " +
                  std::to_string(request.container_port) + "/" + protocol_name(request.protocol));
  }
  return out;
}

bool valid_name(const std::string& name, size_t max, const char* extra) {
  if (name.empty() || name.size() > max) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr(extra, c) != nullptr;
  });
}

uint16_t port_from(const std::string& text, const char* what) {
  char* end = nullptr;
  unsigned long value = std::strtoul(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value == 0 || value > 65535)
    throw_error(std::string(what) + ": \"" + text + "\" is not a port number");
  return static_cast<uint16_t>(value);
}

}  // namespace

std::optional<Subnet> default_subnet(const std::vector<Subnet>& taken) {
  for (const char* candidate : kSubnetCandidates) {
    Subnet subnet = parse_subnet(candidate, "subnet");
    if (std::none_of(taken.begin(), taken.end(),
                     [&](const Subnet& t) { return t.overlaps(subnet); }))
      return subnet;
  }
  return std::nullopt;
}

Config Config::from_environment() {
  Config config;
  auto env = [](const char* name, std::string& into) {
    if (const char* value = std::getenv(name); value != nullptr && *value != '\0') into = value;
  };
  env("BARGE_NETWORK_BRIDGE", config.bridge);
  env("BARGE_NETWORK_SUBNET", config.subnet);
  env("BARGE_NETWORK_CHAIN_PREFIX", config.chain_prefix);
  env("BARGE_NETWORK_STATE", config.state_dir);
  std::string ports;
  env("BARGE_NETWORK_PORTS", ports);
  if (!ports.empty()) {
    auto dash = ports.find('-');
    if (dash == std::string::npos) throw_error("BARGE_NETWORK_PORTS: expected FIRST-LAST");
    config.dynamic_first = port_from(ports.substr(0, dash), "BARGE_NETWORK_PORTS");
    config.dynamic_last = port_from(ports.substr(dash + 1), "BARGE_NETWORK_PORTS");
  }
  return config;
}

void Config::validate() const {
  // IFNAMSIZ - 1; "." and ".." are not interface names.
  if (!valid_name(bridge, 15, "_.-") || bridge == "." || bridge == "..")
    throw_error("bridge name \"" + bridge + "\": 1-15 letters, digits, '_', '.' or '-'");
  // The longest chain is PREFIX-POSTROUTING; iptables allows 28 characters.
  if (!valid_name(chain_prefix, 16, "_-"))
    throw_error("chain prefix \"" + chain_prefix + "\": 1-16 letters, digits, '_' or '-'");
  if (!subnet.empty()) parse_subnet(subnet, "subnet");
  if (state_dir.empty() || state_dir.front() != '/')
    throw_error("network state dir \"" + state_dir + "\": must be an absolute path");
  if (dynamic_first == 0 || dynamic_last < dynamic_first)
    throw_error("dynamic port range " + std::to_string(dynamic_first) + "-" +
                std::to_string(dynamic_last) + " is empty");
}

Mode parse_mode(const std::string& text) {
  if (text == "bridge" || text.empty()) return {};
  if (text == "none") return {Mode::none, ""};
  if (text == "host") return {Mode::host, ""};
  if (text.starts_with("container:") && text.size() > 10) return {Mode::container, text.substr(10)};
  throw_error("--network \"" + text + "\": expected bridge, none, host or container:ID");
}

Setup Setup::begin(const Config& config, const std::string& root, const std::string& id,
                   const std::vector<PortMapping>& requests) {
  config.validate();
  Netlink netlink;
  Setup setup;
  setup.config_ = config;
  setup.root_ = root;
  setup.id_ = id;
  int mtu = default_route_mtu();
  {
    LockedState state(config.dir());
    bool fresh = !state.exists();
    if (fresh) state.record() = new_record(config, netlink);
    NetworkRecord& record = state.record();
    check_matches(config, record);
    if (reap_stale(record, netlink) > 0) state.save();
    if (record.find(root, id) != nullptr)
      throw_error("container " + id + " is already attached to network " + config.bridge);
    ensure_bridge(record, netlink, fresh, mtu);
    auto address = next_free_address(record);
    if (!address) throw_error("subnet " + to_string(record.subnet) + " has no free address");
    record.endpoints.push_back({root,
                                id,
                                *address,
                                resolve_ports(record, config, requests),
                                ProcessRef::of(::getpid()),
                                {},
                                {},
                                true});
    record.last = *address;
    state.save();
    setup.active_ = true;
    Endpoint& endpoint = record.endpoints.back();
    setup.attachment_ = {record.bridge, record.subnet, record.gateway(),
                         *address,      mtu,           endpoint.ports};
    failpoint("network.allocated");
    if (!endpoint.ports.empty()) {
      // Recorded, so whoever reaps this endpoint after a crash waits for the batch first.
      setup.rules_.emplace(iptables::Restore::start(
          iptables::container_batch(config.chain_prefix, *address, endpoint.ports)));
      endpoint.rules = ProcessRef::of(setup.rules_->pid());
      state.save();
      failpoint("network.rules");
    }
  }
  return setup;
}

Setup::Setup(Setup&& other) noexcept
    : config_(std::move(other.config_)),
      root_(std::move(other.root_)),
      id_(std::move(other.id_)),
      attachment_(std::move(other.attachment_)),
      rules_(std::move(other.rules_)),
      init_(other.init_),
      active_(std::exchange(other.active_, false)) {
  other.rules_.reset();
}

Setup::~Setup() {
  if (active_) roll_back();
}

void Setup::attach(pid_t init) {
  init_ = init;
  const Attachment& a = attachment_;
  UniqueFd netns = open_netns(init);
  Netlink host;
  int bridge = host.link_index(a.bridge);
  if (bridge == 0) throw_error("bridge " + a.bridge + " disappeared");
  std::string veth = veth_name(a.address);
  VethRequest request{veth, bridge, "eth0", netns.get(), a.mtu, mac_for(a.address)};
  try {
    host.create_veth(request);
  } catch (const Error& e) {
    // A pair of that name can only be left over from a lost state: the address was free.
    if (e.code() != EEXIST) throw;
    host.delete_link(veth);
    host.create_veth(request);
  }
  failpoint("network.veth");
  host.set_hairpin(host.link_index(veth));
  Netlink inside = Netlink::in_namespace(netns.get());
  inside.set_up(1);  // lo is ifindex 1 in every network namespace
  int eth0 = inside.link_index("eth0");
  inside.add_address(eth0, a.address, a.subnet.prefix);
  inside.set_up(eth0);
  inside.add_default_route(a.gateway, eth0);
  if (rules_) {
    try {
      rules_->wait();
    } catch (const Error& e) {
      // The base chains went missing (a firewall reload?): put them back and try once more.
      log::debug(std::string("container rules: ") + e.what() + "; reinstalling base chains");
      LockedState state(config_.dir());
      install_base_rules(state.record());
      iptables::restore(iptables::container_batch(config_.chain_prefix, a.address, a.ports));
    }
  }
}

void Setup::commit() {
  LockedState state(config_.dir());
  Endpoint* endpoint = state.record().find(root_, id_);
  if (endpoint == nullptr) throw_error("network endpoint of " + id_ + " vanished during setup");
  endpoint->init = ProcessRef::of(init_);
  endpoint->pending = false;
  state.save();
  active_ = false;
}

void Setup::roll_back() noexcept {
  active_ = false;
  try {
    if (rules_) {
      try {
        rules_->wait();  // before removing what it adds
      } catch (const Error&) {
      }
    }
    release(config_, root_, id_);
  } catch (const Error& e) {
    log::warn(std::string("network cleanup after failed create: ") + e.what());
  }
}

void release(const Config& config, const std::string& root, const std::string& id) {
  if (!path_exists(config.dir() + "/state.json")) return;
  LockedState state(config.dir());
  NetworkRecord& record = state.record();
  const Endpoint* endpoint = record.find(root, id);
  if (endpoint == nullptr) return;
  Netlink netlink;
  tear_down(record, {*endpoint}, netlink);
  std::erase_if(record.endpoints, [&](const Endpoint& e) { return e.root == root && e.id == id; });
  state.save();
}

void bring_up_loopback(pid_t init) {
  UniqueFd netns = open_netns(init);
  Netlink::in_namespace(netns.get()).set_up(1);
}

PruneReport prune(const Config& config) {
  config.validate();
  PruneReport report;
  if (!path_exists(config.dir() + "/state.json")) return report;
  LockedState state(config.dir());
  NetworkRecord& record = state.record();
  Netlink netlink;
  report.endpoints = reap_stale(record, netlink);
  state.save();
  report.links = delete_unowned_links(record, netlink);
  auto existing = iptables::parse_save(iptables::save());
  report.chains = remove_unowned_chains(record, existing);
  // The base chains are kept, but put back if something removed part of them.
  iptables::restore(iptables::base_batch(base_context(record), existing));
  return report;
}

void destroy(const Config& config) {
  config.validate();
  LockedState state(config.dir());
  Netlink netlink;
  NetworkRecord record;
  if (state.exists()) {
    record = state.record();
    reap_stale(record, netlink);
    if (!record.endpoints.empty()) {
      state.record() = record;
      state.save();
      throw_error("network " + config.bridge + " still has " +
                  std::to_string(record.endpoints.size()) +
                  " containers attached (first: " + record.endpoints.front().id + ")");
    }
  }
  record.bridge = config.bridge;
  record.chain_prefix = config.chain_prefix;
  delete_unowned_links(record, netlink);
  auto existing = iptables::parse_save(iptables::save());
  remove_unowned_chains(record, existing);
  iptables::restore(iptables::remove_base_batch(base_context(record), existing));
  netlink.delete_link(config.bridge);
  state.remove();
}

std::optional<NetworkRecord> inspect(const Config& config) {
  if (!path_exists(config.dir() + "/state.json")) return std::nullopt;
  LockedState state(config.dir());
  return state.record();
}

}  // namespace barge::network

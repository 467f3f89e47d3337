// barge's container networking: a Linux bridge with a subnet of its own, one veth pair per
// container (eth0 inside, with its address, the host's MTU and a default route via the bridge),
// addresses and host ports allocated on disk (ipam.hpp), published ports as DNAT rules in
// barge's own iptables chains (iptables.hpp).
//
// A container joins the network between create and start:
//   Setup::begin   lock the state; tear down stale endpoints; create the bridge and the base
//                  chains if missing; allocate the address and host ports; record a pending
//                  endpoint; unlock; start `iptables-restore` for the container's DNAT rules
//                  in the background (it runs while the container is being created)
//   (the runtime creates the container: its init waits in a new network namespace)
//   Setup::attach  one RTM_NEWLINK makes the veth pair, plugs the host end into the bridge (up)
//                  and puts the peer into the container's namespace as eth0; inside: address,
//                  eth0 and lo up, default route; wait for the rules
//   Setup::commit  the endpoint lives as long as the container's init
// Anything that fails before commit is undone by ~Setup. release() undoes a committed endpoint
// (delete, stop) and begin()/prune() reclaim endpoints whose container died or whose creator was
// killed midway.
//
// 127.0.0.1:HOST_PORT reaches the container through route_localnet on the bridge plus DNAT in
// OUTPUT (and MASQUERADE so the answer comes back through the host), not through a userland proxy:
// no process per published port to keep alive and clean up, no extra copy of every byte, UDP
// works the same as TCP, and the setup stays one iptables-restore batch. The INPUT rule in
// iptables.hpp keeps route_localnet from exposing the host's loopback services to containers.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "network/address.hpp"
#include "network/ipam.hpp"
#include "network/iptables.hpp"
#include "network/ports.hpp"

namespace barge::network {

struct Config {
  std::string bridge = "barge0";
  // Empty: the subnet recorded for the bridge, else the bridge's own, else the first of barge's
  // candidates that no host route, host address or nameserver falls in.
  std::string subnet;
  std::string chain_prefix = "BARGE";
  std::string state_dir = "/run/barge-network";
  uint16_t dynamic_first = 49153;  // host ports picked for -p CONTAINER_PORT and -P
  uint16_t dynamic_last = 65535;

  // The defaults overridden by BARGE_NETWORK_BRIDGE, BARGE_NETWORK_SUBNET,
  // BARGE_NETWORK_CHAIN_PREFIX, BARGE_NETWORK_STATE and BARGE_NETWORK_PORTS (FIRST-LAST).
  static Config from_environment();
  // Throws naming the setting that is not usable (interface name, chain name, port range...).
  void validate() const;
  std::string dir() const { return state_dir + "/" + bridge; }
};

// The first of barge's default subnets (private ranges Docker and podman do not take by default)
// that overlaps none of taken (the host's routes and nameservers); nullopt when all do.
std::optional<Subnet> default_subnet(const std::vector<Subnet>& taken);

// "bridge", "none", "host" or "container:ID".
struct Mode {
  enum Kind { bridge, none, host, container } kind = bridge;
  std::string target;  // for container:ID
};
Mode parse_mode(const std::string& text);

struct Attachment {
  std::string bridge;
  Subnet subnet;
  Ipv4 gateway;
  Ipv4 address;
  int mtu = 0;
  std::vector<PortMapping> ports;  // host ports resolved
};

class Setup {
 public:
  // Throws before anything exists when a host port is published already, bound on the host or
  // the subnet is full; errors name the port.
  static Setup begin(const Config& config, const std::string& root, const std::string& id,
                     const std::vector<PortMapping>& requests);
  Setup(Setup&& other) noexcept;
  Setup& operator=(Setup&&) = delete;
  ~Setup();

  const Attachment& attachment() const { return attachment_; }
  void attach(pid_t init);
  void commit();

 private:
  Setup() = default;
  void roll_back() noexcept;

  Config config_;
  std::string root_;
  std::string id_;
  Attachment attachment_;
  std::optional<iptables::Restore> rules_;
  pid_t init_ = 0;
  bool active_ = false;  // an endpoint is recorded and not committed
};

// Tears down a container's endpoint: its rules, veth pair, address and host ports. A container
// without one is fine (idempotent).
void release(const Config& config, const std::string& root, const std::string& id);
// lo up inside the namespace of init (containers without a bridge endpoint: --network none).
void bring_up_loopback(pid_t init);

struct PruneReport {
  int endpoints = 0;  // stale endpoints torn down
  int links = 0;      // veths on the bridge that no endpoint owned
  int chains = 0;     // container chains that no endpoint owned
};
PruneReport prune(const Config& config);
// Removes the bridge, the base chains and the state; refuses while containers are attached.
void destroy(const Config& config);
// The network's record, nullopt before its first container.
std::optional<NetworkRecord> inspect(const Config& config);

}  // namespace barge::network

// rtnetlink through libmnl: the few link, address and route operations barge needs, each one
// request answered by one ack. A socket belongs to the network namespace it was opened in, so
// a container's interfaces are configured through a socket opened inside its namespace.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/fd.hpp"
#include "network/address.hpp"

struct mnl_socket;
struct nlmsghdr;

namespace barge::network {

struct LinkInfo {
  int index = 0;
  std::string name;
  std::string kind;  // "veth", "bridge", ... ("" when the kernel reports none)
  int master = 0;    // index of the bridge it is a port of, 0 when none
  int mtu = 0;
  bool up = false;
};

struct VethRequest {
  std::string host_name;  // stays in this namespace, plugged into the bridge
  int bridge_index = 0;
  std::string peer_name;  // created directly inside peer_netns_fd's namespace, still down
  int peer_netns_fd = -1;
  int mtu = 0;                      // both ends; 0 = kernel default
  std::array<uint8_t, 6> peer_mac;  // locally administered, derived from the address
};

class Netlink {
 public:
  // A NETLINK_ROUTE socket in the calling thread's network namespace.
  Netlink();
  // A socket inside the namespace of netns_fd (the thread enters it and comes back).
  static Netlink in_namespace(int netns_fd);
  Netlink(Netlink&&) noexcept;
  Netlink& operator=(Netlink&&) noexcept;
  ~Netlink();

  // 0 when no link has that name.
  int link_index(const std::string& name);
  std::vector<LinkInfo> links();
  void create_bridge(const std::string& name, int mtu);
  void create_veth(const VethRequest& request);
  // Deleting one end of a veth pair deletes both. Returns false when the link did not exist.
  bool delete_link(const std::string& name);
  void set_up(int index);
  // Bridge port flags: hairpin lets a container reach itself through a published port.
  void set_hairpin(int index);
  // EEXIST (the same address already there) is not an error.
  void add_address(int index, Ipv4 address, int prefix);
  std::vector<std::pair<Ipv4, int>> addresses(int index);
  void add_default_route(Ipv4 gateway, int index);

 private:
  // Sends the message and reads replies until the ack or the end of the dump; callback sees
  // every data message. Throws naming what, with the kernel's errno.
  void transact(nlmsghdr* message, const std::string& what, int (*callback)(const nlmsghdr*, void*),
                void* data);
  // Sends one request and waits for its ack; throws naming what, with the kernel's errno.
  void request(nlmsghdr* message, const std::string& what);
  template <typename F>
  void dump(nlmsghdr* message, const std::string& what, F&& on_message);

  mnl_socket* socket_ = nullptr;
  unsigned port_id_ = 0;
  unsigned sequence_ = 0;
};

// The namespace a process lives in, checked against its start time so a reused pid is refused.
UniqueFd open_netns(pid_t pid);

}  // namespace barge::network

// The network's state on disk: which addresses and host ports each container holds.
//
//   STATE_DIR/BRIDGE/lock        flock: every read-modify-write of state.json holds it
//   STATE_DIR/BRIDGE/state.json  the record below, replaced atomically
//
// An endpoint is written before any kernel object exists for it (pending, with the pid of the
// barge process setting it up) and removed only after its kernel objects are gone, so a crash at
// any point leaves a record that the next reconciliation finds and tears down: an endpoint whose
// creator died before finishing it, or whose container init has exited, is stale.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "common/fd.hpp"
#include "network/address.hpp"
#include "network/ports.hpp"

namespace barge::network {

struct ProcessRef {
  pid_t pid = 0;
  unsigned long long start = 0;  // /proc/<pid>/stat start time: a reused pid does not match
  bool alive() const;
  static ProcessRef of(pid_t pid);
};

struct Endpoint {
  std::string root;  // the container: its runtime --root and id
  std::string id;
  Ipv4 address;
  std::vector<PortMapping> ports;  // host ports resolved
  ProcessRef owner;                // the barge process setting the endpoint up
  ProcessRef init;                 // the container's init, once it exists
  ProcessRef rules;                // the iptables-restore applying its port rules
  bool pending = true;             // setup not finished
  // Its setup can no longer finish (creator gone) or its container is gone (init dead).
  bool stale() const { return !owner.alive() && (pending || !init.alive()); }
};

struct NetworkRecord {
  std::string bridge;
  Subnet subnet;
  std::string chain_prefix;
  Ipv4 last;  // the address handed out last: allocation goes round robin from there
  std::vector<Endpoint> endpoints;

  Ipv4 gateway() const { return subnet.host(1); }
  Endpoint* find(const std::string& root, const std::string& id);
};

std::string to_json(const NetworkRecord& record);
NetworkRecord record_from_json(const std::string& text);

// The next free host address after record.last (wrapping), never the network, gateway or
// broadcast address; nullopt when the subnet is full.
std::optional<Ipv4> next_free_address(const NetworkRecord& record);
// The endpoint already publishing a host port that meets mapping, or null.
const Endpoint* port_owner(const NetworkRecord& record, const PortMapping& mapping);

// The state directory of one network, locked for this object's lifetime.
class LockedState {
 public:
  explicit LockedState(std::string dir);
  bool exists() const { return exists_; }
  NetworkRecord& record() { return record_; }
  void save();
  // Deletes state.json (the lock file stays: another process may be waiting on it).
  void remove();

 private:
  std::string dir_;
  UniqueFd lock_;
  bool exists_ = false;
  NetworkRecord record_;
};

}  // namespace barge::network

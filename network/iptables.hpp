// barge's iptables rules, built as iptables-restore batches and applied with one
// `iptables-restore --noflush` each, so a container's rules appear (or go) atomically.
//
// Chains (P = the chain prefix, B = the bridge, S = its subnet); the base chains are installed
// once with the bridge and kept:
//   nat    PREROUTING, OUTPUT  -m addrtype --dst-type LOCAL -j P-DNAT     (host and 127.0.0.1)
//          P-DNAT              -j P-<container address in hex>            (one jump per container)
//          P-<hex>             -p tcp --dport HP [-d HOST_IP] -j DNAT --to-destination IP:CP
//          POSTROUTING         -j P-POSTROUTING
//          P-POSTROUTING       -s S ! -o B -j MASQUERADE                  (outbound)
//                              -o B -m addrtype --src-type LOCAL -j MASQUERADE
//                                  (clients on 127.0.0.1: the container must answer the bridge)
//                              -s S -o B -m conntrack --ctstate DNAT -j MASQUERADE
//                                  (hairpin: a container reaching its own or a neighbour's
//                                   published port answers through the host, not directly)
//   filter FORWARD             -j P-FORWARD
//          P-FORWARD           -o B -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT
//                              -i B -j ACCEPT               (from containers, to anywhere)
//                              -o B -j DROP
//                                  (other machines routing to the subnet reach published ports
//                                   only, not every port of every container)
//          INPUT               -j P-INPUT
//          P-INPUT             -i B -d 127.0.0.0/8 (not DNAT, not a reply) -j DROP
//                                  (route_localnet on B must not expose the host's loopback
//                                   services to containers: the kube-proxy CVE-2020-8558 fix)
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "common/fd.hpp"
#include "network/address.hpp"
#include "network/ports.hpp"

namespace barge::network::iptables {

struct BaseContext {
  std::string prefix;
  std::string bridge;
  Subnet subnet;
};

std::string container_chain(const std::string& prefix, Ipv4 address);

// What of the base setup already exists, read from `iptables-save` output.
struct Existing {
  std::vector<std::string> chains;  // "nat:P-DNAT", ...
  std::vector<std::string> rules;   // "nat:-A PREROUTING ...", as iptables-save prints them
  bool has_chain(const std::string& table, const std::string& chain) const;
  bool has_rule(const std::string& table, const std::string& rule) const;
};
Existing parse_save(const std::string& save_output);

// Installs whatever part of the base is missing. P-DNAT is never flushed (it holds the
// containers' jumps); the other base chains are rewritten whole.
std::string base_batch(const BaseContext& context, const Existing& existing);
// Removes the base chains and their jumps (only what exists). Container chains must be gone.
std::string remove_base_batch(const BaseContext& context, const Existing& existing);
std::string container_batch(const std::string& prefix, Ipv4 address,
                            const std::vector<PortMapping>& ports);
// The exact inverse of container_batch: fails as a whole when a piece is missing.
std::string remove_container_batch(const std::string& prefix, const std::vector<Ipv4>& addresses);
// Only the pieces that exist (after a crash left part of them).
std::string remove_container_batch(const std::string& prefix, const std::vector<Ipv4>& addresses,
                                   const Existing& existing);
// Container chains (P-<8 hex>) present in the saved rules.
std::vector<std::string> container_chains(const std::string& prefix, const Existing& existing);

// A running `iptables-restore --noflush`, so the caller can do other work meanwhile. It dies
// with its parent (PDEATHSIG): a killed barge does not leave a batch running unobserved.
class Restore {
 public:
  static Restore start(const std::string& batch);
  Restore(Restore&& other) noexcept
      : pid_(std::exchange(other.pid_, -1)), errors_(std::move(other.errors_)) {}
  Restore& operator=(Restore&&) = delete;
  ~Restore();  // waits when wait() was not called
  // Throws with iptables-restore's own message when it failed.
  void wait();
  pid_t pid() const { return pid_; }

 private:
  Restore() = default;
  pid_t pid_ = -1;
  UniqueFd errors_;
};

void restore(const std::string& batch);
// `iptables-save` of the nat and filter tables.
std::string save();

}  // namespace barge::network::iptables

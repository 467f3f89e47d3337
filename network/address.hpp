// IPv4 addresses and subnets as plain integers (host byte order), parsed and printed in
// dotted-quad and CIDR form.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace barge::network {

struct Ipv4 {
  uint32_t value = 0;  // host byte order
  auto operator<=>(const Ipv4&) const = default;
};

// "a.b.c.d" → address; nullopt when malformed.
std::optional<Ipv4> parse_ipv4(std::string_view text);
std::string to_string(Ipv4 address);
// Network byte order, for sockaddr_in and netlink.
uint32_t to_network_order(Ipv4 address);

struct Subnet {
  Ipv4 base;
  int prefix = 0;  // 0..32

  uint32_t mask() const { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }
  bool contains(Ipv4 address) const { return (address.value & mask()) == base.value; }
  bool overlaps(const Subnet& other) const;
  Ipv4 broadcast() const { return Ipv4{base.value | ~mask()}; }
  // The n-th address of the subnet (1 = the first host).
  Ipv4 host(uint32_t n) const { return Ipv4{base.value + n}; }
  uint64_t size() const { return uint64_t{1} << (32 - prefix); }
  auto operator<=>(const Subnet&) const = default;
};

// "a.b.c.d/n" with no host bits set; throws barge::Error naming what (e.g. "--subnet").
Subnet parse_subnet(std::string_view text, std::string_view what);
std::string to_string(const Subnet& subnet);

}  // namespace barge::network

#include "network/address.hpp"

#include <arpa/inet.h>

#include <charconv>

#include "common/error.hpp"

namespace barge::network {

std::optional<Ipv4> parse_ipv4(std::string_view text) {
  uint32_t value = 0;
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      if (p == end || *p != '.') return std::nullopt;
      ++p;
    }
    unsigned part = 0;
    auto [next, ec] = std::from_chars(p, end, part);
    if (ec != std::errc() || part > 255 || next - p > 3 || (next - p > 1 && *p == '0'))
      return std::nullopt;
    value = value << 8 | part;
    p = next;
  }
  if (p != end) return std::nullopt;
  return Ipv4{value};
}

std::string to_string(Ipv4 address) {
  uint32_t v = address.value;
  return std::to_string(v >> 24) + "." + std::to_string((v >> 16) & 0xff) + "." +
         std::to_string((v >> 8) & 0xff) + "." + std::to_string(v & 0xff);
}

uint32_t to_network_order(Ipv4 address) {
  return htonl(address.value);
}

bool Subnet::overlaps(const Subnet& other) const {
  int shorter = std::min(prefix, other.prefix);
  uint32_t m = shorter == 0 ? 0 : ~uint32_t{0} << (32 - shorter);
  return (base.value & m) == (other.base.value & m);
}

Subnet parse_subnet(std::string_view text, std::string_view what) {
  auto fail = [&](const std::string& why) -> Subnet {
    throw_error(std::string(what) + " \"" + std::string(text) + "\": " + why);
  };
  auto slash = text.find('/');
  if (slash == text.npos) return fail("expected a.b.c.d/prefix");
  auto address = parse_ipv4(text.substr(0, slash));
  if (!address) return fail("not an IPv4 address");
  int prefix = -1;
  std::string_view digits = text.substr(slash + 1);
  auto [next, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
  if (ec != std::errc() || next != digits.data() + digits.size() || prefix < 0 || prefix > 32)
    return fail("prefix length must be 0..32");
  Subnet subnet{*address, prefix};
  if ((address->value & subnet.mask()) != address->value) return fail("host bits are set");
  return subnet;
}

std::string to_string(const Subnet& subnet) {
  return to_string(subnet.base) + "/" + std::to_string(subnet.prefix);
}

}  // namespace barge::network

#include "network/ports.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <charconv>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace barge::network {
namespace {

constexpr unsigned kMaxRange = 1024;

struct Range {
  uint16_t first = 0;
  uint16_t last = 0;  // == first for a single port
  unsigned size() const { return unsigned{last} - first + 1u; }
};

uint16_t parse_port(std::string_view text, const std::string& context, bool allow_zero) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value > 65535 ||
      (value == 0 && !allow_zero))
    throw_error(context + ": \"" + std::string(text) + "\" is not a port number");
  return static_cast<uint16_t>(value);
}

Range parse_range(std::string_view text, const std::string& context, bool allow_zero) {
  auto dash = text.find('-');
  if (dash == text.npos) {
    uint16_t port = parse_port(text, context, allow_zero);
    return {port, port};
  }
  Range range{parse_port(text.substr(0, dash), context, false),
              parse_port(text.substr(dash + 1), context, false)};
  if (range.last < range.first) throw_error(context + ": range " + std::string(text) + " is empty");
  if (range.size() > kMaxRange)
    throw_error(context + ": range " + std::string(text) + " is larger than " +
                std::to_string(kMaxRange) + " ports");
  return range;
}

Protocol parse_protocol(std::string_view text, const std::string& context) {
  if (text == "tcp") return Protocol::tcp;
  if (text == "udp") return Protocol::udp;
  throw_error(context + ": protocol \"" + std::string(text) + "\" is not tcp or udp");
}

std::vector<std::string_view> split_colons(std::string_view text) {
  std::vector<std::string_view> parts;
  for (;;) {
    auto colon = text.find(':');
    parts.push_back(text.substr(0, colon));
    if (colon == text.npos) return parts;
    text.remove_prefix(colon + 1);
  }
}

sockaddr_in socket_address(Ipv4 address, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = to_network_order(address);
  return sa;
}

}  // namespace

const char* protocol_name(Protocol protocol) {
  return protocol == Protocol::tcp ? "tcp" : "udp";
}

std::vector<PortMapping> parse_publish(std::string_view spec) {
  std::string context = "--publish \"" + std::string(spec) + "\"";
  Protocol protocol = Protocol::tcp;
  if (auto slash = spec.rfind('/'); slash != spec.npos) {
    protocol = parse_protocol(spec.substr(slash + 1), context);
    spec = spec.substr(0, slash);
  }
  if (spec.find('[') != spec.npos) throw_error(context + ": IPv6 host addresses are not supported");
  auto parts = split_colons(spec);
  if (parts.size() > 3) throw_error(context + ": expected [HOST_IP:][HOST_PORT:]CONTAINER_PORT");
  Ipv4 host_ip;
  if (parts.size() == 3) {
    auto ip = parse_ipv4(parts[0]);
    if (!ip) throw_error(context + ": \"" + std::string(parts[0]) + "\" is not an IPv4 address");
    host_ip = *ip;
  }
  Range container = parse_range(parts.back(), context, false);
  Range host{0, 0};
  bool dynamic = parts.size() == 1 || parts[parts.size() - 2].empty();
  if (!dynamic) {
    host = parse_range(parts[parts.size() - 2], context, true);
    dynamic = host.first == 0;
    if (!dynamic && host.size() != container.size())
      throw_error(context + ": host and container port ranges differ in size");
  }
  std::vector<PortMapping> out;
  for (unsigned i = 0; i < container.size(); ++i) {
    out.push_back({protocol, host_ip, dynamic ? uint16_t{0} : static_cast<uint16_t>(host.first + i),
                   static_cast<uint16_t>(container.first + i)});
  }
  return out;
}

std::vector<PortMapping> parse_exposed(std::string_view list) {
  std::vector<PortMapping> out;
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == list.npos ? std::string_view{} : list.substr(comma + 1);
    if (item.empty()) continue;
    auto slash = item.find('/');
    std::string context = "image ExposedPorts \"" + std::string(item) + "\"";
    Protocol protocol =
        slash == item.npos ? Protocol::tcp : parse_protocol(item.substr(slash + 1), context);
    Range ports = parse_range(item.substr(0, slash), context, false);
    for (unsigned i = 0; i < ports.size(); ++i)
      out.push_back({protocol, Ipv4{}, 0, static_cast<uint16_t>(ports.first + i)});
  }
  return out;
}

std::string describe(const PortMapping& m) {
  return to_string(m.host_ip) + ":" + std::to_string(m.host_port) + "->" +
         std::to_string(m.container_port) + "/" + protocol_name(m.protocol);
}

std::string describe_host_port(const PortMapping& m) {
  return std::to_string(m.host_port) + "/" + protocol_name(m.protocol) + " on " +
         to_string(m.host_ip);
}

bool conflicts(const PortMapping& a, const PortMapping& b) {
  return a.protocol == b.protocol && a.host_port == b.host_port &&
         (a.host_ip == b.host_ip || a.host_ip.value == 0 || b.host_ip.value == 0);
}

nlohmann::json ports_to_json(const std::vector<PortMapping>& ports) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : ports)
    out.push_back({{"protocol", protocol_name(p.protocol)},
                   {"hostIP", to_string(p.host_ip)},
                   {"hostPort", p.host_port},
                   {"containerPort", p.container_port}});
  return out;
}

std::vector<PortMapping> ports_from_json(const nlohmann::json& json) {
  std::vector<PortMapping> out;
  for (const auto& p : json) {
    auto host_ip = parse_ipv4(p.at("hostIP").get<std::string>());
    if (!host_ip) throw Error("port mapping: bad hostIP " + p.at("hostIP").dump());
    out.push_back({parse_protocol(p.at("protocol").get<std::string>(), "port mapping"), *host_ip,
                   p.at("hostPort").get<uint16_t>(), p.at("containerPort").get<uint16_t>()});
  }
  return out;
}

bool host_port_free(const PortMapping& m) {
  int type = m.protocol == Protocol::tcp ? SOCK_STREAM : SOCK_DGRAM;
  UniqueFd fd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  if (!fd) throw_errno("socket");
  // TIME_WAIT leftovers of old connections do not make a TCP port busy; listeners still do.
  int one = 1;
  if (m.protocol == Protocol::tcp)
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa = socket_address(m.host_ip, m.host_port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) return true;
  if (errno == EADDRINUSE) return false;
  if (errno == EADDRNOTAVAIL)
    throw_error("host address " + to_string(m.host_ip) + " is not an address of this host");
  throw_errno("check host port " + describe_host_port(m));
}

}  // namespace barge::network

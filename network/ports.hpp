// Published ports: the -p/--publish syntax, image ExposedPorts, conflicts between mappings and
// whether a host port is free.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "network/address.hpp"

namespace barge::network {

enum class Protocol { tcp, udp };
const char* protocol_name(Protocol protocol);

struct PortMapping {
  Protocol protocol = Protocol::tcp;
  Ipv4 host_ip;            // 0.0.0.0: every address of the host
  uint16_t host_port = 0;  // 0: pick one from the dynamic range
  uint16_t container_port = 0;
  auto operator<=>(const PortMapping&) const = default;
};

// [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp]; ports may be ranges of equal length
// (8000-8009:80-89) or a container range with dynamic host ports (80-89). Throws naming the spec.
std::vector<PortMapping> parse_publish(std::string_view spec);
// The image config's ExposedPorts as written in the bundle annotation ("80/tcp,53/udp"), each
// with a dynamic host port.
std::vector<PortMapping> parse_exposed(std::string_view list);
// "0.0.0.0:8080->80/tcp"
std::string describe(const PortMapping& mapping);
// "8080/tcp on 0.0.0.0": how errors name a host port.
std::string describe_host_port(const PortMapping& mapping);
// Same protocol and host port, and host addresses that meet (equal, or either is 0.0.0.0).
bool conflicts(const PortMapping& a, const PortMapping& b);
// [{"protocol": "tcp", "hostIP": "0.0.0.0", "hostPort": 8080, "containerPort": 80}, ...]: the
// form state files and JSON output use.
nlohmann::json ports_to_json(const std::vector<PortMapping>& ports);
std::vector<PortMapping> ports_from_json(const nlohmann::json& json);
// Whether a socket of that protocol can bind host_ip:host_port now (a listener or bound socket on
// the host makes it unavailable). Throws when host_ip is not an address of this host.
bool host_port_free(const PortMapping& mapping);

}  // namespace barge::network

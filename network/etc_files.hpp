// The name-resolution files a container gets: /etc/hosts, /etc/hostname, /etc/resolv.conf.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "network/address.hpp"

namespace barge::network {

// localhost entries, the usual IPv6 names, and "ADDRESS HOSTNAME" when the container has one.
std::string hosts_file(const std::string& hostname, std::optional<Ipv4> address);

struct ResolvConf {
  std::string text;
  std::vector<std::string> dropped;  // loopback nameservers a container cannot reach
};
// The host's resolv.conf for a container in its own network namespace: nameservers on loopback
// (127.0.0.0/8, ::1) answer only the host, so they are dropped (the caller warns).
ResolvConf container_resolv_conf(std::string_view host_resolv_conf);
// Whether text names any nameserver (a container without one cannot resolve names).
bool has_nameserver(std::string_view resolv_conf);
// The host's resolver configuration: /etc/resolv.conf, or systemd-resolved's upstream list
// (reachable from a container, unlike the 127.0.0.53 stub) when /etc/resolv.conf points only at
// loopback resolvers. The paths are parameters for tests.
std::string host_resolv_conf(const std::string& path = "/etc/resolv.conf",
                             const std::string& upstream = "/run/systemd/resolve/resolv.conf");

}  // namespace barge::network

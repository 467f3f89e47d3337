#include "network/etc_files.hpp"

#include "common/error.hpp"
#include "common/file.hpp"

namespace barge::network {
namespace {

std::vector<std::string_view> lines(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    auto end = text.find('\n');
    out.push_back(text.substr(0, end));
    text = end == text.npos ? std::string_view{} : text.substr(end + 1);
  }
  return out;
}

// The address of a "nameserver ADDRESS" line, or "" for any other line.
std::string_view nameserver_of(std::string_view line) {
  constexpr std::string_view kKey = "nameserver";
  if (!line.starts_with(kKey) || line.size() == kKey.size() ||
      (line[kKey.size()] != ' ' && line[kKey.size()] != '\t'))
    return {};
  line.remove_prefix(kKey.size());
  auto start = line.find_first_not_of(" \t");
  if (start == line.npos) return {};
  line.remove_prefix(start);
  return line.substr(0, line.find_first_of(" \t#;"));
}

bool is_loopback(std::string_view address) {
  if (address == "::1") return true;
  auto v4 = parse_ipv4(address);
  return v4 && (v4->value >> 24) == 127;
}

bool only_loopback_nameservers(std::string_view text) {
  bool any = false;
  for (auto line : lines(text)) {
    auto server = nameserver_of(line);
    if (server.empty()) continue;
    if (!is_loopback(server)) return false;
    any = true;
  }
  return any;
}

}  // namespace

std::string hosts_file(const std::string& hostname, std::optional<Ipv4> address) {
  std::string text =
      "127.0.0.1\tlocalhost\n"
      "::1\tlocalhost ip6-localhost ip6-loopback\n"
      "fe00::0\tip6-localnet\n"
      "ff00::0\tip6-mcastprefix\n"
      "ff02::1\tip6-allnodes\n"
      "ff02::2\tip6-allrouters\n";
  if (address) text += to_string(*address) + "\t" + hostname + "\n";
  return text;
}

ResolvConf container_resolv_conf(std::string_view host) {
  ResolvConf out;
  for (auto line : lines(host)) {
    auto server = nameserver_of(line);
    if (!server.empty() && is_loopback(server)) {
      out.dropped.emplace_back(server);
      continue;
    }
    out.text.append(line).append("\n");
  }
  return out;
}

bool has_nameserver(std::string_view resolv_conf) {
  for (auto line : lines(resolv_conf))
    if (!nameserver_of(line).empty()) return true;
  return false;
}

std::string host_resolv_conf(const std::string& path, const std::string& upstream) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error& e) {
    if (e.code() != ENOENT) throw;
  }
  if (only_loopback_nameservers(text) && path_exists(upstream)) return read_file(upstream);
  return text;
}

}  // namespace barge::network

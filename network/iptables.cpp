#include "network/iptables.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "common/error.hpp"
#include "common/log.hpp"

namespace barge::network::iptables {
namespace {

struct Names {
  std::string dnat, postrouting, forward, input;
  explicit Names(const std::string& prefix)
      : dnat(prefix + "-DNAT"),
        postrouting(prefix + "-POSTROUTING"),
        forward(prefix + "-FORWARD"),
        input(prefix + "-INPUT") {}
};

// The jumps from the built-in chains, exactly as iptables-save prints them.
struct Jump {
  const char* table;
  std::string rule;  // "-A CHAIN ..." (the insert form replaces -A with -I)
};

std::vector<Jump> base_jumps(const Names& n) {
  return {
      {"nat", "-A PREROUTING -m addrtype --dst-type LOCAL -j " + n.dnat},
      {"nat", "-A OUTPUT -m addrtype --dst-type LOCAL -j " + n.dnat},
      {"nat", "-A POSTROUTING -j " + n.postrouting},
      {"filter", "-A FORWARD -j " + n.forward},
      {"filter", "-A INPUT -j " + n.input},
  };
}

std::string as_insert(const std::string& rule) {
  return "-I" + rule.substr(2);
}

std::string as_delete(const std::string& rule) {
  return "-D" + rule.substr(2);
}

std::string hex8(uint32_t value) {
  char text[9];
  std::snprintf(text, sizeof text, "%08x", value);
  return text;
}

std::string jump_to(const std::string& prefix, Ipv4 address) {
  return "-A " + Names(prefix).dnat + " -j " + container_chain(prefix, address);
}

void read_all(int fd, std::string& sink) {
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      sink.append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      return;
    }
  }
}

struct Spawned {
  pid_t pid;
  UniqueFd output;  // the child's stdout (capture) or stderr
};

// Runs argv with input on its stdin (a socket, so a dead child cannot SIGPIPE us) and one of its
// output streams on a pipe; the other goes to /dev/null. The child dies with us.
Spawned spawn(const std::vector<const char*>& argv, const std::string& input, bool capture_stdout) {
  int in[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0) throw_errno("socketpair");
  UniqueFd in_ours(in[0]), in_theirs(in[1]);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw_errno("pipe");
  UniqueFd out_ours(out[0]), out_theirs(out[1]);
  UniqueFd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  if (!null) throw_errno("open /dev/null");
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw_errno(std::string("run ") + argv[0]);
  if (pid == 0) {  // only async-signal-safe calls from here
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(in_theirs.get(), 0);
    ::dup2(capture_stdout ? out_theirs.get() : null.get(), 1);
    ::dup2(capture_stdout ? null.get() : out_theirs.get(), 2);
    ::execvp(argv[0], const_cast<char**>(argv.data()));
    ::_exit(127);
  }
  in_theirs.reset();
  out_theirs.reset();
  std::string_view rest = input;
  while (!rest.empty()) {
    ssize_t n = ::send(in_ours.get(), rest.data(), rest.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the child died early: its exit status tells why
    rest.remove_prefix(static_cast<size_t>(n));
  }
  return {pid, std::move(out_ours)};
}

int wait_exit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw_errno("wait for iptables");
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string first_line(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  return line.empty() ? "no message" : line;
}

}  // namespace

std::string container_chain(const std::string& prefix, Ipv4 address) {
  return prefix + "-" + hex8(address.value);
}

bool Existing::has_chain(const std::string& table, const std::string& chain) const {
  return std::find(chains.begin(), chains.end(), table + ":" + chain) != chains.end();
}

bool Existing::has_rule(const std::string& table, const std::string& rule) const {
  return std::find(rules.begin(), rules.end(), table + ":" + rule) != rules.end();
}

Existing parse_save(const std::string& save_output) {
  Existing existing;
  std::string table;
  size_t pos = 0;
  while (pos < save_output.size()) {
    size_t end = save_output.find('\n', pos);
    if (end == std::string::npos) end = save_output.size();
    std::string line = save_output.substr(pos, end - pos);
    pos = end + 1;
    if (line.starts_with("*")) {
      table = line.substr(1);
    } else if (line.starts_with(":")) {
      existing.chains.push_back(table + ":" + line.substr(1, line.find(' ') - 1));
    } else if (line.starts_with("-A ")) {
      existing.rules.push_back(table + ":" + line);
    }
  }
  return existing;
}

std::string base_batch(const BaseContext& c, const Existing& existing) {
  Names n(c.prefix);
  std::string subnet = to_string(c.subnet);
  std::string nat = "*nat\n";
  if (!existing.has_chain("nat", n.dnat)) nat += ":" + n.dnat + " - [0:0]\n";
  nat += ":" + n.postrouting + " - [0:0]\n";
  nat += "-A " + n.postrouting + " -s " + subnet + " ! -o " + c.bridge + " -j MASQUERADE\n";
  nat +=
      "-A " + n.postrouting + " -o " + c.bridge + " -m addrtype --src-type LOCAL -j MASQUERADE\n";
  nat += "-A " + n.postrouting + " -s " + subnet + " -o " + c.bridge +
         " -m conntrack --ctstate DNAT -j MASQUERADE\n";
  std::string filter = "*filter\n";
  filter += ":" + n.forward + " - [0:0]\n";
  filter += "-A " + n.forward + " -o " + c.bridge +
            " -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT\n";
  filter += "-A " + n.forward + " -i " + c.bridge + " -j ACCEPT\n";
  filter += "-A " + n.forward + " -o " + c.bridge + " -j DROP\n";
  filter += ":" + n.input + " - [0:0]\n";
  filter += "-A " + n.input + " -d 127.0.0.0/8 -i " + c.bridge +
            " -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n";
  for (const auto& jump : base_jumps(n)) {
    if (existing.has_rule(jump.table, jump.rule)) continue;
    (std::string(jump.table) == "nat" ? nat : filter) += as_insert(jump.rule) + "\n";
  }
  return nat + "COMMIT\n" + filter + "COMMIT\n";
}

std::string remove_base_batch(const BaseContext& c, const Existing& existing) {
  Names n(c.prefix);
  std::string nat = "*nat\n", filter = "*filter\n";
  for (const auto& jump : base_jumps(n)) {
    if (!existing.has_rule(jump.table, jump.rule)) continue;
    (std::string(jump.table) == "nat" ? nat : filter) += as_delete(jump.rule) + "\n";
  }
  for (const auto* chain : {&n.dnat, &n.postrouting}) {
    if (existing.has_chain("nat", *chain)) nat += "-F " + *chain + "\n-X " + *chain + "\n";
  }
  for (const auto* chain : {&n.forward, &n.input}) {
    if (existing.has_chain("filter", *chain)) filter += "-F " + *chain + "\n-X " + *chain + "\n";
  }
  return nat + "COMMIT\n" + filter + "COMMIT\n";
}

std::string container_batch(const std::string& prefix, Ipv4 address,
                            const std::vector<PortMapping>& ports) {
  std::string chain = container_chain(prefix, address);
  std::string batch = "*nat\n:" + chain + " - [0:0]\n";
  for (const auto& p : ports) {
    std::string proto = protocol_name(p.protocol);
    batch += "-A " + chain;
    if (p.host_ip.value != 0) batch += " -d " + to_string(p.host_ip) + "/32";
    batch += " -p " + proto + " -m " + proto + " --dport " + std::to_string(p.host_port) +
             " -j DNAT --to-destination " + to_string(address) + ":" +
             std::to_string(p.container_port) + "\n";
  }
  batch += jump_to(prefix, address) + "\n";
  return batch + "COMMIT\n";
}

std::string remove_container_batch(const std::string& prefix, const std::vector<Ipv4>& addresses) {
  std::string batch = "*nat\n";
  for (Ipv4 address : addresses) {
    std::string chain = container_chain(prefix, address);
    batch += as_delete(jump_to(prefix, address)) + "\n-F " + chain + "\n-X " + chain + "\n";
  }
  return batch + "COMMIT\n";
}

std::string remove_container_batch(const std::string& prefix, const std::vector<Ipv4>& addresses,
                                   const Existing& existing) {
  std::string batch = "*nat\n";
  for (Ipv4 address : addresses) {
    std::string chain = container_chain(prefix, address);
    std::string jump = jump_to(prefix, address);
    if (existing.has_rule("nat", jump)) batch += as_delete(jump) + "\n";
    if (existing.has_chain("nat", chain)) batch += "-F " + chain + "\n-X " + chain + "\n";
  }
  return batch + "COMMIT\n";
}

std::vector<std::string> container_chains(const std::string& prefix, const Existing& existing) {
  std::vector<std::string> out;
  std::string start = "nat:" + prefix + "-";
  for (const auto& chain : existing.chains) {
    if (!chain.starts_with(start)) continue;
    std::string rest = chain.substr(start.size());
    if (rest.size() == 8 && rest.find_first_not_of("0123456789abcdef") == std::string::npos)
      out.push_back(chain.substr(4));
  }
  return out;
}

Restore Restore::start(const std::string& batch) {
  log::debug("iptables-restore --noflush:\n" + batch);
  Spawned child = spawn({"iptables-restore", "--noflush", "-w", nullptr}, batch, false);
  Restore restore;
  restore.pid_ = child.pid;
  restore.errors_ = std::move(child.output);
  return restore;
}

Restore::~Restore() {
  if (pid_ <= 0) return;
  try {
    wait();
  } catch (const Error& e) {
    log::warn(e.what());
  }
}

void Restore::wait() {
  if (pid_ <= 0) return;
  std::string errors;
  read_all(errors_.get(), errors);
  errors_.reset();
  int status = wait_exit(std::exchange(pid_, -1));
  if (status != 0)
    throw Error("iptables-restore failed (exit " + std::to_string(status) +
                "): " + first_line(errors));
}

void restore(const std::string& batch) {
  Restore::start(batch).wait();
}

std::string save() {
  std::string output;
  for (const char* table : {"nat", "filter"}) {
    Spawned child = spawn({"iptables-save", "-t", table, nullptr}, "", true);
    read_all(child.output.get(), output);
    child.output.reset();
    if (int status = wait_exit(child.pid); status != 0)
      throw Error("iptables-save -t " + std::string(table) + " failed (exit " +
                  std::to_string(status) + ")");
  }
  return output;
}

}  // namespace barge::network::iptables

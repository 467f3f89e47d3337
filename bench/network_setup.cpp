// Container network setup + teardown with one published port, barge's library against the CNI
// `bridge` + `portmap` plugins (containernetworking-plugins, /usr/lib/cni), each driven with the
// same kind of network namespace (a fresh one per iteration, held by a child process); then
// throughput through the published port for both, each way (a client on the host connects to the
// bridge's gateway address and host port; DNAT in OUTPUT takes it to a server inside the
// namespace, which either drains what the client sends or sends to the client).
// Built on demand by bench/network (target bench_network_setup).
//
//   bench_network_setup [-n N] [--mib M] [--rounds R] [--settle-ms MS (default 100)]
//
// Everything it creates is test-only and removed at the end: bridges bbn<pid>/cbn<pid>, chains
// BBN<pid>-*, the CNI plugin's own chains (CNI-HOSTPORT-* only when they did not exist before).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "network/network.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;
namespace net = barge::network;

constexpr uint16_t kServerPort = 5001;
constexpr const char* kCniPath = "/usr/lib/cni";

double millis(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

std::string shell(const std::string& command) {
  std::string out;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char buffer[4096];
    while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
    ::pclose(pipe);
  }
  return out;
}

// A child process sitting in a new network namespace until killed.
class Namespace {
 public:
  Namespace() {
    int ready[2];
    if (::pipe(ready) != 0) barge::throw_errno("pipe");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      char ok = ::unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
      ssize_t ignored = ::write(ready[1], &ok, 1);
      (void)ignored;
      for (;;) ::pause();
    }
    ::close(ready[1]);
    char ok = 0;
    if (::read(ready[0], &ok, 1) != 1 || ok != 'y') barge::throw_error("unshare network namespace");
    ::close(ready[0]);
  }
  Namespace(const Namespace&) = delete;
  Namespace& operator=(const Namespace&) = delete;
  ~Namespace() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }
  std::string path() const { return "/proc/" + std::to_string(pid_) + "/ns/net"; }

 private:
  pid_t pid_ = -1;
};

// One CNI plugin call: config on stdin, CNI_* in the environment, the result JSON back.
std::string cni(const std::string& plugin, const std::string& command, const std::string& netns,
                const std::string& container, const Json& config) {
  int in[2], out[2];
  if (::pipe(in) != 0 || ::pipe(out) != 0) barge::throw_errno("pipe");
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
    ::setenv("CNI_COMMAND", command.c_str(), 1);
    ::setenv("CNI_CONTAINERID", container.c_str(), 1);
    ::setenv("CNI_NETNS", netns.c_str(), 1);
    ::setenv("CNI_IFNAME", "eth0", 1);
    ::setenv("CNI_PATH", kCniPath, 1);
    std::string path = std::string(kCniPath) + "/" + plugin;
    ::execl(path.c_str(), path.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  std::string text = config.dump();
  ssize_t ignored = ::write(in[1], text.data(), text.size());
  (void)ignored;
  ::close(in[1]);
  std::string result;
  char buffer[4096];
  for (ssize_t n; (n = ::read(out[0], buffer, sizeof buffer)) > 0;) result.append(buffer, n);
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    barge::throw_error("cni " + plugin + " " + command + ": " + result);
  return result;
}

struct Cni {
  std::string bridge, subnet, gateway, ipam_dir;

  Json bridge_config() const {
    return {{"cniVersion", "0.4.0"},
            {"name", "barge-bench"},
            {"type", "bridge"},
            {"bridge", bridge},
            {"isGateway", true},
            {"ipMasq", true},
            {"hairpinMode", true},
            {"ipam", {{"type", "host-local"}, {"subnet", subnet}, {"dataDir", ipam_dir}}}};
  }
  Json portmap_config(uint16_t host_port, const Json& previous) const {
    Json config = {
        {"cniVersion", "0.4.0"},
        {"name", "barge-bench"},
        {"type", "portmap"},
        {"capabilities", {{"portMappings", true}}},
        {"runtimeConfig",
         {{"portMappings",
           {{{"hostPort", host_port}, {"containerPort", kServerPort}, {"protocol", "tcp"}}}}}}};
    if (!previous.is_null()) config["prevResult"] = previous;
    return config;
  }
  Json add(const Namespace& ns, const std::string& id, uint16_t host_port) const {
    Json result = Json::parse(cni("bridge", "ADD", ns.path(), id, bridge_config()));
    cni("portmap", "ADD", ns.path(), id, portmap_config(host_port, result));
    return result;
  }
  void del(const Namespace& ns, const std::string& id, uint16_t host_port,
           const Json& result) const {
    cni("portmap", "DEL", ns.path(), id, portmap_config(host_port, result));
    cni("bridge", "DEL", ns.path(), id, bridge_config());
  }
};

// Which way the bytes go through the published port.
enum class Direction { to_container, from_container };

void write_all(int fd, long long total) {
  static char buffer[1 << 18];
  for (long long sent = 0; sent < total;) {
    ssize_t n = ::send(fd, buffer, std::min<long long>(sizeof buffer, total - sent), MSG_NOSIGNAL);
    if (n <= 0) barge::throw_errno("send");
    sent += n;
  }
}

long long read_all(int fd) {
  static char buffer[1 << 18];
  long long total = 0;
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) total += n;
  return total;
}

// A TCP server inside the namespace for one connection: it reads and discards until EOF
// (to_container) or sends `bytes` and closes (from_container), then reports the bytes it moved.
class Server {
 public:
  Server(const Namespace& ns, Direction direction, long long bytes) {
    int report[2];
    if (::pipe(report) != 0) barge::throw_errno("pipe");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int nsfd = ::open(ns.path().c_str(), O_RDONLY);
      if (nsfd < 0 || ::setns(nsfd, CLONE_NEWNET) != 0) ::_exit(1);
      int listener = ::socket(AF_INET, SOCK_STREAM, 0);
      int one = 1;
      ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(kServerPort);
      if (::bind(listener, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
          ::listen(listener, 4) != 0)
        ::_exit(1);
      char ok = 'y';
      ssize_t ignored = ::write(report[1], &ok, 1);
      int conn = ::accept(listener, nullptr, nullptr);
      long long total = bytes;
      if (direction == Direction::to_container) {
        total = read_all(conn);
      } else {
        write_all(conn, bytes);
      }
      ::close(conn);
      ignored = ::write(report[1], &total, sizeof total);
      (void)ignored;
      ::_exit(0);
    }
    ::close(report[1]);
    report_ = report[0];
    char ok = 0;
    if (::read(report_, &ok, 1) != 1) barge::throw_error("server did not start");
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server() {
    ::close(report_);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  long long moved() {
    long long total = 0;
    if (::read(report_, &total, sizeof total) != sizeof total) return -1;
    return total;
  }

 private:
  pid_t pid_ = -1;
  int report_ = -1;
};

// MB/s for mib MiB between a client on the host and a server in ns, through address:port (DNAT).
double throughput(const Namespace& ns, const std::string& address, uint16_t port, int mib,
                  Direction direction) {
  long long total = static_cast<long long>(mib) << 20;
  Server server(ns, direction, total);
  barge::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  ::inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
  auto start = Clock::now();
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    barge::throw_errno("connect " + address + ":" + std::to_string(port));
  long long got = 0;
  if (direction == Direction::to_container) {
    write_all(fd.get(), total);
    ::shutdown(fd.get(), SHUT_WR);
    got = server.moved();
  } else {
    got = read_all(fd.get());
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (got != total)
    barge::throw_error("moved " + std::to_string(got) + " bytes, not " + std::to_string(total));
  return static_cast<double>(mib) / seconds;
}

int free_octet(int second) {
  std::string routes = shell("ip -4 route");
  for (int x = 1 + getpid() % 200; x < 255; ++x) {
    std::string prefix = "10." + std::to_string(second) + "." + std::to_string(x) + ".";
    if (routes.find(prefix) == std::string::npos) return x;
  }
  barge::throw_error("no free subnet");
}

}  // namespace

int main(int argc, char** argv) {
  int n = 20, mib = 1024, rounds = 3, settle_ms = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "-n") n = std::atoi(argv[i + 1]);
    if (flag == "--mib") mib = std::atoi(argv[i + 1]);
    if (flag == "--rounds") rounds = std::atoi(argv[i + 1]);
    if (flag == "--settle-ms") settle_ms = std::atoi(argv[i + 1]);
  }
  std::string tag = std::to_string(::getpid() % 100000);
  auto work = std::filesystem::temp_directory_path() / ("barge-bench-net-" + tag);
  std::filesystem::create_directories(work);

  net::Config barge;
  barge.bridge = "bbn" + tag;
  barge.chain_prefix = "BBN" + tag;
  barge.subnet = "10.217." + std::to_string(free_octet(217)) + ".0/24";
  barge.state_dir = (work / "barge").string();
  Cni cni_net;
  cni_net.bridge = "cbn" + tag;
  int cni_octet = free_octet(218);
  cni_net.subnet = "10.218." + std::to_string(cni_octet) + ".0/24";
  cni_net.gateway = "10.218." + std::to_string(cni_octet) + ".1";
  cni_net.ipam_dir = (work / "cni-ipam").string();
  bool cni_chains_existed =
      shell("iptables-save -t nat").find(":CNI-HOSTPORT-DNAT") != std::string::npos;

  int code = 0;
  try {
    std::vector<double> barge_setup, barge_teardown, cni_setup, cni_teardown;
    auto barge_round = [&](int i, uint16_t host_port) {
      Namespace ns;
      std::string id = "bench-" + std::to_string(i);
      auto t0 = Clock::now();
      auto setup = net::Setup::begin(barge, work.string(), id,
                                     {{net::Protocol::tcp, net::Ipv4{}, host_port, kServerPort}});
      setup.attach(ns.pid());
      setup.commit();
      auto t1 = Clock::now();
      net::release(barge, work.string(), id);
      auto t2 = Clock::now();
      barge_setup.push_back(millis(t1 - t0));
      barge_teardown.push_back(millis(t2 - t1));
    };
    auto cni_round = [&](int i, uint16_t host_port) {
      Namespace ns;
      std::string id = "bench-" + tag + "-" + std::to_string(i);
      auto t0 = Clock::now();
      Json result = cni_net.add(ns, id, host_port);
      auto t1 = Clock::now();
      cni_net.del(ns, id, host_port, result);
      auto t2 = Clock::now();
      cni_setup.push_back(millis(t1 - t0));
      cni_teardown.push_back(millis(t2 - t1));
    };
    // Warm-up (bridge creation, base chains, page cache), then alternate so noise hits both.
    barge_round(-1, 28999);
    cni_round(-1, 28998);
    // The kernel tears a dead namespace down in the background (cleanup_net: rtnl, an RCU
    // barrier): a pause before each round keeps one round's namespace from slowing the next.
    auto settle = [settle_ms] { ::usleep(static_cast<useconds_t>(settle_ms) * 1000); };
    for (int i = 0; i < n; ++i) {
      settle();
      barge_round(i, static_cast<uint16_t>(29000 + i));
      settle();
      cni_round(i, static_cast<uint16_t>(29500 + i));
    }
    double b = median(barge_setup) + median(barge_teardown);
    double c = median(cni_setup) + median(cni_teardown);
    std::printf("setup + teardown with one published port, median of %d (ms)\n", n);
    std::printf("  %-22s setup %8.2f  teardown %8.2f  total %8.2f\n", "barge (library)",
                median(barge_setup), median(barge_teardown), b);
    std::printf("  %-22s setup %8.2f  teardown %8.2f  total %8.2f\n", "CNI bridge+portmap",
                median(cni_setup), median(cni_teardown), c);
    std::printf("  CNI / barge: %.1fx\n", c / b);

    // Throughput: for each round and direction, a fresh endpoint of each, alternating.
    std::vector<double> rates[2][2];  // [barge, CNI][to, from the container]
    for (int r = 0; r < rounds; ++r) {
      for (Direction direction : {Direction::to_container, Direction::from_container}) {
        int d = direction == Direction::to_container ? 0 : 1;
        {
          Namespace ns;
          auto setup = net::Setup::begin(barge, work.string(), "tput",
                                         {{net::Protocol::tcp, net::Ipv4{}, 29998, kServerPort}});
          setup.attach(ns.pid());
          setup.commit();
          std::string gateway = net::to_string(setup.attachment().gateway);
          rates[0][d].push_back(throughput(ns, gateway, 29998, mib, direction));
          net::release(barge, work.string(), "tput");
        }
        {
          Namespace ns;
          std::string id = "tput-" + tag;
          Json result = cni_net.add(ns, id, 29999);
          rates[1][d].push_back(throughput(ns, cni_net.gateway, 29999, mib, direction));
          cni_net.del(ns, id, 29999, result);
        }
      }
    }
    std::printf(
        "throughput through the published port (host -> gateway:HOST_PORT -> DNAT), %d MiB, "
        "median of %d (MB/s)\n",
        mib, rounds);
    std::printf("  %-22s %12s %16s\n", "", "to container", "from container");
    std::printf("  %-22s %12.0f %16.0f\n", "barge", median(rates[0][0]), median(rates[0][1]));
    std::printf("  %-22s %12.0f %16.0f\n", "CNI bridge+portmap", median(rates[1][0]),
                median(rates[1][1]));
    std::printf("  %-22s %12.2f %16.2f\n", "barge / CNI", median(rates[0][0]) / median(rates[1][0]),
                median(rates[0][1]) / median(rates[1][1]));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_network_setup: %s\n", e.what());
    code = 1;
  }
  try {
    net::destroy(barge);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cleanup: %s\n", e.what());
  }
  shell("ip link del " + cni_net.bridge + " 2>/dev/null");
  if (!cni_chains_existed) {
    // portmap keeps its base chains; remove them (and the jumps to them) when we made them.
    std::string save = shell("iptables-save -t nat");
    std::string batch = "*nat\n";
    std::string flushes, removals;
    for (size_t pos = 0; pos < save.size();) {
      size_t end = save.find('\n', pos);
      std::string line = save.substr(pos, end - pos);
      pos = end == std::string::npos ? save.size() : end + 1;
      if (line.starts_with("-A ") && line.find("-j CNI-HOSTPORT-") != std::string::npos &&
          line.find("-A CNI-HOSTPORT-") != 0)
        batch += "-D" + line.substr(2) + "\n";
      if (line.starts_with(":CNI-HOSTPORT-")) {
        std::string chain = line.substr(1, line.find(' ') - 1);
        flushes += "-F " + chain + "\n";
        removals += "-X " + chain + "\n";
      }
    }
    std::string file = (work / "cni-cleanup.rules").string();
    if (FILE* f = std::fopen(file.c_str(), "w")) {
      std::fputs((batch + flushes + removals + "COMMIT\n").c_str(), f);
      std::fclose(f);
      shell("iptables-restore --noflush < " + file);
    }
  }
  std::filesystem::remove_all(work);
  return code;
}

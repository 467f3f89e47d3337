#include "tests/integration/network_fixture.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <regex>
#include <set>

#include "common/fd.hpp"

namespace fs = std::filesystem;

namespace barge::test {
namespace {

std::atomic<int> g_network_counter{0};

std::string hex_name(const char* prefix, unsigned pid, unsigned n) {
  char name[32];
  std::snprintf(name, sizeof name, "%s%06x%02x", prefix, pid & 0xffffff, n & 0xff);
  return name;
}

// Third octets of 10.214.X.0/24 some host route already covers.
std::set<int> octets_in_use() {
  std::set<int> used;
  for (const auto& line : split_lines(slurp("/proc/net/route"))) {
    auto words = split_words(line);
    if (words.size() < 8 || words[0] == "Iface") continue;
    uint32_t dst = ntohl(static_cast<uint32_t>(std::stoul(words[1], nullptr, 16)));
    if ((dst >> 16) == ((10u << 8) | 214u) || (dst >> 16) == ((10u << 8) | 215u))
      used.insert(static_cast<int>((dst >> 8) & 0xff));
  }
  return used;
}

bool pid_alive(unsigned pid) {
  return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) == 0;
}

// iptables-restore batch removing the chains mine() accepts and every jump to them. All of them
// are flushed before any is deleted: they jump to each other (P-DNAT to the container chains).
std::string removal_batch(const std::string& save,
                          const std::function<bool(const std::string&)>& mine) {
  std::string out, table, deletes, flushes, removals;
  for (const auto& line : split_lines(save)) {
    if (line.starts_with("*")) {
      table = line.substr(1);
      deletes.clear();
      flushes.clear();
      removals.clear();
    } else if (line == "COMMIT") {
      if (!deletes.empty() || !removals.empty())
        out += "*" + table + "\n" + deletes + flushes + removals + "COMMIT\n";
    } else if (line.starts_with(":")) {
      std::string chain = line.substr(1, line.find(' ') - 1);
      if (mine(chain)) {
        flushes += "-F " + chain + "\n";
        removals += "-X " + chain + "\n";
      }
    } else if (line.starts_with("-A ")) {
      auto words = split_words(line);
      if (words.size() > 2 && !mine(words[1]) && mine(words.back()))
        deletes += "-D" + line.substr(2) + "\n";
    }
  }
  return out;
}

// Removes bridges, veths, netns and chains whose names carry pid (any n).
void remove_network_objects(const std::function<bool(const std::string&)>& mine_link,
                            const std::function<bool(const std::string&)>& mine_chain) {
  ProcResult links;
  run_shell("ip -j link show", &links);
  try {
    for (const auto& link : Json::parse(links.out)) {
      std::string name = link.value("ifname", "");
      if (mine_link(name)) run_shell("ip link del " + name + " 2>/dev/null");
    }
  } catch (const Json::exception&) {
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/run/netns", ec)) {
    std::string name = entry.path().filename().string();
    if (mine_link(name)) run_shell("ip netns del " + name);
  }
  ProcResult save;
  run_shell("iptables-save -t nat; iptables-save -t filter", &save);
  std::string batch = removal_batch(save.out, mine_chain);
  if (!batch.empty()) {
    std::string file = base_temp_dir() + "/cleanup.rules";
    FILE* f = std::fopen(file.c_str(), "w");
    if (f != nullptr) {
      std::fputs(batch.c_str(), f);
      std::fclose(f);
      run_shell("iptables-restore --noflush < " + file);
    }
  }
}

// Leftovers of earlier test processes that died without cleaning up (bt/BT names carry the pid).
void sweep_dead_processes() {
  static const std::regex link(R"((?:bt|bto|btn)([0-9a-f]{6})[0-9a-f]{2}[a-z]?)");
  static const std::regex chain(R"(BT([0-9a-f]{6})[0-9a-f]{2}(-.*)?)");
  auto dead = [](const std::regex& re, const std::string& name) {
    std::smatch m;
    if (!std::regex_match(name, m, re)) return false;
    unsigned pid = static_cast<unsigned>(std::stoul(m[1].str(), nullptr, 16));
    return pid != (static_cast<unsigned>(::getpid()) & 0xffffff) && !pid_alive(pid);
  };
  remove_network_objects([&](const std::string& n) { return dead(link, n); },
                         [&](const std::string& n) { return dead(chain, n); });
}

}  // namespace

std::string NetworkTest::store_;

std::string run_shell(const std::string& command, ProcResult* result) {
  ProcResult r = run_process({"/bin/sh", "-c", command}, {.timeout = 60s});
  if (result != nullptr) *result = r;
  return trim(r.out);
}

Background::Background(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  std::vector<std::string> copy = argv;
  for (auto& a : copy) args.push_back(a.data());
  args.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ == 0) {
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
}

Background::~Background() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
}

void NetworkTest::SetUpTestSuite() {
  if (::geteuid() != 0) return;
  sweep_dead_processes();
  if (!store_.empty()) return;
  std::string image = base_temp_dir() + "/net-image";
  std::string store = base_temp_dir() + "/net-store";
  ProcResult made =
      run_process({"/usr/bin/python3", std::string(BARGE_TEST_SCRIPTS) + "/make-image.py",
                   "busybox", image, "--name", "bb:1"},
                  {.timeout = 120s});
  ASSERT_EQ(made.status, 0) << made.describe();
  ProcResult imported = run_process({BARGE_BINARY, "image", "--storage", store, "import", image});
  ASSERT_EQ(imported.status, 0) << imported.describe();
  store_ = store;
}

void NetworkTest::SetUp() {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  if (!testing_barge()) GTEST_SKIP() << "barge's own command line";
  ASSERT_FALSE(store_.empty()) << "test image not imported";
  unsigned pid = static_cast<unsigned>(::getpid());
  unsigned n = static_cast<unsigned>(g_network_counter++);
  bridge_ = hex_name("bt", pid, n);
  prefix_ = hex_name("BT", pid, n);
  dir_ = base_temp_dir() + "/" + bridge_;
  root_ = dir_ + "/root";
  data_ = dir_ + "/data";
  state_ = dir_ + "/net";
  fs::create_directories(dir_);
  auto used = octets_in_use();
  for (int i = 0; i < 250; ++i) {
    int candidate = 1 + static_cast<int>((pid + n * 7 + static_cast<unsigned>(i)) % 250);
    if (!used.count(candidate)) {
      third_octet_ = candidate;
      break;
    }
  }
  ASSERT_NE(third_octet_, 0) << "no free 10.214.X.0/24";
  subnet_ = "10.214." + std::to_string(third_octet_) + ".0/24";
  gateway_ = "10.214." + std::to_string(third_octet_) + ".1";
}

void NetworkTest::TearDown() {
  if (dir_.empty()) return;
  // Remove what the test left running, then check that removal left nothing.
  ProcResult listed = container({"ls", "--format", "json"});
  try {
    for (const auto& c : Json::parse(listed.out)) {
      ProcResult removed = container({"rm", "--force", c["id"].get<std::string>()});
      EXPECT_EQ(removed.status, 0) << removed.describe();
    }
  } catch (const Json::exception&) {
    ADD_FAILURE() << "container ls: " << listed.describe();
  }
  for (const auto& leftover : container_leftovers()) ADD_FAILURE() << "leftover: " << leftover;
  if (fs::exists(state_ + "/" + bridge_ + "/state.json")) {
    ProcResult destroyed = network({"rm"});
    EXPECT_EQ(destroyed.status, 0) << destroyed.describe();
    EXPECT_EQ(run_shell("ip -br link show " + bridge_ + " 2>/dev/null"), "") << "bridge left";
    EXPECT_EQ(run_shell("iptables-save | grep -c -- '" + prefix_ + "' || true"), "0")
        << run_shell("iptables-save | grep -- '" + prefix_ + "'");
  }
  // Whatever a failed test left: links, namespaces, chains named after this test, mounts, dirs.
  std::string suffix = bridge_.substr(2);
  remove_network_objects(
      [&](const std::string& name) { return name.find(suffix) != std::string::npos; },
      [&](const std::string& chain) { return chain.starts_with(prefix_); });
  kill_processes_mentioning(dir_);
  for (const auto& line : mounts_mentioning(dir_)) {
    auto words = split_words(line);
    if (words.size() > 4) run_shell("umount -l '" + words[4] + "' 2>/dev/null");
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
  for (const auto& entry : fs::directory_iterator("/sys/fs/cgroup", ec))
    ::rmdir((entry.path().string() + "/barge-test").c_str());
}

ProcResult NetworkTest::container(const std::vector<std::string>& args,
                                  const ProcOptions& options) {
  std::vector<std::string> argv = {BARGE_BINARY,
                                   "--root",
                                   root_,
                                   "container",
                                   "--storage",
                                   store_,
                                   "--data",
                                   data_,
                                   "--bridge",
                                   bridge_,
                                   "--subnet",
                                   subnet_,
                                   "--chain-prefix",
                                   prefix_,
                                   "--network-state",
                                   state_};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, options);
}

ProcResult NetworkTest::network(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {
      BARGE_BINARY,      "--root", root_,      "network", "--data",         data_,
      "--bridge",        bridge_,  "--subnet", subnet_,   "--chain-prefix", prefix_,
      "--network-state", state_};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv);
}

std::string NetworkTest::run_detached(const std::vector<std::string>& run_args) {
  std::vector<std::string> args = {"run", "-d", "--cgroup-parent", "/barge-test"};
  args.insert(args.end(), run_args.begin(), run_args.end());
  ProcResult r = container(args);
  EXPECT_EQ(r.status, 0) << r.describe();
  return trim(r.out);
}

std::string NetworkTest::run_httpd(const std::string& name, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--name", name};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back("bb:1");
  args.push_back("mkdir -p /www && echo hello from " + name +
                 " > /www/index.html && exec httpd -f -p 80 -h /www");
  return run_detached(args);
}

Json NetworkTest::inspect(const std::string& id) {
  ProcResult r = container({"inspect", id});
  EXPECT_EQ(r.status, 0) << r.describe();
  try {
    return Json::parse(r.out);
  } catch (const Json::exception&) {
    return Json::object();
  }
}

pid_t NetworkTest::pid_of(const std::string& id) {
  return inspect(id).value("pid", 0);
}

std::string NetworkTest::http_get_command(const std::string& url, const std::string& wget) {
  return "for i in $(seq 40); do timeout 5 " + wget + " -qO- " + url +
         " 2>/dev/null && exit 0; sleep 0.1; done; exit 1";
}

std::string NetworkTest::http_get(const std::string& url, const std::string& netns) {
  std::string get = http_get_command(url, "busybox wget");
  if (netns.empty()) return run_shell(get);
  return trim(in_netns(netns, get).out);
}

ProcResult NetworkTest::in_netns(const std::string& netns, const std::string& command) {
  return run_process({"nsenter", "--net=" + netns, "/bin/sh", "-c", command}, {.timeout = 30s});
}

std::string NetworkTest::udp_exchange(const std::string& address, uint16_t port,
                                      const std::string& payload) {
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  ::inet_pton(AF_INET, address.c_str(), &to.sin_addr);
  // The server may still be starting: a few tries, each waiting a bounded time for the answer.
  for (int attempt = 0; attempt < 20; ++attempt) {
    ::sendto(fd.get(), payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to),
             sizeof to);
    pollfd pfd{fd.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 500) == 1) {
      char buffer[2048];
      ssize_t n = ::recv(fd.get(), buffer, sizeof buffer, 0);
      if (n > 0) return std::string(buffer, static_cast<size_t>(n));
    }
  }
  return "";
}

Json NetworkTest::links_on_bridge() {
  std::string out = run_shell("ip -j link show master " + bridge_ + " 2>/dev/null");
  try {
    return out.empty() ? Json::array() : Json::parse(out);
  } catch (const Json::exception&) {
    return Json::array();
  }
}

std::vector<std::string> NetworkTest::container_chains() {
  std::vector<std::string> out;
  std::regex chain("^:(" + prefix_ + "-[0-9a-f]{8}) .*");
  for (const auto& line : split_lines(run_shell("iptables-save -t nat"))) {
    std::smatch m;
    if (std::regex_match(line, m, chain)) out.push_back(m[1].str());
  }
  return out;
}

Json NetworkTest::ipam_state() {
  std::string text = slurp(state_ + "/" + bridge_ + "/state.json");
  try {
    return text.empty() ? Json::object() : Json::parse(text);
  } catch (const Json::exception&) {
    return Json::object();
  }
}

std::vector<std::string> NetworkTest::container_leftovers() {
  std::vector<std::string> out;
  for (const auto& link : links_on_bridge())
    out.push_back("veth on the bridge: " + link.value("ifname", "?"));
  // Host ends are named vb<address in hex>: one of the test subnet anywhere is a leftover too.
  char veth_prefix[16];
  std::snprintf(veth_prefix, sizeof veth_prefix, "vb0ad6%02x", third_octet_);
  for (const auto& line : split_lines(run_shell("ip -o link show")))
    if (line.find(std::string(": ") + veth_prefix) != std::string::npos)
      out.push_back("veth: " + line.substr(0, line.find('<')));
  for (const auto& chain : container_chains()) out.push_back("iptables chain " + chain);
  Json state = ipam_state();
  if (state.contains("endpoints") && !state["endpoints"].empty())
    out.push_back("IPAM endpoints: " + state["endpoints"].dump());
  std::error_code ec;
  for (const auto& dir : {data_, root_})
    for (const auto& entry : fs::directory_iterator(dir, ec))
      if (entry.path().filename() != "@seccomp-cache")  // shared by containers, not theirs
        out.push_back("left in " + dir + ": " + entry.path().filename().string());
  for (const auto& line : mounts_mentioning(dir_)) out.push_back("mount: " + line);
  return out;
}

}  // namespace barge::test

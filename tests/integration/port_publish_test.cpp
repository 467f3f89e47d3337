// Published ports with real traffic: from 127.0.0.1, from an "outside" network namespace joined
// to the host by its own veth pair, from other containers and from the container itself
// (hairpin); dynamic host ports, UDP, -P, and conflicts that name the port and leave nothing.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <filesystem>
#include <fstream>

#include "common/fd.hpp"
#include "runtime/foreground.hpp"
#include "tests/integration/network_fixture.hpp"

namespace barge::test {
namespace {

class PortPublishTest : public NetworkTest {
 protected:
  // A network namespace standing for another machine: veth pair to the host, the host end
  // 10.215.X.1/30, the namespace end .2 with a default route through it. Returns the path.
  std::string make_outside_namespace() {
    std::string suffix = bridge_.substr(2);
    outside_ns_ = "btn" + suffix;
    std::string host_end = "bto" + suffix + "h", ns_end = "bto" + suffix + "n";
    std::string base = "10.215." + std::to_string(third_octet_) + ".";
    outside_host_address_ = base + "1";
    std::string script = "set -e; ip netns add " + outside_ns_ + "; ip link add " + host_end +
                         " type veth peer name " + ns_end + " netns " + outside_ns_ +
                         "; ip addr add " + base + "1/30 dev " + host_end + "; ip link set " +
                         host_end + " up; ip -n " + outside_ns_ + " addr add " + base +
                         "2/30 dev " + ns_end + "; ip -n " + outside_ns_ + " link set " + ns_end +
                         " up; ip -n " + outside_ns_ + " link set lo up; ip -n " + outside_ns_ +
                         " route add default via " + base + "1";
    ProcResult r;
    run_shell(script, &r);
    EXPECT_EQ(r.status, 0) << r.describe();
    return "/run/netns/" + outside_ns_;
  }

  void TearDown() override {
    if (!outside_ns_.empty()) run_shell("ip netns del " + outside_ns_ + " 2>/dev/null");
    NetworkTest::TearDown();
  }

  std::string outside_ns_;
  std::string outside_host_address_;
};

TEST_F(PortPublishTest, TcpFromLoopbackHostAddressesAndADynamicPort) {
  std::string id = run_httpd("web", {"-p", "18180:80", "-p", "80", "-p", "127.0.0.1:18181:80"});
  std::string dynamic;
  for (const auto& line : split_lines(container({"port", id}).out))
    if (line.find("0.0.0.0:") != std::string::npos && line.find(":18180") == std::string::npos)
      dynamic = line.substr(line.rfind(':') + 1);
  ASSERT_FALSE(dynamic.empty());
  int dynamic_port = std::stoi(dynamic);
  EXPECT_GE(dynamic_port, 49153);
  EXPECT_LE(dynamic_port, 65535);

  EXPECT_EQ(http_get("http://127.0.0.1:18180/"), "hello from web");
  EXPECT_EQ(http_get("http://127.0.0.1:" + dynamic + "/"), "hello from web");
  EXPECT_EQ(http_get("http://127.0.0.1:18181/"), "hello from web");
  EXPECT_EQ(http_get("http://" + gateway_ + ":18180/"), "hello from web");
  // The dynamic port is in the JSON output and the OCI state annotations too.
  ProcResult ls = container({"ls", "--format", "json"});
  EXPECT_NE(ls.out.find("\"hostPort\":" + dynamic), std::string::npos) << ls.out;
  ProcResult state = run_process({BARGE_BINARY, "--root", root_, "state", id});
  EXPECT_NE(state.out.find("0.0.0.0:" + dynamic + "->80/tcp"), std::string::npos) << state.out;

  // Its DNAT rules live in the container's own chain and go with the container.
  ASSERT_EQ(container_chains().size(), 1u);
  ProcResult removed = container({"rm", "-f", id});
  ASSERT_EQ(removed.status, 0) << removed.describe();
  EXPECT_TRUE(container_chains().empty());
  EXPECT_EQ(run_shell("iptables-save -t nat | grep -c -- '--dport 18180' || true"), "0");
}

TEST_F(PortPublishTest, ReachableFromAnOutsideNamespaceThroughItsOwnVeth) {
  std::string id = run_httpd("web", {"-p", "18182:80"});
  std::string outside = make_outside_namespace();
  EXPECT_EQ(http_get("http://" + outside_host_address_ + ":18182/", outside), "hello from web");
  // The outside namespace has no route to the container subnet: only the published port works.
  std::string address = inspect(id)["address"];
  ProcResult direct = in_netns(outside, "timeout 3 busybox wget -qO- http://" + address + "/");
  EXPECT_NE(direct.status, 0) << direct.describe();
}

TEST_F(PortPublishTest, OutboundToAnotherNetworkIsMasqueraded) {
  // A server in the "outside" namespace tells each client the address it came from: a container
  // reaches it through the host (forwarded out of the bridge) with the host's address on that
  // link as its source (MASQUERADE), so the answer finds its way back.
  std::string id = run_detached({"bb:1", "sleep 60"});
  ASSERT_FALSE(id.empty());
  std::string outside = make_outside_namespace();
  std::string base = "10.215." + std::to_string(third_octet_) + ".";
  std::string www = dir_ + "/outside-www";
  std::filesystem::create_directories(www + "/cgi-bin");
  {
    std::ofstream script(www + "/cgi-bin/from");
    script
        << "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\necho \"from $REMOTE_ADDR\"\n";
  }
  std::filesystem::permissions(www + "/cgi-bin/from", std::filesystem::perms::owner_all);
  Background server(
      {"nsenter", "--net=" + outside, "busybox", "httpd", "-f", "-p", base + "2:18098", "-h", www});
  ProcResult got = container(
      {"exec", id, "sh", "-c", http_get_command("http://" + base + "2:18098/cgi-bin/from")});
  EXPECT_EQ(trim(got.out), "from " + outside_host_address_) << got.describe();
}

TEST_F(PortPublishTest, HairpinAndNeighboursReachThePublishedPort) {
  std::string web = run_httpd("web", {"-p", "18183:80"});
  std::string other = run_detached({"bb:1", "sleep 60"});
  ProcResult self =
      container({"exec", web, "sh", "-c", http_get_command("http://" + gateway_ + ":18183/")});
  EXPECT_EQ(trim(self.out), "hello from web") << self.describe();
  ProcResult neighbour =
      container({"exec", other, "sh", "-c", http_get_command("http://" + gateway_ + ":18183/")});
  EXPECT_EQ(trim(neighbour.out), "hello from web") << neighbour.describe();
}

TEST_F(PortPublishTest, UdpIsPublishedToo) {
#ifndef BARGE_UDP_ECHO
  GTEST_SKIP() << "udp_echo helper not built (sanitizer build)";
#else
  std::string helper_dir = dir_ + "/helper";
  std::filesystem::create_directories(helper_dir);
  std::filesystem::copy_file(BARGE_UDP_ECHO, helper_dir + "/udp_echo");
  std::string id = run_detached({"-p", "18184:5353/udp", "-p", "5353/udp", "-v",
                                 helper_dir + ":/helper:ro", "bb:1", "exec /helper/udp_echo 5353"});
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(udp_exchange("127.0.0.1", 18184, "ping"), "echo:ping");
  EXPECT_EQ(udp_exchange(gateway_, 18184, "gateway"), "echo:gateway");
  std::string dynamic;
  for (const auto& line : split_lines(container({"port", id}).out))
    if (line.find("5353/udp") == 0 && line.find(":18184") == std::string::npos)
      dynamic = line.substr(line.rfind(':') + 1);
  ASSERT_FALSE(dynamic.empty());
  EXPECT_EQ(udp_exchange("127.0.0.1", static_cast<uint16_t>(std::stoi(dynamic)), "dyn"),
            "echo:dyn");
#endif
}

TEST_F(PortPublishTest, PortRangesPublishEveryPortOfTheRange) {
  // Two servers (80 and 81), each published through a fixed range and a dynamic one.
  std::string id = run_detached(
      {"--name", "ranges", "-p", "18200-18201:80-81", "-p", "80-81", "bb:1",
       "mkdir -p /w80 /w81 && echo port 80 > /w80/index.html && echo port 81 > /w81/index.html "
       "&& httpd -p 80 -h /w80 && exec httpd -f -p 81 -h /w81"});
  ASSERT_FALSE(id.empty());
  std::vector<std::pair<std::string, std::string>> mappings;  // container port, host port
  for (const auto& line : split_lines(trim(container({"port", id}).out))) {
    ASSERT_NE(line.find("/tcp -> 0.0.0.0:"), std::string::npos) << line;
    mappings.emplace_back(line.substr(0, line.find('/')), line.substr(line.rfind(':') + 1));
  }
  ASSERT_EQ(mappings.size(), 4u);
  EXPECT_EQ(mappings[0], (std::pair<std::string, std::string>{"80", "18200"}));
  EXPECT_EQ(mappings[1], (std::pair<std::string, std::string>{"81", "18201"}));
  EXPECT_EQ(mappings[2].first, "80");
  EXPECT_EQ(mappings[3].first, "81");
  EXPECT_NE(mappings[2].second, mappings[3].second);
  for (const auto& [container_port, host_port] : mappings)
    EXPECT_EQ(http_get("http://127.0.0.1:" + host_port + "/"), "port " + container_port)
        << container_port << " on host port " << host_port;

  // A range that overlaps a published port fails naming that port, and leaves nothing.
  ProcResult overlap = container({"run", "-d", "-p", "18199-18200:80-81", "bb:1", "sleep 60"});
  EXPECT_NE(overlap.status, 0);
  EXPECT_NE(overlap.err.find("18200/tcp"), std::string::npos) << overlap.err;
  EXPECT_EQ(ipam_state()["endpoints"].size(), 1u);
  EXPECT_EQ(links_on_bridge().size(), 1u);
  EXPECT_EQ(container_chains().size(), 1u);
}

TEST_F(PortPublishTest, PublishAllUsesTheImagesExposedPorts) {
  std::string id = run_httpd("web", {"-P"});
  ProcResult ports = container({"port", id});
  auto lines = split_lines(trim(ports.out));
  ASSERT_EQ(lines.size(), 1u) << ports.out;  // the image exposes 80/tcp
  ASSERT_EQ(lines[0].rfind("80/tcp -> 0.0.0.0:", 0), 0u) << lines[0];
  std::string port = lines[0].substr(lines[0].rfind(':') + 1);
  EXPECT_EQ(http_get("http://127.0.0.1:" + port + "/"), "hello from web");
}

TEST_F(PortPublishTest, ConflictsNameThePortAndLeaveNothing) {
  std::string first = run_httpd("first", {"-p", "18185:80"});
  auto before = ipam_state()["endpoints"].size();

  ProcResult twice = container({"run", "-d", "-p", "18185:80", "bb:1", "sleep 60"});
  EXPECT_NE(twice.status, 0);
  EXPECT_NE(twice.err.find("18185/tcp"), std::string::npos) << twice.err;
  EXPECT_NE(twice.err.find("first"), std::string::npos) << "names the owner: " << twice.err;

  // A specific host address meets 0.0.0.0 too.
  ProcResult local = container({"run", "-d", "-p", "127.0.0.1:18185:80", "bb:1", "sleep 60"});
  EXPECT_NE(local.status, 0);
  EXPECT_NE(local.err.find("18185/tcp"), std::string::npos) << local.err;

  // Bound on the host by a process of ours.
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(18186);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(listener.get(), 1), 0);
  ProcResult bound = container({"run", "-d", "-p", "18186:80", "bb:1", "sleep 60"});
  EXPECT_NE(bound.status, 0);
  EXPECT_NE(bound.err.find("18186/tcp"), std::string::npos) << bound.err;
  EXPECT_NE(bound.err.find("in use on the host"), std::string::npos) << bound.err;

  // The same port twice in one run.
  ProcResult same = container({"run", "-d", "-p", "18187:80", "-p", "18187:81", "bb:1", "true"});
  EXPECT_NE(same.status, 0);
  EXPECT_NE(same.err.find("18187/tcp"), std::string::npos) << same.err;

  // UDP on the same number is another port.
  std::string udp = run_detached({"-p", "18185:80/udp", "bb:1", "sleep 60"});
  EXPECT_FALSE(udp.empty());

  // None of the failures left a container, an endpoint, a veth or a chain behind.
  EXPECT_EQ(ipam_state()["endpoints"].size(), before + 1);
  EXPECT_EQ(links_on_bridge().size(), before + 1);
  EXPECT_EQ(container_chains().size(), before + 1);
  ProcResult ls = container({"ls", "--format", "json"});
  EXPECT_EQ(Json::parse(ls.out).size(), 2u) << ls.out;
  EXPECT_EQ(http_get("http://127.0.0.1:18185/"), "hello from first");
}

TEST_F(PortPublishTest, StopFreesThePortForTheNextContainer) {
  std::string first = run_httpd("first", {"-p", "18188:80"});
  ProcResult stopped = container({"stop", "-t", "1", first});
  ASSERT_EQ(stopped.status, 0) << stopped.describe();
  EXPECT_EQ(inspect(first)["status"], "stopped");
  std::string second = run_httpd("second", {"-p", "18188:80"});
  EXPECT_EQ(http_get("http://127.0.0.1:18188/"), "hello from second");
}

TEST_F(PortPublishTest, AnExitedContainersPortIsReclaimedByTheNextRun) {
  std::string done = run_detached({"-p", "18189:80", "bb:1", "true"});
  ASSERT_FALSE(done.empty());
  if (pid_t pid = pid_of(done); pid > 0) {
    ASSERT_TRUE(runtime::wait_for_exit(pid, 10000));
  }
  // Nobody ran stop or rm: the next run finds the endpoint of a dead container and reclaims it.
  std::string next = run_httpd("next", {"-p", "18189:80"});
  EXPECT_EQ(http_get("http://127.0.0.1:18189/"), "hello from next");
  EXPECT_EQ(inspect(done)["status"], "stopped");
  EXPECT_EQ(ipam_state()["endpoints"].size(), 1u);
}

}  // namespace
}  // namespace barge::test

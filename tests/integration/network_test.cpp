// Container networking end to end through `barge container`: what the kernel shows for a bridge
// endpoint (bridge, veth, eth0 address/MTU/route, lo), teardown on rm and on failed runs, HTTP
// between host and containers, --network none/host/container:ID, the /etc files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/integration/network_fixture.hpp"

namespace barge::test {
namespace {

std::string host_default_route_mtu() {
  for (const auto& line : split_lines(slurp("/proc/net/route"))) {
    auto words = split_words(line);
    if (words.size() > 7 && words[1] == "00000000" && words[7] == "00000000")
      return trim(slurp("/sys/class/net/" + words[0] + "/mtu"));
  }
  return "1500";
}

Json ip_json(NetworkTest*, const std::string& netns, const std::string& what) {
  ProcResult r = run_process({"nsenter", "--net=" + netns, "ip", "-j", what, "show"});
  try {
    return Json::parse(r.out);
  } catch (const Json::exception&) {
    return Json::array();
  }
}

Json find_link(const Json& links, const std::string& name) {
  for (const auto& link : links)
    if (link.value("ifname", "") == name) return link;
  return Json::object();
}

using NetworkBridgeTest = NetworkTest;

TEST_F(NetworkBridgeTest, EndpointIsWhatTheKernelShowsAndRmRemovesIt) {
  std::string id = run_httpd("web");
  ASSERT_FALSE(id.empty());
  Json info = inspect(id);
  std::string address = info.value("address", "");
  ASSERT_EQ(address.rfind("10.214." + std::to_string(third_octet_) + ".", 0), 0u) << info;

  // Host side: the bridge with the gateway address, one veth plugged into it, hairpin on.
  Json bridge = find_link(ip_json(this, "/proc/self/ns/net", "addr"), bridge_);
  ASSERT_FALSE(bridge.empty());
  EXPECT_EQ(bridge["addr_info"][0]["local"], gateway_);
  EXPECT_EQ(bridge["addr_info"][0]["prefixlen"], 24);
  Json ports = links_on_bridge();
  ASSERT_EQ(ports.size(), 1u) << ports;
  std::string veth = ports[0]["ifname"];
  EXPECT_EQ(trim(slurp("/sys/class/net/" + veth + "/brport/hairpin_mode")), "1");
  EXPECT_EQ(trim(slurp("/proc/sys/net/ipv4/conf/" + bridge_ + "/route_localnet")), "1");

  // Container side: lo and eth0 up, the address, the host's MTU, the default route.
  std::string netns = "/proc/" + std::to_string(pid_of(id)) + "/ns/net";
  Json links = ip_json(this, netns, "addr");
  ASSERT_EQ(links.size(), 2u) << links;
  Json lo = find_link(links, "lo");
  Json eth0 = find_link(links, "eth0");
  ASSERT_FALSE(eth0.empty()) << links;
  EXPECT_EQ(lo["operstate"], "UNKNOWN");  // lo reports UNKNOWN when up
  EXPECT_NE(std::find(lo["flags"].begin(), lo["flags"].end(), "UP"), lo["flags"].end());
  EXPECT_EQ(eth0["operstate"], "UP");
  EXPECT_EQ(std::to_string(eth0["mtu"].get<int>()), host_default_route_mtu());
  EXPECT_EQ(eth0["addr_info"][0]["local"], address);
  EXPECT_EQ(eth0["addr_info"][0]["prefixlen"], 24);
  Json routes = ip_json(this, netns, "route");
  bool default_route = false;
  for (const auto& route : routes)
    default_route |= route.value("dst", "") == "default" && route.value("gateway", "") == gateway_;
  EXPECT_TRUE(default_route) << routes;

  // Recorded in the IPAM state, reported in `barge state` annotations.
  Json state = ipam_state();
  ASSERT_EQ(state["endpoints"].size(), 1u);
  EXPECT_EQ(state["endpoints"][0]["address"], address);
  EXPECT_FALSE(state["endpoints"][0]["pending"].get<bool>());
  ProcResult oci = run_process({BARGE_BINARY, "--root", root_, "state", id});
  EXPECT_EQ(Json::parse(oci.out)["annotations"]["barge.network.address"], address);

  ProcResult removed = container({"rm", "--force", id});
  ASSERT_EQ(removed.status, 0) << removed.describe();
  EXPECT_TRUE(links_on_bridge().empty());
  EXPECT_EQ(run_shell("ip -br link show " + veth + " 2>/dev/null"), "");
  EXPECT_TRUE(ipam_state()["endpoints"].empty());
  for (const auto& leftover : container_leftovers()) ADD_FAILURE() << leftover;
}

TEST_F(NetworkBridgeTest, FailedRunsLeaveNothing) {
  // The runtime fails the create (no such executable): network, mount and dirs are undone.
  ProcResult missing = container(
      {"run", "--cgroup-parent", "/barge-test", "--entrypoint", "/no/such/binary", "bb:1"});
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.err.find("/no/such/binary"), std::string::npos) << missing.err;
  for (const auto& leftover : container_leftovers()) ADD_FAILURE() << "missing exec: " << leftover;

  // A bad image reference fails before the network is touched.
  ProcResult bad_image = container({"run", "nope:1", "true"});
  EXPECT_NE(bad_image.status, 0);
  EXPECT_NE(bad_image.err.find("nope:1"), std::string::npos) << bad_image.err;
  for (const auto& leftover : container_leftovers()) ADD_FAILURE() << "bad image: " << leftover;

  // A bad --publish fails before anything exists.
  ProcResult bad_port = container({"run", "-p", "99999:80", "bb:1", "true"});
  EXPECT_NE(bad_port.status, 0);
  EXPECT_NE(bad_port.err.find("99999"), std::string::npos) << bad_port.err;
  for (const auto& leftover : container_leftovers()) ADD_FAILURE() << "bad port: " << leftover;

  // A name in use is refused without touching the first container.
  std::string id = run_detached({"--name", "taken", "bb:1", "sleep 60"});
  ProcResult taken = container({"run", "--name", "taken", "bb:1", "true"});
  EXPECT_NE(taken.status, 0);
  EXPECT_NE(taken.err.find("is already in use"), std::string::npos) << taken.err;
  EXPECT_EQ(inspect(id)["status"], "running");
  EXPECT_EQ(ipam_state()["endpoints"].size(), 1u);
}

TEST_F(NetworkBridgeTest, ForegroundRunReturnsTheExitCodeAndRmFreesEverything) {
  ProcResult r = container(
      {"run", "--rm", "--cgroup-parent", "/barge-test", "bb:1", "ip -o -4 addr show eth0; exit 7"});
  EXPECT_EQ(r.status, 7) << r.describe();
  EXPECT_NE(r.out.find("10.214." + std::to_string(third_octet_) + "."), std::string::npos) << r.out;
  for (const auto& leftover : container_leftovers()) ADD_FAILURE() << leftover;

  // Without --rm the stopped container stays listed, its address and veth already released.
  r = container({"run", "--name", "kept", "--cgroup-parent", "/barge-test", "bb:1", "true"});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(inspect("kept")["status"], "stopped");
  EXPECT_TRUE(ipam_state()["endpoints"].empty());
  EXPECT_TRUE(links_on_bridge().empty());
}

TEST_F(NetworkBridgeTest, HttpByAddressFromTheHostAndBetweenContainers) {
  std::string a = run_httpd("alpha");
  std::string b = run_httpd("beta");
  std::string a_ip = inspect(a)["address"], b_ip = inspect(b)["address"];
  ASSERT_NE(a_ip, b_ip);
  EXPECT_EQ(http_get("http://" + a_ip + "/"), "hello from alpha");
  EXPECT_EQ(http_get("http://" + b_ip + "/"), "hello from beta");
  ProcResult from_b = container({"exec", b, "sh", "-c", http_get_command("http://" + a_ip + "/")});
  EXPECT_EQ(trim(from_b.out), "hello from alpha") << from_b.describe();
  ProcResult from_a = container({"exec", a, "sh", "-c", http_get_command("http://" + b_ip + "/")});
  EXPECT_EQ(trim(from_a.out), "hello from beta") << from_a.describe();
}

TEST_F(NetworkBridgeTest, OutboundReachesAServerOnTheHost) {
  // The test's own server listens on the bridge address (the containers' gateway) only.
  std::string www = dir_ + "/host-www";
  std::filesystem::create_directories(www);
  std::ofstream(www + "/index.html") << "hello from the host\n";
  std::string id = run_detached({"bb:1", "sleep 60"});  // creates the bridge
  ASSERT_FALSE(id.empty());
  Background server({"busybox", "httpd", "-f", "-p", gateway_ + ":18099", "-h", www});
  // httpd may still be binding: the client retries within its bound.
  ProcResult got =
      container({"exec", id, "sh", "-c", http_get_command("http://" + gateway_ + ":18099/")});
  EXPECT_EQ(trim(got.out), "hello from the host") << got.describe();
}

TEST_F(NetworkBridgeTest, NetworkNoneHasOnlyLoopbackUp) {
  ProcResult r = container({"run", "--rm", "--network", "none", "--cgroup-parent", "/barge-test",
                            "bb:1", "ip -o link; cat /etc/hosts"});
  ASSERT_EQ(r.status, 0) << r.describe();
  auto lines = split_lines(trim(r.out));
  ASSERT_GE(lines.size(), 1u);
  EXPECT_NE(lines[0].find("1: lo: <LOOPBACK,UP,LOWER_UP>"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("eth0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("127.0.0.1\tlocalhost"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(state_ + "/" + bridge_ + "/state.json"))
      << "--network none must not touch the bridge network";
}

TEST_F(NetworkBridgeTest, NetworkHostSharesTheHostNamespace) {
  std::string host_ns = ns_link("self", "net");
  ProcResult r = container({"run", "--rm", "--network", "host", "--cgroup-parent", "/barge-test",
                            "bb:1", "readlink /proc/self/ns/net"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(trim(r.out), host_ns);
}

TEST_F(NetworkBridgeTest, NetworkContainerSharesAnotherContainersNamespace) {
  std::string web = run_httpd("web");
  std::string web_ns = ns_link(std::to_string(pid_of(web)), "net");
  std::string sidecar = run_detached({"--network", "container:" + web, "bb:1", "sleep 60"});
  EXPECT_EQ(ns_link(std::to_string(pid_of(sidecar)), "net"), web_ns);
  // The sidecar reaches the server on the shared loopback; it has no endpoint of its own.
  ProcResult got = container({"exec", sidecar, "sh", "-c", http_get_command("http://127.0.0.1/")});
  EXPECT_EQ(trim(got.out), "hello from web") << got.describe();
  EXPECT_EQ(ipam_state()["endpoints"].size(), 1u);
  EXPECT_EQ(slurp(data_ + "/" + sidecar + "/hosts"), slurp(data_ + "/" + web + "/hosts"));

  ProcResult stopped = container({"run", "--network", "container:nobody", "bb:1", "true"});
  EXPECT_NE(stopped.status, 0);
  EXPECT_NE(stopped.err.find("container:nobody"), std::string::npos) << stopped.err;
}

TEST_F(NetworkBridgeTest, EtcFilesNameTheContainer) {
  ProcResult r = container({"run", "--rm", "--name", "named", "--cgroup-parent", "/barge-test",
                            "-e", "GREETING=hi there", "bb:1",
                            "echo \"$GREETING\"; hostname; cat /etc/hostname /etc/hosts "
                            "/etc/resolv.conf"});
  ASSERT_EQ(r.status, 0) << r.describe();
  auto lines = split_lines(r.out);
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[0], "hi there");  // -e K=V
  lines.erase(lines.begin());
  EXPECT_EQ(lines[0], "named");
  EXPECT_EQ(lines[1], "named");
  EXPECT_NE(r.out.find("\tnamed\n"), std::string::npos) << r.out;
  for (const auto& line : lines) {
    if (!line.starts_with("nameserver ")) continue;
    EXPECT_FALSE(line.starts_with("nameserver 127.")) << "loopback resolver kept: " << line;
  }
}

TEST_F(NetworkBridgeTest, DetachedOutputIsLoggedAndExecStopRmWork) {
  std::string id = run_detached({"bb:1", "echo to-stdout; echo to-stderr >&2; exec sleep 600"});
  ASSERT_FALSE(id.empty());
  ProcResult exec = container({"exec", id, "sh", "-c", "echo in-exec; exit 3"});
  EXPECT_EQ(exec.status, 3) << exec.describe();
  EXPECT_EQ(trim(exec.out), "in-exec");
  ProcResult logs = container({"logs", id});
  EXPECT_NE(logs.out.find("to-stdout\n"), std::string::npos) << logs.describe();
  EXPECT_NE(logs.out.find("to-stderr\n"), std::string::npos) << logs.describe();

  ProcResult busy = container({"rm", id});
  EXPECT_NE(busy.status, 0);
  EXPECT_NE(busy.err.find("running"), std::string::npos) << busy.err;
  // sleep as pid 1 ignores TERM: stop escalates to KILL after the timeout.
  ProcResult stopped = container({"stop", "-t", "1", id});
  EXPECT_EQ(stopped.status, 0) << stopped.describe();
  EXPECT_EQ(inspect(id)["status"], "stopped");
  EXPECT_TRUE(ipam_state()["endpoints"].empty()) << "stop releases the address";
  ProcResult removed = container({"rm", id});
  EXPECT_EQ(removed.status, 0) << removed.describe();
  ProcResult gone = container({"inspect", id});
  EXPECT_NE(gone.status, 0);
  EXPECT_NE(gone.err.find("no such container"), std::string::npos) << gone.err;
}

TEST_F(NetworkBridgeTest, DetachedRmRemovesTheContainerWhenItExits) {
  std::string id = run_detached({"--rm", "-p", "18195:80", "bb:1", "sleep 0.5"});
  ASSERT_FALSE(id.empty());
  // A remover outlives `run` and removes everything once the container exits: wait for it
  // (bounded), then nothing may be left.
  bool gone = false;
  for (int i = 0; i < 300 && !gone; ++i) {
    gone = !std::filesystem::exists(data_ + "/" + id);
    if (!gone) ::usleep(50 * 1000);
  }
  EXPECT_TRUE(gone) << "the --rm container is still there";
  for (const auto& leftover : container_leftovers()) ADD_FAILURE() << leftover;
}

}  // namespace
}  // namespace barge::test

// network/ pure logic: addresses and subnets, the -p syntax, IPAM allocation, the iptables
// batches, the /etc files a container gets.
#include "network/network.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "common/error.hpp"
#include "common/file.hpp"
#include "network/address.hpp"
#include "network/etc_files.hpp"
#include "network/ipam.hpp"
#include "network/iptables.hpp"
#include "network/ports.hpp"

using namespace barge::network;

namespace {

Ipv4 ip(const char* text) {
  return parse_ipv4(text).value();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const barge::Error& e) {
    return e.what();
  }
  return "";
}

NetworkRecord record_for(const char* subnet) {
  NetworkRecord r;
  r.bridge = "bt0";
  r.chain_prefix = "BT";
  r.subnet = parse_subnet(subnet, "subnet");
  r.last = r.gateway();
  return r;
}

Endpoint endpoint(const char* address, std::vector<PortMapping> ports = {}) {
  Endpoint e;
  e.root = "/run/x";
  e.id = std::string("c-") + address;
  e.address = ip(address);
  e.ports = std::move(ports);
  return e;
}

}  // namespace

TEST(NetworkAddress, ParsesAndPrintsDottedQuads) {
  EXPECT_EQ(ip("10.1.2.3").value, 0x0a010203u);
  EXPECT_EQ(to_string(ip("192.168.0.255")), "192.168.0.255");
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.x", "1..2.3"})
    EXPECT_FALSE(parse_ipv4(bad)) << bad;
}

TEST(NetworkAddress, SubnetsRejectHostBitsAndKnowTheirOverlaps) {
  Subnet s = parse_subnet("172.28.0.0/16", "subnet");
  EXPECT_TRUE(s.contains(ip("172.28.255.1")));
  EXPECT_FALSE(s.contains(ip("172.29.0.1")));
  EXPECT_EQ(to_string(s.broadcast()), "172.28.255.255");
  EXPECT_TRUE(s.overlaps(parse_subnet("172.28.5.0/24", "x")));
  EXPECT_TRUE(s.overlaps(parse_subnet("172.0.0.0/8", "x")));
  EXPECT_FALSE(s.overlaps(parse_subnet("172.29.0.0/16", "x")));
  EXPECT_NE(error_of([] { parse_subnet("10.0.0.1/24", "--subnet"); }).find("host bits"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_subnet("10.0.0.0/33", "--subnet"); }).find("--subnet"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_subnet("10.0.0.0", "--subnet"); }), "");
}

TEST(NetworkPorts, ParsesEveryPublishForm) {
  auto one = parse_publish("8080:80");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].host_port, 8080);
  EXPECT_EQ(one[0].container_port, 80);
  EXPECT_EQ(one[0].protocol, Protocol::tcp);
  EXPECT_EQ(one[0].host_ip.value, 0u);

  auto dynamic = parse_publish("53/udp");
  ASSERT_EQ(dynamic.size(), 1u);
  EXPECT_EQ(dynamic[0].host_port, 0);
  EXPECT_EQ(dynamic[0].protocol, Protocol::udp);

  auto zero = parse_publish("0:80");  // host port 0: dynamic too
  ASSERT_EQ(zero.size(), 1u);
  EXPECT_EQ(zero[0].host_port, 0);
  EXPECT_EQ(zero[0].container_port, 80);

  auto with_ip = parse_publish("127.0.0.1:9000:90/tcp");
  EXPECT_EQ(to_string(with_ip[0].host_ip), "127.0.0.1");
  EXPECT_EQ(with_ip[0].host_port, 9000);

  auto ip_dynamic = parse_publish("127.0.0.1::90");
  EXPECT_EQ(ip_dynamic[0].host_port, 0);
  EXPECT_EQ(to_string(ip_dynamic[0].host_ip), "127.0.0.1");

  auto range = parse_publish("8000-8002:80-82");
  ASSERT_EQ(range.size(), 3u);
  EXPECT_EQ(range[2].host_port, 8002);
  EXPECT_EQ(range[2].container_port, 82);

  auto dynamic_range = parse_publish("80-81");
  ASSERT_EQ(dynamic_range.size(), 2u);
  EXPECT_EQ(dynamic_range[1].host_port, 0);
}

TEST(NetworkPorts, BadPublishSpecsNameTheSpec) {
  for (const char* bad : {"", "0", "70000", "80/sctp", "x:80", "1.2.3.4:5:6:7", "8000-8001:80",
                          "9-8:80", "[::1]:80:80", "80-5000"}) {
    std::string message = error_of([&] { parse_publish(bad); });
    EXPECT_NE(message.find(std::string("\"") + bad + "\""), std::string::npos)
        << bad << ": " << message;
  }
}

TEST(NetworkPorts, ExposedPortsAreDynamic) {
  auto ports = parse_exposed("80/tcp,53/udp,8080");
  ASSERT_EQ(ports.size(), 3u);
  EXPECT_EQ(ports[1].protocol, Protocol::udp);
  EXPECT_EQ(ports[2].container_port, 8080);
  for (const auto& p : ports) EXPECT_EQ(p.host_port, 0);
}

TEST(NetworkPorts, ConflictsNeedTheSameProtocolPortAndMeetingAddresses) {
  PortMapping any{Protocol::tcp, Ipv4{}, 8080, 80};
  PortMapping local{Protocol::tcp, ip("127.0.0.1"), 8080, 81};
  PortMapping other_ip{Protocol::tcp, ip("192.0.2.9"), 8080, 81};
  PortMapping udp{Protocol::udp, Ipv4{}, 8080, 80};
  EXPECT_TRUE(conflicts(any, local));
  EXPECT_FALSE(conflicts(local, other_ip));
  EXPECT_FALSE(conflicts(any, udp));
  EXPECT_EQ(describe(local), "127.0.0.1:8080->81/tcp");
  EXPECT_EQ(describe_host_port(udp), "8080/udp on 0.0.0.0");
}

TEST(NetworkIpam, AllocatesRoundRobinSkippingGatewayAndBroadcast) {
  NetworkRecord r = record_for("10.9.0.0/29");  // hosts .2 .. .6
  std::vector<std::string> got;
  for (int i = 0; i < 5; ++i) {
    auto next = next_free_address(r);
    ASSERT_TRUE(next);
    got.push_back(to_string(*next));
    r.endpoints.push_back(endpoint(got.back().c_str()));
    r.last = *next;
  }
  EXPECT_EQ(got,
            (std::vector<std::string>{"10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"}));
  EXPECT_FALSE(next_free_address(r));
  // Released addresses come back only after the rest of the ring.
  std::erase_if(r.endpoints, [](const Endpoint& e) { return to_string(e.address) == "10.9.0.3"; });
  EXPECT_EQ(to_string(*next_free_address(r)), "10.9.0.3");
  r.last = ip("10.9.0.3");
  r.endpoints.push_back(endpoint("10.9.0.3"));
  std::erase_if(r.endpoints, [](const Endpoint& e) { return to_string(e.address) == "10.9.0.2"; });
  EXPECT_EQ(to_string(*next_free_address(r)), "10.9.0.2");
}

TEST(NetworkIpam, PortOwnerFindsThePublisher) {
  NetworkRecord r = record_for("10.9.0.0/24");
  r.endpoints.push_back(endpoint("10.9.0.2", {{Protocol::tcp, Ipv4{}, 8080, 80}}));
  const Endpoint* owner = port_owner(r, {Protocol::tcp, ip("127.0.0.1"), 8080, 1});
  ASSERT_NE(owner, nullptr);
  EXPECT_EQ(owner->id, "c-10.9.0.2");
  EXPECT_EQ(port_owner(r, {Protocol::udp, Ipv4{}, 8080, 1}), nullptr);
}

TEST(NetworkIpam, RecordRoundTripsAndStalenessFollowsTheProcesses) {
  NetworkRecord r = record_for("10.9.0.0/24");
  Endpoint e = endpoint("10.9.0.7", {{Protocol::udp, ip("127.0.0.1"), 5353, 53}});
  e.owner = ProcessRef::of(::getpid());
  r.endpoints.push_back(e);
  NetworkRecord back = record_from_json(to_json(r));
  ASSERT_EQ(back.endpoints.size(), 1u);
  EXPECT_EQ(back.endpoints[0].ports, e.ports);
  EXPECT_EQ(back.subnet, r.subnet);
  EXPECT_TRUE(back.endpoints[0].pending);
  EXPECT_FALSE(back.endpoints[0].stale());  // we are alive
  Endpoint dead = e;
  dead.owner.start += 1;  // the same pid, another process
  EXPECT_TRUE(dead.stale());
  dead.pending = false;
  dead.init = ProcessRef::of(::getpid());
  EXPECT_FALSE(dead.stale());  // committed, its container is alive
  EXPECT_NE(error_of([] { record_from_json("{}"); }).find("network state"), std::string::npos);
}

TEST(NetworkIptables, ContainerBatchAndItsInverse) {
  Ipv4 address = ip("10.9.0.5");
  std::string batch = iptables::container_batch(
      "BT", address,
      {{Protocol::tcp, Ipv4{}, 8080, 80}, {Protocol::udp, ip("127.0.0.1"), 5353, 53}});
  EXPECT_EQ(batch,
            "*nat\n"
            ":BT-0a090005 - [0:0]\n"
            "-A BT-0a090005 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.9.0.5:80\n"
            "-A BT-0a090005 -d 127.0.0.1/32 -p udp -m udp --dport 5353 -j DNAT "
            "--to-destination 10.9.0.5:53\n"
            "-A BT-DNAT -j BT-0a090005\n"
            "COMMIT\n");
  EXPECT_EQ(iptables::remove_container_batch("BT", {address}),
            "*nat\n-D BT-DNAT -j BT-0a090005\n-F BT-0a090005\n-X BT-0a090005\nCOMMIT\n");
}

TEST(NetworkIptables, SaveOutputDrivesWhatIsInstalledOrRemoved) {
  std::string save =
      "*nat\n:PREROUTING ACCEPT [0:0]\n:BT-DNAT - [0:0]\n:BT-0a090005 - [0:0]\n"
      ":BT-POSTROUTING - [0:0]\n"
      "-A PREROUTING -m addrtype --dst-type LOCAL -j BT-DNAT\n"
      "-A BT-0a090005 -p tcp -m tcp --dport 1 -j DNAT --to-destination 10.9.0.5:1\n"
      "COMMIT\n*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n";
  auto existing = iptables::parse_save(save);
  EXPECT_TRUE(existing.has_chain("nat", "BT-DNAT"));
  EXPECT_FALSE(existing.has_chain("filter", "BT-DNAT"));
  EXPECT_EQ(iptables::container_chains("BT", existing), std::vector<std::string>{"BT-0a090005"});

  iptables::BaseContext context{"BT", "bt0", parse_subnet("10.9.0.0/24", "x")};
  std::string base = iptables::base_batch(context, existing);
  EXPECT_EQ(base.find(":BT-DNAT"), std::string::npos) << "P-DNAT holds the containers' jumps";
  EXPECT_EQ(base.find("-I PREROUTING"), std::string::npos) << "the jump exists";
  EXPECT_NE(base.find("-I OUTPUT -m addrtype --dst-type LOCAL -j BT-DNAT"), std::string::npos);
  EXPECT_NE(base.find("-A BT-POSTROUTING -s 10.9.0.0/24 ! -o bt0 -j MASQUERADE"),
            std::string::npos);
  EXPECT_NE(base.find("-I FORWARD -j BT-FORWARD"), std::string::npos);

  // The jump from BT-DNAT is gone (a crash midway): only the chain is removed.
  EXPECT_EQ(iptables::remove_container_batch("BT", {ip("10.9.0.5")}, existing),
            "*nat\n-F BT-0a090005\n-X BT-0a090005\nCOMMIT\n");
  std::string remove = iptables::remove_base_batch(context, existing);
  EXPECT_NE(remove.find("-D PREROUTING -m addrtype --dst-type LOCAL -j BT-DNAT"),
            std::string::npos);
  EXPECT_EQ(remove.find("-D OUTPUT"), std::string::npos);
  EXPECT_EQ(remove.find("BT-FORWARD"), std::string::npos);
}

TEST(NetworkEtcFiles, HostsNameTheContainer) {
  std::string hosts = hosts_file("web", ip("10.9.0.5"));
  EXPECT_NE(hosts.find("127.0.0.1\tlocalhost\n"), std::string::npos);
  EXPECT_NE(hosts.find("10.9.0.5\tweb\n"), std::string::npos);
  EXPECT_EQ(hosts_file("web", std::nullopt).find("web"), std::string::npos);
}

TEST(NetworkEtcFiles, LoopbackNameserversAreDropped) {
  auto resolv = container_resolv_conf(
      "# comment\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nnameserver ::1\n"
      "search example.org\noptions edns0\n");
  EXPECT_EQ(resolv.text,
            "# comment\nnameserver 10.255.255.53\nsearch example.org\noptions edns0\n");
  EXPECT_EQ(resolv.dropped, (std::vector<std::string>{"127.0.0.53", "::1"}));
}

TEST(NetworkEtcFiles, AStubOnlyResolvConfFallsBackToTheUpstreamList) {
  std::string dir = "/tmp/barge-resolv-XXXXXX";
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  std::string stub = dir + "/stub.conf", mixed = dir + "/mixed.conf", upstream = dir + "/up.conf";
  barge::write_file(stub, "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n");
  barge::write_file(mixed, "nameserver 127.0.0.1\nnameserver 10.255.255.53\n");
  barge::write_file(upstream, "nameserver 10.255.255.54\nsearch lan\n");

  // Only the local stub: systemd-resolved's upstream list replaces it.
  EXPECT_EQ(host_resolv_conf(stub, upstream), "nameserver 10.255.255.54\nsearch lan\n");
  // A reachable nameserver next to the loopback one: the host's file, the loopback one dropped.
  EXPECT_EQ(host_resolv_conf(mixed, upstream), barge::read_file(mixed));
  EXPECT_EQ(container_resolv_conf(host_resolv_conf(mixed, upstream)).text,
            "nameserver 10.255.255.53\n");
  // Only the stub and no upstream list: nothing reachable is left (the caller warns).
  auto left = container_resolv_conf(host_resolv_conf(stub, dir + "/absent.conf"));
  EXPECT_FALSE(has_nameserver(left.text)) << left.text;
  EXPECT_EQ(left.dropped, std::vector<std::string>{"127.0.0.53"});
  EXPECT_TRUE(has_nameserver("# x\nnameserver\t10.0.0.1\n"));
  // No /etc/resolv.conf at all is an empty configuration, not an error.
  EXPECT_EQ(host_resolv_conf(dir + "/absent.conf", dir + "/absent2.conf"), "");
  for (const char* name : {"/stub.conf", "/mixed.conf", "/up.conf"}) ::unlink((dir + name).c_str());
  ::rmdir(dir.c_str());
}

TEST(NetworkConfig, TheDefaultSubnetAvoidsHostRoutesAndNameservers) {
  auto subnets = [](std::initializer_list<const char*> list) {
    std::vector<Subnet> out;
    for (const char* s : list) out.push_back(parse_subnet(s, "subnet"));
    return out;
  };
  EXPECT_EQ(to_string(default_subnet({}).value()), "172.28.0.0/16");
  EXPECT_EQ(to_string(default_subnet(subnets({"172.28.3.0/24", "172.29.0.0/16"})).value()),
            "172.30.0.0/16");
  // A /12 route covers 172.28-31; a nameserver (a /32) rules out the subnet it is in.
  EXPECT_EQ(to_string(default_subnet(subnets({"172.16.0.0/12", "10.213.0.53/32"})).value()),
            "10.214.0.0/16");
  EXPECT_FALSE(default_subnet(subnets({"172.16.0.0/12", "10.0.0.0/8", "192.168.0.0/16"})));
}

TEST(NetworkIpam, StateIsReplacedWholeAndLeavesNoTempFile) {
  std::string dir = "/tmp/barge-replace-XXXXXX";
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  std::string path = dir + "/state.json";
  barge::replace_file_volatile(path, "first\n");  // nothing to exchange with yet
  EXPECT_EQ(barge::read_file(path), "first\n");
  // A reader holding the old file keeps the old content; the name has the new one.
  barge::UniqueFd old_reader = barge::open_or_throw(path, O_RDONLY);
  barge::replace_file_volatile(path, "second, longer\n");
  EXPECT_EQ(barge::read_file(path), "second, longer\n");
  char buffer[64] = {};
  ASSERT_GT(::read(old_reader.get(), buffer, sizeof buffer - 1), 0);
  EXPECT_STREQ(buffer, "first\n");
  EXPECT_FALSE(barge::path_exists(dir + "/.state.json.tmp"));
  ::unlink(path.c_str());
  EXPECT_EQ(::rmdir(dir.c_str()), 0) << "something besides state.json was left";
}

TEST(NetworkConfig, ValidationNamesTheSetting) {
  Config config;
  config.bridge = "a-name-that-is-too-long";
  EXPECT_NE(error_of([&] { config.validate(); }).find("bridge name"), std::string::npos);
  config = Config{};
  config.chain_prefix = "BAD PREFIX";
  EXPECT_NE(error_of([&] { config.validate(); }).find("chain prefix"), std::string::npos);
  config = Config{};
  config.state_dir = "relative";
  EXPECT_NE(error_of([&] { config.validate(); }).find("state dir"), std::string::npos);
  EXPECT_EQ(parse_mode("container:web").target, "web");
  EXPECT_EQ(parse_mode("none").kind, Mode::none);
  EXPECT_NE(error_of([] { parse_mode("overlay"); }).find("--network"), std::string::npos);
}

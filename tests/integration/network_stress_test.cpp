// Leaks under load and after crashes: 100 containers with published ports created and removed,
// and `container run` killed with SIGKILL at every step of its setup, then cleaned up by the next
// run (and by `network prune` for what has no owner left to find it).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "tests/integration/network_fixture.hpp"

namespace barge::test {
namespace {

using NetworkStressTest = NetworkTest;

// The lines of iptables-save (both tables) that mention the test's chain prefix, counters zeroed.
std::vector<std::string> rules_of(const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& line : split_lines(run_shell("iptables-save -t nat; iptables-save -t filter")))
    if (line.find(prefix) != std::string::npos)
      out.push_back(line.starts_with(":") ? line.substr(0, line.find(' ')) : line);
  std::sort(out.begin(), out.end());
  return out;
}

std::string netns_state() {
  std::string listing = run_shell("ls -A /run/netns 2>/dev/null");
  return listing + "\nnsfs mounts: " + run_shell("grep -c ' nsfs ' /proc/self/mountinfo || true");
}

TEST_F(NetworkStressTest, HundredContainersWithPublishedPortsLeaveNothing) {
  constexpr int kContainers = 100;
  // One container first so that the bridge and base chains exist: what is there after it is
  // removed is what must be there after the hundred are.
  std::string first = run_detached({"-p", "80", "bb:1", "sleep 600"});
  ASSERT_FALSE(first.empty());
  ASSERT_EQ(container({"rm", "--force", first}).status, 0);
  auto base_rules = rules_of(prefix_);
  ASSERT_FALSE(base_rules.empty());
  std::string links_before = run_shell("ip -o link show | wc -l");
  std::string netns_before = netns_state();

  std::vector<std::string> ids;
  for (int i = 0; i < kContainers; ++i) {
    std::string id = run_detached({"-p", "80", "-p", "53/udp", "bb:1", "sleep 600"});
    ASSERT_FALSE(id.empty()) << "container " << i;
    ids.push_back(id);
  }
  // Every container has its own address, host ports, veth and chain.
  Json state = ipam_state();
  ASSERT_EQ(state["endpoints"].size(), static_cast<size_t>(kContainers));
  std::set<std::string> addresses, host_ports;
  for (const auto& e : state["endpoints"]) {
    addresses.insert(e["address"].get<std::string>());
    for (const auto& p : e["ports"])
      host_ports.insert(p["protocol"].get<std::string>() + "/" + p["hostPort"].dump());
  }
  EXPECT_EQ(addresses.size(), static_cast<size_t>(kContainers));
  EXPECT_EQ(host_ports.size(), static_cast<size_t>(2 * kContainers));
  EXPECT_EQ(links_on_bridge().size(), static_cast<size_t>(kContainers));
  EXPECT_EQ(container_chains().size(), static_cast<size_t>(kContainers));

  std::vector<std::string> rm = {"rm", "--force"};
  rm.insert(rm.end(), ids.begin(), ids.end());
  ProcResult removed = container(rm, {.timeout = 300s});
  ASSERT_EQ(removed.status, 0) << removed.describe();
  for (const auto& leftover : container_leftovers()) ADD_FAILURE() << leftover;
  EXPECT_EQ(run_shell("iptables-save | grep -c -- '" + prefix_ + "-[0-9a-f]\\{8\\}' || true"), "0");
  EXPECT_EQ(rules_of(prefix_), base_rules) << "iptables differs from before the hundred";
  EXPECT_EQ(run_shell("ip -o link show | wc -l"), links_before) << run_shell("ip -br link");
  EXPECT_EQ(netns_state(), netns_before);
}

TEST_F(NetworkStressTest, ParallelRunsNeverShareAnAddressOrAPort) {
  // Runs race from the start (the first ones also race to create the bridge): each must get an
  // address and host port of its own, and of two runs asking for one fixed port exactly one wins.
  constexpr int kRuns = 10;
  std::vector<ProcResult> results(kRuns + 2);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRuns + 2; ++i) {
    threads.emplace_back([&, i] {
      std::string port = i < kRuns ? "80" : "18194:80";
      results[i] = container({"run", "-d", "--cgroup-parent", "/barge-test", "--name",
                              "par" + std::to_string(i), "-p", port, "bb:1", "sleep 600"},
                             {.timeout = 180s});
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kRuns; ++i) EXPECT_EQ(results[i].status, 0) << results[i].describe();
  int winners = 0;
  for (int i = kRuns; i < kRuns + 2; ++i) {
    if (results[i].status == 0) {
      ++winners;
    } else {
      EXPECT_NE(results[i].err.find("18194/tcp"), std::string::npos) << results[i].err;
    }
  }
  EXPECT_EQ(winners, 1);

  // The record, and what the kernel shows inside each container, agree: all distinct.
  Json state = ipam_state();
  ASSERT_EQ(state["endpoints"].size(), static_cast<size_t>(kRuns + 1)) << state;
  std::set<std::string> recorded, in_kernel, host_ports;
  for (const auto& e : state["endpoints"]) {
    recorded.insert(e["address"].get<std::string>());
    for (const auto& p : e["ports"]) host_ports.insert(p["hostPort"].dump());
    std::string netns = "/proc/" + std::to_string(pid_of(e["id"])) + "/ns/net";
    in_kernel.insert(
        trim(in_netns(netns, "ip -o -4 addr show eth0 | awk '{print $4}' | cut -d/ -f1").out));
  }
  EXPECT_EQ(recorded.size(), static_cast<size_t>(kRuns + 1));
  EXPECT_EQ(in_kernel, recorded);
  EXPECT_EQ(host_ports.size(), static_cast<size_t>(kRuns + 1));
  EXPECT_EQ(links_on_bridge().size(), static_cast<size_t>(kRuns + 1));
  EXPECT_EQ(container_chains().size(), static_cast<size_t>(kRuns + 1));
}

// The steps of `container run` a SIGKILL can interrupt, in order.
const char* const kFailpoints[] = {"run.claimed",   "run.bundled", "network.allocated",
                                   "network.rules", "run.created", "network.veth",
                                   "run.attached",  "run.started"};

class KilledRunTest : public NetworkTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(KilledRunTest, TheNextRunCleansUpAfterIt) {
  // The network exists already, so a kill inside network setup hits a live bridge.
  std::string survivor = run_httpd("survivor", {"-p", "18190:80"});
  ::setenv("BARGE_FAILPOINT", GetParam(), 1);
  ProcResult killed = container({"run", "-d", "--name", "victim", "--cgroup-parent", "/barge-test",
                                 "-p", "18191:80", "bb:1", "sleep 600"});
  ::unsetenv("BARGE_FAILPOINT");
  ASSERT_EQ(killed.status, 128 + SIGKILL) << killed.describe();
  EXPECT_TRUE(std::filesystem::exists(data_) && !std::filesystem::is_empty(data_))
      << "the killed run left its claim";

  // The next run (any container) finds the dead run's leftovers and removes all of them.
  ProcResult next = container(
      {"run", "--rm", "--cgroup-parent", "/barge-test", "-p", "18191:80", "bb:1", "true"});
  ASSERT_EQ(next.status, 0) << "the victim's port is free again: " << next.describe();
  Json listed = Json::parse(container({"ls", "--format", "json"}).out);
  ASSERT_EQ(listed.size(), 1u) << listed;
  EXPECT_EQ(listed[0]["id"], "survivor");
  Json state = ipam_state();
  ASSERT_EQ(state["endpoints"].size(), 1u) << state;
  EXPECT_EQ(state["endpoints"][0]["id"], "survivor");
  EXPECT_EQ(links_on_bridge().size(), 1u);
  EXPECT_EQ(container_chains().size(), 1u);
  EXPECT_TRUE(mounts_mentioning(data_ + "/victim").empty());
  EXPECT_TRUE(cgroup_dirs("barge-test/victim").empty());
  EXPECT_FALSE(std::filesystem::exists(root_ + "/victim"));
  EXPECT_EQ(http_get("http://127.0.0.1:18190/"), "hello from survivor");
}

INSTANTIATE_TEST_SUITE_P(EveryStep, KilledRunTest, ::testing::ValuesIn(kFailpoints),
                         [](const ::testing::TestParamInfo<const char*>& step) {
                           std::string name = step.param;
                           std::replace(name.begin(), name.end(), '.', '_');
                           return name;
                         });

TEST_F(NetworkStressTest, PruneRemovesWhatNoRecordOwns) {
  std::string id = run_detached({"-p", "18192:80", "bb:1", "sleep 600"});
  ASSERT_FALSE(id.empty());
  // Lose the state (as if its directory were wiped): the veth and chain now belong to nobody.
  Json state = ipam_state();
  std::string path = state_ + "/" + bridge_ + "/state.json";
  Json emptied = state;
  emptied["endpoints"] = Json::array();
  {
    std::ofstream out(path);
    out << emptied.dump();
  }
  ProcResult pruned = network({"prune"});
  ASSERT_EQ(pruned.status, 0) << pruned.describe();
  EXPECT_NE(pruned.out.find("1 veths, 1 chains"), std::string::npos) << pruned.out;
  EXPECT_TRUE(links_on_bridge().empty());
  EXPECT_TRUE(container_chains().empty());
  // Base chains are kept (and repaired): a new container publishes fine.
  std::string again = run_httpd("again", {"-p", "18193:80"});
  EXPECT_EQ(http_get("http://127.0.0.1:18193/"), "hello from again");
}

}  // namespace
}  // namespace barge::test

// Leaks under load and after crashes: 100 containers with published ports created and removed,
// and `container run` killed with SIGKILL at every step of its setup, then cleaned up by the next
// run (and by `network prune` for what has no owner left to find it).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "tests/integration/network_fixture.hpp"

namespace barge::test {
namespace {

using NetworkStressTest = NetworkTest;

TEST_F(NetworkStressTest, HundredContainersWithPublishedPortsLeaveNothing) {
  constexpr int kContainers = 100;
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

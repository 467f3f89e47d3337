// update's pure parts: runc's size syntax, the resources JSON round trip and merge, and the ps
// table filter.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>

#include "cgroups/resources_json.hpp"
#include "common/error.hpp"
#include "runtime/cgroup_ops.hpp"

namespace cg = barge::cgroups;
namespace spec = barge::spec;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const barge::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(CgroupUpdate, MemorySizesLikeRunc) {
  EXPECT_EQ(cg::parse_memory_size("1024", "--memory"), 1024);
  EXPECT_EQ(cg::parse_memory_size("512k", "--memory"), 512 * 1024);
  EXPECT_EQ(cg::parse_memory_size("512m", "--memory"), 512LL << 20);
  EXPECT_EQ(cg::parse_memory_size("1g", "--memory"), 1LL << 30);
  EXPECT_EQ(cg::parse_memory_size("1G", "--memory"), 1LL << 30);
  EXPECT_EQ(cg::parse_memory_size("1GiB", "--memory"), 1LL << 30);
  EXPECT_EQ(cg::parse_memory_size("2 MB", "--memory"), 2LL << 20);
  EXPECT_EQ(cg::parse_memory_size("1.5g", "--memory"), 3LL << 29);
  EXPECT_EQ(cg::parse_memory_size("100b", "--memory"), 100);
  EXPECT_EQ(cg::parse_memory_size("-1", "--memory-swap"), -1);
  for (const char* bad : {"", "m", "1x", "-2", "1..2g", "1gg", ".5m"})
    EXPECT_EQ(error_of([&] { cg::parse_memory_size(bad, "--memory"); }),
              std::string("--memory: invalid size: \"") + bad + "\"")
        << bad;
}

TEST(CgroupUpdate, ResourcesJsonRoundTrip) {
  const std::string text = R"({
    "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1,
                 "minor": 3, "access": "rwm"}],
    "memory": {"limit": 1048576, "swap": 2097152, "reservation": 524288},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1"},
    "pids": {"limit": 64},
    "blockIO": {"weight": 300, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]},
    "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
    "rdma": {"mlx5_1": {"hcaHandles": 3}},
    "unified": {"memory.high": "1000000"}
  })";
  spec::Resources r = cg::parse_resources_json(text, "r.json");
  EXPECT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.memory->swap, 2097152);
  EXPECT_EQ(r.cpu->cpus, "0-1");
  EXPECT_EQ(r.pids_limit, 64);
  EXPECT_EQ(r.block_io->throttle_read_bps_device.at(0).rate, 1000u);
  EXPECT_EQ(r.hugepage_limits.at(0).page_size, "2MB");
  EXPECT_EQ(r.rdma.at("mlx5_1").hca_handles, 3u);
  std::string again = cg::resources_to_json(r);
  EXPECT_EQ(cg::resources_to_json(cg::parse_resources_json(again, "again")), again);
}

// Every field linux.resources has, set: what update persists must be exactly what was read.
TEST(CgroupUpdate, ResourcesJsonWritesBackEveryFieldItReads) {
  const std::string text = R"({
    "devices": [{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
    "memory": {"limit": 1, "reservation": 2, "swap": 3, "kernel": 4, "kernelTCP": 5, "swappiness": 6,
               "disableOOMKiller": true, "useHierarchy": false, "checkBeforeUpdate": true},
    "cpu": {"shares": 1, "quota": 2, "burst": 3, "period": 4, "realtimeRuntime": 5,
            "realtimePeriod": 6, "cpus": "0-1", "mems": "0", "idle": 1},
    "pids": {"limit": 64},
    "blockIO": {"weight": 10, "leafWeight": 20,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 30, "leafWeight": 40}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 1, "rate": 1}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 2, "rate": 2}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 3, "rate": 3}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 4, "rate": 4}]},
    "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
    "network": {"classID": 7, "priorities": [{"name": "eth0", "priority": 5}]},
    "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 4}},
    "unified": {"memory.high": "1000000"}
  })";
  auto written = nlohmann::json::parse(cg::resources_to_json(cg::parse_resources_json(text, "r")));
  EXPECT_EQ(written, nlohmann::json::parse(text)) << written.dump(2);
}

TEST(CgroupUpdate, ResourcesJsonErrorsNameFieldAndSource) {
  EXPECT_EQ(error_of([] { cg::parse_resources_json(R"({"memory": {"limit": "x"}})", "f.json"); }),
            "f.json: linux.resources.memory.limit: expected integer, got string");
  EXPECT_NE(
      error_of([] { cg::parse_resources_json("{\n  \"memory\": ,}", "f.json"); }).find("f.json:2:"),
      std::string::npos);
  EXPECT_NE(error_of([] { cg::parse_resources_json("[]", "f.json"); }).find("expected an object"),
            std::string::npos);
}

TEST(CgroupUpdate, MergeKeepsUnchangedFields) {
  spec::Resources base = cg::parse_resources_json(
      R"({"memory": {"limit": 100, "swap": 200}, "cpu": {"shares": 2, "cpus": "0"},
          "pids": {"limit": 5}, "devices": [{"allow": false, "access": "rwm"}]})",
      "base");
  spec::Resources change = cg::parse_resources_json(
      R"({"memory": {"limit": 150}, "cpu": {"quota": 1000}, "blockIO": {"weight": 10},
          "devices": [{"allow": true, "access": "rwm"}], "unified": {"io.max": "x"}})",
      "change");
  spec::Resources merged = cg::merge_resources(base, change);
  EXPECT_EQ(merged.memory->limit, 150);
  EXPECT_EQ(merged.memory->swap, 200);
  EXPECT_EQ(merged.cpu->shares, 2u);
  EXPECT_EQ(merged.cpu->quota, 1000);
  EXPECT_EQ(merged.cpu->cpus, "0");
  EXPECT_EQ(merged.pids_limit, 5);
  EXPECT_EQ(merged.block_io->weight, 10);
  ASSERT_EQ(merged.devices.size(), 1u);
  EXPECT_FALSE(merged.devices[0].allow);  // device rules are not updatable
  EXPECT_EQ(merged.unified.at("io.max"), "x");
}

TEST(CgroupPs, FilterKeepsHeaderAndContainerRows) {
  const std::string ps =
      "UID        PID  PPID  C STIME TTY          TIME CMD\n"
      "root         1     0  0 05:00 ?        00:00:01 /sbin/init\n"
      "root      3939     1 17 05:48 ?        00:00:00 sh -c while true; do sleep 1; done\n"
      "root      3944  3939  0 05:48 ?        00:00:00 sleep 1\n"
      "root     39440     1  0 05:48 ?        00:00:00 other\n";
  EXPECT_EQ(barge::runtime::filter_ps_output(ps, {3939, 3944}),
            "UID        PID  PPID  C STIME TTY          TIME CMD\n"
            "root      3939     1 17 05:48 ?        00:00:00 sh -c while true; do sleep 1; done\n"
            "root      3944  3939  0 05:48 ?        00:00:00 sleep 1\n");
  EXPECT_EQ(barge::runtime::filter_ps_output("  PID COMMAND\n 7 sh\n 8 x\n", {8}),
            "  PID COMMAND\n 8 x\n");
  EXPECT_EQ(error_of([] { barge::runtime::filter_ps_output("COMMAND\nsh\n", {1}); }),
            "couldn't find PID field in ps output");
}

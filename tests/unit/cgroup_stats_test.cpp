// Parsers of cgroup stat files against real files (tests/data/cgroup: v1-* from the hybrid dev
// host, v2-* from the cgroup v2 test VM) and the runc-shaped JSON of `events --stats`.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "cgroups/stats.hpp"
#include "common/error.hpp"
#include "common/file.hpp"

namespace cg = barge::cgroups;
namespace detail = barge::cgroups::detail;

namespace {

std::string fixture(const std::string& name) {
  return barge::read_file(std::string(BARGE_TEST_DATA) + "/cgroup/" + name);
}

// Every key of ours (recursively through objects) also exists at the same place in runc's.
void expect_keys_known(const nlohmann::json& ours, const nlohmann::json& runc,
                       const std::string& where) {
  if (!ours.is_object()) return;
  ASSERT_TRUE(runc.is_object()) << where;
  for (const auto& [key, value] : ours.items()) {
    // runc omits zero counters and empty lists (omitempty), so a key of ours it lacks is only
    // wrong when runc's own files would have produced it: checked for the fixed top level.
    if (!runc.contains(key)) continue;
    expect_keys_known(value, runc[key], where + "." + key);
  }
}

}  // namespace

TEST(CgroupStats, FlatKeyedMemoryStatV1) {
  auto stat = detail::parse_flat_keyed(fixture("v1-memory.stat"));
  EXPECT_EQ(stat.size(), 42u);
  EXPECT_EQ(stat.at("cache"), 0u);
  EXPECT_EQ(stat.at("total_rss"), 118784u);
  EXPECT_EQ(stat.at("hierarchical_memory_limit"), 67108864u);
}

TEST(CgroupStats, FlatKeyedMemoryStatV2AndEvents) {
  auto stat = detail::parse_flat_keyed(fixture("v2-memory.stat"));
  EXPECT_EQ(stat.size(), 51u);
  EXPECT_EQ(stat.at("file"), 90112u);
  auto events = detail::parse_flat_keyed(fixture("v2-memory.events"));
  EXPECT_EQ(events.at("oom_kill"), 0u);
  EXPECT_EQ(events.size(), 6u);
  EXPECT_EQ(detail::parse_flat_keyed(fixture("v2-hugetlb.2MB.events")).at("max"), 0u);
}

TEST(CgroupStats, FlatKeyedSkipsMalformedLines) {
  auto out = detail::parse_flat_keyed("a 1\nb two\n\nc 3 4\nd 5");
  EXPECT_EQ(out, (std::map<std::string, uint64_t>{{"a", 1}, {"d", 5}}));
}

TEST(CgroupStats, CpuStatV1AndV2) {
  auto v1 = detail::parse_flat_keyed(fixture("v1-cpu.stat"));
  EXPECT_EQ(v1.at("nr_periods"), 0u);
  EXPECT_TRUE(v1.count("throttled_time"));
  auto v2 = detail::parse_flat_keyed(fixture("v2-cpu.stat"));
  EXPECT_EQ(v2.at("usage_usec"), 555292u);
  EXPECT_EQ(v2.at("user_usec"), 495947u);
  EXPECT_EQ(v2.at("system_usec"), 59344u);
}

TEST(CgroupStats, CpuacctFiles) {
  auto ticks = detail::parse_flat_keyed(fixture("v1-cpuacct.stat"));
  EXPECT_EQ(ticks.at("user"), 8u);
  EXPECT_EQ(ticks.at("system"), 9u);
  EXPECT_EQ(detail::clock_ticks_to_ns(8, 100), 80'000'000u);
  EXPECT_EQ(detail::parse_uint_list(fixture("v1-cpuacct.usage_percpu")),
            (std::vector<uint64_t>{38541097, 138580955}));
  std::vector<uint64_t> user, system;
  detail::parse_cpuacct_usage_all(fixture("v1-cpuacct.usage_all"), user, system);
  EXPECT_EQ(user, (std::vector<uint64_t>{16000000, 64000000}));
  EXPECT_EQ(system, (std::vector<uint64_t>{20000000, 76000000}));
}

TEST(CgroupStats, BlkioV1SkipsTotals) {
  auto bytes = detail::parse_v1_blkio(fixture("v1-blkio.throttle.io_service_bytes_recursive"));
  ASSERT_EQ(bytes.size(), 6u);
  EXPECT_EQ(bytes[1], (cg::BlkioEntry{254, 0, "Write", 204800}));
  EXPECT_EQ(bytes[5].op, "Total");
  auto ios = detail::parse_v1_blkio(fixture("v1-blkio.throttle.io_serviced_recursive"));
  EXPECT_EQ(ios[1], (cg::BlkioEntry{254, 0, "Write", 51}));
  EXPECT_TRUE(detail::parse_v1_blkio(fixture("v1-blkio.bfq.io_service_bytes_recursive")).empty());
}

TEST(CgroupStats, IoStatV2) {
  auto io = detail::parse_v2_io_stat(fixture("v2-io.stat"));
  EXPECT_EQ(io.service_bytes,
            (std::vector<cg::BlkioEntry>{{7, 0, "Read", 122880}, {7, 0, "Write", 204800}}));
  EXPECT_EQ(io.serviced, (std::vector<cg::BlkioEntry>{{7, 0, "Read", 30}, {7, 0, "Write", 50}}));
  EXPECT_TRUE(detail::parse_v2_io_stat("").service_bytes.empty());
}

TEST(CgroupStats, LimitsAndHugepageNames) {
  EXPECT_EQ(detail::parse_limit("max\n", "pids.max"), cg::kUnlimited);
  EXPECT_EQ(detail::parse_limit("42\n", "pids.max"), 42u);
  EXPECT_THROW(detail::parse_limit("x", "pids.max"), barge::Error);
  EXPECT_EQ(detail::hugepage_size_name("hugepages-2048kB"), "2MB");
  EXPECT_EQ(detail::hugepage_size_name("hugepages-1048576kB"), "1GB");
  EXPECT_EQ(detail::hugepage_size_name("hugepages-64kB"), "64KB");
  EXPECT_EQ(detail::hugepage_size_name("other"), "");
}

TEST(CgroupStats, CpusetListsExpandRanges) {
  EXPECT_EQ(detail::parse_cpuset_list("0-2,5\n"), (std::vector<uint16_t>{0, 1, 2, 5}));
  EXPECT_EQ(detail::parse_cpuset_list("0\n"), (std::vector<uint16_t>{0}));
  EXPECT_TRUE(detail::parse_cpuset_list("\n").empty());
  EXPECT_EQ(detail::parse_cpuset_list("x,3"), (std::vector<uint16_t>{3}));
}

TEST(CgroupStats, JsonFollowsRuncShapeAndOmitempty) {
  cg::Stats stats;
  stats.cpu.total_ns = 5;
  stats.cpu.percpu_ns = {2, 3};
  stats.memory.usage = {100, 0, 7, 0};
  stats.memory.raw = detail::parse_flat_keyed(fixture("v1-memory.stat"));
  stats.pids = {2, 0};
  stats.blkio.service_bytes = {{254, 0, "Read", 0}};
  stats.hugetlb["2MB"] = {};
  auto json = cg::stats_to_json(stats);
  EXPECT_EQ(json["cpu"]["usage"]["total"], 5);
  EXPECT_FALSE(json["cpu"]["usage"].contains("percpu_kernel"));
  EXPECT_EQ(json["cpu"]["usage"]["kernel"], 0);  // no omitempty in runc
  EXPECT_EQ(json["cpu"]["throttling"], nlohmann::ordered_json::object());
  EXPECT_EQ(json["memory"]["usage"].dump(), R"({"limit":100,"max":7,"failcnt":0})");
  EXPECT_FALSE(json["memory"].contains("cache"));
  EXPECT_EQ(json["pids"].dump(), R"({"current":2})");
  EXPECT_EQ(json["blkio"]["ioServiceBytesRecursive"].dump(), R"([{"major":254,"op":"Read"}])");
  EXPECT_EQ(json["hugetlb"].dump(), R"({"2MB":{"failcnt":0}})");
  EXPECT_TRUE(json["network_interfaces"].is_null());

  for (const char* runc_file : {"runc-events-stats-v1.json", "runc-events-stats-v2.json"}) {
    auto runc = nlohmann::json::parse(fixture(runc_file))["data"];
    for (const auto& [key, value] : json.items())
      EXPECT_TRUE(runc.contains(key)) << key << " missing from " << runc_file;
    for (const auto& [key, value] : runc.items())
      if (key != "cpuset") {
        EXPECT_TRUE(json.contains(key)) << key << " from " << runc_file;
      }
    expect_keys_known(nlohmann::json::parse(json.dump()), runc, runc_file);
  }
}

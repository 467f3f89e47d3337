// Device rule reduction, v1 writes and the generated cgroup-device BPF program; blockIO, rdma
// conversions.
#include <gtest/gtest.h>

#include "cgroups/devices.hpp"
#include "cgroups/resources.hpp"
#include "common/error.hpp"

namespace detail = barge::cgroups::detail;
namespace spec = barge::spec;

namespace {

spec::DeviceCgroupRule rule(bool allow, std::string type, std::optional<int64_t> major,
                            std::optional<int64_t> minor, std::string access) {
  return {allow, std::move(type), major, minor, std::move(access)};
}

size_t defaults_count() {
  return detail::default_allowed_devices().size();
}

}  // namespace

TEST(CgroupDevices, DenyAllThenAllowsKeepsOrderAndAddsDefaults) {
  auto set = detail::reduce_device_rules(
      {rule(false, "", {}, {}, "rwm"), rule(true, "c", 10, 200, "rwm")});
  EXPECT_FALSE(set.default_allow);
  ASSERT_EQ(set.exceptions.size(), 1 + defaults_count());
  EXPECT_EQ(detail::v1_rule_text(set.exceptions[0]), "c 10:200 rwm");
  EXPECT_EQ(detail::v1_rule_text(set.exceptions[1]), "c *:* m");
  auto writes = detail::v1_device_writes(set);
  EXPECT_EQ(writes.front(), (std::pair<std::string, std::string>{"devices.deny", "a"}));
  EXPECT_EQ(writes[1], (std::pair<std::string, std::string>{"devices.allow", "c 10:200 rwm"}));
}

TEST(CgroupDevices, DenyingAnAllowedDeviceTakesItBack) {
  auto set = detail::reduce_device_rules(
      {rule(false, "a", {}, {}, "rwm"), rule(true, "c", 4, 1, "rw"), rule(false, "c", 4, 1, "rw")});
  EXPECT_EQ(set.exceptions.size(), defaults_count());
}

TEST(CgroupDevices, AllowAllSwitchesToDenyList) {
  auto set =
      detail::reduce_device_rules({rule(true, "a", {}, {}, "rwm"), rule(false, "b", 8, {}, "w")});
  EXPECT_TRUE(set.default_allow);
  // Defaults agree with the allow-all default, so only the deny exception stays.
  ASSERT_EQ(set.exceptions.size(), 1u);
  EXPECT_EQ(detail::v1_rule_text(set.exceptions[0]), "b 8:* w");
  EXPECT_EQ(detail::v1_device_writes(set).front().first, "devices.allow");
}

TEST(CgroupDevices, RejectsBadTypeAndAccess) {
  EXPECT_THROW(detail::reduce_device_rules({rule(true, "x", {}, {}, "rwm")}), barge::Error);
  try {
    detail::reduce_device_rules({rule(false, "a", {}, {}, "rwm"), rule(true, "c", 1, 1, "rwx")});
    FAIL();
  } catch (const barge::Error& e) {
    EXPECT_STREQ(e.what(),
                 "linux.resources.devices[1].access: \"rwx\" may only contain r, w and m");
  }
}

TEST(CgroupDevices, ProgramLayout) {
  detail::DeviceRuleSet set{false, {{'c', 1, 3, "rwm"}, {'b', std::nullopt, std::nullopt, "r"}}};
  auto program = detail::device_filter_program(set);
  // 6 prologue + (type, major, minor jumps + mov + exit) + (type, access 3 insns + mov + exit)
  // + default mov + exit.
  ASSERT_EQ(program.size(), 6u + 5u + 6u + 2u);
  // Block 1: its three jumps land on the first instruction of block 2 (index 11).
  for (size_t i = 6; i < 9; ++i) {
    EXPECT_EQ(program[i].code, BPF_JMP | BPF_JNE | BPF_K) << i;
    EXPECT_EQ(i + 1 + program[i].off, 11u) << i;
  }
  EXPECT_EQ(program[6].imm, BPF_DEVCG_DEV_CHAR);
  EXPECT_EQ(program[7].imm, 1);
  EXPECT_EQ(program[8].imm, 3);
  EXPECT_EQ(program[9].imm, 1);  // exception of a deny-default set: allow
  EXPECT_EQ(program[10].code, BPF_JMP | BPF_EXIT);
  EXPECT_EQ(program[12].code, BPF_ALU | BPF_MOV | BPF_X);
  EXPECT_EQ(program[13].imm, BPF_DEVCG_ACC_READ);
  EXPECT_EQ(program[14].code, BPF_JMP | BPF_JNE | BPF_X);
  EXPECT_EQ(14u + 1 + program[14].off, 17u);
  EXPECT_EQ(program[17].imm, 0);  // default deny
  EXPECT_EQ(program.back().code, BPF_JMP | BPF_EXIT);
}

TEST(CgroupBlockIo, WeightConversionAndRates) {
  EXPECT_EQ(detail::blkio_weight_to_io_weight(0), 0u);
  EXPECT_EQ(detail::blkio_weight_to_io_weight(10), 1u);
  EXPECT_EQ(detail::blkio_weight_to_io_weight(500), 4950u);
  EXPECT_EQ(detail::blkio_weight_to_io_weight(1000), 10000u);
  EXPECT_EQ(detail::io_max_rate(0), "max");
  EXPECT_EQ(detail::io_max_rate(1048576), "1048576");
  EXPECT_EQ(detail::rdma_max_value("mlx5_1", {3, std::nullopt}),
            "mlx5_1 hca_handle=3 hca_object=max");
}

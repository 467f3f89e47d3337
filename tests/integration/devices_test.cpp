// linux.devices: the node is created in the container's /dev and allowed in the device cgroup
// even when linux.resources.devices denies everything else. (A deliberate difference: runc 1.1.5
// creates the node but leaves it denied, so a configured device is unusable there.)
#include "tests/integration/harness.hpp"

namespace barge::test {
namespace {

class Devices : public RuntimeTest {};

TEST_F(Devices, ConfiguredDeviceIsCreatedAndAllowedUnderDenyAll) {
  if (!path_exists("/dev/loop-control")) GTEST_SKIP() << "no /dev/loop-control on this host";
  if (!testing_barge()) GTEST_SKIP() << "runc 1.1.5 leaves linux.devices denied";
  ProcResult r = run_container(
      {"sh", "-c", "ls -l /dev/loop-control | cut -c1; : < /dev/loop-control && echo opened"},
      [](Json& c) {
        c["linux"]["devices"] = {{{"type", "c"},
                                  {"path", "/dev/loop-control"},
                                  {"major", 10},
                                  {"minor", 237},
                                  {"fileMode", 0660}}};
        c["linux"]["resources"]["devices"] = {{{"allow", false}, {"access", "rwm"}}};
      });
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(split_lines(r.out), (std::vector<std::string>{"c", "opened"})) << r.describe();
}

}  // namespace
}  // namespace barge::test

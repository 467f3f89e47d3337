// resolve_capabilities: names to numbers in the parent; unknown names are an error naming the
// field, names the running kernel lacks (newer than its cap_last_cap) are skipped with a warning
// through the logger, as runc does.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <unistd.h>

#include <string>

#include "common/error.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "runtime/process_setup.hpp"
#include "tests/unit/log_capture.hpp"

namespace {

using barge::runtime::resolve_capabilities;

using barge::testing::LogCapture;

barge::spec::Capabilities every_set(std::vector<std::string> names) {
  barge::spec::Capabilities caps;
  caps.bounding = caps.effective = caps.permitted = caps.inheritable = caps.ambient = names;
  return caps;
}

TEST(CapabilitiesResolve, NamesBecomeNumbersInEverySet) {
  auto sets = resolve_capabilities(every_set({"CAP_KILL", "cap_chown", "CAP_CHECKPOINT_RESTORE"}),
                                   CAP_CHECKPOINT_RESTORE);
  EXPECT_TRUE(sets.configured);
  std::vector<cap_value_t> want = {CAP_KILL, CAP_CHOWN, CAP_CHECKPOINT_RESTORE};
  for (const auto* set :
       {&sets.bounding, &sets.effective, &sets.permitted, &sets.inheritable, &sets.ambient})
    EXPECT_EQ(*set, want);
}

TEST(CapabilitiesResolve, NewerThanTheKernelIsSkippedWithOneWarning) {
  LogCapture log;
  // A kernel whose last capability is CAP_BPF (39) lacks CAP_CHECKPOINT_RESTORE (40).
  auto sets = resolve_capabilities(every_set({"CAP_KILL", "CAP_CHECKPOINT_RESTORE"}), CAP_BPF);
  std::vector<cap_value_t> want = {CAP_KILL};
  EXPECT_EQ(sets.bounding, want);
  EXPECT_EQ(sets.ambient, want);
  std::string text = log.text();
  EXPECT_NE(text.find("level=warning"), std::string::npos) << text;
  EXPECT_NE(text.find("process.capabilities: CAP_CHECKPOINT_RESTORE not supported by the running "
                      "kernel (last capability 39); skipped"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find('\n'), text.size() - 1) << "one line for all five sets:\n" << text;
}

TEST(CapabilitiesResolve, UnknownNameIsAnErrorNamingTheField) {
  barge::spec::Capabilities caps;
  caps.permitted = std::vector<std::string>{"CAP_KILL", "CAP_NOT_A_THING"};
  try {
    resolve_capabilities(caps, CAP_LAST_CAP);
    FAIL() << "accepted an unknown capability";
  } catch (const barge::Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "process.capabilities.permitted[1]: unknown capability \"CAP_NOT_A_THING\"");
  }
}

TEST(CapabilitiesResolve, KernelLastCapabilityIsWhatProcSays) {
  EXPECT_EQ(barge::runtime::kernel_last_capability(),
            std::stoi(barge::read_file("/proc/sys/kernel/cap_last_cap")));
}

}  // namespace

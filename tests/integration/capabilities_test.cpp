// process.capabilities as the kernel reports them in /proc/self/status of the container process:
// each set exactly as configured, for root and across the switch to an unprivileged uid (the
// keep-caps dance), and unknown names refused naming the field. Oracle-checked against runc.
#include <sys/capability.h>

#include <cstdio>
#include <string>

#include "tests/integration/harness.hpp"

namespace barge::test {
namespace {

class Capabilities : public RuntimeTest {};

// "CAP_KILL", ... -> the 16-hex-digit mask /proc/self/status prints.
std::string mask_of(const Json& names) {
  uint64_t mask = 0;
  for (const auto& name : names) {
    cap_value_t value{};
    std::string lower = name.get<std::string>();
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (cap_from_name(lower.c_str(), &value) == 0) mask |= uint64_t{1} << value;
  }
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(mask));
  return text;
}

std::string status_field(const std::string& status, const std::string& key) {
  for (const auto& line : split_lines(status))
    if (line.rfind(key + ":", 0) == 0) return trim(line.substr(key.size() + 1));
  return "";
}

struct CapSets {
  Json bounding, effective, permitted, inheritable, ambient;
};

void set_capabilities(Json& config, const CapSets& sets) {
  config["process"]["capabilities"] = {{"bounding", sets.bounding},
                                       {"effective", sets.effective},
                                       {"permitted", sets.permitted},
                                       {"inheritable", sets.inheritable},
                                       {"ambient", sets.ambient}};
}

TEST_F(Capabilities, RootGetsExactlyTheConfiguredSets) {
  CapSets sets{{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SYS_CHROOT"},
               {"CAP_CHOWN", "CAP_KILL"},
               {"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"},
               Json::array(),
               Json::array()};
  auto r = run_container({"cat", "/proc/self/status"}, [&](Json& c) { set_capabilities(c, sets); });
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(status_field(r.out, "CapBnd"), mask_of(sets.bounding));
  // Root without file capabilities: execve gives it the whole permitted set as effective.
  EXPECT_EQ(status_field(r.out, "CapPrm"), mask_of(sets.permitted));
  EXPECT_EQ(status_field(r.out, "CapEff"), mask_of(sets.permitted));
  EXPECT_EQ(status_field(r.out, "CapInh"), mask_of(Json::array()));
  EXPECT_EQ(status_field(r.out, "CapAmb"), mask_of(Json::array()));
}

TEST_F(Capabilities, SurviveTheSwitchToAnUnprivilegedUidThroughAmbient) {
  Json caps = {"CAP_NET_BIND_SERVICE", "CAP_KILL"};
  CapSets sets{{"CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_CHOWN"}, caps, caps, caps, caps};
  auto r = run_container({"cat", "/proc/self/status"}, [&](Json& c) {
    set_capabilities(c, sets);
    c["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
  });
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(split_words(status_field(r.out, "Uid")), std::vector<std::string>(4, "1000"));
  EXPECT_EQ(status_field(r.out, "CapBnd"), mask_of(sets.bounding));
  EXPECT_EQ(status_field(r.out, "CapInh"), mask_of(caps));
  EXPECT_EQ(status_field(r.out, "CapAmb"), mask_of(caps));
  // A non-root process keeps across execve exactly its ambient set.
  EXPECT_EQ(status_field(r.out, "CapPrm"), mask_of(caps));
  EXPECT_EQ(status_field(r.out, "CapEff"), mask_of(caps));
}

TEST_F(Capabilities, WithoutAmbientAnUnprivilegedUidEndsWithNone) {
  Json caps = {"CAP_NET_BIND_SERVICE"};
  auto r = run_container({"cat", "/proc/self/status"}, [&](Json& c) {
    set_capabilities(c, {caps, caps, caps, Json::array(), Json::array()});
    c["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
  });
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(status_field(r.out, "CapEff"), mask_of(Json::array()));
  EXPECT_EQ(status_field(r.out, "CapPrm"), mask_of(Json::array()));
  EXPECT_EQ(status_field(r.out, "CapBnd"), mask_of(caps));
}

TEST_F(Capabilities, UnknownNameIsRefusedNamingTheField) {
  if (!testing_barge()) GTEST_SKIP() << "runc 1.1 only warns about unknown capability names";
  std::string id;
  auto r = run_container(
      {"true"},
      [](Json& c) {
        c["process"]["capabilities"]["effective"] = {"CAP_KILL", "CAP_BOGUS"};
      },
      &id);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("process.capabilities.effective[1]"), std::string::npos) << r.describe();
  EXPECT_NE(r.err.find("CAP_BOGUS"), std::string::npos) << r.describe();
  EXPECT_NO_LEFTOVERS(id);
}

}  // namespace
}  // namespace barge::test

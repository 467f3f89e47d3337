// `barge features` may only claim what the code really does: every advertised mount option is
// understood by the mount-option parser, every seccomp action, operator and architecture
// compiles into a filter.
#include "runtime/features.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runtime/lsm.hpp"
#include "runtime/rootfs_internal.hpp"
#include "runtime/seccomp.hpp"

namespace {

nlohmann::json features() {
  return nlohmann::json::parse(barge::runtime::features_json());
}

TEST(Features, AdvertisedMountOptionsAreUnderstood) {
  auto options = features()["mountOptions"];
  ASSERT_GT(options.size(), 20u);
  for (const auto& option : options) {
    std::vector<std::string> one{option.get<std::string>()};
    auto parsed = barge::rootfs::detail::parse_mount_options(one);
    EXPECT_TRUE(parsed.data.empty()) << option << " would reach the filesystem as data";
  }
}

TEST(Features, AdvertisedSeccompActionsOperatorsAndArchesCompile) {
  auto seccomp = features()["linux"]["seccomp"];
  ASSERT_TRUE(seccomp["enabled"].get<bool>());
  for (const auto& action : seccomp["actions"]) {
    barge::spec::Seccomp config;
    config.default_action = "SCMP_ACT_ALLOW";
    barge::spec::SeccompSyscall rule;
    rule.names = {"getcwd"};
    rule.action = action.get<std::string>();
    if (rule.action == "SCMP_ACT_ALLOW") config.default_action = "SCMP_ACT_ERRNO";
    if (rule.action == "SCMP_ACT_NOTIFY") config.listener_path = "/run/agent.sock";
    config.syscalls = {rule};
    EXPECT_NO_THROW(barge::seccomp::compile(config)) << action;
  }
  for (const auto& op : seccomp["operators"]) {
    barge::spec::Seccomp config;
    config.default_action = "SCMP_ACT_ALLOW";
    barge::spec::SeccompSyscall rule;
    rule.names = {"personality"};
    rule.action = "SCMP_ACT_ERRNO";
    rule.args = {{.index = 0, .value = 8, .value_two = 8, .op = op.get<std::string>()}};
    config.syscalls = {rule};
    EXPECT_NO_THROW(barge::seccomp::compile(config)) << op;
  }
  for (const auto& arch : seccomp["archs"]) {
    barge::spec::Seccomp config;
    config.default_action = "SCMP_ACT_ALLOW";
    config.architectures = {arch.get<std::string>()};
    try {
      barge::seccomp::compile(config);
    } catch (const std::exception& e) {
      ADD_FAILURE() << arch << ": " << e.what();
    }
  }
}

TEST(Features, ClaimsLsmsOnlyWhereTheHostHasThemAndNoSystemd) {
  auto linux_features = features()["linux"];
  EXPECT_EQ(linux_features["apparmor"]["enabled"].get<bool>(),
            barge::runtime::lsm::apparmor_enabled());
  EXPECT_EQ(linux_features["selinux"]["enabled"].get<bool>(),
            barge::runtime::lsm::selinux_enabled());
  EXPECT_FALSE(linux_features["cgroup"]["systemd"].get<bool>());
  EXPECT_EQ(features()["hooks"].size(), 6u);
}

}  // namespace

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/spec.hpp"

namespace spec = barge::spec;

namespace {

const spec::Mount* find_mount(const spec::Spec& s, const std::string& destination) {
  for (const auto& m : s.mounts)
    if (m.destination == destination) return &m;
  return nullptr;
}

bool has_option(const spec::Mount& m, const std::string& option) {
  return std::find(m.options.begin(), m.options.end(), option) != m.options.end();
}

std::vector<std::string> namespace_types(const spec::Spec& s) {
  std::vector<std::string> types;
  for (const auto& ns : s.linux->namespaces) types.push_back(ns.type);
  return types;
}

}  // namespace

TEST(SpecDefault, ParsesAndValidates) {
  spec::Spec s = spec::parse(spec::default_config_json(false));
  EXPECT_NO_THROW(spec::validate(s));
}

TEST(SpecDefault, RootlessParsesAndValidates) {
  spec::Spec s = spec::parse(spec::default_config_json(true));
  EXPECT_NO_THROW(spec::validate(s));
}

TEST(SpecDefault, IsPrettyPrintedJson) {
  std::string text = spec::default_config_json(false);
  EXPECT_NE(text.find("\n  \"ociVersion\": \"1.2.0\""), std::string::npos) << text;
  EXPECT_EQ(text.back(), '\n');
  // ociVersion first, as runc writes it.
  EXPECT_TRUE(text.starts_with("{\n  \"ociVersion\"")) << text;
}

TEST(SpecDefault, ProcessLikeRunc) {
  spec::Spec s = spec::parse(spec::default_config_json(false));
  EXPECT_EQ(s.oci_version, spec::kRuntimeSpecVersion);
  ASSERT_TRUE(s.process);
  EXPECT_EQ(s.process->args, std::vector<std::string>{"sh"});
  EXPECT_TRUE(s.process->terminal);
  EXPECT_EQ(s.process->cwd, "/");
  EXPECT_TRUE(s.process->no_new_privileges);
  EXPECT_EQ(s.process->user.uid, 0u);
  const std::vector<std::string> caps = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  ASSERT_TRUE(s.process->capabilities);
  EXPECT_EQ(s.process->capabilities->bounding, caps);
  EXPECT_EQ(s.process->capabilities->effective, caps);
  EXPECT_EQ(s.process->capabilities->permitted, caps);
  ASSERT_EQ(s.process->rlimits.size(), 1u);
  EXPECT_EQ(s.process->rlimits[0].type, "RLIMIT_NOFILE");
  EXPECT_EQ(s.process->rlimits[0].soft, 1024u);
  EXPECT_EQ(s.process->rlimits[0].hard, 1024u);
  EXPECT_EQ(s.root.path, "rootfs");
  EXPECT_TRUE(s.root.readonly);
  EXPECT_FALSE(s.hostname.empty());
}

TEST(SpecDefault, MountsLikeRunc) {
  spec::Spec s = spec::parse(spec::default_config_json(false));
  std::vector<std::string> destinations;
  for (const auto& m : s.mounts) destinations.push_back(m.destination);
  EXPECT_EQ(destinations, (std::vector<std::string>{"/proc", "/dev", "/dev/pts", "/dev/shm",
                                                    "/dev/mqueue", "/sys", "/sys/fs/cgroup"}));
  EXPECT_EQ(find_mount(s, "/proc")->type, "proc");
  EXPECT_EQ(find_mount(s, "/dev")->type, "tmpfs");
  EXPECT_TRUE(has_option(*find_mount(s, "/dev/pts"), "gid=5"));
  EXPECT_TRUE(has_option(*find_mount(s, "/dev/pts"), "newinstance"));
  EXPECT_EQ(find_mount(s, "/dev/shm")->source, "shm");
  EXPECT_EQ(find_mount(s, "/dev/mqueue")->type, "mqueue");
  EXPECT_EQ(find_mount(s, "/sys")->type, "sysfs");
  EXPECT_TRUE(has_option(*find_mount(s, "/sys"), "ro"));
  EXPECT_EQ(find_mount(s, "/sys/fs/cgroup")->type, "cgroup");
  EXPECT_TRUE(has_option(*find_mount(s, "/sys/fs/cgroup"), "ro"));
}

TEST(SpecDefault, LinuxLikeRunc) {
  spec::Spec s = spec::parse(spec::default_config_json(false));
  ASSERT_TRUE(s.linux);
  EXPECT_EQ(namespace_types(s),
            (std::vector<std::string>{"pid", "network", "ipc", "uts", "mount", "cgroup"}));
  EXPECT_TRUE(s.linux->uid_mappings.empty());
  ASSERT_TRUE(s.linux->resources);
  ASSERT_EQ(s.linux->resources->devices.size(), 1u);
  EXPECT_FALSE(s.linux->resources->devices[0].allow);
  EXPECT_EQ(s.linux->resources->devices[0].access, "rwm");
  const auto& masked = s.linux->masked_paths;
  for (const char* path : {"/proc/acpi", "/proc/kcore", "/proc/keys", "/sys/firmware", "/proc/scsi",
                           "/proc/sched_debug", "/proc/timer_list"})
    EXPECT_NE(std::find(masked.begin(), masked.end(), path), masked.end()) << path;
  EXPECT_EQ(s.linux->readonly_paths,
            (std::vector<std::string>{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                      "/proc/sysrq-trigger"}));
}

TEST(SpecDefault, RootlessLikeRunc) {
  spec::Spec s = spec::parse(spec::default_config_json(true));
  ASSERT_TRUE(s.linux);
  EXPECT_EQ(namespace_types(s),
            (std::vector<std::string>{"pid", "ipc", "uts", "mount", "cgroup", "user"}));
  ASSERT_EQ(s.linux->uid_mappings.size(), 1u);
  EXPECT_EQ(s.linux->uid_mappings[0].container_id, 0u);
  EXPECT_EQ(s.linux->uid_mappings[0].host_id, ::geteuid());
  EXPECT_EQ(s.linux->uid_mappings[0].size, 1u);
  ASSERT_EQ(s.linux->gid_mappings.size(), 1u);
  EXPECT_EQ(s.linux->gid_mappings[0].host_id, ::getegid());
  EXPECT_FALSE(s.linux->resources);
  const spec::Mount* sys = find_mount(s, "/sys");
  ASSERT_NE(sys, nullptr);
  EXPECT_EQ(sys->type, "none");
  EXPECT_EQ(sys->source, "/sys");
  EXPECT_TRUE(has_option(*sys, "rbind"));
  EXPECT_TRUE(has_option(*sys, "ro"));
  for (const auto& m : s.mounts)
    for (const auto& option : m.options) {
      EXPECT_FALSE(option.starts_with("gid=")) << m.destination;
      EXPECT_FALSE(option.starts_with("uid=")) << m.destination;
    }
}

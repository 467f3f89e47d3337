#include <gtest/gtest.h>

#include <string>

#include "cgroups/layout.hpp"
#include "cgroups/resources.hpp"
#include "common/error.hpp"
#include "common/file.hpp"

namespace cg = barge::cgroups;
namespace detail = barge::cgroups::detail;

namespace {

std::string fixture(const std::string& name) {
  return barge::read_file(std::string(BARGE_TEST_DATA) + "/cgroup/" + name);
}

std::vector<std::string> mount_points(const detail::HostLayout& layout) {
  std::vector<std::string> out;
  for (const auto& h : layout.v1) out.push_back(h.mount_point);
  return out;
}

std::string resolve_error(std::string_view path, std::string_view own = "/") {
  try {
    detail::resolve_path(path, "c1", own);
  } catch (const barge::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(CgroupLayout, HybridWithSeparateCpuAndCpuacctMounts) {
  auto layout = detail::parse_mountinfo(fixture("mountinfo-hybrid-separate-cpu"));
  EXPECT_EQ(layout.layout, cg::Layout::hybrid);
  ASSERT_TRUE(layout.unified);
  EXPECT_EQ(layout.unified->mount_point, "/sys/fs/cgroup/unified");
  EXPECT_EQ(mount_points(layout),
            (std::vector<std::string>{
                "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpuset",
                "/sys/fs/cgroup/memory", "/sys/fs/cgroup/devices", "/sys/fs/cgroup/freezer",
                "/sys/fs/cgroup/blkio", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/systemd"}));
  EXPECT_EQ(layout.v1.back().controllers, std::vector<std::string>{"name=systemd"});
}

TEST(CgroupLayout, UnifiedWhenCgroup2IsAtSysFsCgroup) {
  auto layout = detail::parse_mountinfo(fixture("mountinfo-unified"));
  EXPECT_EQ(layout.layout, cg::Layout::unified);
  ASSERT_TRUE(layout.unified);
  EXPECT_EQ(layout.unified->mount_point, "/sys/fs/cgroup");
  EXPECT_TRUE(layout.v1.empty());
}

TEST(CgroupLayout, LegacyComountedControllersAndOptions) {
  auto layout = detail::parse_mountinfo(fixture("mountinfo-legacy-comounted"));
  EXPECT_EQ(layout.layout, cg::Layout::legacy);
  EXPECT_FALSE(layout.unified);
  // The second memory mount (a bind of a sub-tree) is the same hierarchy: ignored.
  ASSERT_EQ(layout.v1.size(), 9u);
  EXPECT_EQ(layout.v1[0].controllers, std::vector<std::string>{"name=systemd"});
  EXPECT_EQ(layout.v1[1].mount_point, "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(layout.v1[1].controllers, (std::vector<std::string>{"cpu", "cpuacct"}));
  EXPECT_EQ(layout.v1[4].controllers, std::vector<std::string>{"cpuset"});  // not clone_children
}

TEST(CgroupLayout, UnescapesMountPointsAndMapsBindMountRoots) {
  auto layout = detail::parse_mountinfo(
      "99 27 0:32 /docker/abc /var/lib/x\\040y/memory rw - cgroup cgroup rw,memory\n");
  ASSERT_EQ(layout.v1.size(), 1u);
  EXPECT_EQ(layout.v1[0].mount_point, "/var/lib/x y/memory");
  EXPECT_EQ(layout.v1[0].root, "/docker/abc");
  EXPECT_EQ(detail::dir_in(layout.v1[0], "/docker/abc/c1"), "/var/lib/x y/memory/c1");
  EXPECT_EQ(detail::dir_in(layout.v1[0], "/other"), "/var/lib/x y/memory/other");
}

TEST(CgroupLayout, UnifiedWhenOnlyANonStandardCgroup2MountExists) {
  auto layout = detail::parse_mountinfo("50 1 0:40 / /tmp/cg rw - cgroup2 none rw\n");
  EXPECT_EQ(layout.layout, cg::Layout::unified);
  EXPECT_EQ(detail::dir_in(*layout.unified, "/barge/x"), "/tmp/cg/barge/x");
}

TEST(CgroupLayout, NothingMountedIsLegacyWithoutHierarchies) {
  auto layout = detail::parse_mountinfo("27 0 253:1 / / rw - ext4 /dev/vda1 rw\n\n");
  EXPECT_EQ(layout.layout, cg::Layout::legacy);
  EXPECT_TRUE(layout.v1.empty());
}

TEST(CgroupLayout, LayoutNames) {
  EXPECT_EQ(cg::layout_name(cg::Layout::unified), "unified");
  EXPECT_EQ(cg::layout_name(cg::Layout::hybrid), "hybrid");
  EXPECT_EQ(cg::layout_name(cg::Layout::legacy), "legacy");
}

TEST(CgroupOwn, UnifiedUsesTheV2Line) {
  EXPECT_EQ(detail::own_cgroup(fixture("proc-self-cgroup-unified"), cg::Layout::unified),
            "/system.slice/ssh.service");
  EXPECT_EQ(detail::own_cgroup(fixture("proc-self-cgroup-hybrid"), cg::Layout::unified),
            "/user.slice/user-0.slice/session-1.scope");
}

TEST(CgroupOwn, V1UsesTheMemoryLineThenTheFirstController) {
  EXPECT_EQ(detail::own_cgroup(fixture("proc-self-cgroup-hybrid"), cg::Layout::hybrid),
            "/process_api/f3d59b");
  EXPECT_EQ(detail::own_cgroup("2:cpu,cpuacct:/a\n1:name=systemd:/b\n0::/c\n", cg::Layout::legacy),
            "/a");
  EXPECT_EQ(detail::own_cgroup("0::/only:colon\n", cg::Layout::hybrid), "/only:colon");
  EXPECT_THROW(detail::own_cgroup("", cg::Layout::unified), barge::Error);
}

TEST(CgroupResolve, EmptyAbsoluteAndRelative) {
  EXPECT_EQ(detail::resolve_path("", "c1", "/ignored"), "/barge/c1");
  EXPECT_EQ(detail::resolve_path("/a/b", "c1", "/ignored"), "/a/b");
  EXPECT_EQ(detail::resolve_path("/a//./b/", "c1", "/"), "/a/b");
  EXPECT_EQ(detail::resolve_path("x/y", "c1", "/user.slice"), "/user.slice/x/y");
  EXPECT_EQ(detail::resolve_path("x", "c1", "/"), "/x");
  EXPECT_EQ(detail::resolve_path("/a:b:c", "c1", "/"), "/a:b:c");  // absolute: not systemd form
}

TEST(CgroupResolve, SystemdFormNeedsSystemdCgroup) {
  EXPECT_EQ(resolve_error("system.slice:barge:c1"),
            "linux.cgroupsPath: systemd cgroup path \"system.slice:barge:c1\" needs "
            "--systemd-cgroup, which is not supported yet");
}

TEST(CgroupResolve, RejectsDotDotAndTheRoot) {
  EXPECT_EQ(resolve_error("/a/../b"),
            "linux.cgroupsPath: \"/a/../b\" must not contain \"..\" components");
  EXPECT_NE(resolve_error("../x").find("linux.cgroupsPath"), std::string::npos);
  EXPECT_NE(resolve_error("/").find("root cgroup"), std::string::npos);
  EXPECT_THROW(detail::resolve_path("", "..", "/"), barge::Error);
}

TEST(CgroupResolve, PublicResolveOfRelativePathUsesOwnCgroup) {
  std::string resolved = cg::resolve_path("sub", "c1");
  EXPECT_TRUE(resolved.ends_with("/sub")) << resolved;
  EXPECT_EQ(cg::resolve_path("", "c1"), "/barge/c1");
}

TEST(CgroupResources, CpuSharesToWeight) {
  EXPECT_EQ(detail::cpu_shares_to_weight(0), 0u);
  EXPECT_EQ(detail::cpu_shares_to_weight(2), 1u);
  EXPECT_EQ(detail::cpu_shares_to_weight(1024), 39u);
  EXPECT_EQ(detail::cpu_shares_to_weight(512), 20u);
  EXPECT_EQ(detail::cpu_shares_to_weight(262144), 10000u);
  EXPECT_EQ(detail::cpu_shares_to_weight(1), 1u);            // clamped to the kernel minimum
  EXPECT_EQ(detail::cpu_shares_to_weight(1000000), 10000u);  // and maximum
}

TEST(CgroupResources, PidsMax) {
  EXPECT_EQ(detail::pids_max_value(0), "max");
  EXPECT_EQ(detail::pids_max_value(-1), "max");
  EXPECT_EQ(detail::pids_max_value(1), "1");
  EXPECT_EQ(detail::pids_max_value(100), "100");
}

TEST(CgroupResources, CpuMax) {
  EXPECT_EQ(detail::cpu_max_value(std::nullopt, std::nullopt), std::nullopt);
  EXPECT_EQ(detail::cpu_max_value(50000, 100000), "50000 100000");
  EXPECT_EQ(detail::cpu_max_value(-1, 100000), "max 100000");
  EXPECT_EQ(detail::cpu_max_value(std::nullopt, 250000), "max 250000");
  EXPECT_EQ(detail::cpu_max_value(20000, std::nullopt), "20000");
}

TEST(CgroupResources, MemoryV2Values) {
  EXPECT_EQ(detail::v2_bytes_value(-1), "max");
  EXPECT_EQ(detail::v2_bytes_value(1024), "1024");
  EXPECT_EQ(detail::v2_swap_max_value(std::nullopt, 1000), std::nullopt);
  EXPECT_EQ(detail::v2_swap_max_value(0, 1000), std::nullopt);
  EXPECT_EQ(detail::v2_swap_max_value(std::nullopt, -1), "max");
  EXPECT_EQ(detail::v2_swap_max_value(-1, 1000), "max");
  EXPECT_EQ(detail::v2_swap_max_value(3000, 1000), "2000");
  EXPECT_THROW(detail::v2_swap_max_value(500, 1000), barge::Error);
  EXPECT_THROW(detail::v2_swap_max_value(500, std::nullopt), barge::Error);
}

TEST(CgroupResources, UnifiedKeys) {
  EXPECT_NO_THROW(detail::validate_unified_key("memory.high"));
  EXPECT_NO_THROW(detail::validate_unified_key("cpu.max.burst"));
  for (std::string_view bad : {"", "../x.y", "a/b.c", "..", "nodot", ".hidden"})
    EXPECT_THROW(detail::validate_unified_key(bad), barge::Error) << bad;
}

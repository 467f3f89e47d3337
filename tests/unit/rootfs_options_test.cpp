#include <gtest/gtest.h>
#include <sys/mount.h>

#include "common/error.hpp"
#include "runtime/rootfs_internal.hpp"

using barge::rootfs::detail::MountOptions;
using barge::rootfs::detail::parse_mount_options;

namespace {

MountOptions parse(std::vector<std::string> options) {
  return parse_mount_options(options);
}

}  // namespace

TEST(RootfsOptions, FlagsAndDataOfTheDefaultDevPts) {
  auto parsed = parse({"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"});
  EXPECT_EQ(parsed.flags, static_cast<unsigned long>(MS_NOSUID | MS_NOEXEC));
  EXPECT_EQ(parsed.data, "newinstance,ptmxmode=0666,mode=0620,gid=5");
  EXPECT_TRUE(parsed.propagation.empty());
  EXPECT_FALSE(parsed.is_bind());
}

TEST(RootfsOptions, EveryFlagName) {
  struct Case {
    const char* name;
    unsigned long flag;
  };
  for (auto [name, flag] :
       {Case{"ro", MS_RDONLY}, Case{"nosuid", MS_NOSUID}, Case{"nodev", MS_NODEV},
        Case{"noexec", MS_NOEXEC}, Case{"sync", MS_SYNCHRONOUS}, Case{"dirsync", MS_DIRSYNC},
        Case{"remount", MS_REMOUNT}, Case{"mand", MS_MANDLOCK}, Case{"noatime", MS_NOATIME},
        Case{"nodiratime", MS_NODIRATIME}, Case{"relatime", MS_RELATIME},
        Case{"strictatime", MS_STRICTATIME}, Case{"lazytime", MS_LAZYTIME}, Case{"bind", MS_BIND},
        Case{"rbind", MS_BIND | MS_REC}}) {
    auto parsed = parse({name});
    EXPECT_EQ(parsed.flags, flag) << name;
    EXPECT_EQ(parsed.data, "") << name;
  }
}

TEST(RootfsOptions, ClearingOptionsUndoEarlierOnes) {
  struct Case {
    const char* set;
    const char* clear;
  };
  for (auto [set, clear] :
       {Case{"ro", "rw"}, Case{"nosuid", "suid"}, Case{"nodev", "dev"}, Case{"noexec", "exec"},
        Case{"sync", "async"}, Case{"mand", "nomand"}, Case{"noatime", "atime"},
        Case{"nodiratime", "diratime"}, Case{"relatime", "norelatime"},
        Case{"strictatime", "nostrictatime"}, Case{"lazytime", "nolazytime"}}) {
    EXPECT_EQ(parse({set, clear}).flags, 0u) << set << "," << clear;
    EXPECT_NE(parse({clear, set}).flags, 0u) << clear << "," << set;
  }
  EXPECT_EQ(parse({"rw"}).flags, 0u);
  EXPECT_EQ(parse({"defaults"}).flags, 0u);
}

TEST(RootfsOptions, PropagationIsKeptInOrderAndOutOfTheFlags) {
  auto parsed = parse({"rbind", "rslave", "ro", "private", "shared", "rshared", "slave", "rprivate",
                       "unbindable", "runbindable"});
  EXPECT_EQ(parsed.flags, static_cast<unsigned long>(MS_BIND | MS_REC | MS_RDONLY));
  std::vector<unsigned long> expected{
      MS_SLAVE | MS_REC, MS_PRIVATE,          MS_SHARED,     MS_SHARED | MS_REC,
      MS_SLAVE,          MS_PRIVATE | MS_REC, MS_UNBINDABLE, MS_UNBINDABLE | MS_REC};
  EXPECT_EQ(parsed.propagation, expected);
  EXPECT_TRUE(parsed.is_bind());
  EXPECT_TRUE(parsed.is_recursive_bind());
  EXPECT_EQ(parsed.data, "");
}

TEST(RootfsOptions, DataOfTmpfsAndShm) {
  auto parsed = parse({"nosuid", "strictatime", "mode=755", "size=65536k"});
  EXPECT_EQ(parsed.flags, static_cast<unsigned long>(MS_NOSUID | MS_STRICTATIME));
  EXPECT_EQ(parsed.data, "mode=755,size=65536k");
}

TEST(RootfsOptions, RecursiveAttributes) {
  auto parsed = parse({"rbind", "rro", "rnosuid", "rnoatime"});
  EXPECT_EQ(parsed.recursive_set,
            uint64_t{MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME});
  EXPECT_EQ(parsed.recursive_clear, uint64_t{MOUNT_ATTR__ATIME});
  EXPECT_EQ(parsed.data, "");
  auto undone = parse({"rro", "rrw"});
  EXPECT_EQ(undone.recursive_set, 0u);
  EXPECT_EQ(undone.recursive_clear, uint64_t{MOUNT_ATTR_RDONLY});
}

TEST(RootfsOptions, IdmapIsRefused) {
  EXPECT_THROW(parse({"idmap"}), barge::Error);
}

TEST(RootfsOptions, PropagationNames) {
  using barge::rootfs::detail::parse_propagation;
  EXPECT_EQ(parse_propagation("rslave"), MS_SLAVE | MS_REC);
  EXPECT_EQ(parse_propagation("shared"), MS_SHARED);
  EXPECT_EQ(parse_propagation("unbindable"), MS_UNBINDABLE);
  EXPECT_EQ(parse_propagation("ro"), std::nullopt);
  EXPECT_EQ(parse_propagation(""), std::nullopt);
}

TEST(RootfsOptions, MountAttrsFromFlags) {
  using barge::rootfs::detail::mount_attrs_from_flags;
  EXPECT_EQ(mount_attrs_from_flags(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_BIND),
            uint64_t{MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC});
  EXPECT_EQ(mount_attrs_from_flags(MS_NOATIME), uint64_t{MOUNT_ATTR_NOATIME});
  EXPECT_EQ(mount_attrs_from_flags(MS_STRICTATIME), uint64_t{MOUNT_ATTR_STRICTATIME});
  EXPECT_EQ(mount_attrs_from_flags(MS_RELATIME), uint64_t{MOUNT_ATTR_RELATIME});
}

TEST(RootfsOptions, BindDetection) {
  using barge::rootfs::detail::is_bind_mount;
  barge::spec::Mount m;
  m.type = "bind";
  EXPECT_TRUE(is_bind_mount(m));
  m.type = "none";
  m.options = {"ro", "rbind"};
  EXPECT_TRUE(is_bind_mount(m));
  m.type = "tmpfs";
  m.options = {"nosuid"};
  EXPECT_FALSE(is_bind_mount(m));
}

TEST(RootfsMountinfo, ParsesOptionalFieldsAndEscapes) {
  using barge::rootfs::detail::parse_mountinfo;
  auto mounts = parse_mountinfo(
      "26 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard\n"
      "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
      "40 26 0:40 /sub /mnt/with\\040space ro,nosuid shared:3 master:2 - tmpfs tmp\\134x rw\n");
  ASSERT_EQ(mounts.size(), 3u);
  EXPECT_EQ(mounts[0].id, 26);
  EXPECT_EQ(mounts[0].parent, 1);
  EXPECT_EQ(mounts[0].mount_point, "/");
  EXPECT_EQ(mounts[0].optional_fields, "shared:1");
  EXPECT_EQ(mounts[0].fs_type, "ext4");
  EXPECT_EQ(mounts[0].super_options, "rw,discard");
  EXPECT_EQ(mounts[1].optional_fields, "");
  EXPECT_EQ(mounts[1].super_options, "rw,cpu");
  EXPECT_EQ(mounts[2].root, "/sub");
  EXPECT_EQ(mounts[2].mount_point, "/mnt/with space");
  EXPECT_EQ(mounts[2].mount_options, "ro,nosuid");
  EXPECT_EQ(mounts[2].optional_fields, "shared:3 master:2");
  EXPECT_EQ(mounts[2].source, "tmp\\x");
}

TEST(RootfsPathSplit, DropsEmptyAndDotComponents) {
  using barge::rootfs::detail::split_parent;
  using barge::rootfs::detail::split_path;
  EXPECT_EQ(split_path("/a//./b/"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(split_path("../x"), (std::vector<std::string>{"..", "x"}));
  EXPECT_TRUE(split_path("/").empty());
  EXPECT_EQ(split_parent("/dev/net/tun"), (std::pair<std::string, std::string>{"/dev/net", "tun"}));
  EXPECT_EQ(split_parent("/dev"), (std::pair<std::string, std::string>{"/", "dev"}));
}

TEST(RootfsOptions, TmpCopyUpIsAnExtensionNotData) {
  auto parsed = parse({"rw", "nosuid", "tmpcopyup", "size=64k"});
  EXPECT_TRUE(parsed.copy_up);
  EXPECT_EQ(parsed.data, "size=64k");
  EXPECT_FALSE(parse({"nosuid"}).copy_up);
}

// open_in_root / mkdir_all_in_root against a hostile tree, with openat2 and with the manual walk.
// Needs no privileges: it only opens and creates files in a temp dir.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "common/error.hpp"
#include "common/file.hpp"
#include "runtime/rootfs.hpp"

namespace {

using barge::UniqueFd;
namespace rootfs = barge::rootfs;

class RootfsPath : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/barge-rootfs-path-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    root_ = base_ + "/root";
    outside_ = base_ + "/outside";
    barge::make_dirs(root_ + "/etc");
    barge::make_dirs(outside_);
    barge::write_file(outside_ + "/secret", "host");
    barge::write_file(root_ + "/etc/passwd", "inside-passwd");
    rootfd_.reset(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(rootfd_.valid());
    rootfs::force_manual_path_walk_for_testing(GetParam());
  }
  void TearDown() override {
    rootfs::force_manual_path_walk_for_testing(false);
    barge::remove_tree(base_);
  }
  void symlink_in_root(const std::string& target, const std::string& name) {
    ASSERT_EQ(::symlink(target.c_str(), (root_ + "/" + name).c_str()), 0) << name;
  }
  std::string read_in_root(const std::string& path) {
    UniqueFd fd = rootfs::open_in_root(rootfd_.get(), path, O_RDONLY);
    std::string content(64, '\0');
    ssize_t n = ::read(fd.get(), content.data(), content.size());
    content.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return content;
  }

  std::string base_, root_, outside_;
  UniqueFd rootfd_;
};

TEST_P(RootfsPath, AbsoluteSymlinkResolvesInsideTheRoot) {
  symlink_in_root(outside_, "abs");
  EXPECT_THROW(read_in_root("/abs/secret"), barge::Error);  // not the host's file
  barge::make_dirs(root_ + outside_);
  barge::write_file(root_ + outside_ + "/secret", "inside");
  EXPECT_EQ(read_in_root("/abs/secret"), "inside");
}

TEST_P(RootfsPath, RelativeSymlinkCannotClimbOut) {
  symlink_in_root("../../../../../../../outside", "rel");
  EXPECT_THROW(read_in_root("rel/secret"), barge::Error);
  barge::make_dirs(root_ + "/outside");
  barge::write_file(root_ + "/outside/secret", "inside-rel");
  EXPECT_EQ(read_in_root("rel/secret"), "inside-rel");
}

TEST_P(RootfsPath, DotDotStopsAtTheRoot) {
  EXPECT_EQ(read_in_root("/../../../etc/passwd"), "inside-passwd");
  EXPECT_EQ(read_in_root("etc/../../etc/./passwd"), "inside-passwd");
}

TEST_P(RootfsPath, SymlinkLoopFailsWithEloop) {
  symlink_in_root("loop", "loop");
  try {
    read_in_root("/loop");
    FAIL() << "no error";
  } catch (const barge::Error& e) {
    EXPECT_EQ(e.code(), ELOOP) << e.what();
  }
}

TEST_P(RootfsPath, NoFollowReturnsTheLinkItself) {
  symlink_in_root("/etc/passwd", "link");
  UniqueFd fd = rootfs::open_in_root(rootfd_.get(), "/link", O_PATH | O_NOFOLLOW);
  struct stat st {};
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(read_in_root("/link"), "inside-passwd");
}

TEST_P(RootfsPath, MkdirAllThroughDanglingSymlinkStaysInside) {
  const std::string host_target = outside_ + "/created";
  symlink_in_root(host_target, "dangling");
  UniqueFd fd = rootfs::mkdir_all_in_root(rootfd_.get(), "/dangling/sub");
  struct stat st {};
  EXPECT_EQ(::stat(host_target.c_str(), &st), -1) << "created on the host";
  ASSERT_EQ(::stat((root_ + host_target + "/sub").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
}

TEST_P(RootfsPath, MkdirAllRelativeEscapeStaysInside) {
  symlink_in_root("../../../../../../outside/made", "esc");
  rootfs::mkdir_all_in_root(rootfd_.get(), "/esc/x", true);
  struct stat st {};
  EXPECT_EQ(::stat((outside_ + "/made").c_str(), &st), -1) << "created on the host";
  ASSERT_EQ(::stat((root_ + "/outside/made/x").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_P(RootfsPath, MkdirAllCreatesFileOrDirectories) {
  UniqueFd dir = rootfs::mkdir_all_in_root(rootfd_.get(), "/a/b/c");
  struct stat st {};
  ASSERT_EQ(::fstat(dir.get(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  UniqueFd file = rootfs::mkdir_all_in_root(rootfd_.get(), "/a/f/file", true);
  ASSERT_EQ(::fstat(file.get(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  // Existing paths are returned as they are.
  UniqueFd again = rootfs::mkdir_all_in_root(rootfd_.get(), "/a/b/c");
  EXPECT_TRUE(again.valid());
}

TEST_P(RootfsPath, FileInTheMiddleIsNotADirectory) {
  EXPECT_THROW(rootfs::open_in_root(rootfd_.get(), "/etc/passwd/x", O_PATH), barge::Error);
  EXPECT_THROW(rootfs::mkdir_all_in_root(rootfd_.get(), "/etc/passwd/x"), barge::Error);
}

TEST_P(RootfsPath, RootItself) {
  UniqueFd fd = rootfs::open_in_root(rootfd_.get(), "/", O_PATH | O_DIRECTORY);
  struct stat a {
  }, b{};
  ASSERT_EQ(::fstat(fd.get(), &a), 0);
  ASSERT_EQ(::fstat(rootfd_.get(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
}

INSTANTIATE_TEST_SUITE_P(Rootfs, RootfsPath, ::testing::Values(false, true),
                         [](const auto& param_info) {
                           return param_info.param ? "ManualWalk" : "Openat2";
                         });

}  // namespace

// rootfs::prepare/finalize on the real kernel. Each test forks a child that unshares its own mount
// (and pid/net/ipc/uts/cgroup) namespaces, so every mount dies with it; the child checks what it
// sees and reports failures through a pipe. Needs root.
#include "runtime/rootfs.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/file.hpp"
#include "runtime/rootfs_internal.hpp"

namespace {

using barge::rootfs::detail::MountInfo;
namespace spec = barge::spec;

// Collects failures inside the child, where gtest assertions cannot report.
class Checks {
 public:
  void expect(bool ok, const std::string& what) {
    if (!ok) failures_.push_back(what);
  }
  const std::vector<std::string>& failures() const { return failures_; }

 private:
  std::vector<std::string> failures_;
};

struct ChildResult {
  int status = -1;
  std::string report;
};

constexpr int kAllButUser =
    CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;

void write_report(int fd, const std::string& text) {
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

// Runs body as pid 1 of fresh namespaces. Whatever body throws becomes a failure line.
ChildResult run_in_namespaces(int unshare_flags, const std::function<void(Checks&)>& body) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) < 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipe_fds[0]);
    if (::unshare(unshare_flags) < 0) _exit(10);
    // Belt and braces: nothing this test mounts may reach the host, whatever prepare does.
    if (::mount(nullptr, "/", nullptr, MS_SLAVE | MS_REC, nullptr) < 0) _exit(11);
    pid_t inner = ::fork();
    if (inner == 0) {
      Checks checks;
      try {
        body(checks);
      } catch (const std::exception& e) {
        checks.expect(false, std::string("exception: ") + e.what());
      }
      std::string report;
      for (const auto& failure : checks.failures()) report += failure + "\n";
      write_report(pipe_fds[1], report);
      _exit(0);
    }
    int status = 0;
    if (inner < 0 || ::waitpid(inner, &status, 0) < 0) _exit(12);
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 13);
  }
  ::close(pipe_fds[1]);
  ChildResult result;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;)
    result.report.append(buf, static_cast<size_t>(n));
  ::close(pipe_fds[0]);
  if (pid > 0) ::waitpid(pid, &result.status, 0);
  return result;
}

const MountInfo* find_mount(const std::vector<MountInfo>& mounts, const std::string& point) {
  const MountInfo* found = nullptr;
  for (const auto& m : mounts)
    if (m.mount_point == point) found = &m;  // the last one is on top
  return found;
}

bool has_option(const std::string& list, const std::string& option) {
  return ("," + list + ",").find("," + option + ",") != std::string::npos;
}

spec::Mount mount_of(std::string destination, std::string type, std::string source,
                     std::vector<std::string> options) {
  spec::Mount m;
  m.destination = std::move(destination);
  m.type = std::move(type);
  m.source = std::move(source);
  m.options = std::move(options);
  return m;
}

// The runc default mounts.
std::vector<spec::Mount> default_mounts() {
  return {
      mount_of("/proc", "proc", "proc", {}),
      mount_of("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      mount_of("/dev/pts", "devpts", "devpts",
               {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
      mount_of("/dev/shm", "tmpfs", "shm",
               {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
      mount_of("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      mount_of("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}),
      mount_of("/sys/fs/cgroup", "cgroup", "cgroup",
               {"nosuid", "noexec", "nodev", "relatime", "ro"}),
  };
}

int errno_of_write(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) {
    ::close(fd);
    return 0;
  }
  return errno;
}

bool mountinfo_mentions(const std::vector<MountInfo>& mounts, const std::string& path) {
  for (const auto& m : mounts)
    if (m.mount_point.find(path) != std::string::npos) return true;
  return false;
}

class RootfsIntegration : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    char tmpl[] = "/tmp/barge-rootfs-it-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    bundle_ = base_ + "/bundle";
    rootfs_ = bundle_ + "/rootfs";
    barge::make_dirs(bundle_);
    const std::string command =
        std::string("sh ") + BARGE_TEST_SCRIPTS + "/make-rootfs.sh " + rootfs_ + " >/dev/null";
    ASSERT_EQ(std::system(command.c_str()), 0);
    options_.bundle_dir = bundle_;
    spec_.root.path = "rootfs";
    spec_.mounts = default_mounts();
    spec_.linux.emplace();
  }

  void TearDown() override {
    if (base_.empty()) return;
    auto host = barge::rootfs::detail::read_mountinfo();
    EXPECT_FALSE(mountinfo_mentions(host, base_)) << "a test mount leaked to the host";
    barge::remove_tree(base_);
  }

  // prepare + finalize in fresh namespaces, then after(checks) inside the container.
  void run_container(const std::function<void(Checks&)>& after, int unshare_flags = kAllButUser) {
    const bool manual_walk = GetParam();
    auto result = run_in_namespaces(unshare_flags, [&](Checks& checks) {
      barge::rootfs::force_manual_path_walk_for_testing(manual_walk);
      barge::rootfs::prepare(spec_, options_);
      barge::rootfs::finalize(spec_);
      after(checks);
    });
    EXPECT_EQ(result.status, 0);
    EXPECT_EQ(result.report, "");
  }

  void make_host_dir(const std::string& path) {
    barge::make_dirs(path);
    barge::write_file(path + "/marker", "host");
  }

  static bool dir_is_only_marker(const std::string& path) {
    struct stat st {};
    return ::stat((path + "/marker").c_str(), &st) == 0 &&
           barge::read_file(path + "/marker") == "host" &&
           ::stat((path + "/proc").c_str(), &st) != 0 && ::stat((path + "/self").c_str(), &st) != 0;
  }

  std::string base_, bundle_, rootfs_;
  spec::Spec spec_;
  barge::rootfs::Options options_;
};

TEST_P(RootfsIntegration, DefaultSpecGivesTheExpectedView) {
  const std::string host_dir = base_ + "/hostdir";
  make_host_dir(host_dir);
  barge::write_file(base_ + "/hostfile", "file-content");
  const std::string host_only = base_ + "/hostonly";
  barge::make_dirs(host_only);

  spec_.root.readonly = true;
  spec_.mounts.push_back(mount_of("/mnt/hostdir", "bind", host_dir, {"rbind", "ro"}));
  spec_.mounts.push_back(mount_of("/etc/hostfile", "none", base_ + "/hostfile", {"bind", "ro"}));
  spec_.mounts.push_back(mount_of("/run", "tmpfs", "tmpfs", {"nosuid", "nodev", "rshared"}));
  spec_.linux->masked_paths = {"/proc/kcore", "/proc/keys",    "/sys/firmware",
                               "/proc/nope",  "/etc/masklink", "/hostlink/x"};
  spec_.linux->readonly_paths = {"/proc/sys", "/proc/sysrq-trigger", "/nonexistent"};
  spec_.linux->devices = {spec::Device{"c", "/dev/net/tun", 10, 200, 0620, 0, 5}};
  const bool host_has_kcore = ::access("/proc/kcore", F_OK) == 0;
  const bool host_has_sysrq = ::access("/proc/sysrq-trigger", F_OK) == 0;
  ASSERT_EQ(::symlink("/etc/passwd", (rootfs_ + "/etc/masklink").c_str()), 0);
  ASSERT_EQ(::symlink(host_dir.c_str(), (rootfs_ + "/hostlink").c_str()), 0);

  run_container([&](Checks& c) {
    auto mounts = barge::rootfs::detail::read_mountinfo();
    auto expect_mount = [&](const std::string& point, const std::string& type,
                            std::vector<std::string> options) {
      const MountInfo* m = find_mount(mounts, point);
      c.expect(m != nullptr, "no mount at " + point);
      if (!m) return;
      c.expect(type.empty() || m->fs_type == type, point + " has type " + m->fs_type);
      for (const auto& option : options)
        c.expect(has_option(m->mount_options, option),
                 point + " lacks " + option + ": " + m->mount_options);
    };
    expect_mount("/", "", {"ro"});
    expect_mount("/proc", "proc", {"rw"});
    expect_mount("/dev", "tmpfs", {"nosuid"});
    expect_mount("/dev/pts", "devpts", {"nosuid", "noexec"});
    expect_mount("/dev/shm", "tmpfs", {"nosuid", "nodev", "noexec"});
    expect_mount("/dev/mqueue", "mqueue", {"nosuid", "nodev", "noexec"});
    expect_mount("/sys", "sysfs", {"ro", "nosuid", "nodev", "noexec"});
    expect_mount("/sys/fs/cgroup", "", {"ro", "nosuid", "nodev", "noexec"});
    expect_mount("/mnt/hostdir", "", {"ro"});
    expect_mount("/etc/hostfile", "", {"ro"});
    expect_mount("/proc/sys", "proc", {"ro", "nosuid", "nodev", "noexec"});
    if (host_has_sysrq) expect_mount("/proc/sysrq-trigger", "proc", {"ro"});
    if (host_has_kcore) expect_mount("/proc/kcore", "", {});
    expect_mount("/proc/keys", "", {});
    expect_mount("/sys/firmware", "tmpfs", {"ro"});
    const MountInfo* run = find_mount(mounts, "/run");
    c.expect(run && run->optional_fields.find("shared:") != std::string::npos,
             "/run is not shared");
    c.expect(!mountinfo_mentions(mounts, host_only), "host-only mount visible");
    c.expect(!mountinfo_mentions(mounts, base_), "host paths visible in mountinfo");
    c.expect(find_mount(mounts, "/etc/passwd") == nullptr, "masked through a symlink");
    c.expect(find_mount(mounts, "/etc/masklink") == nullptr, "symlink masked");

    bool cgroup_hierarchy = false;
    for (const auto& m : mounts)
      if (m.mount_point.starts_with("/sys/fs/cgroup") &&
          (m.fs_type == "cgroup" || m.fs_type == "cgroup2"))
        cgroup_hierarchy = true;
    c.expect(cgroup_hierarchy, "no cgroup hierarchy under /sys/fs/cgroup");

    c.expect(errno_of_write("/mnt/hostdir/new") == EROFS, "ro bind is writable");
    c.expect(barge::read_file("/mnt/hostdir/marker") == "host", "bind shows wrong dir");
    c.expect(barge::read_file("/etc/hostfile") == "file-content", "file bind content");
    c.expect(errno_of_write("/newfile") == EROFS, "/ is writable");
    c.expect(errno_of_write("/proc/sys/kernel/hostname") == EROFS, "/proc/sys writable");
    c.expect(errno_of_write("/dev/shm/ok") == 0, "/dev/shm not writable");
    if (host_has_kcore) c.expect(barge::read_file("/proc/kcore").empty(), "/proc/kcore readable");
    c.expect(barge::read_file("/proc/keys").empty(), "/proc/keys readable");
    c.expect(barge::read_file("/etc/passwd").starts_with("root:"), "/etc/passwd masked");

    struct stat st {};
    c.expect(::stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3) &&
                 (st.st_mode & 07777) == 0666,
             "/dev/null is not char 1:3 0666");
    c.expect(::stat("/dev/net/tun", &st) == 0 && S_ISCHR(st.st_mode) &&
                 st.st_rdev == makedev(10, 200) && (st.st_mode & 07777) == 0620 && st.st_gid == 5,
             "/dev/net/tun is not char 10:200 0620 gid 5");
    for (const char* name : {"/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"})
      c.expect(::stat(name, &st) == 0 && S_ISCHR(st.st_mode), std::string(name) + " missing");
    char link[64] = {};
    c.expect(
        ::readlink("/dev/fd", link, sizeof link - 1) > 0 && std::string(link) == "/proc/self/fd",
        "/dev/fd link");
    std::fill(std::begin(link), std::end(link), '\0');
    c.expect(::readlink("/dev/ptmx", link, sizeof link - 1) > 0 && std::string(link) == "pts/ptmx",
             "/dev/ptmx link");
    c.expect(::stat("/dev/stderr", &st) == 0, "/dev/stderr link");
    c.expect(::stat("/sys/firmware", &st) == 0 && S_ISDIR(st.st_mode), "/sys/firmware");
    c.expect(::getpid() == 1 && barge::read_file("/proc/self/stat").starts_with("1 "),
             "/proc is not the container's");
  });
  EXPECT_TRUE(dir_is_only_marker(host_dir));
}

// /proc -> an absolute host path: the mount must land inside the rootfs.
TEST_P(RootfsIntegration, HostileProcSymlinkStaysInside) {
  const std::string host_dir = base_ + "/host-secret-dir";
  make_host_dir(host_dir);
  ASSERT_EQ(::rmdir((rootfs_ + "/proc").c_str()), 0);
  ASSERT_EQ(::symlink(host_dir.c_str(), (rootfs_ + "/proc").c_str()), 0);
  spec_.mounts = {mount_of("/proc", "proc", "proc", {})};
  options_.before_pivot = [&] {
    auto mounts = barge::rootfs::detail::read_mountinfo();
    if (find_mount(mounts, host_dir)) throw barge::Error("proc mounted on the host dir");
    const MountInfo* inside = find_mount(mounts, rootfs_ + host_dir);
    if (!inside || inside->fs_type != "proc") throw barge::Error("proc not inside the rootfs");
  };
  run_container([&](Checks& c) {
    struct stat st {};
    c.expect(::stat((host_dir + "/self").c_str(), &st) == 0, "proc not at the in-root target");
    c.expect(::stat("/proc/self", &st) == 0, "/proc symlink does not reach proc");
  });
  EXPECT_TRUE(dir_is_only_marker(host_dir));
}

// A bind destination that climbs out with "..": resolved against the rootfs, not the host.
TEST_P(RootfsIntegration, HostileBindDestinationStaysInside) {
  const std::string host_dir = base_ + "/victim";
  make_host_dir(host_dir);
  const std::string source = base_ + "/source";
  barge::make_dirs(source);
  barge::write_file(source + "/from-source", "x");
  barge::make_dirs(rootfs_ + "/mnt");
  ASSERT_EQ(
      ::symlink(("../../../../../../../../.." + host_dir).c_str(), (rootfs_ + "/mnt/evil").c_str()),
      0);
  spec_.mounts.push_back(mount_of("/mnt/evil", "bind", source, {"rbind"}));
  options_.before_pivot = [&] {
    auto mounts = barge::rootfs::detail::read_mountinfo();
    if (find_mount(mounts, host_dir)) throw barge::Error("bind landed on the host dir");
    if (!find_mount(mounts, rootfs_ + host_dir)) throw barge::Error("bind not inside rootfs");
  };
  run_container([&](Checks& c) {
    struct stat st {};
    c.expect(::stat((host_dir + "/from-source").c_str(), &st) == 0, "bind not at in-root target");
  });
  EXPECT_TRUE(dir_is_only_marker(host_dir));
  struct stat st {};
  EXPECT_NE(::stat((host_dir + "/from-source").c_str(), &st), 0);
}

// Masked and read-only paths through symlinks pointing at host-looking paths.
TEST_P(RootfsIntegration, HostileMaskedPathSymlinks) {
  const std::string host_dir = base_ + "/masked-host";
  make_host_dir(host_dir);
  ASSERT_EQ(::symlink(host_dir.c_str(), (rootfs_ + "/maskme").c_str()), 0);
  ASSERT_EQ(::symlink("../../../../../../etc", (rootfs_ + "/maskrel").c_str()), 0);
  spec_.linux->masked_paths = {"/maskme", "/maskme/marker", "/maskrel"};
  spec_.linux->readonly_paths = {"/maskme"};
  run_container([&](Checks& c) {
    auto mounts = barge::rootfs::detail::read_mountinfo();
    c.expect(find_mount(mounts, "/etc") == nullptr, "/etc masked through a symlink");
    c.expect(find_mount(mounts, "/maskme") == nullptr, "symlink masked");
    c.expect(barge::read_file("/etc/passwd").starts_with("root:"), "/etc/passwd hidden");
  });
  EXPECT_TRUE(dir_is_only_marker(host_dir));
}

TEST_P(RootfsIntegration, ErrorsNameTheMount) {
  spec_.mounts[3].options.push_back("size=notanumber");
  auto result = run_in_namespaces(kAllButUser, [&](Checks& c) {
    barge::rootfs::force_manual_path_walk_for_testing(GetParam());
    try {
      barge::rootfs::prepare(spec_, options_);
      c.expect(false, "prepare succeeded");
    } catch (const barge::Error& e) {
      c.expect(std::string(e.what()) == "mounts[3] (/dev/shm): mount tmpfs: Invalid argument",
               std::string("message: ") + e.what());
    }
  });
  EXPECT_EQ(result.status, 0);
  EXPECT_EQ(result.report, "");
}

// Without its own network and cgroup namespaces the container gets binds of the host's /sys and
// of its own cgroup, never a fresh view of everything.
TEST_P(RootfsIntegration, HostNamespacesUseBinds) {
  options_.new_net_ns = false;
  options_.new_cgroup_ns = false;
  run_container(
      [&](Checks& c) {
        auto mounts = barge::rootfs::detail::read_mountinfo();
        const MountInfo* sys = find_mount(mounts, "/sys");
        c.expect(sys && has_option(sys->mount_options, "ro"), "/sys not read-only");
        int hierarchies = 0;
        for (const auto& m : mounts)
          if (m.mount_point.starts_with("/sys/fs/cgroup/") &&
              (m.fs_type == "cgroup" || m.fs_type == "cgroup2"))
            ++hierarchies;
        c.expect(hierarchies > 0 || find_mount(mounts, "/sys/fs/cgroup") != nullptr,
                 "no cgroup mounts");
      },
      CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS);
}

TEST_P(RootfsIntegration, NoPivotMovesAndChroots) {
  options_.no_pivot = true;
  run_container([&](Checks& c) {
    struct stat st {};
    c.expect(::stat("/bin/busybox", &st) == 0, "not in the rootfs");
    c.expect(::stat("/proc/self", &st) == 0, "no /proc");
    c.expect(::stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode), "no /dev/null");
  });
}

// With a user namespace mknod is refused, so device nodes are the host's, bind-mounted.
TEST_P(RootfsIntegration, UserNamespaceBindsHostDevices) {
  options_.new_user_ns = true;
  run_container([&](Checks& c) {
    auto mounts = barge::rootfs::detail::read_mountinfo();
    c.expect(find_mount(mounts, "/dev/null") != nullptr, "/dev/null is not a bind mount");
    struct stat st {};
    c.expect(::stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3),
             "/dev/null is not char 1:3");
    c.expect(errno_of_write("/dev/null") == 0, "/dev/null not writable");
  });
}

TEST_P(RootfsIntegration, RootfsPropagationIsAppliedAfterPivot) {
  spec_.linux->rootfs_propagation = "rshared";
  run_container([&](Checks& c) {
    auto mounts = barge::rootfs::detail::read_mountinfo();
    const MountInfo* root = find_mount(mounts, "/");
    c.expect(root && root->optional_fields.find("shared:") != std::string::npos, "/ is not shared");
    const MountInfo* proc = find_mount(mounts, "/proc");
    c.expect(proc && proc->optional_fields.find("shared:") != std::string::npos,
             "/proc is not shared");
  });
}

INSTANTIATE_TEST_SUITE_P(Rootfs, RootfsIntegration, ::testing::Values(false, true),
                         [](const auto& param_info) {
                           return param_info.param ? "ManualWalk" : "Openat2";
                         });

}  // namespace

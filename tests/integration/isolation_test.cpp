// What the kernel says about a running container: pid 1, hostname, mounts, masked/readonly paths,
// namespaces, user, rlimits, fds, cgroup placement, and a hostile rootfs.
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "common/fd.hpp"
#include "tests/integration/harness.hpp"

namespace barge::test {
namespace {

namespace fs = std::filesystem;

class Isolation : public RuntimeTest {};

void drop_namespace(Json& config, const std::string& type) {
  auto& ns = config["linux"]["namespaces"];
  ns.erase(std::remove_if(ns.begin(), ns.end(), [&](const Json& n) { return n["type"] == type; }),
           ns.end());
}

TEST_F(Isolation, UserProcessIsPid1) {
  auto r = run_container({"sh", "-c", "echo $$"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.out, "1\n") << r.describe();
  // The user process itself (not a runtime helper) is pid 1.
  auto cmdline = run_container({"cat", "/proc/1/cmdline"});
  ASSERT_EQ(cmdline.status, 0) << cmdline.describe();
  EXPECT_EQ(cmdline.out, std::string("cat\0/proc/1/cmdline\0", 20)) << cmdline.describe();
}

TEST_F(Isolation, HostnameFromConfig) {
  auto r = run_container({"hostname"}, [](Json& c) { c["hostname"] = "iso-host-42"; });
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.out, "iso-host-42\n");
}

// A tmpfs mounted on the host while the test runs; unmounted in the destructor.
class HostMount {
 public:
  explicit HostMount(const std::string& dir) : dir_(dir) {
    fs::create_directories(dir_);
    ok_ = mount("barge-it-probe", dir_.c_str(), "tmpfs", 0, "size=64k") == 0;
  }
  ~HostMount() {
    if (ok_) umount2(dir_.c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }

 private:
  std::string dir_;
  bool ok_ = false;
};

TEST_F(Isolation, HostMountsInvisible) {
  const std::string marker = "hostmnt-" + std::to_string(getpid()) + "-probe";
  const std::string dir = test_dir() + "/" + marker;
  HostMount host(dir);
  ASSERT_TRUE(host.ok());
  ASSERT_FALSE(mounts_mentioning(dir).empty());
  auto r = run_container({"cat", "/proc/self/mountinfo"});
  ASSERT_EQ(r.status, 0) << r.describe();
  bool has_root = false;
  for (const auto& line : split_lines(r.out)) {
    auto words = split_words(line);
    has_root = has_root || (words.size() > 4 && words[4] == "/");
  }
  EXPECT_TRUE(has_root) << "no root mount?\n" << r.out;
  EXPECT_EQ(r.out.find(marker), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("barge-it-probe"), std::string::npos) << r.out;
}

TEST_F(Isolation, MaskedPaths) {
  // /proc/timer_list is readable by root and never empty on the host; masked it reads as empty.
  ASSERT_FALSE(slurp("/proc/timer_list").empty());
  auto r = run_container({"sh", "-c",
                          "echo timer_list=$(cat /proc/timer_list 2>/dev/null | wc -c);"
                          "echo kcore=$(head -c 16 /proc/kcore 2>/dev/null | wc -c);"
                          "echo firmware=$(ls /sys/firmware | wc -l)"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_NE(r.out.find("timer_list=0\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("kcore=0\n"), std::string::npos) << r.out;
  if (!fs::is_empty("/sys/firmware")) {
    EXPECT_NE(r.out.find("firmware=0\n"), std::string::npos) << r.out;
  }
  // Control: without maskedPaths the same probe sees the real file, so the test can fail.
  auto control = run_container({"sh", "-c", "cat /proc/timer_list | wc -c"},
                               [](Json& c) { c["linux"]["maskedPaths"] = Json::array(); });
  ASSERT_EQ(control.status, 0) << control.describe();
  EXPECT_NE(trim(control.out), "0");
}

TEST_F(Isolation, ReadonlyPathsProcSys) {
  const std::string probe = "echo probe > /proc/sys/kernel/hostname && echo wrote || echo failed";
  auto r = run_container({"sh", "-c", probe});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.out, "failed\n") << r.describe();
  // Control: the uts-namespaced sysctl is writable when /proc/sys is not made read-only.
  auto control = run_container({"sh", "-c", probe},
                               [](Json& c) { c["linux"]["readonlyPaths"] = Json::array(); });
  ASSERT_EQ(control.status, 0) << control.describe();
  EXPECT_EQ(control.out, "wrote\n") << control.describe();
}

TEST_F(Isolation, ReadonlyRoot) {
  auto r = run_container({"sh", "-c", "touch /x && echo wrote || echo failed"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.out, "failed\n") << r.describe();
  std::string id;
  auto rw = run_container(
      {"sh", "-c", "touch /x && echo wrote || echo failed"},
      [](Json& c) { c["root"]["readonly"] = false; }, &id);
  ASSERT_EQ(rw.status, 0) << rw.describe();
  EXPECT_EQ(rw.out, "wrote\n") << rw.describe();
  EXPECT_TRUE(path_exists(bundle_dir(id) + "/rootfs/x"));
}

TEST_F(Isolation, NamespacesDifferFromHost) {
  const std::vector<std::string> kinds{"pid", "mnt", "uts", "ipc", "net"};
  std::string script;
  for (const auto& k : kinds) script += "readlink /proc/self/ns/" + k + ";";
  auto r = run_container({"sh", "-c", script});
  ASSERT_EQ(r.status, 0) << r.describe();
  auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), kinds.size()) << r.out;
  for (size_t i = 0; i < kinds.size(); ++i) {
    std::string host = ns_link("self", kinds[i]);
    ASSERT_FALSE(host.empty());
    EXPECT_NE(lines[i], host) << kinds[i] << " namespace shared with the host";
  }
  // Control: without a network namespace the container shares the host's.
  auto shared = run_container({"readlink", "/proc/self/ns/net"},
                              [](Json& c) { drop_namespace(c, "network"); });
  ASSERT_EQ(shared.status, 0) << shared.describe();
  EXPECT_EQ(trim(shared.out), ns_link("self", "net"));
}

TEST_F(Isolation, EnvAndCwd) {
  auto r = run_container({"sh", "-c", "echo $FOO; echo $BAR; pwd"}, [](Json& c) {
    c["process"]["env"].push_back("FOO=foo value");
    c["process"]["env"].push_back("BAR=bar");
    c["process"]["cwd"] = "/tmp";
  });
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.out, "foo value\nbar\n/tmp\n");
}

// Without HOME in process.env the init takes it from the container's /etc/passwd entry of
// process.user.uid ("/" without one); a configured HOME stays.
TEST_F(Isolation, HomeFromTheContainersPasswd) {
  struct Case {
    int uid;
    bool set_home;
    std::string want;
  };
  const std::vector<Case> cases{{0, false, "/root"},
                                {65534, false, "/nonexistent"},
                                {1234, false, "/home/app"},
                                {4321, false, "/"},
                                {1234, true, "/custom"}};
  for (const Case& c : cases) {
    std::string id = new_id();
    Bundle bundle = make_bundle(id, {"sh", "-c", "echo \"$HOME\""}, [&](Json& config) {
      config["process"]["user"] = {{"uid", c.uid}, {"gid", c.uid}};
      if (c.set_home) config["process"]["env"].push_back("HOME=/custom");
    });
    {
      // An entry whose last field (the shell) is empty.
      std::ofstream passwd(bundle.rootfs() + "/etc/passwd", std::ios::app);
      passwd << "app:x:1234:1234:an app:/home/app:\n";
    }
    ProcResult r = runtime({"run", "--bundle", bundle.dir, id});
    ASSERT_EQ(r.status, 0) << r.describe();
    EXPECT_EQ(trim(r.out), c.want) << "uid " << c.uid;
  }
}

// process.args[0] without a slash is looked up in the PATH of process.env, entries in order (a
// trailing ':' adds nothing); none found fails the create with runc's wording.
TEST_F(Isolation, ExecutableLookupInPath) {
  std::string id = new_id();
  Bundle bundle = make_bundle(
      id, {"tool"}, [](Json& c) { c["process"]["env"] = {"PATH=/nonexistent:/opt/b:/opt/a:"}; });
  for (const char* dir : {"a", "b"}) {
    std::string tool = bundle.rootfs() + "/opt/" + dir + "/tool";
    std::filesystem::create_directories(bundle.rootfs() + "/opt/" + dir);
    std::ofstream(tool) << "#!/bin/sh\necho from-" << dir << "\n";
    std::filesystem::permissions(tool, std::filesystem::perms(0755));
  }
  ProcResult r = runtime({"run", "--bundle", bundle.dir, id});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.out, "from-b\n");

  auto missing = run_container({"sh", "-c", "true"},
                               [](Json& c) { c["process"]["env"] = {"PATH=/nonexistent:"}; });
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.err.find("executable file not found in $PATH"), std::string::npos)
      << missing.describe();
}

TEST_F(Isolation, UserAndAdditionalGids) {
  auto r = run_container({"sh", "-c", "id -u; id -g; id -G"}, [](Json& c) {
    c["process"]["user"] = {{"uid", 1000}, {"gid", 1000}, {"additionalGids", {1001, 1002}}};
  });
  ASSERT_EQ(r.status, 0) << r.describe();
  auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_EQ(lines[0], "1000");
  EXPECT_EQ(lines[1], "1000");
  auto groups = split_words(lines[2]);
  std::set<std::string> set(groups.begin(), groups.end());
  EXPECT_TRUE(set.count("1001") && set.count("1002")) << lines[2];
  EXPECT_FALSE(set.count("0")) << "root group kept: " << lines[2];
}

TEST_F(Isolation, Rlimits) {
  auto r = run_container({"sh", "-c", "ulimit -n; ulimit -Hn"}, [](Json& c) {
    c["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"soft", 777}, {"hard", 888}}};
  });
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.out, "777\n888\n");
}

// `ls /proc/self/fd` lists 0 1 2, the fds the runtime passed on, and the one directory fd ls opened
// itself, which takes the lowest free number. Any leaked fd adds an entry.
std::vector<std::string> expected_fds(int passed) {
  std::vector<std::string> fds;
  for (int i = 0; i < 3 + passed + 1; ++i) fds.push_back(std::to_string(i));
  return fds;
}

std::vector<std::string> sorted_words(const std::string& text) {
  auto w = split_words(text);
  std::sort(w.begin(), w.end(), [](auto& a, auto& b) { return std::stoi(a) < std::stoi(b); });
  return w;
}

struct ExtraFds {
  barge::UniqueFd pipe_r, pipe_w, file;
  ExtraFds() {
    int p[2];
    if (pipe2(p, O_CLOEXEC) == 0) {
      pipe_r.reset(p[0]);
      pipe_w.reset(p[1]);
    }
    file.reset(open("/dev/null", O_RDONLY | O_CLOEXEC));
  }
  std::vector<int> fds() const { return {pipe_r.get(), file.get()}; }
};

TEST_F(Isolation, NoFdLeaks) {
  ExtraFds extra;
  std::string id = new_id();
  Bundle b = make_bundle(id, {"ls", "/proc/self/fd"});
  // Fds 3 and 4 reach the runtime but are not to be preserved.
  auto r = runtime({"run", "--bundle", b.dir, id}, {.extra_fds = extra.fds()});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(sorted_words(r.out), expected_fds(0)) << r.out;
}

TEST_F(Isolation, PreserveFds) {
  ExtraFds extra;
  std::string id = new_id();
  Bundle b = make_bundle(id, {"sh", "-c", "ls /proc/self/fd; readlink /proc/self/fd/3"});
  auto r =
      runtime({"run", "--preserve-fds", "2", "--bundle", b.dir, id}, {.extra_fds = extra.fds()});
  ASSERT_EQ(r.status, 0) << r.describe();
  auto lines = split_lines(r.out);
  ASSERT_GE(lines.size(), 2u) << r.out;
  std::string fd3 = lines.back();
  lines.pop_back();
  std::string listing;
  for (const auto& l : lines) listing += l + "\n";
  EXPECT_EQ(sorted_words(listing), expected_fds(2)) << r.out;
  EXPECT_EQ(fd3.rfind("pipe:", 0), 0u) << fd3;
}

TEST_F(Isolation, PlacedInConfiguredCgroup) {
  const std::string id = create_container({"sleep", "100"});
  auto s = state(id);
  ASSERT_TRUE(s);
  int pid = (*s)["pid"];
  const std::string want = "/" + cgroup_rel(id);
  std::set<std::string> placed;
  for (const auto& line : split_lines(slurp("/proc/" + std::to_string(pid) + "/cgroup"))) {
    // hierarchy-id:controllers:path
    auto first = line.find(':'), second = line.find(':', first + 1);
    if (second == std::string::npos) continue;
    if (line.substr(second + 1) == want) placed.insert(line.substr(first + 1, second - first - 1));
  }
  for (const char* ctrl : {"memory", "pids", "cpu", "devices", "freezer"}) {
    if (path_exists(std::string("/sys/fs/cgroup/") + ctrl + "/cgroup.procs")) {
      EXPECT_TRUE(placed.count(ctrl)) << ctrl << " not at " << want << ":\n"
                                      << slurp("/proc/" + std::to_string(pid) + "/cgroup");
    }
  }
  // Every hierarchy, v1 (joined by the init itself) and cgroup2 (joined by the clone).
  for (const auto& line : split_lines(slurp("/proc/" + std::to_string(pid) + "/cgroup")))
    EXPECT_TRUE(line.ends_with(":" + want)) << line;
  auto procs = split_words(slurp("/sys/fs/cgroup/pids/" + cgroup_rel(id) + "/cgroup.procs"));
  EXPECT_NE(std::find(procs.begin(), procs.end(), std::to_string(pid)), procs.end());
}

// rootfs/proc is a symlink to a host directory: the runtime must fail or keep the mount inside.
TEST_F(Isolation, HostileProcSymlinkDoesNotMountOnHost) {
  std::string id = new_id();
  Bundle b = make_bundle(id, {"true"});
  const std::string target = test_dir() + "/hostile-target-" + id;
  fs::create_directories(target);
  fs::remove(b.rootfs() + "/proc");
  fs::create_symlink(target, b.rootfs() + "/proc");
  auto r = runtime({"run", "--bundle", b.dir, id});
  EXPECT_TRUE(mounts_mentioning(target).empty()) << "host mount at " << target << "\n"
                                                 << r.describe();
  EXPECT_TRUE(fs::is_empty(target)) << r.describe();
}

// Same trick through a mount destination: /dev as a symlink to a host directory.
TEST_F(Isolation, HostileDevSymlinkDoesNotMountOnHost) {
  std::string id = new_id();
  Bundle b = make_bundle(id, {"true"});
  const std::string target = test_dir() + "/hostile-dev-" + id;
  fs::create_directories(target);
  fs::remove(b.rootfs() + "/dev");
  fs::create_symlink(target, b.rootfs() + "/dev");
  auto r = runtime({"run", "--bundle", b.dir, id});
  EXPECT_TRUE(mounts_mentioning(target).empty()) << r.describe();
  if (testing_barge()) {
    // runc 1.1.5 does write its /dev symlinks (fd, ptmx, stdin...) into the host directory here.
    EXPECT_TRUE(fs::is_empty(target)) << r.describe();
  }
}

}  // namespace
}  // namespace barge::test

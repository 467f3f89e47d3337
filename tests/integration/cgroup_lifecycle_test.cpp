// barge::cgroups against the real kernel (root only): CgroupHost uses the host's layout (hybrid on
// the dev machine, unified in the test VM); CgroupV2Namespace mounts a private cgroup2 tree so the
// v2 code paths (cgroup.freeze, cgroup.kill) also run on hybrid hosts.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cgroups/cgroup.hpp"
#include "cgroups/cgroupfs.hpp"
#include "cgroups/layout.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/file.hpp"

namespace barge::cgroups {
namespace {

using namespace std::chrono_literals;

#define CGROUP_REQUIRE_ROOT() \
  if (::geteuid() != 0) GTEST_SKIP() << "needs root"

std::string unique_test_path() {
  std::random_device random;
  std::ostringstream out;
  out << "/barge-test/" << ::getpid() << "-" << std::hex << random();
  return out.str();
}

// Every directory of path in the layout's hierarchies.
std::vector<std::string> dirs_of(const detail::HostLayout& layout, const std::string& path) {
  std::vector<std::string> dirs;
  for (const auto& h : layout.v1) dirs.push_back(detail::dir_in(h, path));
  if (layout.unified) dirs.push_back(detail::dir_in(*layout.unified, path));
  return dirs;
}

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// A process the test forked: runs body, then _exit(0). SIGKILLed and reaped unless waited for.
class Child {
 public:
  explicit Child(const std::function<int()>& body) {
    pid_ = ::fork();
    if (pid_ < 0) throw_errno("fork");
    if (pid_ == 0) ::_exit(body());
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    wait();
  }
  pid_t pid() const { return pid_; }
  // The raw waitpid status.
  int wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
};

int sleep_forever() {
  for (;;) ::pause();
}

int spin_forever() {
  volatile unsigned long counter = 0;
  for (;;) counter = counter + 1;
}

// Removes the test cgroup even when the test failed half-way; also its /barge-test parent when
// nobody else uses it.
class CgroupCleanup {
 public:
  CgroupCleanup(const detail::HostLayout& layout, std::string path)
      : layout_(layout), path_(std::move(path)) {}
  ~CgroupCleanup() {
    if (::geteuid() != 0) return;  // the test was skipped
    try {
      detail::CgroupAccess::open(layout_, path_).destroy();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "cleanup of " << path_ << ": " << e.what();
    }
    for (const auto& dir : dirs_of(layout_, "/barge-test")) ::rmdir(dir.c_str());
  }

 private:
  const detail::HostLayout& layout_;
  std::string path_;
};

// "path" from each /proc/PID/cgroup line, keyed by its controller list ("" for v2).
std::vector<std::pair<std::string, std::string>> proc_cgroups(pid_t pid) {
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream lines(read_file("/proc/" + std::to_string(pid) + "/cgroup"));
  for (std::string line; std::getline(lines, line);) {
    auto first = line.find(':'), second = line.find(':', first + 1);
    out.emplace_back(line.substr(first + 1, second - first - 1), line.substr(second + 1));
  }
  return out;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

// utime + stime in clock ticks, from /proc/PID/stat (fields 14 and 15).
unsigned long cpu_ticks(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string field;
  unsigned long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoul(field);
    if (i == 15) stime = std::stoul(field);
  }
  return utime + stime;
}

std::string file_value(const std::string& path) {
  return std::string(fs::trim(read_file(path)));
}

const detail::Hierarchy* v1_hierarchy(const detail::HostLayout& layout, std::string_view name) {
  for (const auto& h : layout.v1)
    for (const auto& c : h.controllers)
      if (c == name) return &h;
  return nullptr;
}

// The file of a controller setting for this layout: v1 hierarchy file or the v2 one.
std::string setting_file(const detail::HostLayout& layout, const std::string& path,
                         std::string_view controller, const std::string& v1_file,
                         const std::string& v2_file) {
  if (layout.layout == Layout::unified)
    return detail::dir_in(*layout.unified, path) + "/" + v2_file;
  const detail::Hierarchy* h = v1_hierarchy(layout, controller);
  return h ? detail::dir_in(*h, path) + "/" + v1_file : "";
}

// Each test gets a fresh cgroup at a unique path, destroyed (and checked) when it ends.
class CgroupHost : public ::testing::Test {
 protected:
  void SetUp() override { CGROUP_REQUIRE_ROOT(); }

  const detail::HostLayout& layout = detail::host();
  std::string path = unique_test_path();
  CgroupCleanup cleanup{layout, path};
  Cgroup cgroup = ::geteuid() == 0 ? Cgroup::create(path) : Cgroup::open(path);
};

TEST_F(CgroupHost, CreateAddProcessSignalAndDestroy) {
  EXPECT_EQ(cgroup.path(), path);
  for (const auto& dir : dirs_of(layout, path)) EXPECT_TRUE(is_dir(dir)) << dir;

  Child child(sleep_forever);
  cgroup.add_process(child.pid());

  size_t checked = 0;
  for (const auto& [controllers, cgroup_path] : proc_cgroups(child.pid())) {
    bool managed = controllers.empty() ? layout.unified.has_value() : false;
    for (const auto& h : layout.v1) managed = managed || joined(h.controllers) == controllers;
    if (!managed) continue;
    EXPECT_EQ(cgroup_path, path) << "hierarchy \"" << controllers << "\"";
    ++checked;
  }
  EXPECT_EQ(checked, layout.v1.size() + (layout.unified ? 1 : 0));
  EXPECT_EQ(cgroup.processes(), std::vector<pid_t>{child.pid()});
  EXPECT_EQ(Cgroup::open(path).processes(), std::vector<pid_t>{child.pid()});
  auto handles = cgroup.open_join_handles();
  EXPECT_EQ(handles.unified_dir.valid(), layout.unified.has_value());
  EXPECT_EQ(handles.v1_tasks.size(), layout.v1.size());

  cgroup.signal_all(SIGKILL);
  int status = child.wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;

  cgroup.destroy();
  for (const auto& dir : dirs_of(layout, path)) EXPECT_FALSE(is_dir(dir)) << dir;
  EXPECT_NO_THROW(cgroup.destroy());
  EXPECT_TRUE(cgroup.processes().empty());
}

TEST_F(CgroupHost, FreezeStopsABusyChildAndThawResumesIt) {
  Child child(spin_forever);
  cgroup.add_process(child.pid());
  EXPECT_FALSE(cgroup.frozen());

  cgroup.freeze();
  EXPECT_TRUE(cgroup.frozen());
  if (const auto* freezer = v1_hierarchy(layout, "freezer")) {
    EXPECT_EQ(file_value(detail::dir_in(*freezer, path) + "/freezer.state"), "FROZEN");
  }
  // The task's last slice can reach its utime a little after "frozen" (seen under emulation
  // in the v2 VM), so let the accounting settle before taking the reference.
  std::this_thread::sleep_for(100ms);
  unsigned long before = cpu_ticks(child.pid());
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(cpu_ticks(child.pid()), before);

  cgroup.thaw();
  EXPECT_FALSE(cgroup.frozen());
  before = cpu_ticks(child.pid());
  std::this_thread::sleep_for(300ms);
  EXPECT_GT(cpu_ticks(child.pid()), before);

  // A frozen cgroup can still be destroyed: its tasks are killed and thawed.
  cgroup.freeze();
  cgroup.destroy();
  int status = child.wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  for (const auto& dir : dirs_of(layout, path)) EXPECT_FALSE(is_dir(dir)) << dir;
}

TEST_F(CgroupHost, PidsLimitStopsForkBeyondIt) {
  int go[2];
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  UniqueFd go_read(go[0]), go_write(go[1]);
  // Exit 0 when fork is refused, 1 when it unexpectedly succeeds, 2 on a setup problem.
  Child child([&] {
    char byte;
    if (::read(go_read.get(), &byte, 1) != 1) return 2;
    pid_t grandchild = ::fork();
    if (grandchild == 0) ::_exit(0);
    if (grandchild > 0) {
      ::waitpid(grandchild, nullptr, 0);
      return 1;
    }
    return errno == EAGAIN ? 0 : 2;
  });
  cgroup.add_process(child.pid());
  spec::Resources resources;
  resources.pids_limit = 1;
  cgroup.apply_resources(resources);
  std::string pids_max = setting_file(layout, path, "pids", "pids.max", "pids.max");
  if (!pids_max.empty()) {
    EXPECT_EQ(file_value(pids_max), "1");
  }

  ASSERT_EQ(::write(go_write.get(), "x", 1), 1);
  int status = child.wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  resources.pids_limit = 0;
  cgroup.apply_resources(resources);
  if (!pids_max.empty()) {
    EXPECT_EQ(file_value(pids_max), "max");
  }
}

TEST_F(CgroupHost, MemoryAndCpuSettingsReachTheFiles) {
  spec::Resources resources;
  resources.memory.emplace();
  resources.memory->limit = 64 << 20;
  resources.memory->reservation = 32 << 20;
  resources.cpu.emplace();
  resources.cpu->shares = 512;
  resources.cpu->quota = 50000;
  resources.cpu->period = 100000;
  resources.cpu->cpus = "0";
  resources.cpu->mems = "0";
  cgroup.apply_resources(resources);

  auto expect_file = [&](std::string_view controller, const std::string& v1_file,
                         const std::string& v2_file, const std::string& expected) {
    std::string file = setting_file(layout, path, controller, v1_file, v2_file);
    if (!file.empty()) {
      EXPECT_EQ(file_value(file), expected) << file;
    }
  };
  expect_file("memory", "memory.limit_in_bytes", "memory.max", "67108864");
  expect_file("memory", "memory.soft_limit_in_bytes", "memory.low", "33554432");
  expect_file("cpu", "cpu.shares", "cpu.weight", layout.layout == Layout::unified ? "20" : "512");
  expect_file("cpu", "cpu.cfs_quota_us", "cpu.max",
              layout.layout == Layout::unified ? "50000 100000" : "50000");
  expect_file("cpu", "cpu.cfs_period_us", "cpu.max",
              layout.layout == Layout::unified ? "50000 100000" : "100000");
  expect_file("cpuset", "cpuset.cpus", "cpuset.cpus", "0");

  // Raising the limit with swap (v1: memsw must be raised first).
  std::string swap_file =
      setting_file(layout, path, "memory", "memory.memsw.limit_in_bytes", "memory.swap.max");
  if (swap_file.empty() || !path_exists(swap_file)) return;  // no swap accounting
  spec::Resources more;
  more.memory.emplace();
  more.memory->limit = 128 << 20;
  more.memory->swap = 256 << 20;
  cgroup.apply_resources(more);
  expect_file("memory", "memory.limit_in_bytes", "memory.max", "134217728");
  expect_file("memory", "memory.memsw.limit_in_bytes", "memory.swap.max",
              layout.layout == Layout::unified ? "134217728" : "268435456");
}

TEST_F(CgroupHost, ErrorsNameTheFieldAndTheFile) {
  spec::Resources resources;
  resources.cpu.emplace();
  resources.cpu->cpus = "9999";
  try {
    cgroup.apply_resources(resources);
    ADD_FAILURE() << "cpus 9999 accepted";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_TRUE(message.starts_with("linux.resources.cpu.cpus: write /")) << message;
    EXPECT_NE(message.find(path + "/cpuset.cpus: "), std::string::npos) << message;
  }

  spec::Resources unified;
  unified.unified["pids.max"] = "7";
  if (layout.layout == Layout::unified) {
    cgroup.apply_resources(unified);
    EXPECT_EQ(file_value(detail::dir_in(*layout.unified, path) + "/pids.max"), "7");
    unified.unified = {{"../pids.max", "7"}};
  }
  try {
    cgroup.apply_resources(unified);
    ADD_FAILURE() << "unified accepted";
  } catch (const Error& e) {
    EXPECT_TRUE(std::string(e.what()).starts_with("linux.resources.unified")) << e.what();
  }
}

TEST_F(CgroupHost, DestroyRemovesSubCgroupsAndTheirProcesses) {
  Child outer(sleep_forever), inner(sleep_forever);
  cgroup.add_process(outer.pid());
  // What a container with cgroup delegation would do: a sub-cgroup holding processes.
  for (const auto& dir : dirs_of(layout, path)) {
    ASSERT_EQ(::mkdir((dir + "/inner").c_str(), 0755), 0) << dir;
    if (path_exists(dir + "/inner/cpuset.cpus") && file_value(dir + "/inner/cpuset.cpus").empty()) {
      write_file(dir + "/inner/cpuset.cpus", file_value(dir + "/cpuset.cpus"));
      write_file(dir + "/inner/cpuset.mems", file_value(dir + "/cpuset.mems"));
    }
  }
  // On cgroup2 a process may not sit in a cgroup whose children hold processes only when
  // controllers are enabled in its subtree_control; the leaf has none, so this works everywhere.
  Cgroup::open(path + "/inner").add_process(inner.pid());
  auto pids = cgroup.processes();
  std::vector<pid_t> expected{outer.pid(), inner.pid()};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(pids, expected);

  cgroup.destroy();
  for (const auto& dir : dirs_of(layout, path)) EXPECT_FALSE(is_dir(dir)) << dir;
  for (Child* child : {&outer, &inner}) {
    int status = child->wait();
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  }
  EXPECT_NO_THROW(cgroup.destroy());
}

TEST_F(CgroupHost, RelativePathResolvesUnderOwnCgroup) {
  CGROUP_REQUIRE_ROOT();
  std::string resolved = resolve_path("barge-rel", "id");
  EXPECT_TRUE(resolved.ends_with("/barge-rel")) << resolved;
  EXPECT_EQ(resolve_path("", "abc"), "/barge/abc");
}

// --- cgroup2 in a private mount namespace -------------------------------------------------------

// Runs in the forked child (own mount namespace); returns "" on success or what went wrong.
std::string run_v2_scenario(const std::string& mount_point, const std::string& path) {
  detail::HostLayout layout =
      detail::parse_mountinfo("1 1 0:1 / " + mount_point + " rw - cgroup2 none rw\n");
  if (layout.layout != Layout::unified) return "layout is not unified";
  Cgroup cgroup = detail::CgroupAccess::create(layout, path);
  std::string dir = mount_point + path;
  if (!is_dir(dir)) return "no dir " + dir;
  if (!cgroup.open_join_handles().unified_dir.valid()) return "no unified dir fd";

  Child spinner(spin_forever);
  cgroup.add_process(spinner.pid());
  if (file_value(dir + "/cgroup.procs") != std::to_string(spinner.pid()))
    return "cgroup.procs: " + file_value(dir + "/cgroup.procs");
  if (cgroup.processes() != std::vector<pid_t>{spinner.pid()}) return "processes() mismatch";

  cgroup.freeze();
  if (!cgroup.frozen()) return "not frozen after freeze()";
  if (file_value(dir + "/cgroup.freeze") != "1") return "cgroup.freeze is not 1";
  unsigned long before = cpu_ticks(spinner.pid());
  std::this_thread::sleep_for(300ms);
  if (cpu_ticks(spinner.pid()) != before) return "frozen child kept running";
  cgroup.thaw();
  if (cgroup.frozen()) return "still frozen after thaw()";

  cgroup.signal_all(SIGKILL);  // cgroup.kill
  int status = spinner.wait();
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
    return "child not SIGKILLed: " + std::to_string(status);
  cgroup.destroy();
  if (is_dir(dir)) return "dir left after destroy";
  cgroup.destroy();
  return "";
}

TEST(CgroupV2Namespace, FreezeKillAndProcsOnAPrivateCgroup2Mount) {
  CGROUP_REQUIRE_ROOT();
  std::string path = unique_test_path();
  // The private mount shows the same cgroup2 hierarchy the host has; clean up through it.
  CgroupCleanup cleanup(detail::host(), path);

  int report[2];
  ASSERT_EQ(::pipe2(report, O_CLOEXEC), 0);
  UniqueFd report_read(report[0]), report_write(report[1]);
  Child child([&]() -> int {
    std::string result;
    try {
      char tmpl[] = "/tmp/barge-cgroup2-XXXXXX";
      if (::unshare(CLONE_NEWNS) != 0) throw_errno("unshare");
      if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        throw_errno("make / rprivate");
      if (::mkdtemp(tmpl) == nullptr) throw_errno("mkdtemp");
      if (::mount("none", tmpl, "cgroup2", 0, nullptr) != 0) throw_errno("mount cgroup2");
      result = run_v2_scenario(tmpl, path);
      ::umount2(tmpl, MNT_DETACH);
      ::rmdir(tmpl);
    } catch (const std::exception& e) {
      result = std::string("exception: ") + e.what();
    }
    (void)!::write(report_write.get(), result.data(), result.size());
    return 0;
  });
  report_write.reset();
  std::string result;
  char buf[512];
  for (ssize_t n; (n = ::read(report_read.get(), buf, sizeof buf)) > 0;) result.append(buf, n);
  int status = child.wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(result, "");
}

}  // namespace
}  // namespace barge::cgroups

// Cgroup lifecycle: create/open, processes, signals, destroy. Freezing lives in freezer.cpp,
// resource limits in resources.cpp, host layout parsing in layout.cpp.
#include "cgroups/cgroup.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>

#include "cgroups/cgroupfs.hpp"
#include "cgroups/layout.hpp"
#include "common/error.hpp"
#include "common/log.hpp"

namespace barge::cgroups {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  while (true) {
    auto start = text.find_first_not_of(" \t\n");
    if (start == std::string_view::npos) return out;
    text.remove_prefix(start);
    auto end = text.find_first_of(" \t\n");
    out.emplace_back(text.substr(0, end));
    if (end == std::string_view::npos) return out;
    text.remove_prefix(end);
  }
}

bool contains(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

std::string parent_dir(const std::string& dir) {
  return dir.substr(0, dir.rfind('/'));
}

// A new v1 cpuset cgroup starts with empty cpuset.cpus/mems and attaching a process to it fails
// with ENOSPC, so copy the values down from the nearest ancestor that has them.
void init_cpuset(const std::string& dir, const std::string& mount_point) {
  std::string cpus_file = dir + "/cpuset.cpus", mems_file = dir + "/cpuset.mems";
  std::string cpus(fs::trim(fs::read(cpus_file))), mems(fs::trim(fs::read(mems_file)));
  if ((!cpus.empty() && !mems.empty()) || dir.size() <= mount_point.size()) return;
  std::string parent = parent_dir(dir);
  init_cpuset(parent, mount_point);
  if (cpus.empty()) fs::write(cpus_file, fs::trim(fs::read(parent + "/cpuset.cpus")));
  if (mems.empty()) fs::write(mems_file, fs::trim(fs::read(parent + "/cpuset.mems")));
}

// Enables in one ancestor's cgroup.subtree_control every wanted controller it lacks; returns the
// controllers enabled there afterwards (what its children may enable in turn).
std::vector<std::string> enable_subtree_controllers(const std::string& dir,
                                                    const std::vector<std::string>& wanted) {
  std::string file = dir + "/cgroup.subtree_control";
  std::vector<std::string> enabled = words(fs::read(file));
  std::vector<std::string> missing;
  for (const auto& controller : wanted)
    if (!contains(enabled, controller)) missing.push_back(controller);
  if (missing.empty()) return enabled;

  std::string all;
  for (const auto& controller : missing) all += (all.empty() ? "+" : " +") + controller;
  if (fs::try_write(file, all) == 0) {
    enabled.insert(enabled.end(), missing.begin(), missing.end());
    return enabled;
  }
  // One refusal fails the whole write (EBUSY: processes in dir; ENOENT: a threaded cgroup or a
  // controller gone meanwhile), so retry one by one and go on without the refused ones.
  for (const auto& controller : missing) {
    if (int err = fs::try_write(file, "+" + controller); err != 0)
      log::debug("cgroups: cannot enable " + controller + " in " + file + ": " +
                 std::strerror(err));
    else
      enabled.push_back(controller);
  }
  return enabled;
}

// Enables the available controllers from the cgroup2 root down to the leaf's parent, so the leaf
// gets cpu.max, memory.max and the like.
void enable_v2_controllers(const detail::Hierarchy& unified, const std::string& leaf_dir) {
  const std::string& root = unified.mount_point;
  std::vector<std::string> available = words(fs::read(root + "/cgroup.controllers"));
  // The slash right after root ends the root itself; every later one ends a deeper ancestor.
  for (auto slash = leaf_dir.find('/', root.size());
       !available.empty() && slash != std::string::npos; slash = leaf_dir.find('/', slash + 1))
    available = enable_subtree_controllers(leaf_dir.substr(0, slash), available);
}

void kill_pids(const std::vector<pid_t>& pids, int sig) {
  for (pid_t pid : pids)
    if (::kill(pid, sig) != 0 && errno != ESRCH) throw_errno("kill " + std::to_string(pid));
}

}  // namespace

namespace detail {

Cgroup CgroupAccess::open(const HostLayout& layout, const std::string& path) {
  Cgroup cgroup(path);
  cgroup.layout_ = layout.layout;
  for (const auto& hierarchy : layout.v1)
    cgroup.v1_dirs_.push_back(V1Dir{dir_in(hierarchy, path), hierarchy.controllers});
  if (layout.unified) cgroup.unified_dir_ = dir_in(*layout.unified, path);
  return cgroup;
}

Cgroup CgroupAccess::create(const HostLayout& layout, const std::string& path) {
  Cgroup cgroup = open(layout, path);
  if (cgroup.v1_dirs_.empty() && cgroup.unified_dir_.empty())
    throw_error("create cgroup " + path + ": no cgroup hierarchy is mounted");
  for (size_t i = 0; i < cgroup.v1_dirs_.size(); ++i) {
    const V1Dir& v1 = cgroup.v1_dirs_[i];
    fs::make_dirs(v1.dir);
    if (contains(v1.controllers, "cpuset")) init_cpuset(v1.dir, layout.v1[i].mount_point);
  }
  if (layout.unified) {
    fs::make_dirs(cgroup.unified_dir_);
    // On hybrid hosts resources are applied through v1; the cgroup2 tree only tracks membership.
    if (layout.layout == Layout::unified)
      enable_v2_controllers(*layout.unified, cgroup.unified_dir_);
  }
  return cgroup;
}

}  // namespace detail

Cgroup Cgroup::create(const std::string& path) {
  return detail::CgroupAccess::create(detail::host(), path);
}

Cgroup Cgroup::open(const std::string& path) {
  return detail::CgroupAccess::open(detail::host(), path);
}

const detail::V1Dir* Cgroup::v1_dir(std::string_view controller) const {
  for (const auto& v1 : v1_dirs_)
    if (contains(v1.controllers, controller)) return &v1;
  return nullptr;
}

const std::string& Cgroup::procs_dir() const {
  if (layout_ == Layout::unified || v1_dirs_.empty()) return unified_dir_;
  // Any hierarchy lists every process; prefer ones a container always has.
  for (std::string_view controller : {"pids", "freezer", "memory", "name=systemd", "cpu"})
    if (const detail::V1Dir* v1 = v1_dir(controller)) return v1->dir;
  return v1_dirs_.front().dir;
}

std::vector<std::string> Cgroup::all_dirs() const {
  std::vector<std::string> dirs;
  dirs.reserve(v1_dirs_.size() + 1);
  for (const auto& v1 : v1_dirs_) dirs.push_back(v1.dir);
  if (!unified_dir_.empty()) dirs.push_back(unified_dir_);
  return dirs;
}

void Cgroup::add_process(pid_t pid) const {
  std::string pid_text = std::to_string(pid);
  for (const auto& dir : all_dirs()) fs::write(dir + "/cgroup.procs", pid_text);
}

void Cgroup::add_process_unified(pid_t pid) const {
  if (!unified_dir_.empty()) fs::write(unified_dir_ + "/cgroup.procs", std::to_string(pid));
}

JoinHandles Cgroup::open_join_handles() const {
  JoinHandles handles;
  if (!unified_dir_.empty()) {
    handles.unified_dir = UniqueFd(::open(unified_dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!handles.unified_dir) throw_errno("open " + unified_dir_);
  }
  handles.v1_tasks.reserve(v1_dirs_.size());
  for (const auto& v1 : v1_dirs_) {
    std::string tasks = v1.dir + "/tasks";
    UniqueFd fd(::open(tasks.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) throw_errno("open " + tasks);
    handles.v1_tasks.push_back({std::move(fd), std::move(tasks)});
  }
  return handles;
}

void JoinHandles::join_self() const {
  for (const auto& tasks : v1_tasks)
    if (::write(tasks.fd.get(), "0", 1) != 1)
      throw_errno("join the container's cgroup: " + tasks.path);
}

std::vector<pid_t> Cgroup::processes() const {
  std::vector<pid_t> pids = fs::procs_recursive(procs_dir());
  std::sort(pids.begin(), pids.end());
  pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
  return pids;
}

void Cgroup::signal_all(int sig) const {
  if (sig == SIGKILL && layout_ == Layout::unified) {
    std::string kill_file = unified_dir_ + "/cgroup.kill";
    int err = fs::try_write(kill_file, "1");
    if (err == 0) return;
    if (err != ENOENT) throw_errno("write " + kill_file, err);  // ENOENT: kernel < 5.14
  }
  if (sig != SIGKILL) return kill_pids(processes(), sig);

  // Children forked while we read cgroup.procs escape one pass, so repeat until none is left.
  auto delay = 1ms;
  for (int round = 0; round < 10; ++round) {
    std::vector<pid_t> pids = processes();
    if (pids.empty()) return;
    kill_pids(pids, SIGKILL);
    // v1 frozen tasks only act on SIGKILL once thawed.
    if (round == 0 && layout_ != Layout::unified && frozen()) thaw();
    std::this_thread::sleep_for(delay);
    delay = std::min<std::chrono::milliseconds>(delay * 2, 20ms);
  }
}

void Cgroup::destroy() const {
  signal_all(SIGKILL);
  // rmdir fails with EBUSY until the killed tasks have fully exited.
  const auto deadline = Clock::now() + 2s;
  auto delay = 1ms;
  for (;;) {
    int err = 0;
    std::string failed_dir;
    for (const auto& dir : all_dirs())
      if ((err = fs::remove_tree(dir, failed_dir)) != 0) break;
    if (err == 0) return;
    if (err != EBUSY || Clock::now() >= deadline)
      throw_errno("remove cgroup " + failed_dir +
                      " (processes left: " + std::to_string(processes().size()) + ")",
                  err);
    std::this_thread::sleep_for(delay);
    delay = std::min<std::chrono::milliseconds>(delay * 2, 50ms);
    kill_pids(processes(), SIGKILL);
  }
}

}  // namespace barge::cgroups

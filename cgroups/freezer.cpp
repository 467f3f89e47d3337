// Freezing: the v1 freezer when the host mounts one (legacy and hybrid), else cgroup2's
// cgroup.freeze.
#include <fcntl.h>
#include <poll.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "cgroups/cgroup.hpp"
#include "cgroups/cgroupfs.hpp"
#include "common/error.hpp"
#include "common/log.hpp"

namespace barge::cgroups {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// "frozen 1" in cgroup.events; false when the cgroup is gone.
bool v2_events_say_frozen(const std::string& dir) {
  auto events = fs::try_read(dir + "/cgroup.events");
  return events && events->find("frozen 1") != std::string::npos;
}

void freeze_v2(const std::string& dir) {
  fs::write(dir + "/cgroup.freeze", "1");
  // The kernel notifies cgroup.events changes with POLLPRI; poll in short slices anyway so a
  // missed notification costs little.
  std::string events_file = dir + "/cgroup.events";
  UniqueFd events(::open(events_file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!events) throw_errno("open " + events_file);
  const auto deadline = Clock::now() + 5s;
  while (!v2_events_say_frozen(dir)) {
    if (Clock::now() >= deadline) {
      fs::try_write(dir + "/cgroup.freeze", "0");
      throw_error("freeze " + dir + ": timed out waiting for \"frozen 1\" in cgroup.events");
    }
    pollfd pfd{events.get(), POLLPRI, 0};
    ::poll(&pfd, 1, 10);
  }
}

// Mirrors runc: FREEZING means some task has not reached the refrigerator yet (e.g. in the middle
// of vfork), so keep re-writing FROZEN, thawing now and then to let such tasks make progress.
void freeze_v1(const std::string& dir) {
  std::string state_file = dir + "/freezer.state";
  for (int attempt = 0; attempt < 1000; ++attempt) {
    if (attempt % 50 == 49) {
      fs::write(state_file, "THAWED");
      std::this_thread::sleep_for(10ms);
    }
    fs::write(state_file, "FROZEN");
    if (attempt % 25 == 24) std::this_thread::sleep_for(10us);
    std::string state(fs::trim(fs::read(state_file)));
    if (state == "FROZEN") {
      if (attempt > 1)
        log::debug("cgroups: " + dir + " frozen after " + std::to_string(attempt) + " retries");
      return;
    }
    if (state != "FREEZING")
      throw_error("freeze " + dir + ": unexpected freezer.state \"" + state + "\"");
  }
  fs::try_write(state_file, "THAWED");
  throw_error("freeze " + dir + ": still FREEZING after 1000 attempts; left thawed");
}

}  // namespace

void Cgroup::freeze() const {
  if (const detail::V1Dir* freezer = v1_dir("freezer")) return freeze_v1(freezer->dir);
  if (unified_dir_.empty()) throw_error("freeze cgroup " + path_ + ": no freezer is mounted");
  freeze_v2(unified_dir_);
}

void Cgroup::thaw() const {
  if (const detail::V1Dir* freezer = v1_dir("freezer"))
    return fs::write(freezer->dir + "/freezer.state", "THAWED");
  if (unified_dir_.empty()) throw_error("thaw cgroup " + path_ + ": no freezer is mounted");
  fs::write(unified_dir_ + "/cgroup.freeze", "0");
}

bool Cgroup::frozen() const {
  if (const detail::V1Dir* freezer = v1_dir("freezer")) {
    auto state = fs::try_read(freezer->dir + "/freezer.state");
    return state && fs::trim(*state) == "FROZEN";
  }
  return !unified_dir_.empty() && v2_events_say_frozen(unified_dir_);
}

}  // namespace barge::cgroups

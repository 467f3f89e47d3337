// OOM notifications: v1's cgroup.event_control eventfd on memory.oom_control, v2's memory.events
// oom_kill counter watched with inotify (the kernel signals modifications of memory.events).
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "cgroups/cgroup.hpp"
#include "cgroups/cgroupfs.hpp"
#include "common/error.hpp"

namespace barge::cgroups {
namespace {

uint64_t read_oom_kills(const std::string& events_file) {
  auto text = fs::try_read(events_file);
  if (!text) return 0;
  auto events = detail::parse_flat_keyed(*text);
  auto it = events.find("oom_kill");
  return it == events.end() ? 0 : it->second;
}

void drain(int fd) {
  char buf[4096];
  while (::read(fd, buf, sizeof buf) > 0) {
  }
}

}  // namespace

uint64_t OomNotifier::consume() {
  if (!v2_) {
    uint64_t count = 0;
    if (::read(fd_.get(), &count, sizeof count) != sizeof count) return 0;
    // The counter adds one per OOM invocation and the kernel retries an allocation many times
    // per kill, so report one event per wakeup, as runc does. The eventfd also fires when the
    // cgroup is removed: tell by the file being gone (runc's check too).
    return count > 0 && ::access(file_.c_str(), F_OK) == 0 ? 1 : 0;
  }
  drain(fd_.get());
  uint64_t kills = read_oom_kills(file_);
  uint64_t fresh = kills > last_oom_kills_ ? kills - last_oom_kills_ : 0;
  last_oom_kills_ = std::max(kills, last_oom_kills_);
  return fresh;
}

OomNotifier Cgroup::watch_oom() const {
  OomNotifier notifier;
  if (layout_ == Layout::unified) {
    notifier.v2_ = true;
    notifier.file_ = unified_dir_ + "/memory.events";
    notifier.fd_ = UniqueFd(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (!notifier.fd_) throw_errno("inotify_init1");
    if (::inotify_add_watch(notifier.fd_.get(), notifier.file_.c_str(), IN_MODIFY) < 0)
      throw_errno("watch " + notifier.file_);
    notifier.last_oom_kills_ = read_oom_kills(notifier.file_);
    return notifier;
  }
  const detail::V1Dir* memory = v1_dir("memory");
  if (memory == nullptr) throw_error("OOM events: the memory cgroup controller is not mounted");
  std::string oom_control = memory->dir + "/memory.oom_control";
  notifier.oom_control_ = UniqueFd(::open(oom_control.c_str(), O_RDONLY | O_CLOEXEC));
  if (!notifier.oom_control_) throw_errno("open " + oom_control);
  notifier.fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!notifier.fd_) throw_errno("eventfd");
  notifier.file_ = memory->dir + "/cgroup.event_control";
  fs::write(notifier.file_,
            std::to_string(notifier.fd_.get()) + " " + std::to_string(notifier.oom_control_.get()));
  return notifier;
}

}  // namespace barge::cgroups

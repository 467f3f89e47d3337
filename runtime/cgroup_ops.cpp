// pause, resume, ps, update, events.
#include "runtime/cgroup_ops.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <nlohmann/json.hpp>

#include "cgroups/cgroup.hpp"
#include "cgroups/resources_json.hpp"
#include "common/error.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "common/syscalls.hpp"

namespace barge::runtime {
namespace {

constexpr const char* kResourcesFile = "resources.json";

struct Loaded {
  StateDir dir;
  ContainerState state;
  Status status;
};

Loaded load(const GlobalOptions& global, const std::string& id, StateDir::Lock lock) {
  StateDir dir = StateDir::open(global.root, id, lock);
  if (!dir.has_state()) throw Error("container " + id + " is being created");
  ContainerState state = dir.load();
  Status status = dir.status(state);
  return Loaded{std::move(dir), std::move(state), status};
}

cgroups::Cgroup cgroup_of(const ContainerState& state) {
  if (state.cgroup_path.empty()) throw Error("container " + state.id + " has no cgroup");
  return cgroups::Cgroup::open(state.cgroup_path);
}

// A created container that was frozen still reports "created" (its exec fifo exists).
bool is_paused(const Loaded& c) {
  if (c.status == Status::paused) return true;
  return c.status == Status::created && cgroup_of(c.state).frozen();
}

std::string run_and_capture(const std::vector<std::string>& argv) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw_errno("pipe");
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    ::dup2(write_end.get(), STDOUT_FILENO);
    std::vector<char*> args;
    args.reserve(argv.size());
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  write_end.reset();
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw_errno("waitpid " + argv[0]);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error(argv[0] + " failed (status " + std::to_string(status) + ")");
  return out;
}

std::vector<std::string_view> fields_of(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t pos = 0;
  while ((pos = line.find_first_not_of(" \t", pos)) != std::string_view::npos) {
    size_t end = line.find_first_of(" \t", pos);
    fields.push_back(line.substr(pos, end == std::string_view::npos ? end : end - pos));
    if (end == std::string_view::npos) break;
    pos = end;
  }
  return fields;
}

spec::Resources bundle_resources(const ContainerState& state) {
  try {
    auto spec = spec::load_bundle_config(state.bundle);
    if (spec.linux && spec.linux->resources) return *spec.linux->resources;
  } catch (const Error& e) {
    log::warn("update: cannot read the bundle's resources, starting from none: " +
              std::string(e.what()));
  }
  return {};
}

spec::Resources stored_resources(const StateDir& dir, const ContainerState& state) {
  std::string file = dir.path() + "/" + kResourcesFile;
  if (!barge::path_exists(file)) return bundle_resources(state);
  return cgroups::parse_resources_json(read_file_at(dir.fd(), kResourcesFile), file);
}

std::string event_json(const std::string& type, const std::string& id,
                       const nlohmann::ordered_json* data = nullptr) {
  nlohmann::ordered_json event = {{"type", type}, {"id", id}};
  if (data) event["data"] = *data;
  return event.dump();
}

UniqueFd open_init_pidfd(const ContainerState& state) {
  UniqueFd pidfd(sys::pidfd_open(state.pid));
  if (pidfd && process_start_time(state.pid) != state.pid_start_time) pidfd.reset();
  return pidfd;
}

void emit_oom_events(cgroups::OomNotifier& oom, const std::string& id,
                     const std::function<void(const std::string&)>& emit) {
  for (uint64_t n = oom.consume(); n > 0; --n) emit(event_json("oom", id));
}

}  // namespace

void pause(const GlobalOptions& global, const std::string& id) {
  Loaded c = load(global, id, StateDir::Lock::yes);
  if (c.status != Status::running && c.status != Status::created)
    throw Error("container not running", ESRCH);
  cgroup_of(c.state).freeze();
}

void resume(const GlobalOptions& global, const std::string& id) {
  Loaded c = load(global, id, StateDir::Lock::yes);
  if (!is_paused(c)) throw Error("container not paused");
  cgroup_of(c.state).thaw();
}

std::vector<pid_t> container_pids(const GlobalOptions& global, const std::string& id) {
  Loaded c = load(global, id, StateDir::Lock::no);
  return cgroup_of(c.state).processes();
}

std::string filter_ps_output(const std::string& ps_output, const std::vector<pid_t>& pids) {
  std::string_view text = ps_output;
  auto eol = text.find('\n');
  std::string_view header = text.substr(0, eol);
  auto titles = fields_of(header);
  auto pid_column = std::find(titles.begin(), titles.end(), "PID");
  if (pid_column == titles.end()) throw Error("couldn't find PID field in ps output");
  size_t index = static_cast<size_t>(pid_column - titles.begin());
  std::string out = std::string(header) + "\n";
  while (eol != std::string_view::npos) {
    text.remove_prefix(eol + 1);
    eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    auto fields = fields_of(line);
    if (fields.size() <= index) continue;
    pid_t pid = 0;
    auto field = fields[index];
    if (std::from_chars(field.data(), field.data() + field.size(), pid).ec != std::errc()) continue;
    if (std::binary_search(pids.begin(), pids.end(), pid)) out += std::string(line) + "\n";
  }
  return out;
}

std::string ps_table(const GlobalOptions& global, const std::string& id,
                     const std::vector<std::string>& ps_args) {
  std::vector<pid_t> pids = container_pids(global, id);
  std::vector<std::string> argv = {"ps"};
  if (ps_args.empty())
    argv.emplace_back("-ef");
  else
    argv.insert(argv.end(), ps_args.begin(), ps_args.end());
  return filter_ps_output(run_and_capture(argv), pids);
}

spec::Resources current_resources(const GlobalOptions& global, const std::string& id) {
  Loaded c = load(global, id, StateDir::Lock::no);
  return stored_resources(c.dir, c.state);
}

void update(const GlobalOptions& global, const std::string& id, const spec::Resources& changes) {
  Loaded c = load(global, id, StateDir::Lock::yes);
  if (c.status == Status::stopped) throw Error("container not running", ESRCH);
  spec::Resources merged = cgroups::merge_resources(stored_resources(c.dir, c.state), changes);
  // Device rules are fixed at create time (runc does not update them either).
  spec::Resources to_apply = merged;
  to_apply.devices.clear();
  cgroup_of(c.state).apply_resources(to_apply);
  write_file_atomic_at(c.dir.fd(), kResourcesFile, cgroups::resources_to_json(merged));
}

std::string stats_event_json(const GlobalOptions& global, const std::string& id) {
  Loaded c = load(global, id, StateDir::Lock::no);
  if (c.status == Status::stopped) throw Error("container not running", ESRCH);
  auto data = cgroups::stats_to_json(cgroup_of(c.state).stats());
  return event_json("stats", id, &data);
}

void stream_events(const GlobalOptions& global, const std::string& id,
                   std::chrono::milliseconds interval,
                   const std::function<void(const std::string&)>& emit) {
  // No lock: a long-running reader must not block delete.
  Loaded c = load(global, id, StateDir::Lock::no);
  if (c.status == Status::stopped) throw Error("container not running", ESRCH);
  cgroups::Cgroup cgroup = cgroup_of(c.state);
  cgroups::OomNotifier oom = cgroup.watch_oom();
  UniqueFd init = open_init_pidfd(c.state);
  if (!init) throw Error("container not running", ESRCH);
  using Clock = std::chrono::steady_clock;
  auto next_stats = Clock::now() + interval;
  for (;;) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_stats - Clock::now());
    std::array<pollfd, 2> fds{{{oom.fd(), POLLIN, 0}, {init.get(), POLLIN, 0}}};
    int ready =
        ::poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(wait.count(), 0)));
    if (ready < 0 && errno != EINTR) throw_errno("events: poll");
    if (fds[0].revents & POLLIN) emit_oom_events(oom, id, emit);
    if (fds[1].revents & POLLIN) {
      // The init is gone: report an OOM kill that raced with its exit, then stop.
      emit_oom_events(oom, id, emit);
      return;
    }
    if (Clock::now() >= next_stats) {
      try {
        auto data = cgroups::stats_to_json(cgroup.stats());
        emit(event_json("stats", id, &data));
      } catch (const Error& e) {
        log::error(std::string("events: stats: ") + e.what());  // runc goes on as well
      }
      next_stats += interval;
    }
  }
}

}  // namespace barge::runtime

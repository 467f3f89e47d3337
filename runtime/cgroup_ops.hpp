// Container-level cgroup operations behind `pause`, `resume`, `ps`, `update` and `events`: load the
// container's state, check its status like runc, then call the cgroups module.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "runtime/container.hpp"
#include "runtime/spec.hpp"

namespace barge::runtime {

// Freezes a created or running container ("container not running" otherwise).
void pause(const GlobalOptions& global, const std::string& id);
// Thaws a paused container ("container not paused" otherwise).
void resume(const GlobalOptions& global, const std::string& id);

// Every pid in the container's cgroup, sorted.
std::vector<pid_t> container_pids(const GlobalOptions& global, const std::string& id);
// runc's `ps` table: the host's `ps ps_args...` (default -ef) reduced to the header and the rows
// of the container's processes.
std::string ps_table(const GlobalOptions& global, const std::string& id,
                     const std::vector<std::string>& ps_args);
// The pure part of ps_table: keeps the header and the rows whose PID column is in pids.
std::string filter_ps_output(const std::string& ps_output, const std::vector<pid_t>& pids);

// Merges changes into the container's resources (the last update's, else its bundle config's),
// applies them to the live cgroup and persists them in <root>/<id>/resources.json.
void update(const GlobalOptions& global, const std::string& id, const spec::Resources& changes);
// The resources an update starts from (see update).
spec::Resources current_resources(const GlobalOptions& global, const std::string& id);

// One `{"type":"stats","id":ID,"data":{...}}` document (runc's events --stats).
std::string stats_event_json(const GlobalOptions& global, const std::string& id);
// Emits a stats event every interval and an `{"type":"oom","id":ID}` event on each OOM, until the
// container stops (runc never returns; barge returns 0 once there is nothing left to watch).
void stream_events(const GlobalOptions& global, const std::string& id,
                   std::chrono::milliseconds interval,
                   const std::function<void(const std::string&)>& emit);

}  // namespace barge::runtime

// A container's persistent state under --root/<id>/: state.json (written atomically) and the
// exec fifo. The directory itself is the id claim (mkdir wins exactly once) and its flock
// serializes commands on one id.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.hpp"

namespace barge::runtime {

enum class Status { creating, created, running, paused, stopped };
const char* status_name(Status status);

struct ContainerState {
  std::string id;
  std::string oci_version;
  pid_t pid = 0;
  unsigned long long pid_start_time = 0;  // /proc/<pid>/stat field 22, guards against pid reuse
  std::string bundle;
  std::string rootfs;
  std::string created;  // RFC 3339
  std::string owner;
  std::string cgroup_path;
  std::map<std::string, std::string> annotations;
};

// Serialization of state.json (barge's own file) and of the OCI state `barge state` prints.
std::string to_state_file_json(const ContainerState& state);
ContainerState from_state_file_json(const std::string& text);
std::string to_oci_state_json(const ContainerState& state, Status status);

// Start time of a live process, or nullopt when it does not exist (or is a zombie).
std::optional<unsigned long long> process_start_time(pid_t pid);

class StateDir {
 public:
  // Claims --root/<id> for a new container: "container with id exists: ID" if taken.
  static StateDir claim(const std::string& root, const std::string& id);
  enum class Lock { yes, no };
  // Opens (and by default locks) an existing container's dir: "container does not exist: ID"
  // if absent. Readers (state, list) skip the lock: state.json is replaced atomically.
  static StateDir open(const std::string& root, const std::string& id, Lock lock = Lock::yes);

  const std::string& path() const { return path_; }
  int fd() const { return dirfd_.get(); }
  bool has_state() const;
  ContainerState load() const;
  void save(const ContainerState& state) const;
  std::string fifo_path() const { return path_ + "/exec.fifo"; }
  bool fifo_exists() const;
  // Derives the live status: no state.json or pid 0 (preliminary record) → creating, dead pid or
  // reused pid → stopped, frozen cgroup → paused, exec fifo present → created, else running.
  Status status(const ContainerState& state) const;
  // Removes the directory and everything in it (keeps holding the lock until destroyed).
  void remove() const;

 private:
  StateDir(std::string path, UniqueFd dirfd) : path_(std::move(path)), dirfd_(std::move(dirfd)) {}
  std::string path_;
  UniqueFd dirfd_;
};

// Ids under root (directories), sorted.
std::vector<std::string> list_ids(const std::string& root);
// runc's rule: [\w+-\.]+ and not "." or "..".
void validate_id(const std::string& id);
bool is_valid_id(std::string_view id);

// Compiled seccomp programs (seccomp::compile_cached), kept beside the containers: a name no
// container id can have, so list skips it.
std::string seccomp_cache_dir(const std::string& root);

}  // namespace barge::runtime

#include "runtime/state.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cgroups/cgroup.hpp"
#include "common/error.hpp"
#include "common/file.hpp"
#include "runtime/spec.hpp"

namespace barge::runtime {
namespace {

UniqueFd lock_dir(const std::string& path, bool lock = true) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || !lock) return fd;
  if (::flock(fd.get(), LOCK_EX) != 0) throw_errno("lock " + path);
  return fd;
}

}  // namespace

const char* status_name(Status status) {
  switch (status) {
    case Status::creating:
      return "creating";
    case Status::created:
      return "created";
    case Status::running:
      return "running";
    case Status::paused:
      return "paused";
    case Status::stopped:
      return "stopped";
  }
  return "unknown";
}

std::string to_state_file_json(const ContainerState& s) {
  nlohmann::json j = {{"id", s.id},
                      {"ociVersion", s.oci_version},
                      {"pid", s.pid},
                      {"pidStartTime", s.pid_start_time},
                      {"bundle", s.bundle},
                      {"rootfs", s.rootfs},
                      {"created", s.created},
                      {"owner", s.owner},
                      {"cgroupPath", s.cgroup_path},
                      {"annotations", s.annotations}};
  return j.dump();
}

ContainerState from_state_file_json(const std::string& text) {
  try {
    auto j = nlohmann::json::parse(text);
    ContainerState s;
    s.id = j.at("id").get<std::string>();
    s.oci_version = j.value("ociVersion", "");
    s.pid = j.at("pid").get<pid_t>();
    s.pid_start_time = j.value("pidStartTime", 0ULL);
    s.bundle = j.value("bundle", "");
    s.rootfs = j.value("rootfs", "");
    s.created = j.value("created", "");
    s.owner = j.value("owner", "");
    s.cgroup_path = j.value("cgroupPath", "");
    s.annotations = j.value("annotations", std::map<std::string, std::string>{});
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("state.json: ") + e.what());
  }
}

std::string to_oci_state_json(const ContainerState& s, Status status) {
  bool alive = status != Status::stopped;
  nlohmann::ordered_json j = {{"ociVersion", s.oci_version}, {"id", s.id},
                              {"pid", alive ? s.pid : 0},    {"status", status_name(status)},
                              {"bundle", s.bundle},          {"rootfs", s.rootfs},
                              {"created", s.created},        {"owner", s.owner}};
  if (!s.annotations.empty()) j["annotations"] = s.annotations;
  return j.dump(2);
}

std::optional<unsigned long long> process_start_time(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::string stat;
  try {
    stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  } catch (const Error&) {
    return std::nullopt;
  }
  // The command name is in parentheses and may contain spaces: fields restart after the last ')'.
  auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return std::nullopt;
  std::string_view rest(stat);
  rest.remove_prefix(close + 2);
  char state = rest.front();
  if (state == 'Z' || state == 'X') return std::nullopt;
  // rest starts at field 3 (state); starttime is field 22.
  for (int field = 3; field < 22; ++field) {
    auto space = rest.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(space + 1);
  }
  return std::stoull(std::string(rest.substr(0, rest.find(' '))));
}

bool is_valid_id(std::string_view id) {
  return !id.empty() && id != "." && id != ".." && id.size() <= 1024 &&
         std::all_of(id.begin(), id.end(), [](unsigned char c) {
           return std::isalnum(c) || c == '_' || c == '+' || c == '-' || c == '.';
         });
}

void validate_id(const std::string& id) {
  if (!is_valid_id(id))
    throw Error("invalid container id \"" + id + "\": use letters, digits, _ + - .");
}

std::string seccomp_cache_dir(const std::string& root) {
  return root + "/@seccomp-cache";
}

StateDir StateDir::claim(const std::string& root, const std::string& id) {
  validate_id(id);
  make_dirs(root, 0711);
  std::string path = root + "/" + id;
  if (::mkdir(path.c_str(), 0711) != 0) {
    if (errno == EEXIST) throw Error("container with id exists: " + id, EEXIST);
    throw_errno("mkdir " + path);
  }
  UniqueFd fd = lock_dir(path);
  if (!fd) throw_errno("open " + path);
  return StateDir(path, std::move(fd));
}

StateDir StateDir::open(const std::string& root, const std::string& id, Lock lock) {
  validate_id(id);
  std::string path = root + "/" + id;
  UniqueFd fd = lock_dir(path, lock == Lock::yes);
  // A dir removed between open and flock by a concurrent delete counts as absent too.
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || st.st_nlink == 0)
    throw Error("container does not exist: " + id, ENOENT);
  return StateDir(path, std::move(fd));
}

bool StateDir::has_state() const {
  return ::faccessat(dirfd_.get(), "state.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

ContainerState StateDir::load() const {
  return from_state_file_json(read_file_at(fd(), "state.json"));
}

void StateDir::save(const ContainerState& state) const {
  write_file_atomic_at(fd(), "state.json", to_state_file_json(state));
}

bool StateDir::fifo_exists() const {
  return ::faccessat(dirfd_.get(), "exec.fifo", F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

Status StateDir::status(const ContainerState& state) const {
  if (state.pid == 0) return Status::creating;  // the preliminary record of an unfinished create
  auto start = process_start_time(state.pid);
  if (!start || *start != state.pid_start_time) return Status::stopped;
  if (!state.cgroup_path.empty()) {
    try {
      if (cgroups::Cgroup::open(state.cgroup_path).frozen()) return Status::paused;
    } catch (const Error&) {
    }
  }
  return fifo_exists() ? Status::created : Status::running;
}

void StateDir::remove() const {
  remove_tree(path_);
}

std::vector<std::string> list_ids(const std::string& root) {
  std::vector<std::string> ids;
  DIR* dir = ::opendir(root.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) return ids;
    throw_errno("open " + root);
  }
  while (dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (!is_valid_id(name) || entry->d_type != DT_DIR) continue;  // e.g. @seccomp-cache
    ids.push_back(name);
  }
  ::closedir(dir);
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace barge::runtime

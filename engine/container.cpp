#include "engine/container.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/failpoint.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "common/syscalls.hpp"
#include "common/time.hpp"
#include "network/etc_files.hpp"
#include "runtime/container.hpp"
#include "runtime/create_internal.hpp"
#include "runtime/exec.hpp"
#include "runtime/foreground.hpp"

namespace barge::engine {
namespace {

using Json = nlohmann::json;
using network::Ipv4;
using network::PortMapping;

constexpr const char* kRecordFile = "container.json";
constexpr const char* kCreatingFile = "creating";
constexpr const char* kLogFile = "container.log";
constexpr const char* kTempPrefix = ".tmp-";
constexpr const char* kExposedPortsAnnotation = "org.opencontainers.image.exposedPorts";
constexpr const char* kStopSignalAnnotation = "org.opencontainers.image.stopSignal";
constexpr size_t kMaxHostname = 63;
constexpr int kKillWaitMs = 10000;

// container.json
struct Record {
  std::string id;
  std::string image;
  std::string storage;
  std::string created;
  std::vector<std::string> command;
  std::string network = "bridge";
  network::Config net;  // the bridge network's settings, for teardown
  std::optional<Ipv4> address;
  std::vector<PortMapping> ports;
  std::string stop_signal = "TERM";
};

std::string record_json(const Record& r) {
  Json json = {{"id", r.id},
               {"image", r.image},
               {"storage", r.storage},
               {"created", r.created},
               {"command", r.command},
               {"network", r.network},
               {"bridge",
                {{"name", r.net.bridge},
                 {"stateDir", r.net.state_dir},
                 {"chainPrefix", r.net.chain_prefix}}},
               {"ports", network::ports_to_json(r.ports)},
               {"stopSignal", r.stop_signal}};
  if (r.address) json["address"] = network::to_string(*r.address);
  return json.dump(2) + "\n";
}

Record record_from(const std::string& text) {
  try {
    Json json = Json::parse(text);
    Record r;
    r.id = json.at("id").get<std::string>();
    r.image = json.at("image").get<std::string>();
    r.storage = json.at("storage").get<std::string>();
    r.created = json.at("created").get<std::string>();
    r.command = json.at("command").get<std::vector<std::string>>();
    r.network = json.at("network").get<std::string>();
    const Json& bridge = json.at("bridge");
    r.net.bridge = bridge.at("name").get<std::string>();
    r.net.state_dir = bridge.at("stateDir").get<std::string>();
    r.net.chain_prefix = bridge.at("chainPrefix").get<std::string>();
    r.ports = network::ports_from_json(json.at("ports"));
    r.stop_signal = json.value("stopSignal", "TERM");
    if (json.contains("address"))
      r.address = network::parse_ipv4(json.at("address").get<std::string>());
    return r;
  } catch (const Json::exception& e) {
    throw Error(std::string(kRecordFile) + ": " + e.what());
  }
}

std::string dir_of(const Paths& paths, const std::string& id) {
  return paths.data + "/" + id;
}

runtime::GlobalOptions global_of(const Paths& paths) {
  return {paths.root};
}

std::optional<Record> load_record(const std::string& dir) {
  if (!path_exists(dir + "/" + kRecordFile)) return std::nullopt;
  return with_context(dir, [&] { return record_from(read_file(dir + "/" + kRecordFile)); });
}

// Only the run that claimed DATA/<id> writes its files; they live as long as the runtime state
// (/run), so the fast replace that is not crash-durable fits (see replace_file_volatile).
void save_record(const std::string& dir, const Record& record) {
  replace_file_volatile(dir + "/" + kRecordFile, record_json(record));
}

std::string random_id() {
  unsigned char bytes[6];
  if (::getrandom(bytes, sizeof bytes, 0) != sizeof bytes) throw_errno("getrandom");
  char text[13];
  for (size_t i = 0; i < sizeof bytes; ++i) std::snprintf(text + 2 * i, 3, "%02x", bytes[i]);
  return text;
}

std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> names;
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return names;
  while (dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

std::string process_text(const network::ProcessRef& p) {
  return std::to_string(p.pid) + " " + std::to_string(p.start);
}

network::ProcessRef process_from_text(const std::string& text) {
  network::ProcessRef p;
  if (std::sscanf(text.c_str(), "%d %llu", &p.pid, &p.start) != 2) return {};
  return p;
}

// The barge process creating the container, while the creating marker exists.
std::optional<network::ProcessRef> creator(const std::string& dir) {
  std::string text;
  try {
    text = read_file(dir + "/" + kCreatingFile);
  } catch (const Error&) {
    return std::nullopt;
  }
  return process_from_text(text);
}

// DATA/<id>, claimed with the creating marker already inside: a run killed at any point leaves
// either a temp dir named after its dead process or a marker naming it.
std::string claim(const Paths& paths, const std::string& id) {
  make_dirs(paths.data, 0711);
  network::ProcessRef self = network::ProcessRef::of(::getpid());
  std::string temp = paths.data + "/" + kTempPrefix + std::to_string(self.pid) + "-" +
                     std::to_string(self.start) + "-" + random_id();
  if (::mkdir(temp.c_str(), 0711) != 0) throw_errno("mkdir " + temp);
  std::string dir = dir_of(paths, id);
  try {
    write_file(temp + "/" + kCreatingFile, process_text(self));
    if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, dir.c_str(), RENAME_NOREPLACE) != 0) {
      if (errno == EEXIST) throw Error("container name \"" + id + "\" is already in use", EEXIST);
      throw_errno("rename " + temp + " to " + dir);
    }
  } catch (...) {
    remove_tree(temp);
    throw;
  }
  return dir;
}

// Everything a container holds, whatever of it exists: runtime state (killing the processes),
// network endpoint, overlay mount, directory.
void remove_everything(const Paths& paths, const std::string& id) {
  std::string dir = dir_of(paths, id);
  std::optional<Record> record;
  try {
    record = load_record(dir);
  } catch (const Error& e) {
    log::warn(std::string("remove ") + id + ": " + e.what());
  }
  try {
    runtime::remove(global_of(paths), id, true);
  } catch (const Error& e) {
    if (e.code() != ENOENT && std::string(e.what()).find("does not exist") == std::string::npos)
      throw;
  }
  if (record && record->network == "bridge") network::release(record->net, paths.root, id);
  try {
    image::unmount_image(record ? record->storage : paths.storage, dir);
  } catch (const Error& e) {
    if (e.code() != ENOENT) throw;
  }
  remove_tree(dir);
}

// Detached containers write to DATA/<id>/container.log; barge's own stdio comes back after create.
class StdioRedirect {
 public:
  explicit StdioRedirect(const std::string& log) {
    UniqueFd null = open_or_throw("/dev/null", O_RDONLY);
    UniqueFd out = open_or_throw(log, O_WRONLY | O_CREAT | O_APPEND, 0640);
    for (int fd = 0; fd < 3; ++fd) {
      saved_[fd] = UniqueFd(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
      if (!saved_[fd]) throw_errno("save stdio");
    }
    if (::dup2(null.get(), 0) < 0 || ::dup2(out.get(), 1) < 0 || ::dup2(out.get(), 2) < 0)
      throw_errno("redirect stdio to " + log);
  }
  StdioRedirect(const StdioRedirect&) = delete;
  StdioRedirect& operator=(const StdioRedirect&) = delete;
  ~StdioRedirect() {
    for (int fd = 0; fd < 3; ++fd)
      if (saved_[fd]) ::dup2(saved_[fd].get(), fd);
  }

 private:
  UniqueFd saved_[3];
};

// Undoes a run that failed before the container started.
class RunCleanup {
 public:
  RunCleanup(const Paths& paths, std::string id) : paths_(paths), id_(std::move(id)) {}
  RunCleanup(const RunCleanup&) = delete;
  RunCleanup& operator=(const RunCleanup&) = delete;
  ~RunCleanup() {
    if (dismissed_) return;
    try {
      remove_everything(paths_, id_);
    } catch (const Error& e) {
      log::warn(std::string("cleanup after failed run: ") + e.what());
    }
  }
  void dismiss() { dismissed_ = true; }

 private:
  const Paths& paths_;
  std::string id_;
  bool dismissed_ = false;
};

std::vector<PortMapping> publish_requests(const RunOptions& options) {
  std::vector<PortMapping> requests;
  for (const auto& spec : options.publish)
    for (auto& m : network::parse_publish(spec)) requests.push_back(m);
  return requests;
}

// The namespace path of container:ID's init (which must be alive).
std::string target_netns(const Paths& paths, const std::string& target) {
  runtime::ContainerInfo info = with_context(
      "--network container:" + target, [&] { return runtime::inspect(global_of(paths), target); });
  if (info.status != runtime::Status::created && info.status != runtime::Status::running)
    throw_error("--network container:" + target + ": the container is " +
                runtime::status_name(info.status));
  return "/proc/" + std::to_string(info.state.pid) + "/ns/net";
}

void set_network_namespace(Json& config, const network::Mode& mode, const std::string& path) {
  Json& namespaces = config["linux"]["namespaces"];
  Json kept = Json::array();
  for (const auto& ns : namespaces)
    if (ns.value("type", "") != "network") kept.push_back(ns);
  if (mode.kind != network::Mode::host) {
    Json ns = {{"type", "network"}};
    if (!path.empty()) ns["path"] = path;
    kept.push_back(ns);
  }
  namespaces = kept;
}

struct EtcFiles {
  std::string hosts, hostname, resolv;
};

std::string read_or_empty(const std::string& path) {
  try {
    return read_file(path);
  } catch (const Error&) {
    return "";
  }
}

EtcFiles etc_files_for(const Paths& paths, const network::Mode& mode, const std::string& hostname,
                       std::optional<Ipv4> address) {
  EtcFiles files{"", hostname + "\n", ""};
  switch (mode.kind) {
    case network::Mode::host:
      files.hosts = read_or_empty("/etc/hosts");
      files.resolv = read_or_empty("/etc/resolv.conf");
      return files;
    case network::Mode::container: {
      std::string target = dir_of(paths, mode.target);
      if (path_exists(target + "/hosts")) {
        files.hosts = read_or_empty(target + "/hosts");
        files.resolv = read_or_empty(target + "/resolv.conf");
        return files;
      }
      break;
    }
    default:
      break;
  }
  files.hosts = network::hosts_file(hostname, address);
  auto resolv = network::container_resolv_conf(network::host_resolv_conf());
  for (const auto& server : resolv.dropped)
    log::warn("resolv.conf: dropped nameserver " + server +
              " (on the host's loopback, unreachable from the container)");
  if (!resolv.dropped.empty() && !network::has_nameserver(resolv.text))
    log::warn("resolv.conf: no nameserver left, the container cannot resolve names");
  files.resolv = resolv.text;
  return files;
}

void add_etc_mounts(Json& config, const std::string& dir, const EtcFiles& files) {
  const std::pair<const char*, const std::string*> entries[] = {
      {"hosts", &files.hosts}, {"hostname", &files.hostname}, {"resolv.conf", &files.resolv}};
  for (const auto& [name, content] : entries) {
    write_file(dir + "/" + name, *content);
    config["mounts"].push_back({{"destination", std::string("/etc/") + name},
                                {"type", "bind"},
                                {"source", dir + "/" + name},
                                {"options", {"rbind", "rprivate"}}});
  }
}

// -v HOST_PATH:CONTAINER_PATH[:ro|:rw] as a bind mount.
Json volume_mount(const std::string& spec) {
  auto fail = [&](const std::string& why) -> Json {
    throw_error("--volume \"" + spec + "\": " + why);
  };
  auto first = spec.find(':');
  if (first == std::string::npos) return fail("expected HOST_PATH:CONTAINER_PATH[:ro]");
  std::string host = spec.substr(0, first);
  std::string rest = spec.substr(first + 1);
  std::string mode = "rw";
  if (auto second = rest.find(':'); second != std::string::npos) {
    mode = rest.substr(second + 1);
    rest = rest.substr(0, second);
  }
  if (host.empty() || host.front() != '/') return fail("the host path must be absolute");
  if (rest.empty() || rest.front() != '/') return fail("the container path must be absolute");
  if (mode != "ro" && mode != "rw") return fail("mode must be ro or rw");
  if (!path_exists(host)) return fail(host + " does not exist");
  return {{"destination", rest},
          {"type", "bind"},
          {"source", host},
          {"options", {"rbind", "rprivate", mode}}};
}

// The image's Entrypoint, which a run's command follows (the command replaces only Cmd).
std::vector<std::string> image_entrypoint(const Paths& paths, const std::string& image) {
  Json config =
      image::inspect_image(paths.storage, image)["config"].value("config", Json::object());
  if (!config.is_object() || !config.contains("Entrypoint") || !config["Entrypoint"].is_array())
    return {};
  return config["Entrypoint"].get<std::vector<std::string>>();
}

void apply_run_options(const Paths& paths, Json& config, const RunOptions& options,
                       const std::string& id, const std::string& hostname,
                       std::vector<std::string>& command) {
  Json& process = config["process"];
  if (!options.command.empty() || options.entrypoint) {
    std::vector<std::string> args;
    if (!options.entrypoint)
      args = image_entrypoint(paths, options.image);
    else if (!options.entrypoint->empty())
      args.push_back(*options.entrypoint);
    std::vector<std::string> cmd = options.command;
    args.insert(args.end(), cmd.begin(), cmd.end());
    if (args.empty()) throw_error("no command: the image has no Entrypoint and none was given");
    process["args"] = args;
  }
  command = process["args"].get<std::vector<std::string>>();
  std::vector<std::string> env = process.value("env", std::vector<std::string>{});
  for (const auto& entry : options.env) {
    std::string key = entry.substr(0, entry.find('='));
    std::erase_if(env, [&](const std::string& e) { return e.substr(0, e.find('=')) == key; });
    if (entry.find('=') != std::string::npos) {
      env.push_back(entry);
    } else if (const char* value = std::getenv(key.c_str())) {  // -e KEY: the value barge sees
      env.push_back(key + "=" + value);
    }
  }
  process["env"] = env;
  config["hostname"] = hostname;
  for (const auto& volume : options.volumes) config["mounts"].push_back(volume_mount(volume));
  if (!options.cgroup_parent.empty())
    config["linux"]["cgroupsPath"] = options.cgroup_parent + "/" + id;
}

// -d --rm: a small process outlives `run`, waits for the container to exit and removes it.
void spawn_remover(const Paths& paths, const std::string& id, pid_t init) {
  pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork remover");
  if (pid > 0) return;
  ::setsid();
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  for (int fd = 0; fd < 3; ++fd) ::dup2(null, fd);
  int code = 0;
  try {
    runtime::wait_for_exit(init, -1);
    remove_everything(paths, id);
  } catch (const std::exception&) {
    code = 1;
  }
  ::_exit(code);
}

runtime::Status runtime_status(const Paths& paths, const std::string& id, pid_t* pid) {
  try {
    auto info = runtime::inspect(global_of(paths), id);
    if (pid) *pid = info.status == runtime::Status::stopped ? 0 : info.state.pid;
    return info.status;
  } catch (const Error&) {
    return runtime::Status::stopped;
  }
}

void require_container(const Paths& paths, const std::string& id) {
  runtime::validate_id(id);
  if (!path_exists(dir_of(paths, id) + "/" + kRecordFile) &&
      !path_exists(dir_of(paths, id) + "/" + kCreatingFile))
    throw Error("no such container: " + id, ENOENT);
}

}  // namespace

int reconcile(const Paths& paths) {
  int removed = 0;
  for (const auto& name : list_dir(paths.data)) {
    std::string path = paths.data + "/" + name;
    if (name.starts_with(kTempPrefix)) {
      network::ProcessRef owner;
      std::sscanf(name.c_str() + std::strlen(kTempPrefix), "%d-%llu", &owner.pid, &owner.start);
      if (!owner.alive()) remove_tree(path);
      continue;
    }
    auto owner = creator(path);
    if (!owner || owner->alive()) continue;
    try {
      log::debug("removing " + name + ": its run was killed before it started");
      remove_everything(paths, name);
      ++removed;
    } catch (const Error& e) {
      log::warn("reconcile " + name + ": " + e.what());
    }
  }
  return removed;
}

RunResult run(const Paths& paths, const RunOptions& options) {
  reconcile(paths);
  network::Mode mode = network::parse_mode(options.network);
  std::vector<PortMapping> requests = publish_requests(options);
  if ((!requests.empty() || options.publish_all) && mode.kind != network::Mode::bridge)
    throw_error("--publish and --publish-all need --network bridge");
  if (mode.kind == network::Mode::bridge) options.net.validate();
  std::string netns_path;
  if (mode.kind == network::Mode::container) netns_path = target_netns(paths, mode.target);
  std::string id = options.name.empty() ? random_id() : options.name;
  runtime::validate_id(id);
  std::string hostname = options.hostname.empty() ? id.substr(0, kMaxHostname) : options.hostname;

  std::string dir = claim(paths, id);
  failpoint("run.claimed");
  RunCleanup cleanup(paths, id);
  Record record;
  record.id = id;
  record.image = options.image;
  record.storage = paths.storage;
  record.created = rfc3339_now();
  record.network = options.network.empty() ? "bridge" : options.network;
  record.net = options.net;
  save_record(dir, record);

  image::make_bundle(paths.storage, options.image, dir);
  failpoint("run.bundled");
  Json config = Json::parse(read_file(dir + "/config.json"));
  apply_run_options(paths, config, options, id, hostname, record.command);
  Json& annotations = config["annotations"];
  if (annotations.is_null()) annotations = Json::object();
  if (options.publish_all && annotations.contains(kExposedPortsAnnotation))
    for (auto& m : network::parse_exposed(annotations[kExposedPortsAnnotation].get<std::string>()))
      requests.push_back(m);
  if (annotations.contains(kStopSignalAnnotation))
    record.stop_signal = annotations[kStopSignalAnnotation].get<std::string>();

  std::optional<network::Setup> setup;
  if (mode.kind == network::Mode::bridge) {
    setup.emplace(network::Setup::begin(options.net, paths.root, id, requests));
    record.address = setup->attachment().address;
    record.ports = setup->attachment().ports;
    annotations["barge.network.address"] = network::to_string(*record.address);
    std::string ports;
    for (const auto& p : record.ports) ports += (ports.empty() ? "" : ",") + network::describe(p);
    if (!ports.empty()) annotations["barge.network.ports"] = ports;
  }
  set_network_namespace(config, mode, netns_path);
  add_etc_mounts(config, dir, etc_files_for(paths, mode, hostname, record.address));
  replace_file_volatile(dir + "/config.json", config.dump(2) + "\n");
  save_record(dir, record);

  if (!options.detach) {
    sigset_t forwarded = runtime::forwarded_set();
    ::sigprocmask(SIG_BLOCK, &forwarded, nullptr);
  }
  runtime::CreateOptions create_options;
  create_options.bundle = dir;
  runtime::CreatedContainer created;
  {
    std::optional<StdioRedirect> redirect;
    if (options.detach) redirect.emplace(dir + "/" + kLogFile);
    created = runtime::create_container(global_of(paths), id, create_options);
  }
  failpoint("run.created");
  if (setup) {
    setup->attach(created.pid);
    setup->commit();
  } else if (mode.kind == network::Mode::none) {
    network::bring_up_loopback(created.pid);
  }
  failpoint("run.attached");
  runtime::start(global_of(paths), id);
  failpoint("run.started");
  if (::unlink((dir + "/" + kCreatingFile).c_str()) != 0) throw_errno("remove creating marker");
  cleanup.dismiss();

  if (options.detach) {
    if (options.remove) spawn_remover(paths, id, created.pid);
    return {id, 0};
  }
  int code = runtime::wait_forwarding_signals(created.pid, nullptr);
  if (record.network == "bridge") network::release(record.net, paths.root, id);
  if (options.remove) remove_everything(paths, id);
  return {id, code};
}

ContainerInfo inspect(const Paths& paths, const std::string& id) {
  require_container(paths, id);
  std::string dir = dir_of(paths, id);
  ContainerInfo info;
  info.id = id;
  auto owner = creator(dir);
  auto record = load_record(dir);
  if (record) {
    info.image = record->image;
    info.created = record->created;
    info.network = record->network;
    info.address = record->address;
    info.ports = record->ports;
    info.command = record->command;
  }
  runtime::Status status = runtime_status(paths, id, &info.pid);
  info.status = owner ? "creating" : runtime::status_name(status);
  return info;
}

std::vector<ContainerInfo> list(const Paths& paths) {
  std::vector<ContainerInfo> out;
  for (const auto& name : list_dir(paths.data)) {
    if (name.starts_with(kTempPrefix)) continue;
    try {
      out.push_back(inspect(paths, name));
    } catch (const Error& e) {
      log::debug("container ls: skipping " + name + ": " + e.what());
    }
  }
  return out;
}

std::string log_path(const Paths& paths, const std::string& id) {
  require_container(paths, id);
  return dir_of(paths, id) + "/" + kLogFile;
}

int exec(const Paths& paths, const std::string& id, const std::vector<std::string>& args,
         const std::vector<std::string>& env, bool detach) {
  require_container(paths, id);
  runtime::ExecOptions options;
  options.args = args;
  options.env = env;
  options.detach = detach;
  return runtime::exec(global_of(paths), id, options);
}

void stop(const Paths& paths, const std::string& id, int timeout_seconds) {
  require_container(paths, id);
  auto record = load_record(dir_of(paths, id));
  pid_t pid = 0;
  runtime::Status status = runtime_status(paths, id, &pid);
  if (status != runtime::Status::stopped && pid > 0) {
    int sig = runtime::parse_signal(record ? record->stop_signal : "TERM");
    try {
      runtime::kill(global_of(paths), id, sig, false);
    } catch (const Error& e) {
      if (e.code() != ESRCH) throw;
    }
    if (!runtime::wait_for_exit(pid, timeout_seconds * 1000)) {
      runtime::kill(global_of(paths), id, SIGKILL, true);
      if (!runtime::wait_for_exit(pid, kKillWaitMs))
        throw_error("container " + id + " did not exit after SIGKILL");
    }
  }
  if (record && record->network == "bridge") network::release(record->net, paths.root, id);
}

void remove(const Paths& paths, const std::string& id, bool force) {
  require_container(paths, id);
  std::string dir = dir_of(paths, id);
  if (auto owner = creator(dir); owner && owner->alive())
    throw_error("container " + id + " is being created");
  runtime::Status status = runtime_status(paths, id, nullptr);
  if ((status == runtime::Status::running || status == runtime::Status::paused) && !force)
    throw_error("container " + id + " is " + runtime::status_name(status) +
                ": stop it first or remove it with --force");
  remove_everything(paths, id);
}

}  // namespace barge::engine

// config.json -> spec::Spec. A thin typed walk over nlohmann::json that carries the JSON path of
// every value, so type errors read "linux.resources.memory.limit: expected integer, got string".
#include "runtime/spec.hpp"

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/file.hpp"
#include "runtime/spec_fields.hpp"

namespace barge::spec {
namespace {

using json = nlohmann::json;

// A JSON value plus the path that leads to it ("process.args[1]"; empty for the document root).
class Node {
 public:
  Node(const json& value, std::string path) : value_(&value), path_(std::move(path)) {}

  const json& value() const { return *value_; }
  const std::string& path() const { return path_; }

  [[noreturn]] void fail(std::string_view problem) const {
    throw_error((path_.empty() ? std::string("config") : path_) + ": " + std::string(problem));
  }

  [[noreturn]] void fail_type(std::string_view expected) const {
    fail("expected " + std::string(expected) + ", got " + describe_type());
  }

  void expect_object() const {
    if (!value_->is_object()) fail_type("object");
  }

  // The member named key; nullopt when absent or null (Go's encoding/json treats null as unset).
  std::optional<Node> member(std::string_view key) const {
    expect_object();
    auto it = value_->find(key);
    if (it == value_->end() || it->is_null()) return std::nullopt;
    return Node(*it, path_.empty() ? std::string(key) : path_ + "." + std::string(key));
  }

  template <typename F>
  void for_each_element(F&& visit) const {
    if (!value_->is_array()) fail_type("array");
    for (size_t i = 0; i < value_->size(); ++i)
      visit(Node((*value_)[i], path_ + "[" + std::to_string(i) + "]"));
  }

  template <typename F>
  void for_each_member(F&& visit) const {
    expect_object();
    for (const auto& [key, child] : value_->items()) visit(key, Node(child, path_ + "." + key));
  }

 private:
  std::string describe_type() const {
    if (value_->is_number_float()) return "non-integer number";
    return value_->type_name();
  }

  const json* value_;
  std::string path_;
};

// read_value(node, out) fills out from node, one overload per target type. All are declared
// before the generic containers below so those templates can find them.
void read_value(const Node& n, std::string& out);
void read_value(const Node& n, bool& out);
void read_value(const Node& n, Root& out);
void read_value(const Node& n, IdMapping& out);
void read_value(const Node& n, Mount& out);
void read_value(const Node& n, Rlimit& out);
void read_value(const Node& n, Capabilities& out);
void read_value(const Node& n, User& out);
void read_value(const Node& n, ConsoleSize& out);
void read_value(const Node& n, Scheduler& out);
void read_value(const Node& n, IoPriority& out);
void read_value(const Node& n, ExecCpuAffinity& out);
void read_value(const Node& n, Process& out);
void read_value(const Node& n, Hook& out);
void read_value(const Node& n, Hooks& out);
void read_value(const Node& n, Namespace& out);
void read_value(const Node& n, Device& out);
void read_value(const Node& n, DeviceCgroupRule& out);
void read_value(const Node& n, MemoryResources& out);
void read_value(const Node& n, CpuResources& out);
void read_value(const Node& n, WeightDevice& out);
void read_value(const Node& n, ThrottleDevice& out);
void read_value(const Node& n, BlockIoResources& out);
void read_value(const Node& n, HugepageLimit& out);
void read_value(const Node& n, NetworkPriority& out);
void read_value(const Node& n, NetworkResources& out);
void read_value(const Node& n, RdmaLimit& out);
void read_value(const Node& n, Resources& out);
void read_value(const Node& n, SeccompArg& out);
void read_value(const Node& n, SeccompSyscall& out);
void read_value(const Node& n, Seccomp& out);
void read_value(const Node& n, TimeOffset& out);
void read_value(const Node& n, Personality& out);
void read_value(const Node& n, IntelRdt& out);
void read_value(const Node& n, NetDevice& out);
void read_value(const Node& n, Linux& out);

template <typename Int>
requires std::integral<Int> &&(!std::same_as<Int, bool>)void read_value(const Node& n, Int& out) {
  using Limits = std::numeric_limits<Int>;
  const json& v = n.value();
  if (!v.is_number_integer()) n.fail_type("integer");  // also true for number_unsigned
  auto out_of_range = [&](const std::string& value) {
    n.fail("value " + value + " out of range (" + std::to_string(Limits::min()) + ".." +
           std::to_string(Limits::max()) + ")");
  };
  if (v.is_number_unsigned()) {
    auto value = v.get<uint64_t>();
    if (value > static_cast<uint64_t>(Limits::max())) out_of_range(std::to_string(value));
    out = static_cast<Int>(value);
    return;
  }
  auto value = v.get<int64_t>();
  if constexpr (Limits::is_signed) {
    if (value < static_cast<int64_t>(Limits::min()) || value > static_cast<int64_t>(Limits::max()))
      out_of_range(std::to_string(value));
  } else {
    if (value < 0) n.fail("must not be negative, got " + std::to_string(value));
    if (static_cast<uint64_t>(value) > static_cast<uint64_t>(Limits::max()))
      out_of_range(std::to_string(value));
  }
  out = static_cast<Int>(value);
}

template <typename T>
void read_value(const Node& n, std::optional<T>& out) {
  out.emplace();
  read_value(n, *out);
}

template <typename T>
void read_value(const Node& n, std::vector<T>& out) {
  out.clear();
  n.for_each_element([&](const Node& element) { read_value(element, out.emplace_back()); });
}

template <typename T>
void read_value(const Node& n, std::map<std::string, T>& out) {
  out.clear();
  n.for_each_member(
      [&](const std::string& key, const Node& child) { read_value(child, out[key]); });
}

// Reads object member key into out when present; leaves out untouched otherwise.
template <typename T>
void read_field(const Node& object, std::string_view key, T& out) {
  if (auto child = object.member(key)) read_value(*child, out);
}

// Reads every member of out named in a runtime/spec_fields.hpp table.
template <typename Table, typename Struct>
void read_fields(const Node& object, const Table& table, Struct& out) {
  fields::for_each(table,
                   [&](const char* key, auto member) { read_field(object, key, out.*member); });
}

void read_value(const Node& n, std::string& out) {
  if (!n.value().is_string()) n.fail_type("string");
  out = n.value().get<std::string>();
}

void read_value(const Node& n, bool& out) {
  if (!n.value().is_boolean()) n.fail_type("boolean");
  out = n.value().get<bool>();
}

void read_value(const Node& n, Root& out) {
  read_field(n, "path", out.path);
  read_field(n, "readonly", out.readonly);
}

void read_value(const Node& n, IdMapping& out) {
  read_field(n, "containerID", out.container_id);
  read_field(n, "hostID", out.host_id);
  read_field(n, "size", out.size);
}

void read_value(const Node& n, Mount& out) {
  read_field(n, "destination", out.destination);
  read_field(n, "type", out.type);
  read_field(n, "source", out.source);
  read_field(n, "options", out.options);
  read_field(n, "uidMappings", out.uid_mappings);
  read_field(n, "gidMappings", out.gid_mappings);
}

void read_value(const Node& n, Rlimit& out) {
  read_field(n, "type", out.type);
  read_field(n, "soft", out.soft);
  read_field(n, "hard", out.hard);
}

void read_value(const Node& n, Capabilities& out) {
  read_field(n, "bounding", out.bounding);
  read_field(n, "effective", out.effective);
  read_field(n, "inheritable", out.inheritable);
  read_field(n, "permitted", out.permitted);
  read_field(n, "ambient", out.ambient);
}

void read_value(const Node& n, User& out) {
  read_field(n, "uid", out.uid);
  read_field(n, "gid", out.gid);
  read_field(n, "umask", out.umask);
  read_field(n, "additionalGids", out.additional_gids);
  read_field(n, "username", out.username);
}

void read_value(const Node& n, ConsoleSize& out) {
  read_field(n, "height", out.height);
  read_field(n, "width", out.width);
}

void read_value(const Node& n, Scheduler& out) {
  read_field(n, "policy", out.policy);
  read_field(n, "nice", out.nice);
  read_field(n, "priority", out.priority);
  read_field(n, "flags", out.flags);
  read_field(n, "runtime", out.runtime);
  read_field(n, "deadline", out.deadline);
  read_field(n, "period", out.period);
}

void read_value(const Node& n, IoPriority& out) {
  read_field(n, "class", out.io_class);
  read_field(n, "priority", out.priority);
}

void read_value(const Node& n, ExecCpuAffinity& out) {
  read_field(n, "initial", out.initial);
  read_field(n, "final", out.final_);
}

void read_value(const Node& n, Process& out) {
  read_field(n, "terminal", out.terminal);
  read_field(n, "consoleSize", out.console_size);
  read_field(n, "user", out.user);
  read_field(n, "args", out.args);
  read_field(n, "env", out.env);
  read_field(n, "cwd", out.cwd);
  read_field(n, "capabilities", out.capabilities);
  read_field(n, "rlimits", out.rlimits);
  read_field(n, "noNewPrivileges", out.no_new_privileges);
  read_field(n, "apparmorProfile", out.apparmor_profile);
  read_field(n, "oomScoreAdj", out.oom_score_adj);
  read_field(n, "scheduler", out.scheduler);
  read_field(n, "selinuxLabel", out.selinux_label);
  read_field(n, "ioPriority", out.io_priority);
  read_field(n, "execCPUAffinity", out.exec_cpu_affinity);
}

void read_value(const Node& n, Hook& out) {
  read_field(n, "path", out.path);
  read_field(n, "args", out.args);
  read_field(n, "env", out.env);
  read_field(n, "timeout", out.timeout);
}

void read_value(const Node& n, Hooks& out) {
  read_field(n, "prestart", out.prestart);
  read_field(n, "createRuntime", out.create_runtime);
  read_field(n, "createContainer", out.create_container);
  read_field(n, "startContainer", out.start_container);
  read_field(n, "poststart", out.poststart);
  read_field(n, "poststop", out.poststop);
}

void read_value(const Node& n, Namespace& out) {
  read_field(n, "type", out.type);
  read_field(n, "path", out.path);
}

void read_value(const Node& n, Device& out) {
  read_field(n, "type", out.type);
  read_field(n, "path", out.path);
  read_field(n, "major", out.major);
  read_field(n, "minor", out.minor);
  read_field(n, "fileMode", out.file_mode);
  read_field(n, "uid", out.uid);
  read_field(n, "gid", out.gid);
}

void read_value(const Node& n, DeviceCgroupRule& out) {
  read_fields(n, fields::kDeviceRule, out);
}

void read_value(const Node& n, MemoryResources& out) {
  read_fields(n, fields::kMemory, out);
}

void read_value(const Node& n, CpuResources& out) {
  read_fields(n, fields::kCpu, out);
}

void read_value(const Node& n, WeightDevice& out) {
  read_fields(n, fields::kWeightDevice, out);
}

void read_value(const Node& n, ThrottleDevice& out) {
  read_fields(n, fields::kThrottleDevice, out);
}

void read_value(const Node& n, BlockIoResources& out) {
  read_fields(n, fields::kBlockIo, out);
}

void read_value(const Node& n, HugepageLimit& out) {
  read_fields(n, fields::kHugepageLimit, out);
}

void read_value(const Node& n, NetworkPriority& out) {
  read_fields(n, fields::kNetworkPriority, out);
}

void read_value(const Node& n, NetworkResources& out) {
  read_field(n, "classID", out.class_id);
  read_field(n, "priorities", out.priorities);
}

void read_value(const Node& n, RdmaLimit& out) {
  read_fields(n, fields::kRdmaLimit, out);
}

void read_value(const Node& n, Resources& out) {
  read_field(n, "devices", out.devices);
  read_field(n, "memory", out.memory);
  read_field(n, "cpu", out.cpu);
  if (auto pids = n.member("pids")) read_field(*pids, "limit", out.pids_limit);
  read_field(n, "blockIO", out.block_io);
  read_field(n, "hugepageLimits", out.hugepage_limits);
  read_field(n, "network", out.network);
  read_field(n, "rdma", out.rdma);
  read_field(n, "unified", out.unified);
}

void read_value(const Node& n, SeccompArg& out) {
  read_field(n, "index", out.index);
  read_field(n, "value", out.value);
  read_field(n, "valueTwo", out.value_two);
  read_field(n, "op", out.op);
}

void read_value(const Node& n, SeccompSyscall& out) {
  read_field(n, "names", out.names);
  read_field(n, "action", out.action);
  read_field(n, "errnoRet", out.errno_ret);
  read_field(n, "args", out.args);
}

void read_value(const Node& n, Seccomp& out) {
  read_field(n, "defaultAction", out.default_action);
  read_field(n, "defaultErrnoRet", out.default_errno_ret);
  read_field(n, "architectures", out.architectures);
  read_field(n, "flags", out.flags);
  read_field(n, "listenerPath", out.listener_path);
  read_field(n, "listenerMetadata", out.listener_metadata);
  read_field(n, "syscalls", out.syscalls);
}

void read_value(const Node& n, TimeOffset& out) {
  read_field(n, "secs", out.secs);
  read_field(n, "nanosecs", out.nanosecs);
}

void read_value(const Node& n, Personality& out) {
  read_field(n, "domain", out.domain);
  read_field(n, "flags", out.flags);
}

void read_value(const Node& n, IntelRdt& out) {
  read_field(n, "closID", out.clos_id);
  read_field(n, "l3CacheSchema", out.l3_cache_schema);
  read_field(n, "memBwSchema", out.mem_bw_schema);
  read_field(n, "enableCMT", out.enable_cmt);
  read_field(n, "enableMBM", out.enable_mbm);
}

void read_value(const Node& n, NetDevice& out) {
  read_field(n, "name", out.name);
}

void read_value(const Node& n, Linux& out) {
  read_field(n, "namespaces", out.namespaces);
  read_field(n, "uidMappings", out.uid_mappings);
  read_field(n, "gidMappings", out.gid_mappings);
  read_field(n, "timeOffsets", out.time_offsets);
  read_field(n, "devices", out.devices);
  read_field(n, "cgroupsPath", out.cgroups_path);
  read_field(n, "resources", out.resources);
  read_field(n, "intelRdt", out.intel_rdt);
  read_field(n, "sysctl", out.sysctl);
  read_field(n, "seccomp", out.seccomp);
  read_field(n, "rootfsPropagation", out.rootfs_propagation);
  read_field(n, "maskedPaths", out.masked_paths);
  read_field(n, "readonlyPaths", out.readonly_paths);
  read_field(n, "mountLabel", out.mount_label);
  read_field(n, "personality", out.personality);
  read_field(n, "netDevices", out.net_devices);
}

Spec read_spec(const Node& root) {
  if (!root.value().is_object())
    throw_error(std::string("config: expected object, got ") + root.value().type_name());
  Spec spec;
  read_field(root, "ociVersion", spec.oci_version);
  read_field(root, "root", spec.root);
  read_field(root, "mounts", spec.mounts);
  read_field(root, "process", spec.process);
  read_field(root, "hostname", spec.hostname);
  read_field(root, "domainname", spec.domainname);
  read_field(root, "hooks", spec.hooks);
  read_field(root, "annotations", spec.annotations);
  read_field(root, "linux", spec.linux);
  return spec;
}

// 1-based line and column of a byte offset, columns counted in bytes.
std::pair<size_t, size_t> line_and_column(std::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  std::string_view before = text.substr(0, offset);
  size_t line = 1 + static_cast<size_t>(std::count(before.begin(), before.end(), '\n'));
  size_t last_newline = before.rfind('\n');
  size_t column = last_newline == std::string_view::npos ? offset + 1 : offset - last_newline;
  return {line, column};
}

// nlohmann's messages start with "[json.exception.out_of_range.406] "; drop that.
std::string exception_description(const json::exception& e) {
  std::string_view what = e.what();
  size_t bracket = what.find("] ");
  return std::string(bracket == std::string_view::npos ? what : what.substr(bracket + 2));
}

// nlohmann's message is "[json.exception.parse_error.101] parse error at line 1, column 2:
// syntax error while ..."; keep only the description after the location.
std::string parse_error_description(const json::parse_error& e) {
  std::string_view what = e.what();
  size_t location = what.find("parse error");
  size_t colon = location == std::string_view::npos ? what.find("] ") : what.find(": ", location);
  if (colon == std::string_view::npos) return std::string(what);
  return std::string(what.substr(colon + 2));
}

}  // namespace

const Namespace* Linux::find_namespace(const std::string& type) const {
  for (const auto& ns : namespaces)
    if (ns.type == type) return &ns;
  return nullptr;
}

Spec parse(const std::string& json_text, const std::string& source) {
  json document;
  try {
    document = json::parse(json_text);
  } catch (const json::parse_error& e) {
    // e.byte is 1-based and points at the last character read, i.e. the offending one.
    size_t offset = e.byte == 0 ? 0 : e.byte - 1;
    auto [line, column] = line_and_column(json_text, offset);
    throw_error(source + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " +
                parse_error_description(e));
  } catch (const json::exception& e) {
    // A number too large for a double ("1e400") is an out_of_range error, thrown without a
    // position; without this it escaped as an internal error (found by tests/fuzz).
    throw_error(source + ": " + exception_description(e));
  }
  return read_spec(Node(document, ""));
}

Spec load_bundle_config(const std::string& bundle_dir) {
  std::string path = bundle_dir;
  if (path.empty()) path = ".";
  if (path.back() != '/') path += '/';
  path += "config.json";
  return parse(read_file(path), path);
}

}  // namespace barge::spec

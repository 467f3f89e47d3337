// Semantic checks of a parsed config, in the spirit of runc's libcontainer/configs/validate.
// Every message starts with the JSON path of the offending value.
#include <algorithm>
#include <array>
#include <set>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "runtime/spec.hpp"

namespace barge::spec {
namespace {

constexpr std::array kNamespaceTypes = {"pid", "network", "mount",  "ipc",
                                        "uts", "user",    "cgroup", "time"};

constexpr std::array kRlimitTypes = {
    "RLIMIT_AS",     "RLIMIT_CORE",   "RLIMIT_CPU",        "RLIMIT_DATA",
    "RLIMIT_FSIZE",  "RLIMIT_LOCKS",  "RLIMIT_MEMLOCK",    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",   "RLIMIT_NOFILE", "RLIMIT_NPROC",      "RLIMIT_RSS",
    "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK"};

constexpr std::array kPropagationModes = {
    "", "shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate", "runbindable"};

constexpr std::array kSeccompActions = {
    "SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",  "SCMP_ACT_ERRNO",        "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",          "SCMP_ACT_NOTIFY"};

constexpr std::array kSeccompOperators = {"SCMP_CMP_NE",       "SCMP_CMP_LT", "SCMP_CMP_LE",
                                          "SCMP_CMP_EQ",       "SCMP_CMP_GE", "SCMP_CMP_GT",
                                          "SCMP_CMP_MASKED_EQ"};

constexpr std::array kSeccompArchitectures = {
    "SCMP_ARCH_X86",     "SCMP_ARCH_X86_64",   "SCMP_ARCH_X32",         "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS",     "SCMP_ARCH_MIPS64",      "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",  "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",   "SCMP_ARCH_PPC64LE",  "SCMP_ARCH_S390",        "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",  "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",     "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",    "SCMP_ARCH_SH",       "SCMP_ARCH_SHEB"};

constexpr std::array kSeccompFlags = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                      "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                      "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};

constexpr std::array kSchedulerPolicies = {"SCHED_OTHER",   "SCHED_FIFO", "SCHED_RR",
                                           "SCHED_BATCH",   "SCHED_ISO",  "SCHED_IDLE",
                                           "SCHED_DEADLINE"};

constexpr std::array kSchedulerFlags = {"SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM",
                                        "SCHED_FLAG_DL_OVERRUN",    "SCHED_FLAG_KEEP_POLICY",
                                        "SCHED_FLAG_KEEP_PARAMS",   "SCHED_FLAG_UTIL_CLAMP_MIN",
                                        "SCHED_FLAG_UTIL_CLAMP_MAX"};

constexpr std::array kIoPriorityClasses = {"IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE",
                                           "IOPRIO_CLASS_IDLE"};

constexpr std::array kTimeOffsetClocks = {"monotonic", "boottime"};

constexpr std::array kPersonalityDomains = {"LINUX", "LINUX32"};

template <size_t N>
bool is_one_of(std::string_view value, const std::array<const char*, N>& allowed) {
  return std::any_of(allowed.begin(), allowed.end(),
                     [&](const char* candidate) { return value == candidate; });
}

std::string quoted(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

std::string indexed(std::string_view path, size_t i) {
  return std::string(path) + "[" + std::to_string(i) + "]";
}

[[noreturn]] void fail(std::string_view path, std::string_view problem) {
  throw_error(std::string(path) + ": " + std::string(problem));
}

bool is_absolute(std::string_view path) {
  return !path.empty() && path.front() == '/';
}

void require_absolute(std::string_view json_path, std::string_view path) {
  if (!is_absolute(path)) fail(json_path, "must be an absolute path, got " + quoted(path));
}

bool has_dotdot_component(std::string_view path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "..") return true;
    start = end + 1;
  }
  return false;
}

bool has_namespace(const std::optional<Linux>& linux, const std::string& type) {
  return linux && linux->find_namespace(type) != nullptr;
}

void validate_version(const std::string& version) {
  if (version.empty()) fail("ociVersion", "required");
  if (!version.starts_with("1."))
    fail("ociVersion", "unsupported version " + quoted(version) + ", want 1.x");
}

void validate_rlimits(const std::vector<Rlimit>& rlimits) {
  std::set<std::string> seen;
  for (size_t i = 0; i < rlimits.size(); ++i) {
    const Rlimit& r = rlimits[i];
    std::string path = indexed("process.rlimits", i);
    if (!is_one_of(r.type, kRlimitTypes)) fail(path + ".type", "unknown rlimit " + quoted(r.type));
    if (!seen.insert(r.type).second) fail(path + ".type", "duplicate rlimit " + quoted(r.type));
    if (r.soft > r.hard)
      fail(path, "soft limit " + std::to_string(r.soft) + " exceeds hard limit " +
                     std::to_string(r.hard));
  }
}

void validate_capability_list(std::string_view path,
                              const std::optional<std::vector<std::string>>& caps) {
  if (!caps) return;
  for (size_t i = 0; i < caps->size(); ++i) {
    const std::string& cap = (*caps)[i];
    // Unknown-but-well-formed names are left to the capability code: newer kernels add caps.
    if (!cap.starts_with("CAP_") || cap.size() == 4)
      fail(indexed(path, i), "invalid capability " + quoted(cap));
  }
}

void validate_capabilities(const Capabilities& caps) {
  validate_capability_list("process.capabilities.bounding", caps.bounding);
  validate_capability_list("process.capabilities.effective", caps.effective);
  validate_capability_list("process.capabilities.inheritable", caps.inheritable);
  validate_capability_list("process.capabilities.permitted", caps.permitted);
  validate_capability_list("process.capabilities.ambient", caps.ambient);
}

void validate_scheduler(const Scheduler& s) {
  if (s.policy.empty()) fail("process.scheduler.policy", "required");
  if (!is_one_of(s.policy, kSchedulerPolicies))
    fail("process.scheduler.policy", "unknown policy " + quoted(s.policy));
  if (s.nice < -20 || s.nice > 19) fail("process.scheduler.nice", "must be between -20 and 19");
  for (size_t i = 0; i < s.flags.size(); ++i)
    if (!is_one_of(s.flags[i], kSchedulerFlags))
      fail(indexed("process.scheduler.flags", i), "unknown flag " + quoted(s.flags[i]));
}

void validate_io_priority(const IoPriority& p) {
  if (!is_one_of(p.io_class, kIoPriorityClasses))
    fail("process.ioPriority.class", "unknown class " + quoted(p.io_class));
  if (p.priority < 0 || p.priority > 7)
    fail("process.ioPriority.priority", "must be between 0 and 7");
}

void validate_process(const std::optional<Process>& process) {
  if (!process) fail("process", "required");
  if (process->args.empty()) fail("process.args", "must not be empty");
  if (process->cwd.empty()) fail("process.cwd", "required");
  require_absolute("process.cwd", process->cwd);
  if (process->capabilities) validate_capabilities(*process->capabilities);
  validate_rlimits(process->rlimits);
  if (process->oom_score_adj && (*process->oom_score_adj < -1000 || *process->oom_score_adj > 1000))
    fail("process.oomScoreAdj", "must be between -1000 and 1000");
  if (process->scheduler) validate_scheduler(*process->scheduler);
  if (process->io_priority) validate_io_priority(*process->io_priority);
}

void validate_mounts(const std::vector<Mount>& mounts) {
  for (size_t i = 0; i < mounts.size(); ++i) {
    const Mount& m = mounts[i];
    std::string path = indexed("mounts", i);
    require_absolute(path + ".destination", m.destination);
    if (m.uid_mappings.empty() != m.gid_mappings.empty())
      fail(path + (m.uid_mappings.empty() ? ".uidMappings" : ".gidMappings"),
           "idmapped mounts need both uidMappings and gidMappings");
  }
}

void validate_hook_list(std::string_view name, const std::vector<Hook>& hooks) {
  for (size_t i = 0; i < hooks.size(); ++i) {
    std::string path = indexed("hooks." + std::string(name), i);
    require_absolute(path + ".path", hooks[i].path);
    if (hooks[i].timeout && *hooks[i].timeout <= 0)
      fail(path + ".timeout", "must be positive, got " + std::to_string(*hooks[i].timeout));
  }
}

void validate_hooks(const Hooks& hooks) {
  validate_hook_list("prestart", hooks.prestart);
  validate_hook_list("createRuntime", hooks.create_runtime);
  validate_hook_list("createContainer", hooks.create_container);
  validate_hook_list("startContainer", hooks.start_container);
  validate_hook_list("poststart", hooks.poststart);
  validate_hook_list("poststop", hooks.poststop);
}

void validate_namespaces(const std::vector<Namespace>& namespaces) {
  std::set<std::string> seen;
  for (size_t i = 0; i < namespaces.size(); ++i) {
    const Namespace& ns = namespaces[i];
    std::string path = indexed("linux.namespaces", i);
    if (!is_one_of(ns.type, kNamespaceTypes))
      fail(path + ".type", "unknown namespace " + quoted(ns.type));
    if (!seen.insert(ns.type).second)
      fail(path + ".type", "duplicate namespace " + quoted(ns.type));
    if (!ns.path.empty()) require_absolute(path + ".path", ns.path);
  }
}

void validate_mapping_list(std::string_view path, const std::vector<IdMapping>& mappings) {
  for (size_t i = 0; i < mappings.size(); ++i)
    if (mappings[i].size == 0) fail(indexed(path, i) + ".size", "must be positive");
}

void validate_id_mappings(const Linux& linux) {
  const Namespace* userns = linux.find_namespace("user");
  for (auto [name, mappings] : {std::pair{"linux.uidMappings", &linux.uid_mappings},
                                std::pair{"linux.gidMappings", &linux.gid_mappings}}) {
    if (userns == nullptr && !mappings->empty()) fail(name, "requires a user namespace");
    if (userns != nullptr && userns->path.empty() && mappings->empty())
      fail(name, "required with a new user namespace");
    validate_mapping_list(name, *mappings);
  }
}

void validate_time_offsets(const Linux& linux) {
  if (linux.time_offsets.empty()) return;
  const Namespace* timens = linux.find_namespace("time");
  if (timens == nullptr) fail("linux.timeOffsets", "requires a time namespace");
  if (!timens->path.empty())
    fail("linux.timeOffsets", "cannot be set when joining an existing time namespace");
  for (const auto& [clock, offset] : linux.time_offsets) {
    std::string path = "linux.timeOffsets." + clock;
    if (!is_one_of(clock, kTimeOffsetClocks)) fail(path, "unknown clock " + quoted(clock));
    if (offset.nanosecs >= 1'000'000'000) fail(path + ".nanosecs", "must be below 1000000000");
  }
}

void validate_devices(const std::vector<Device>& devices) {
  for (size_t i = 0; i < devices.size(); ++i) {
    const Device& d = devices[i];
    std::string path = indexed("linux.devices", i);
    if (d.type != "c" && d.type != "b" && d.type != "u" && d.type != "p")
      fail(path + ".type", "must be one of c, b, u, p, got " + quoted(d.type));
    require_absolute(path + ".path", d.path);
  }
}

void validate_device_rules(const std::vector<DeviceCgroupRule>& rules) {
  for (size_t i = 0; i < rules.size(); ++i) {
    const DeviceCgroupRule& r = rules[i];
    std::string path = indexed("linux.resources.devices", i);
    if (!r.type.empty() && r.type != "a" && r.type != "c" && r.type != "b")
      fail(path + ".type", "must be one of a, c, b, got " + quoted(r.type));
    if (r.access.find_first_not_of("rwm") != std::string::npos)
      fail(path + ".access", "must be a combination of r, w, m, got " + quoted(r.access));
  }
}

void validate_resources(const Resources& resources) {
  validate_device_rules(resources.devices);
  if (const auto& memory = resources.memory) {
    if (memory->limit && memory->swap && *memory->limit > 0 && *memory->swap > 0 &&
        *memory->swap < *memory->limit)
      fail("linux.resources.memory.swap", "must not be below the memory limit");
    if (memory->swappiness && *memory->swappiness > 100)
      fail("linux.resources.memory.swappiness", "must be between 0 and 100");
  }
  for (size_t i = 0; i < resources.hugepage_limits.size(); ++i)
    if (resources.hugepage_limits[i].page_size.empty())
      fail(indexed("linux.resources.hugepageLimits", i) + ".pageSize", "required");
  for (const auto& [file, value] : resources.unified)
    if (file.empty() || file.find('/') != std::string::npos)
      fail("linux.resources.unified", "invalid cgroup file name " + quoted(file));
}

bool seccomp_uses_notify(const Seccomp& seccomp) {
  return std::any_of(seccomp.syscalls.begin(), seccomp.syscalls.end(),
                     [](const SeccompSyscall& s) { return s.action == "SCMP_ACT_NOTIFY"; });
}

void validate_seccomp_syscall(const std::string& path, const SeccompSyscall& syscall) {
  if (syscall.names.empty()) fail(path + ".names", "must not be empty");
  if (!is_one_of(syscall.action, kSeccompActions))
    fail(path + ".action", "unknown action " + quoted(syscall.action));
  for (size_t j = 0; j < syscall.args.size(); ++j) {
    const SeccompArg& arg = syscall.args[j];
    std::string arg_path = indexed(path + ".args", j);
    if (!is_one_of(arg.op, kSeccompOperators))
      fail(arg_path + ".op", "unknown operator " + quoted(arg.op));
    if (arg.index > 5) fail(arg_path + ".index", "must be between 0 and 5");
  }
}

void validate_seccomp(const Seccomp& seccomp) {
  if (seccomp.default_action.empty()) fail("linux.seccomp.defaultAction", "required");
  if (!is_one_of(seccomp.default_action, kSeccompActions))
    fail("linux.seccomp.defaultAction", "unknown action " + quoted(seccomp.default_action));
  if (seccomp.default_action == "SCMP_ACT_NOTIFY")
    fail("linux.seccomp.defaultAction", "SCMP_ACT_NOTIFY cannot be the default action");
  for (size_t i = 0; i < seccomp.architectures.size(); ++i)
    if (!is_one_of(seccomp.architectures[i], kSeccompArchitectures))
      fail(indexed("linux.seccomp.architectures", i),
           "unknown architecture " + quoted(seccomp.architectures[i]));
  for (size_t i = 0; i < seccomp.flags.size(); ++i)
    if (!is_one_of(seccomp.flags[i], kSeccompFlags))
      fail(indexed("linux.seccomp.flags", i), "unknown flag " + quoted(seccomp.flags[i]));
  for (size_t i = 0; i < seccomp.syscalls.size(); ++i)
    validate_seccomp_syscall(indexed("linux.seccomp.syscalls", i), seccomp.syscalls[i]);
  if (seccomp.listener_path.empty() && seccomp_uses_notify(seccomp))
    fail("linux.seccomp.listenerPath", "required with SCMP_ACT_NOTIFY");
}

void validate_path_list(std::string_view name, const std::vector<std::string>& paths) {
  for (size_t i = 0; i < paths.size(); ++i) require_absolute(indexed(name, i), paths[i]);
}

void validate_linux(const Linux& linux) {
  validate_namespaces(linux.namespaces);
  validate_id_mappings(linux);
  validate_time_offsets(linux);
  validate_devices(linux.devices);
  if (has_dotdot_component(linux.cgroups_path))
    fail("linux.cgroupsPath", "must not contain \"..\" components");
  if (linux.resources) validate_resources(*linux.resources);
  for (const auto& [key, value] : linux.sysctl)
    if (key.empty()) fail("linux.sysctl", "key must not be empty");
  if (linux.seccomp) validate_seccomp(*linux.seccomp);
  if (!is_one_of(linux.rootfs_propagation, kPropagationModes))
    fail("linux.rootfsPropagation", "unknown propagation " + quoted(linux.rootfs_propagation));
  validate_path_list("linux.maskedPaths", linux.masked_paths);
  validate_path_list("linux.readonlyPaths", linux.readonly_paths);
  if (linux.personality && !is_one_of(linux.personality->domain, kPersonalityDomains))
    fail("linux.personality.domain", "unknown domain " + quoted(linux.personality->domain));
}

// runc: "unable to set hostname without a private UTS namespace". Joining one by path counts.
void validate_uts_names(const Spec& spec) {
  if (has_namespace(spec.linux, "uts")) return;
  if (!spec.hostname.empty())
    fail("hostname", "unable to set hostname without a private UTS namespace");
  if (!spec.domainname.empty())
    fail("domainname", "unable to set domainname without a private UTS namespace");
}

}  // namespace

void validate(const Spec& spec) {
  validate_version(spec.oci_version);
  if (spec.root.path.empty()) fail("root.path", "required");
  validate_process(spec.process);
  validate_mounts(spec.mounts);
  if (spec.hooks) validate_hooks(*spec.hooks);
  if (spec.linux) validate_linux(*spec.linux);
  validate_uts_names(spec);
}

}  // namespace barge::spec

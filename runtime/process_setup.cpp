#include "runtime/process_setup.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <utility>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "common/syscalls.hpp"
#include "runtime/lsm.hpp"

namespace barge::runtime {
namespace {

// Names libcap knows but the running kernel does not (newer than its cap_last_cap) are skipped
// and collected in *skipped, as runc does; unknown names are an error.
std::vector<cap_value_t> resolve_set(const std::optional<std::vector<std::string>>& names,
                                     const std::string& field, cap_value_t last_cap,
                                     std::vector<std::string>* skipped) {
  std::vector<cap_value_t> values;
  if (!names) return values;
  for (size_t i = 0; i < names->size(); ++i) {
    const std::string& name = (*names)[i];
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    cap_value_t value{};
    if (cap_from_name(lower.c_str(), &value) != 0)
      throw Error(field + "[" + std::to_string(i) + "]: unknown capability \"" + name + "\"");
    if (value > last_cap) {
      if (std::find(skipped->begin(), skipped->end(), name) == skipped->end())
        skipped->push_back(name);
      continue;
    }
    values.push_back(value);
  }
  return values;
}

struct CapFree {
  void operator()(cap_t c) const { cap_free(c); }
};
using CapHandle = std::unique_ptr<std::remove_pointer_t<cap_t>, CapFree>;

void drop_bounding_set(const std::vector<cap_value_t>& keep) {
  // Up to the kernel's last capability, not libcap's CAP_LAST_CAP: a kernel newer than the
  // libcap headers has capabilities barge cannot name, and they must go too. PR_CAPBSET_READ
  // answers EINVAL past the kernel's last one.
  for (cap_value_t cap = 0;; ++cap) {
    int in_set = ::prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (in_set < 0 && errno == EINVAL) return;
    if (in_set < 0) throw_errno("read capability " + std::to_string(cap) + " of the bounding set");
    if (in_set == 0 || std::find(keep.begin(), keep.end(), cap) != keep.end()) continue;
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
      throw_errno("drop capability " + std::to_string(cap) + " from the bounding set");
  }
}

void set_capability_sets(const CapabilitySets& caps) {
  CapHandle handle(cap_init());
  if (!handle) throw_errno("cap_init");
  auto set = [&](cap_flag_t flag, const std::vector<cap_value_t>& values) {
    if (values.empty()) return;
    if (cap_set_flag(handle.get(), flag, static_cast<int>(values.size()), values.data(), CAP_SET) !=
        0)
      throw_errno("cap_set_flag");
  };
  set(CAP_EFFECTIVE, caps.effective);
  set(CAP_PERMITTED, caps.permitted);
  set(CAP_INHERITABLE, caps.inheritable);
  if (cap_set_proc(handle.get()) != 0) throw_errno("set process capabilities");
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    throw_errno("clear ambient capabilities");
  for (cap_value_t cap : caps.ambient) {
    // Raising ambient needs the cap in permitted and inheritable; runc ignores failures here.
    (void)::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
  }
}

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

}  // namespace

cap_value_t kernel_last_capability() {
  try {
    return static_cast<cap_value_t>(std::stoi(read_file("/proc/sys/kernel/cap_last_cap")));
  } catch (const std::exception&) {
    // No /proc (or garbage in it): libcap probes the bounding set instead.
    return static_cast<cap_value_t>(cap_max_bits()) - 1;
  }
}

CapabilitySets resolve_capabilities(const std::optional<spec::Capabilities>& caps) {
  return resolve_capabilities(caps, kernel_last_capability());
}

CapabilitySets resolve_capabilities(const std::optional<spec::Capabilities>& caps,
                                    cap_value_t last_cap) {
  CapabilitySets sets;
  if (!caps) return sets;
  sets.configured = true;
  std::vector<std::string> skipped;
  auto resolve = [&](const std::optional<std::vector<std::string>>& names, const char* set) {
    return resolve_set(names, std::string("process.capabilities.") + set, last_cap, &skipped);
  };
  sets.bounding = resolve(caps->bounding, "bounding");
  sets.effective = resolve(caps->effective, "effective");
  sets.inheritable = resolve(caps->inheritable, "inheritable");
  sets.permitted = resolve(caps->permitted, "permitted");
  sets.ambient = resolve(caps->ambient, "ambient");
  if (!skipped.empty()) {
    std::string list;
    for (const auto& name : skipped) list += (list.empty() ? "" : ", ") + name;
    log::warn("process.capabilities: " + list + " not supported by the running kernel (last " +
              "capability " + std::to_string(last_cap) + "); skipped");
  }
  return sets;
}

int rlimit_resource(const std::string& name) {
  static const std::pair<const char*, int> kLimits[] = {
      {"RLIMIT_CPU", RLIMIT_CPU},           {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_DATA", RLIMIT_DATA},         {"RLIMIT_STACK", RLIMIT_STACK},
      {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_NPROC", RLIMIT_NPROC},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},   {"RLIMIT_AS", RLIMIT_AS},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},       {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},     {"RLIMIT_RTTIME", RLIMIT_RTTIME},
  };
  for (const auto& [limit_name, resource] : kLimits)
    if (name == limit_name) return resource;
  return -1;
}

void apply_rlimits(const std::vector<spec::Rlimit>& rlimits) {
  for (size_t i = 0; i < rlimits.size(); ++i) {
    const auto& limit = rlimits[i];
    int resource = rlimit_resource(limit.type);
    if (resource < 0)
      throw Error("process.rlimits[" + std::to_string(i) + "].type: unknown rlimit \"" +
                  limit.type + "\"");
    rlimit value{limit.soft, limit.hard};
    if (::setrlimit(resource, &value) != 0)
      throw_errno("process.rlimits[" + std::to_string(i) + "]: setrlimit " + limit.type);
  }
}

void apply_oom_score_adj(std::optional<int> score) {
  if (!score) return;
  with_context("process.oomScoreAdj",
               [&] { write_file("/proc/self/oom_score_adj", std::to_string(*score)); });
}

void switch_user_and_capabilities(const spec::User& user, const CapabilitySets& caps) {
  if (caps.configured) drop_bounding_set(caps.bounding);
  std::vector<gid_t> groups(user.additional_gids.begin(), user.additional_gids.end());
  // setgroups is denied in user namespaces whose gid_map was written with setgroups=deny.
  if (::setgroups(groups.size(), groups.data()) != 0 && !(errno == EPERM && groups.empty()))
    throw_errno("process.user.additionalGids: setgroups");
  if (caps.configured && ::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0)
    throw_errno("keep capabilities");
  if (::setresgid(user.gid, user.gid, user.gid) != 0)
    throw_errno("process.user.gid: setresgid " + std::to_string(user.gid));
  if (::setresuid(user.uid, user.uid, user.uid) != 0)
    throw_errno("process.user.uid: setresuid " + std::to_string(user.uid));
  if (!caps.configured) return;
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) throw_errno("clear keep capabilities");
  set_capability_sets(caps);
}

void apply_no_new_privileges(bool enabled) {
  if (enabled && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    throw_errno("process.noNewPrivileges");
}

void seal_file_descriptors(int preserve_fds) {
  unsigned first_closed = 3U + static_cast<unsigned>(preserve_fds);
  if (sys::close_range(first_closed, ~0U, CLOSE_RANGE_CLOEXEC) != 0) throw_errno("close_range");
  for (int fd = 3; fd < static_cast<int>(first_closed); ++fd) {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0) ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
  }
}

std::string find_executable(const std::string& name, const std::vector<std::string>& env) {
  if (name.find('/') != std::string::npos) {
    // runc's (Go's) wording: clients such as podman map "no such file or directory" to exit code
    // 127 and "permission denied" to 126.
    const std::string quoted = "exec: \"" + name + "\"";
    struct stat st {};
    if (::stat(name.c_str(), &st) != 0) throw_errno(quoted + ": stat " + name);
    if (!is_executable_file(name)) throw_errno(quoted, EACCES);
    return name;
  }
  std::string_view path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto& entry : env)
    if (entry.starts_with("PATH=")) path = std::string_view(entry).substr(5);
  // Split as getline would: an empty entry is ".", a trailing ':' adds nothing.
  for (size_t pos = 0; pos < path.size();) {
    size_t end = std::min(path.find(':', pos), path.size());
    std::string_view dir = path.substr(pos, end - pos);
    pos = end + 1;
    std::string candidate = std::string(dir.empty() ? "." : dir) + "/" + name;
    if (is_executable_file(candidate)) return candidate;
  }
  throw Error("exec: \"" + name + "\": executable file not found in $PATH", ENOENT);
}

std::vector<char*> as_argv(std::vector<std::string>& strings) {
  std::vector<char*> argv;
  argv.reserve(strings.size() + 1);
  for (auto& s : strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  return argv;
}

namespace {

// The home directory of uid in passwd text, "/" when no entry has one. Fields as getline splits
// them: a line ending in ':' has no empty last field.
std::string home_in_passwd(std::string_view passwd, uint32_t uid) {
  const std::string uid_text = std::to_string(uid);
  while (!passwd.empty()) {
    size_t eol = passwd.find('\n');
    std::string_view line = passwd.substr(0, eol);
    passwd = eol == std::string_view::npos ? std::string_view{} : passwd.substr(eol + 1);
    std::string_view fields[6];
    size_t count = 0;
    for (size_t pos = 0; count < 6 && pos < line.size();) {
      size_t end = std::min(line.find(':', pos), line.size());
      fields[count++] = line.substr(pos, end - pos);
      pos = end + 1;
    }
    if (count == 6 && fields[2] == uid_text) return std::string(fields[5]);
  }
  return "/";
}

}  // namespace

// Reads the container's /etc/passwd without iostreams: this runs in the container init, where
// every page written (an ifstream's 8 KiB buffer, locale state) is charged to the container.
std::vector<std::string> with_home(std::vector<std::string> env, uint32_t uid) {
  for (const auto& entry : env)
    if (entry.rfind("HOME=", 0) == 0) return env;
  std::string passwd;
  try {
    passwd = read_file("/etc/passwd");
  } catch (const Error&) {
    // No readable /etc/passwd: HOME=/, as before.
  }
  env.push_back("HOME=" + home_in_passwd(passwd, uid));
  return env;
}

void enter_working_directory(const std::string& cwd) {
  std::string target = cwd.empty() ? "/" : cwd;
  if (::chdir(target.c_str()) != 0) throw_errno("process.cwd: chdir " + target);
  // CVE-2024-21626: a cwd reached through a leaked host fd shows as "(unreachable)/...".
  char buf[4096];
  if (::getcwd(buf, sizeof buf) == nullptr || buf[0] != '/')
    throw Error("process.cwd: working directory " + target + " is outside the container");
}

namespace {

void load_filter(const ProcessSetup& setup) {
  UniqueFd listener(seccomp::load(*setup.seccomp));
  if (listener) setup.hand_over_listener(listener.get());
}

}  // namespace

PreparedProcess prepare_process(const ProcessSetup& setup) {
  const spec::Process& process = *setup.process;
  apply_oom_score_adj(process.oom_score_adj);
  apply_rlimits(process.rlimits);
  if (process.scheduler) apply_scheduler(*process.scheduler);
  if (process.io_priority) apply_io_priority(*process.io_priority);
  if (setup.personality) apply_personality(*setup.personality);
  PreparedProcess prepared{find_executable(process.args.front(), process.env), process.args,
                           with_home(process.env, process.user.uid), nullptr};
  lsm::set_exec_labels(process);
  const seccomp::Filter* filter = setup.seccomp;
  if (filter && !process.no_new_privileges) load_filter(setup);
  switch_user_and_capabilities(process.user, *setup.capabilities);
  enter_working_directory(process.cwd);
  apply_no_new_privileges(process.no_new_privileges);
  ::umask(process.user.umask.value_or(022));
  seal_file_descriptors(setup.preserve_fds);
  if (filter && process.no_new_privileges) {
    if (filter->has_listener()) {
      load_filter(setup);
    } else {
      prepared.late_seccomp = filter;
    }
  }
  return prepared;
}

void exec_prepared(PreparedProcess& prepared) {
  auto argv = as_argv(prepared.args);
  auto envp = as_argv(prepared.env);
  if (prepared.late_seccomp) seccomp::load(*prepared.late_seccomp);
  ::execve(prepared.path.c_str(), argv.data(), envp.data());
  throw_errno("exec " + prepared.path);
}

}  // namespace barge::runtime

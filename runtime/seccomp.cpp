#include "runtime/seccomp.hpp"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/error.hpp"
#include "common/log.hpp"
#include "runtime/seccomp_cache.hpp"

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

namespace barge::seccomp {
namespace {

constexpr unsigned kMaxSyscallArgs = 6;
constexpr uint32_t kX32SyscallBit = 0x40000000U;
constexpr size_t kOptimizeAboveSyscalls = 32;

std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

std::string indexed(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// ---- actions -----------------------------------------------------------------------------------

uint32_t errno_data(std::optional<uint32_t> errno_ret, const std::string& errno_path) {
  uint32_t value = errno_ret.value_or(EPERM);
  if (value > 0xFFFFU) throw Error(errno_path + ": " + std::to_string(value) + " is out of range");
  return value;
}

uint32_t action_value(const std::string& action, std::optional<uint32_t> errno_ret,
                      const std::string& action_path, const std::string& errno_path) {
  if (action == "SCMP_ACT_KILL" || action == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (action == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (action == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (action == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(errno_data(errno_ret, errno_path));
  if (action == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(errno_data(errno_ret, errno_path));
  if (action == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (action == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  if (action == "SCMP_ACT_NOTIFY") return SCMP_ACT_NOTIFY;
  throw Error(action_path + ": unknown action " + quoted(action));
}

// runc's rule: a tracer should handle new syscalls itself, so TRACE counts as allowing.
bool allows_unknown_syscalls(const std::string& default_action) {
  return default_action == "SCMP_ACT_ALLOW" || default_action == "SCMP_ACT_LOG" ||
         default_action == "SCMP_ACT_TRACE";
}

// ---- architectures and flags -------------------------------------------------------------------

uint32_t arch_token(const std::string& name, const std::string& path) {
  constexpr std::string_view kPrefix = "SCMP_ARCH_";
  if (!name.starts_with(kPrefix)) throw Error(path + ": unknown architecture " + quoted(name));
  std::string libseccomp_name = name.substr(kPrefix.size());
  std::transform(libseccomp_name.begin(), libseccomp_name.end(), libseccomp_name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  uint32_t token = seccomp_arch_resolve_name(libseccomp_name.c_str());
  if (token == 0) {
    const scmp_version* v = seccomp_version();
    throw Error(path + ": architecture " + quoted(name) + " is not supported by libseccomp " +
                std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                std::to_string(v->micro));
  }
  return token;
}

void add_architectures(scmp_filter_ctx ctx, const spec::Seccomp& config) {
  for (size_t i = 0; i < config.architectures.size(); ++i) {
    std::string path = indexed("linux.seccomp.architectures", i);
    int rc = seccomp_arch_add(ctx, arch_token(config.architectures[i], path));
    if (rc < 0 && rc != -EEXIST) throw_errno(path + ": add architecture", -rc);
  }
}

// The kernel answers EFAULT for a known flag with a NULL program and EINVAL for an unknown one;
// libseccomp probes the same way.
bool kernel_supports_filter_flags(unsigned long flags) {
  errno = 0;
  long rc = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, nullptr);
  return rc < 0 && errno == EFAULT;
}

unsigned int filter_flags(const spec::Seccomp& config, bool has_listener) {
  unsigned int flags = has_listener ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0;
  for (size_t i = 0; i < config.flags.size(); ++i) {
    const std::string& name = config.flags[i];
    std::string path = indexed("linux.seccomp.flags", i);
    unsigned long flag = 0;
    // The init is single-threaded when it loads the filter; runc ignores TSYNC too.
    if (name == "SECCOMP_FILTER_FLAG_TSYNC") continue;
    if (name == "SECCOMP_FILTER_FLAG_LOG") {
      flag = SECCOMP_FILTER_FLAG_LOG;
    } else if (name == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") {
      flag = SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    } else if (name == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") {
      if (!has_listener) {
        log::warn(path + ": " + name + " has no effect without SCMP_ACT_NOTIFY rules; ignored");
        continue;
      }
      flag = SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    } else {
      throw Error(path + ": unknown flag " + quoted(name));
    }
    unsigned long probe = flag;
    if (flag == SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) probe |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
    if (!kernel_supports_filter_flags(probe))
      throw Error(path + ": " + name + " is not supported by this kernel");
    flags |= static_cast<unsigned int>(flag);
  }
  return flags;
}

// ---- rules -------------------------------------------------------------------------------------

scmp_compare compare_op(const std::string& op, const std::string& path) {
  static const std::map<std::string, scmp_compare> kOps = {
      {"SCMP_CMP_NE", SCMP_CMP_NE},
      {"SCMP_CMP_LT", SCMP_CMP_LT},
      {"SCMP_CMP_LE", SCMP_CMP_LE},
      {"SCMP_CMP_EQ", SCMP_CMP_EQ},
      {"SCMP_CMP_GE", SCMP_CMP_GE},
      {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};
  auto it = kOps.find(op);
  if (it == kOps.end()) throw Error(path + ": unknown operator " + quoted(op));
  return it->second;
}

std::vector<scmp_arg_cmp> conditions(const std::vector<spec::SeccompArg>& args,
                                     const std::string& rule_path) {
  std::vector<scmp_arg_cmp> conds;
  for (size_t i = 0; i < args.size(); ++i) {
    const spec::SeccompArg& arg = args[i];
    std::string path = indexed(rule_path + ".args", i);
    if (arg.index >= kMaxSyscallArgs)
      throw Error(path + ".index: " + std::to_string(arg.index) + " is not below " +
                  std::to_string(kMaxSyscallArgs));
    // MASKED_EQ: (arg & value) == valueTwo, which is libseccomp's datum_a/datum_b order.
    conds.push_back({arg.index, compare_op(arg.op, path + ".op"), arg.value, arg.value_two});
  }
  return conds;
}

// libseccomp ANDs the conditions of one rule but rejects two conditions on the same argument;
// runc then adds one rule per condition (an OR), and profiles in the wild rely on that.
bool repeats_an_argument(const std::vector<scmp_arg_cmp>& conds) {
  std::array<int, kMaxSyscallArgs> seen{};
  for (const auto& c : conds)
    if (++seen[c.arg] > 1) return true;
  return false;
}

void add_rule(scmp_filter_ctx ctx, uint32_t action, int nr, const std::vector<scmp_arg_cmp>& conds,
              const std::string& path) {
  auto check = [&](int rc) {
    if (rc < 0) throw_errno(path + ": add rule", -rc);
  };
  if (repeats_an_argument(conds)) {
    for (const auto& c : conds) check(seccomp_rule_add_array(ctx, action, nr, 1, &c));
  } else {
    check(
        seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(conds.size()), conds.data()));
  }
}

// The init passes the listener fd on with send/sendmsg (and logs with write) after the filter
// is in place: notifying those would block it before the agent ever gets the fd.
bool init_needs_after_load(const std::string& name) {
  return name == "write" || name == "sendmsg" || name == "sendto";
}

void add_syscall_rules(scmp_filter_ctx ctx, const spec::SeccompSyscall& rule, uint32_t default_act,
                       const std::string& path, std::vector<std::string>& warnings) {
  uint32_t action = action_value(rule.action, rule.errno_ret, path + ".action", path + ".errnoRet");
  std::vector<scmp_arg_cmp> conds = conditions(rule.args, path);
  for (size_t j = 0; j < rule.names.size(); ++j) {
    const std::string& name = rule.names[j];
    std::string name_path = indexed(path + ".names", j);
    if (action == SCMP_ACT_NOTIFY && init_needs_after_load(name))
      throw Error(name_path + ": SCMP_ACT_NOTIFY cannot be used for " + quoted(name));
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) {
      warnings.push_back(name_path + ": unknown syscall " + quoted(name) + " skipped");
      log::warn(warnings.back());
      continue;
    }
    // libseccomp refuses rules that repeat the default action; they change nothing.
    if (action == default_act) continue;
    add_rule(ctx, action, nr, conds, name_path + " (" + name + ")");
  }
}

bool profile_names(const spec::Seccomp& config, const std::string& name) {
  return std::any_of(config.syscalls.begin(), config.syscalls.end(), [&](const auto& rule) {
    return std::find(rule.names.begin(), rule.names.end(), name) != rule.names.end();
  });
}

// ---- the ENOSYS prologue -----------------------------------------------------------------------
//
// A profile that denies by default lists the syscalls its author knew about. Syscalls added to
// the kernel later must fail with ENOSYS, not EPERM: libc only falls back to the old syscall on
// ENOSYS (glibc's clone3 -> clone is the case that breaks threads and posix_spawn). Like runc's
// patchbpf, for each architecture in the filter the prologue returns ENOSYS for every syscall
// number above the highest one the profile names; everything else jumps to libseccomp's program.
// Limits: new syscalls numbered below that maximum (holes in the table, or out-of-order
// additions such as close_range vs. clone3) still get the default action, which is why compile()
// also adds clone3 -> ENOSYS explicitly when the profile does not mention clone3; s390's
// multiplexed syscall 0 is not special-cased.

struct ArchLimits {
  uint32_t audit_arch = 0;
  std::optional<uint32_t> max_nr;      // highest syscall the profile names (native mode)
  std::optional<uint32_t> max_x32_nr;  // the same for x32 (x86_64 only, X32 bit included)
};

std::optional<uint32_t> highest_named_syscall(const spec::Seccomp& config, uint32_t arch) {
  std::optional<uint32_t> highest;
  for (const auto& rule : config.syscalls)
    for (const auto& name : rule.names) {
      int nr = seccomp_syscall_resolve_name_arch(arch, name.c_str());
      if (nr < 0) continue;  // unknown, or a pseudo number (multiplexed on this arch)
      highest = std::max(highest.value_or(0), static_cast<uint32_t>(nr));
    }
  return highest;
}

std::vector<ArchLimits> arch_limits(scmp_filter_ctx ctx, const spec::Seccomp& config) {
  static constexpr uint32_t kTokens[] = {
      SCMP_ARCH_X86,     SCMP_ARCH_X86_64,   SCMP_ARCH_X32,         SCMP_ARCH_ARM,
      SCMP_ARCH_AARCH64, SCMP_ARCH_MIPS,     SCMP_ARCH_MIPS64,      SCMP_ARCH_MIPS64N32,
      SCMP_ARCH_MIPSEL,  SCMP_ARCH_MIPSEL64, SCMP_ARCH_MIPSEL64N32, SCMP_ARCH_PPC,
      SCMP_ARCH_PPC64,   SCMP_ARCH_PPC64LE,  SCMP_ARCH_S390,        SCMP_ARCH_S390X,
      SCMP_ARCH_PARISC,  SCMP_ARCH_PARISC64, SCMP_ARCH_RISCV64};
  std::map<uint32_t, ArchLimits> by_audit_arch;
  for (uint32_t token : kTokens) {
    if (seccomp_arch_exist(ctx, token) != 0) continue;
    auto highest = highest_named_syscall(config, token);
    if (!highest) continue;
    // x32 shares AUDIT_ARCH_X86_64 with x86_64; the kernel tells them apart by the X32 bit.
    uint32_t audit = token == SCMP_ARCH_X32 ? AUDIT_ARCH_X86_64 : token;
    ArchLimits& limits = by_audit_arch[audit];
    limits.audit_arch = audit;
    (token == SCMP_ARCH_X32 ? limits.max_x32_nr : limits.max_nr) = highest;
  }
  std::vector<ArchLimits> result;
  result.reserve(by_audit_arch.size());
  for (const auto& entry : by_audit_arch) result.push_back(entry.second);
  return result;
}

// A tiny BPF assembler with forward labels, enough for the prologue.
class Assembler {
 public:
  using Label = size_t;
  Label new_label() {
    labels_.push_back(kUnbound);
    return labels_.size() - 1;
  }
  void bind(Label label) { labels_[label] = code_.size(); }
  void stmt(uint16_t code, uint32_t k) { emit(BPF_STMT(code, k), {}, {}); }
  // Conditional jump: to `taken` when the condition holds, else to the next instruction.
  void jump_if(uint16_t op, uint32_t k, Label taken) {
    emit(BPF_JUMP(BPF_JMP | op | BPF_K, k, 0, 0), taken, {});
  }
  void jump(Label target) { emit(BPF_STMT(BPF_JMP | BPF_JA, 0), {}, target); }

  std::vector<sock_filter> finish() {
    for (size_t i = 0; i < code_.size(); ++i) {
      if (fixups_[i].jt) {
        size_t offset = distance(i, *fixups_[i].jt);
        if (offset > 255) throw Error("seccomp: ENOSYS prologue jump too long");
        code_[i].jt = static_cast<uint8_t>(offset);
      }
      if (fixups_[i].ja) code_[i].k = static_cast<uint32_t>(distance(i, *fixups_[i].ja));
    }
    return std::move(code_);
  }

 private:
  static constexpr size_t kUnbound = static_cast<size_t>(-1);
  struct Fixup {
    std::optional<Label> jt, ja;
  };
  void emit(sock_filter insn, std::optional<Label> jt, std::optional<Label> ja) {
    code_.push_back(insn);
    fixups_.push_back({jt, ja});
  }
  size_t distance(size_t from, Label to) const {
    if (labels_[to] == kUnbound || labels_[to] <= from) throw Error("seccomp: bad prologue label");
    return labels_[to] - from - 1;
  }
  std::vector<sock_filter> code_;
  std::vector<Fixup> fixups_;
  std::vector<size_t> labels_;
};

constexpr uint32_t kSyscallNrOffset = offsetof(seccomp_data, nr);
constexpr uint32_t kArchOffset = offsetof(seccomp_data, arch);

// ENOSYS when nr > max; otherwise on to the filter.
void emit_limit_check(Assembler& as, std::optional<uint32_t> max, Assembler::Label enosys,
                      Assembler::Label filter) {
  if (max) as.jump_if(BPF_JGT, *max, enosys);
  as.jump(filter);
}

std::vector<sock_filter> enosys_prologue(const std::vector<ArchLimits>& arches) {
  Assembler as;
  auto enosys = as.new_label();
  auto filter = as.new_label();
  std::vector<Assembler::Label> sections;
  as.stmt(BPF_LD | BPF_W | BPF_ABS, kArchOffset);
  for (const auto& arch : arches) {
    sections.push_back(as.new_label());
    as.jump_if(BPF_JEQ, arch.audit_arch, sections.back());
  }
  as.jump(filter);  // an architecture the filter does not know: libseccomp's bad-arch action
  for (size_t i = 0; i < arches.size(); ++i) {
    as.bind(sections[i]);
    as.stmt(BPF_LD | BPF_W | BPF_ABS, kSyscallNrOffset);
    if (arches[i].audit_arch == AUDIT_ARCH_X86_64) {
      auto x32 = as.new_label();
      as.jump_if(BPF_JSET, kX32SyscallBit, x32);
      emit_limit_check(as, arches[i].max_nr, enosys, filter);
      as.bind(x32);
      emit_limit_check(as, arches[i].max_x32_nr, enosys, filter);
    } else {
      emit_limit_check(as, arches[i].max_nr, enosys, filter);
    }
  }
  as.bind(enosys);
  as.stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
  as.bind(filter);
  return as.finish();
}

// ---- export ------------------------------------------------------------------------------------

std::string read_all(int fd) {
  if (::lseek(fd, 0, SEEK_SET) < 0) throw_errno("seccomp: lseek");
  std::string data;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("seccomp: read exported filter");
    if (n == 0) return data;
    data.append(buf, static_cast<size_t>(n));
  }
}

template <typename ExportFn>
std::string export_with(scmp_filter_ctx ctx, ExportFn export_fn, const char* what) {
  UniqueFd memfd(::memfd_create("barge-seccomp", MFD_CLOEXEC));
  if (!memfd) throw_errno("seccomp: memfd_create");
  int rc = export_fn(ctx, memfd.get());
  if (rc < 0) throw_errno(std::string("seccomp: ") + what, -rc);
  return read_all(memfd.get());
}

std::vector<sock_filter> export_program(scmp_filter_ctx ctx) {
  std::string bytes = export_with(ctx, seccomp_export_bpf, "export BPF");
  if (bytes.empty() || bytes.size() % sizeof(sock_filter) != 0)
    throw Error("seccomp: libseccomp exported a malformed program");
  std::vector<sock_filter> program(bytes.size() / sizeof(sock_filter));
  std::memcpy(program.data(), bytes.data(), bytes.size());
  return program;
}

size_t count_names(const spec::Seccomp& config) {
  size_t n = 0;
  for (const auto& rule : config.syscalls) n += rule.names.size();
  return n;
}

// ---- listener ----------------------------------------------------------------------------------

UniqueFd connect_unix_stream(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw Error(path + ": socket path too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock) throw_errno("socket");
  int rc;
  do {
    rc = ::connect(sock.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) throw_errno("connect " + path);
  return sock;
}

}  // namespace

// ---- Filter ------------------------------------------------------------------------------------

void Filter::ContextRelease::operator()(void* ctx) const noexcept {
  seccomp_release(ctx);
}

Filter::Filter() = default;
Filter::~Filter() = default;
Filter::Filter(Filter&&) noexcept = default;
Filter& Filter::operator=(Filter&&) noexcept = default;

std::string Filter::export_pfc() const {
  if (!ctx_) throw Error("seccomp: empty filter");
  return export_with(ctx_.get(), seccomp_export_pfc, "export PFC");
}

bool Filter::has_listener() const {
  return (flags_ & SECCOMP_FILTER_FLAG_NEW_LISTENER) != 0;
}

bool needs_listener(const spec::Seccomp& config) {
  return std::any_of(config.syscalls.begin(), config.syscalls.end(),
                     [](const auto& rule) { return rule.action == "SCMP_ACT_NOTIFY"; });
}

Filter compile(const spec::Seccomp& config) {
  uint32_t default_act =
      action_value(config.default_action, config.default_errno_ret, "linux.seccomp.defaultAction",
                   "linux.seccomp.defaultErrnoRet");
  if (default_act == SCMP_ACT_NOTIFY)
    throw Error("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action");
  Filter filter;
  filter.ctx_.reset(seccomp_init(default_act));
  if (!filter.ctx_) throw Error("seccomp: libseccomp could not create a filter");
  scmp_filter_ctx ctx = filter.ctx_.get();
  add_architectures(ctx, config);
  // A binary search tree instead of a linear list pays off for long allow lists.
  if (count_names(config) > kOptimizeAboveSyscalls)
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  for (size_t i = 0; i < config.syscalls.size(); ++i)
    add_syscall_rules(ctx, config.syscalls[i], default_act, indexed("linux.seccomp.syscalls", i),
                      filter.rule_warnings_);

  bool deny_by_default = !allows_unknown_syscalls(config.default_action);
  if (deny_by_default && !profile_names(config, "clone3"))
    add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), seccomp_syscall_resolve_name("clone3"), {},
             "seccomp: clone3 ENOSYS rule");

  filter.flags_ = filter_flags(config, needs_listener(config));
  std::vector<sock_filter> program = export_program(ctx);
  if (deny_by_default) {
    filter.program_ = enosys_prologue(arch_limits(ctx, config));
    filter.program_.insert(filter.program_.end(), program.begin(), program.end());
  } else {
    filter.program_ = std::move(program);
  }
  if (filter.program_.size() > BPF_MAXINSNS)
    throw Error("linux.seccomp: the filter has " + std::to_string(filter.program_.size()) +
                " instructions, more than the kernel's limit of " + std::to_string(BPF_MAXINSNS));
  return filter;
}

Filter compile_cached(const spec::Seccomp& config, const std::string& cache_dir) {
  std::string key = cache::key(config);
  if (key.empty()) return compile(config);
  if (auto entry = cache::read(cache_dir, key)) {
    for (const auto& warning : entry->warnings) log::warn(warning);
    Filter filter;
    filter.flags_ = filter_flags(config, needs_listener(config));
    filter.program_ = std::move(entry->program);
    filter.rule_warnings_ = std::move(entry->warnings);
    return filter;
  }
  Filter filter = compile(config);
  cache::write(cache_dir, key, {filter.program(), filter.rule_warnings()});
  return filter;
}

int load(const Filter& filter) {
  if (filter.program().empty()) throw Error("seccomp: load of an empty filter");
  sock_fprog prog{static_cast<unsigned short>(filter.program().size()),
                  const_cast<sock_filter*>(filter.program().data())};
  long rc = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, filter.flags(), &prog);
  if (rc < 0) {
    if (errno == EACCES)
      throw_errno("seccomp: load filter (needs noNewPrivileges or CAP_SYS_ADMIN)");
    throw_errno("seccomp: load filter");
  }
  if (!filter.has_listener()) return -1;
  // The kernel creates the listener with O_CLOEXEC already; make sure regardless.
  ::fcntl(static_cast<int>(rc), F_SETFD, FD_CLOEXEC);
  return static_cast<int>(rc);
}

void send_listener(int listener_fd, const std::string& listener_path, const std::string& metadata,
                   const std::string& state_json, pid_t pid) {
  with_context("linux.seccomp.listenerPath", [&] {
    nlohmann::ordered_json message = {
        {"ociVersion", spec::kRuntimeSpecVersion}, {"fds", {"seccompFd"}}, {"pid", pid}};
    if (!metadata.empty()) message["metadata"] = metadata;
    message["state"] = nlohmann::ordered_json::parse(state_json);
    UniqueFd sock = connect_unix_stream(listener_path);
    send_with_fd(sock.get(), listener_fd, message.dump());
  });
}

}  // namespace barge::seccomp

#include "cgroups/devices.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace barge::cgroups::detail {
namespace {

constexpr std::string_view kFullAccess = "rwm";

DeviceRule to_rule(const spec::DeviceCgroupRule& rule, size_t index) {
  std::string field = "linux.resources.devices[" + std::to_string(index) + "]";
  DeviceRule out;
  if (rule.type.empty() || rule.type == "a")
    out.type = 'a';
  else if (rule.type == "c" || rule.type == "b")
    out.type = rule.type[0];
  else
    throw_error(field + ".type: \"" + rule.type + "\" is not one of a, c, b");
  out.major = rule.major && *rule.major >= 0 ? rule.major : std::nullopt;
  out.minor = rule.minor && *rule.minor >= 0 ? rule.minor : std::nullopt;
  out.access.clear();
  std::string access = rule.access.empty() ? std::string(kFullAccess) : rule.access;
  for (char c : kFullAccess)
    if (access.find(c) != std::string::npos) out.access += c;
  if (access.find_first_not_of(kFullAccess) != std::string::npos)
    throw_error(field + ".access: \"" + rule.access + "\" may only contain r, w and m");
  return out;
}

bool is_reset(const DeviceRule& rule) {
  return rule.type == 'a' && !rule.major && !rule.minor && rule.access == kFullAccess;
}

// The kernel's and the BPF program's access bits (BPF_DEVCG_ACC_*).
uint32_t access_bits(const std::string& access) {
  uint32_t bits = 0;
  if (access.find('m') != std::string::npos) bits |= BPF_DEVCG_ACC_MKNOD;
  if (access.find('r') != std::string::npos) bits |= BPF_DEVCG_ACC_READ;
  if (access.find('w') != std::string::npos) bits |= BPF_DEVCG_ACC_WRITE;
  return bits;
}

constexpr bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn out{};
  out.code = code;
  out.dst_reg = dst & 0xf;
  out.src_reg = src & 0xf;
  out.off = off;
  out.imm = imm;
  return out;
}

constexpr bpf_insn load_u32(uint8_t dst, int16_t offset) {
  return insn(BPF_LDX | BPF_W | BPF_MEM, dst, BPF_REG_1, offset, 0);
}
constexpr bpf_insn return_imm(int32_t verdict) {
  return insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, verdict);
}
constexpr bpf_insn exit_insn() {
  return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}

// One exception: every check jumps past the block when it does not match; the block's end
// returns the exception's verdict.
std::vector<bpf_insn> rule_block(const DeviceRule& rule, bool verdict) {
  std::vector<bpf_insn> block;
  std::vector<size_t> jumps_to_next;
  auto jump_unless_equal = [&](uint8_t reg, int64_t value) {
    jumps_to_next.push_back(block.size());
    block.push_back(insn(BPF_JMP | BPF_JNE | BPF_K, reg, 0, 0, static_cast<int32_t>(value)));
  };
  if (rule.type != 'a')
    jump_unless_equal(BPF_REG_2, rule.type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK);
  if (rule.access != kFullAccess) {
    // Matches only when the requested access is a subset of the rule's: (r3 & bits) == r3.
    block.push_back(insn(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0));
    block.push_back(insn(BPF_ALU | BPF_AND | BPF_K, BPF_REG_1, 0, 0,
                         static_cast<int32_t>(access_bits(rule.access))));
    jumps_to_next.push_back(block.size());
    block.push_back(insn(BPF_JMP | BPF_JNE | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0));
  }
  if (rule.major) jump_unless_equal(BPF_REG_4, *rule.major);
  if (rule.minor) jump_unless_equal(BPF_REG_5, *rule.minor);
  block.push_back(return_imm(verdict ? 1 : 0));
  block.push_back(exit_insn());
  for (size_t at : jumps_to_next) block[at].off = static_cast<int16_t>(block.size() - at - 1);
  return block;
}

long bpf(int cmd, bpf_attr& attr) {
  return ::syscall(SYS_bpf, cmd, &attr, sizeof attr);
}

}  // namespace

const std::vector<spec::DeviceCgroupRule>& default_allowed_devices() {
  static const std::vector<spec::DeviceCgroupRule> rules = {
      {true, "c", std::nullopt, std::nullopt, "m"},
      {true, "b", std::nullopt, std::nullopt, "m"},
      {true, "c", 1, 3, "rwm"},               // /dev/null
      {true, "c", 1, 8, "rwm"},               // /dev/random
      {true, "c", 1, 7, "rwm"},               // /dev/full
      {true, "c", 5, 0, "rwm"},               // /dev/tty
      {true, "c", 1, 5, "rwm"},               // /dev/zero
      {true, "c", 1, 9, "rwm"},               // /dev/urandom
      {true, "c", 5, 1, "rwm"},               // /dev/console
      {true, "c", 136, std::nullopt, "rwm"},  // /dev/pts/*
      {true, "c", 5, 2, "rwm"},               // /dev/ptmx
  };
  return rules;
}

DeviceRuleSet reduce_device_rules(const std::vector<spec::DeviceCgroupRule>& rules) {
  DeviceRuleSet set;
  auto apply = [&](const spec::DeviceCgroupRule& spec_rule, size_t index) {
    DeviceRule rule = to_rule(spec_rule, index);
    if (is_reset(rule)) {
      set.default_allow = spec_rule.allow;
      set.exceptions.clear();
      return;
    }
    auto& list = set.exceptions;
    if (spec_rule.allow != set.default_allow) {
      if (std::find(list.begin(), list.end(), rule) == list.end()) list.push_back(rule);
    } else {
      // A rule agreeing with the default takes back an exception it names exactly (the kernel
      // also narrows partially overlapping ones; runc's emulator refuses those instead).
      list.erase(std::remove(list.begin(), list.end(), rule), list.end());
    }
  };
  for (size_t i = 0; i < rules.size(); ++i) apply(rules[i], i);
  for (const auto& rule : default_allowed_devices()) apply(rule, 0);
  return set;
}

std::string v1_rule_text(const DeviceRule& rule) {
  auto number = [](const std::optional<int64_t>& n) { return n ? std::to_string(*n) : "*"; };
  return std::string(1, rule.type) + " " + number(rule.major) + ":" + number(rule.minor) + " " +
         rule.access;
}

std::vector<std::pair<std::string, std::string>> v1_device_writes(const DeviceRuleSet& set) {
  std::string reset_file = set.default_allow ? "devices.allow" : "devices.deny";
  std::string exception_file = set.default_allow ? "devices.deny" : "devices.allow";
  std::vector<std::pair<std::string, std::string>> writes = {{reset_file, "a"}};
  for (const auto& rule : set.exceptions) writes.emplace_back(exception_file, v1_rule_text(rule));
  return writes;
}

std::vector<bpf_insn> device_filter_program(const DeviceRuleSet& set) {
  // struct bpf_cgroup_dev_ctx { u32 access_type /* access << 16 | type */; u32 major, minor; }
  std::vector<bpf_insn> program = {
      load_u32(BPF_REG_2, 0),
      insn(BPF_ALU | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff),  // r2 = type
      load_u32(BPF_REG_3, 0),
      insn(BPF_ALU | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16),  // r3 = access
      load_u32(BPF_REG_4, 4),                                // r4 = major
      load_u32(BPF_REG_5, 8),                                // r5 = minor
  };
  for (const auto& rule : set.exceptions) {
    auto block = rule_block(rule, !set.default_allow);
    program.insert(program.end(), block.begin(), block.end());
  }
  program.push_back(return_imm(set.default_allow ? 1 : 0));
  program.push_back(exit_insn());
  return program;
}

void attach_device_filter(const std::string& cgroup_dir, const std::vector<bpf_insn>& program) {
  const std::string field = "linux.resources.devices: ";
  static const char kLicense[] = "Apache";
  std::string log(16384, '\0');
  bpf_attr load{};
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = reinterpret_cast<uintptr_t>(program.data());
  load.insn_cnt = static_cast<uint32_t>(program.size());
  load.license = reinterpret_cast<uintptr_t>(kLicense);
  load.log_buf = reinterpret_cast<uintptr_t>(log.data());
  load.log_size = static_cast<uint32_t>(log.size());
  load.log_level = 1;
  UniqueFd prog(static_cast<int>(bpf(BPF_PROG_LOAD, load)));
  if (!prog) {
    int err = errno;
    log.resize(std::strlen(log.c_str()));
    throw_errno(field + "load the cgroup device BPF program" +
                    (log.empty() ? std::string() : " (verifier: " + log + ")"),
                err);
  }
  UniqueFd dir(::open(cgroup_dir.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  if (!dir) throw_errno(field + "open " + cgroup_dir);
  bpf_attr attach{};
  attach.target_fd = static_cast<uint32_t>(dir.get());
  attach.attach_bpf_fd = static_cast<uint32_t>(prog.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  if (bpf(BPF_PROG_ATTACH, attach) != 0)
    throw_errno(field + "attach the device BPF program to " + cgroup_dir);
}

}  // namespace barge::cgroups::detail

// Internal: linux.resources.devices. The rule list is first reduced the way the v1 devices
// controller reads it (a full "a *:* rwm" rule resets the default and the exception list; other
// rules add or remove exceptions), then written to devices.deny/devices.allow (v1) or compiled to
// a BPF_PROG_TYPE_CGROUP_DEVICE program (v2). Pure parts are unit-tested.
#pragma once

#include <linux/bpf.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/spec.hpp"

namespace barge::cgroups::detail {

struct DeviceRule {
  char type = 'a';                      // a c b
  std::optional<int64_t> major, minor;  // nullopt: any
  std::string access = "rwm";
  bool operator==(const DeviceRule&) const = default;
};

struct DeviceRuleSet {
  bool default_allow = false;
  std::vector<DeviceRule> exceptions;  // each flips the default for what it matches
};

// runc's AllowedDevices: mknod of any node, and the devices every container gets.
const std::vector<spec::DeviceCgroupRule>& default_allowed_devices();
// Reduces rules (spec order, then the defaults) to a default and exceptions. Throws naming
// linux.resources.devices[i] on a bad type or access.
DeviceRuleSet reduce_device_rules(const std::vector<spec::DeviceCgroupRule>& rules);
// "c 1:3 rwm", "a *:* rwm".
std::string v1_rule_text(const DeviceRule& rule);
// The (file, value) writes that give a fresh v1 devices cgroup this rule set.
std::vector<std::pair<std::string, std::string>> v1_device_writes(const DeviceRuleSet& set);
// The cgroup-device BPF program enforcing the rule set.
std::vector<bpf_insn> device_filter_program(const DeviceRuleSet& set);

// Loads program and attaches it to the cgroup2 directory (BPF_F_ALLOW_MULTI).
void attach_device_filter(const std::string& cgroup_dir, const std::vector<bpf_insn>& program);

}  // namespace barge::cgroups::detail

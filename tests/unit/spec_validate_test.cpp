#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "common/error.hpp"
#include "runtime/spec.hpp"

namespace spec = barge::spec;
using json = nlohmann::json;

namespace {

// A small config that passes validation; each test breaks exactly one thing.
json valid_config() {
  return json::parse(R"({
    "ociVersion": "1.2.0",
    "root": {"path": "rootfs"},
    "hostname": "box",
    "process": {
      "args": ["sh"],
      "cwd": "/",
      "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}]
    },
    "mounts": [
      {"destination": "/proc", "type": "proc", "source": "proc"},
      {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
      {"destination": "/sys", "type": "sysfs", "source": "sysfs"},
      {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}
    ],
    "linux": {
      "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]
    }
  })");
}

// The validation error after mutate(config), or "(valid)".
std::string validation_error(const std::function<void(json&)>& mutate) {
  json config = valid_config();
  mutate(config);
  spec::Spec parsed = spec::parse(config.dump());
  try {
    spec::validate(parsed);
  } catch (const barge::Error& e) {
    return e.what();
  }
  return "(valid)";
}

json& linux_of(json& c) {
  return c["linux"];
}

void add_user_namespace_with_mappings(json& c) {
  c["linux"]["namespaces"].push_back({{"type", "user"}});
  c["linux"]["uidMappings"] = json::parse(R"([{"containerID":0,"hostID":1000,"size":1}])");
  c["linux"]["gidMappings"] = json::parse(R"([{"containerID":0,"hostID":1000,"size":1}])");
}

json seccomp_allowing(const std::string& action) {
  return {{"defaultAction", "SCMP_ACT_ALLOW"},
          {"syscalls", {{{"names", {"mkdir"}}, {"action", action}}}}};
}

}  // namespace

TEST(SpecValidate, BaseConfigIsValid) {
  EXPECT_EQ(validation_error([](json&) {}), "(valid)");
}

TEST(SpecValidate, OciVersionMissingEmptyOrNot1x) {
  EXPECT_EQ(validation_error([](json& c) { c.erase("ociVersion"); }), "ociVersion: required");
  EXPECT_EQ(validation_error([](json& c) { c["ociVersion"] = ""; }), "ociVersion: required");
  EXPECT_EQ(validation_error([](json& c) { c["ociVersion"] = "2.0.0"; }),
            "ociVersion: unsupported version \"2.0.0\", want 1.x");
  EXPECT_EQ(validation_error([](json& c) { c["ociVersion"] = "1.0.2-dev"; }), "(valid)");
}

TEST(SpecValidate, RootPathRequired) {
  EXPECT_EQ(validation_error([](json& c) { c.erase("root"); }), "root.path: required");
  EXPECT_EQ(validation_error([](json& c) { c["root"]["path"] = ""; }), "root.path: required");
}

TEST(SpecValidate, ProcessRequired) {
  EXPECT_EQ(validation_error([](json& c) { c.erase("process"); }), "process: required");
}

TEST(SpecValidate, ProcessArgsNonEmpty) {
  EXPECT_EQ(validation_error([](json& c) { c["process"]["args"] = json::array(); }),
            "process.args: must not be empty");
  EXPECT_EQ(validation_error([](json& c) { c["process"].erase("args"); }),
            "process.args: must not be empty");
}

TEST(SpecValidate, ProcessCwdAbsolute) {
  EXPECT_EQ(validation_error([](json& c) { c["process"]["cwd"] = "work"; }),
            "process.cwd: must be an absolute path, got \"work\"");
  EXPECT_EQ(validation_error([](json& c) { c["process"].erase("cwd"); }), "process.cwd: required");
}

TEST(SpecValidate, MountDestinationAbsolute) {
  EXPECT_EQ(validation_error([](json& c) { c["mounts"][3]["destination"] = "tmp"; }),
            "mounts[3].destination: must be an absolute path, got \"tmp\"");
  EXPECT_EQ(validation_error([](json& c) { c["mounts"][0].erase("destination"); }),
            "mounts[0].destination: must be an absolute path, got \"\"");
}

TEST(SpecValidate, IdmappedMountNeedsBothMappings) {
  EXPECT_EQ(validation_error([](json& c) {
              c["mounts"][1]["uidMappings"] =
                  json::parse(R"([{"containerID":0,"hostID":1000,"size":1}])");
            }),
            "mounts[1].gidMappings: idmapped mounts need both uidMappings and gidMappings");
}

TEST(SpecValidate, UnknownNamespace) {
  EXPECT_EQ(validation_error([](json& c) { linux_of(c)["namespaces"][2]["type"] = "foo"; }),
            "linux.namespaces[2].type: unknown namespace \"foo\"");
}

TEST(SpecValidate, DuplicateNamespace) {
  EXPECT_EQ(validation_error([](json& c) {
              linux_of(c)["namespaces"].push_back({{"type", "pid"}});
            }),
            "linux.namespaces[4].type: duplicate namespace \"pid\"");
}

TEST(SpecValidate, NamespacePathAbsolute) {
  EXPECT_EQ(validation_error([](json& c) { linux_of(c)["namespaces"][1]["path"] = "ns/mnt"; }),
            "linux.namespaces[1].path: must be an absolute path, got \"ns/mnt\"");
  EXPECT_EQ(
      validation_error([](json& c) { linux_of(c)["namespaces"][1]["path"] = "/proc/1/ns/mnt"; }),
      "(valid)");
}

TEST(SpecValidate, DeviceTypeKnown) {
  EXPECT_EQ(validation_error([](json& c) {
              linux_of(c)["devices"] = json::parse(R"([{"type":"x","path":"/dev/x"}])");
            }),
            "linux.devices[0].type: must be one of c, b, u, p, got \"x\"");
}

TEST(SpecValidate, DevicePathAbsolute) {
  EXPECT_EQ(validation_error([](json& c) {
              linux_of(c)["devices"] =
                  json::parse(R"([{"type":"c","path":"/dev/a"},{"type":"p","path":"dev/b"}])");
            }),
            "linux.devices[1].path: must be an absolute path, got \"dev/b\"");
}

TEST(SpecValidate, RlimitTypeKnown) {
  EXPECT_EQ(validation_error([](json& c) { c["process"]["rlimits"][0]["type"] = "RLIMIT_FOO"; }),
            "process.rlimits[0].type: unknown rlimit \"RLIMIT_FOO\"");
}

TEST(SpecValidate, RlimitDuplicate) {
  EXPECT_EQ(validation_error(
                [](json& c) { c["process"]["rlimits"].push_back(c["process"]["rlimits"][0]); }),
            "process.rlimits[1].type: duplicate rlimit \"RLIMIT_NOFILE\"");
}

TEST(SpecValidate, RlimitSoftAboveHard) {
  EXPECT_EQ(validation_error([](json& c) { c["process"]["rlimits"][0]["soft"] = 2048; }),
            "process.rlimits[0]: soft limit 2048 exceeds hard limit 1024");
}

TEST(SpecValidate, RootfsPropagationKnown) {
  EXPECT_EQ(validation_error([](json& c) { linux_of(c)["rootfsPropagation"] = "weird"; }),
            "linux.rootfsPropagation: unknown propagation \"weird\"");
  for (const char* mode : {"", "shared", "slave", "private", "unbindable", "rshared", "rslave",
                           "rprivate", "runbindable"})
    EXPECT_EQ(validation_error([&](json& c) { linux_of(c)["rootfsPropagation"] = mode; }),
              "(valid)")
        << mode;
}

TEST(SpecValidate, MappingsWithoutUserNamespace) {
  EXPECT_EQ(validation_error([](json& c) {
              linux_of(c)["uidMappings"] =
                  json::parse(R"([{"containerID":0,"hostID":1000,"size":1}])");
            }),
            "linux.uidMappings: requires a user namespace");
  EXPECT_EQ(validation_error([](json& c) {
              linux_of(c)["gidMappings"] =
                  json::parse(R"([{"containerID":0,"hostID":1000,"size":1}])");
            }),
            "linux.gidMappings: requires a user namespace");
}

TEST(SpecValidate, NewUserNamespaceNeedsMappings) {
  EXPECT_EQ(validation_error([](json& c) {
              linux_of(c)["namespaces"].push_back({{"type", "user"}});
            }),
            "linux.uidMappings: required with a new user namespace");
  EXPECT_EQ(validation_error([](json& c) {
              add_user_namespace_with_mappings(c);
              linux_of(c).erase("gidMappings");
            }),
            "linux.gidMappings: required with a new user namespace");
  EXPECT_EQ(validation_error(add_user_namespace_with_mappings), "(valid)");
}

TEST(SpecValidate, JoinedUserNamespaceNeedsNoMappings) {
  EXPECT_EQ(validation_error([](json& c) {
              linux_of(c)["namespaces"].push_back({{"type", "user"}, {"path", "/proc/1/ns/user"}});
            }),
            "(valid)");
}

TEST(SpecValidate, MappingSizePositive) {
  EXPECT_EQ(validation_error([](json& c) {
              add_user_namespace_with_mappings(c);
              linux_of(c)["uidMappings"][0]["size"] = 0;
            }),
            "linux.uidMappings[0].size: must be positive");
}

TEST(SpecValidate, TimeOffsetsNeedTimeNamespace) {
  auto set_offsets = [](json& c) {
    linux_of(c)["timeOffsets"] = json::parse(R"({"monotonic":{"secs":1,"nanosecs":0}})");
  };
  EXPECT_EQ(validation_error(set_offsets), "linux.timeOffsets: requires a time namespace");
  EXPECT_EQ(validation_error([&](json& c) {
              set_offsets(c);
              linux_of(c)["namespaces"].push_back({{"type", "time"}});
            }),
            "(valid)");
  EXPECT_EQ(validation_error([&](json& c) {
              set_offsets(c);
              linux_of(c)["namespaces"].push_back({{"type", "time"}, {"path", "/proc/1/ns/time"}});
            }),
            "linux.timeOffsets: cannot be set when joining an existing time namespace");
}

TEST(SpecValidate, TimeOffsetsClockKnown) {
  EXPECT_EQ(validation_error([](json& c) {
              linux_of(c)["namespaces"].push_back({{"type", "time"}});
              linux_of(c)["timeOffsets"] = json::parse(R"({"realtime":{"secs":1}})");
            }),
            "linux.timeOffsets.realtime: unknown clock \"realtime\"");
}

TEST(SpecValidate, SysctlKeyNonEmpty) {
  EXPECT_EQ(validation_error([](json& c) {
              linux_of(c)["sysctl"] = {{"", "1"}};
            }),
            "linux.sysctl: key must not be empty");
}

TEST(SpecValidate, HostnameNeedsUtsNamespace) {
  auto drop_uts = [](json& c) { linux_of(c)["namespaces"].erase(3); };
  EXPECT_EQ(validation_error(drop_uts),
            "hostname: unable to set hostname without a private UTS namespace");
  EXPECT_EQ(validation_error([&](json& c) {
              drop_uts(c);
              c.erase("hostname");
              c["domainname"] = "example.org";
            }),
            "domainname: unable to set domainname without a private UTS namespace");
  EXPECT_EQ(validation_error([&](json& c) {
              drop_uts(c);
              c.erase("hostname");
            }),
            "(valid)");
}

TEST(SpecValidate, HostnameWithoutLinuxSection) {
  EXPECT_EQ(validation_error([](json& c) { c.erase("linux"); }),
            "hostname: unable to set hostname without a private UTS namespace");
}

TEST(SpecValidate, CgroupsPathNoDotDot) {
  EXPECT_EQ(validation_error([](json& c) { linux_of(c)["cgroupsPath"] = "/a/../../etc"; }),
            "linux.cgroupsPath: must not contain \"..\" components");
  EXPECT_EQ(validation_error([](json& c) { linux_of(c)["cgroupsPath"] = ".."; }),
            "linux.cgroupsPath: must not contain \"..\" components");
  EXPECT_EQ(validation_error([](json& c) { linux_of(c)["cgroupsPath"] = "/a/..b/c..d"; }),
            "(valid)");
  EXPECT_EQ(validation_error([](json& c) { linux_of(c)["cgroupsPath"] = "system.slice:barge:x"; }),
            "(valid)");
}

TEST(SpecValidate, SeccompDefaultActionKnown) {
  EXPECT_EQ(validation_error([](json& c) {
              linux_of(c)["seccomp"] = {{"defaultAction", "SCMP_ACT_EXPLODE"}};
            }),
            "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_EXPLODE\"");
  EXPECT_EQ(validation_error([](json& c) { linux_of(c)["seccomp"] = json::object(); }),
            "linux.seccomp.defaultAction: required");
}

TEST(SpecValidate, SeccompAllKnownActionsAccepted) {
  for (const char* action :
       {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG"})
    EXPECT_EQ(validation_error([&](json& c) { linux_of(c)["seccomp"] = seccomp_allowing(action); }),
              "(valid)")
        << action;
}

TEST(SpecValidate, SeccompSyscallActionKnown) {
  EXPECT_EQ(validation_error(
                [](json& c) { linux_of(c)["seccomp"] = seccomp_allowing("SCMP_ACT_MAYBE"); }),
            "linux.seccomp.syscalls[0].action: unknown action \"SCMP_ACT_MAYBE\"");
}

TEST(SpecValidate, SeccompSyscallNamesNonEmpty) {
  EXPECT_EQ(validation_error([](json& c) {
              linux_of(c)["seccomp"] = seccomp_allowing("SCMP_ACT_ALLOW");
              linux_of(c)["seccomp"]["syscalls"][0]["names"] = json::array();
            }),
            "linux.seccomp.syscalls[0].names: must not be empty");
}

TEST(SpecValidate, SeccompOperatorKnown) {
  auto with_op = [](const std::string& op) {
    return [op](json& c) {
      linux_of(c)["seccomp"] = seccomp_allowing("SCMP_ACT_ERRNO");
      linux_of(c)["seccomp"]["syscalls"][0]["args"] = {
          {{"index", 0}, {"value", 1}, {"op", "SCMP_CMP_EQ"}},
          {{"index", 1}, {"value", 1}, {"op", op}}};
    };
  };
  EXPECT_EQ(validation_error(with_op("SCMP_CMP_FOO")),
            "linux.seccomp.syscalls[0].args[1].op: unknown operator \"SCMP_CMP_FOO\"");
  for (const char* op : {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
                         "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"})
    EXPECT_EQ(validation_error(with_op(op)), "(valid)") << op;
}

TEST(SpecValidate, SeccompNotifyNeedsListenerAndIsNotDefault) {
  EXPECT_EQ(validation_error(
                [](json& c) { linux_of(c)["seccomp"] = seccomp_allowing("SCMP_ACT_NOTIFY"); }),
            "linux.seccomp.listenerPath: required with SCMP_ACT_NOTIFY");
  EXPECT_EQ(validation_error([](json& c) {
              linux_of(c)["seccomp"] = seccomp_allowing("SCMP_ACT_NOTIFY");
              linux_of(c)["seccomp"]["listenerPath"] = "/run/agent.sock";
            }),
            "(valid)");
  EXPECT_EQ(validation_error([](json& c) {
              linux_of(c)["seccomp"] = {{"defaultAction", "SCMP_ACT_NOTIFY"},
                                        {"listenerPath", "/run/agent.sock"}};
            }),
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action");
}

TEST(SpecValidate, SeccompArchitectureAndFlagKnown) {
  EXPECT_EQ(validation_error([](json& c) {
              linux_of(c)["seccomp"] = seccomp_allowing("SCMP_ACT_ALLOW");
              linux_of(c)["seccomp"]["architectures"] = {"SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"};
            }),
            "linux.seccomp.architectures[1]: unknown architecture \"SCMP_ARCH_Z80\"");
  EXPECT_EQ(validation_error([](json& c) {
              linux_of(c)["seccomp"] = seccomp_allowing("SCMP_ACT_ALLOW");
              linux_of(c)["seccomp"]["flags"] = {"SECCOMP_FILTER_FLAG_BOGUS"};
            }),
            "linux.seccomp.flags[0]: unknown flag \"SECCOMP_FILTER_FLAG_BOGUS\"");
}

TEST(SpecValidate, HookPathAbsolute) {
  EXPECT_EQ(validation_error([](json& c) {
              c["hooks"] = {{"createRuntime", {{{"path", "/bin/a"}}, {{"path", "hook.sh"}}}}};
            }),
            "hooks.createRuntime[1].path: must be an absolute path, got \"hook.sh\"");
}

TEST(SpecValidate, HookTimeoutPositive) {
  EXPECT_EQ(validation_error([](json& c) {
              c["hooks"] = {{"poststop", {{{"path", "/bin/a"}, {"timeout", 0}}}}};
            }),
            "hooks.poststop[0].timeout: must be positive, got 0");
  EXPECT_EQ(validation_error([](json& c) {
              c["hooks"] = {{"prestart", {{{"path", "/bin/a"}, {"timeout", -3}}}}};
            }),
            "hooks.prestart[0].timeout: must be positive, got -3");
}

TEST(SpecValidate, CapabilityNamesWellFormed) {
  EXPECT_EQ(validation_error([](json& c) {
              c["process"]["capabilities"] = {{"bounding", {"CAP_KILL", "KILL"}}};
            }),
            "process.capabilities.bounding[1]: invalid capability \"KILL\"");
}

TEST(SpecValidate, OomScoreAdjRange) {
  EXPECT_EQ(validation_error([](json& c) { c["process"]["oomScoreAdj"] = 1001; }),
            "process.oomScoreAdj: must be between -1000 and 1000");
}

TEST(SpecValidate, SchedulerAndIoPriority) {
  EXPECT_EQ(validation_error([](json& c) {
              c["process"]["scheduler"] = {{"policy", "SCHED_X"}};
            }),
            "process.scheduler.policy: unknown policy \"SCHED_X\"");
  EXPECT_EQ(validation_error([](json& c) {
              c["process"]["scheduler"] = {{"policy", "SCHED_OTHER"}, {"nice", 20}};
            }),
            "process.scheduler.nice: must be between -20 and 19");
  EXPECT_EQ(validation_error([](json& c) {
              c["process"]["ioPriority"] = {{"class", "IOPRIO_CLASS_NONE"}};
            }),
            "process.ioPriority.class: unknown class \"IOPRIO_CLASS_NONE\"");
  EXPECT_EQ(validation_error([](json& c) {
              c["process"]["ioPriority"] = {{"class", "IOPRIO_CLASS_RT"}, {"priority", 8}};
            }),
            "process.ioPriority.priority: must be between 0 and 7");
}

TEST(SpecValidate, DeviceCgroupRules) {
  EXPECT_EQ(validation_error([](json& c) {
              linux_of(c)["resources"] =
                  json::parse(R"({"devices":[{"allow":true,"type":"z","access":"r"}]})");
            }),
            "linux.resources.devices[0].type: must be one of a, c, b, got \"z\"");
  EXPECT_EQ(validation_error([](json& c) {
              linux_of(c)["resources"] =
                  json::parse(R"({"devices":[{"allow":true,"type":"c","access":"rwx"}]})");
            }),
            "linux.resources.devices[0].access: must be a combination of r, w, m, got \"rwx\"");
}

TEST(SpecValidate, MemorySwapBelowLimit) {
  EXPECT_EQ(validation_error([](json& c) {
              linux_of(c)["resources"] = {{"memory", {{"limit", 200}, {"swap", 100}}}};
            }),
            "linux.resources.memory.swap: must not be below the memory limit");
  EXPECT_EQ(validation_error([](json& c) {
              linux_of(c)["resources"] = {{"memory", {{"limit", 200}, {"swap", -1}}}};
            }),
            "(valid)");
}

TEST(SpecValidate, MaskedAndReadonlyPathsAbsolute) {
  EXPECT_EQ(validation_error([](json& c) {
              linux_of(c)["maskedPaths"] = {"/proc/kcore", "proc"};
            }),
            "linux.maskedPaths[1]: must be an absolute path, got \"proc\"");
  EXPECT_EQ(validation_error([](json& c) { linux_of(c)["readonlyPaths"] = {"sys"}; }),
            "linux.readonlyPaths[0]: must be an absolute path, got \"sys\"");
}

TEST(SpecValidate, PersonalityDomainKnown) {
  EXPECT_EQ(validation_error([](json& c) {
              linux_of(c)["personality"] = {{"domain", "BSD"}};
            }),
            "linux.personality.domain: unknown domain \"BSD\"");
}

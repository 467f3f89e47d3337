#include <gtest/gtest.h>

#include <string>

#include "common/error.hpp"
#include "common/file.hpp"
#include "runtime/spec.hpp"

namespace spec = barge::spec;

namespace {

const std::string kFullBundle = std::string(BARGE_TEST_DATA) + "/spec/full";

std::string parse_error(const std::string& text) {
  try {
    spec::parse(text);
  } catch (const barge::Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Wraps a process object in an otherwise minimal document.
std::string with_process(const std::string& process_json) {
  return R"({"ociVersion":"1.2.0","root":{"path":"rootfs"},"process":)" + process_json + "}";
}

std::string with_linux(const std::string& linux_json) {
  return R"({"ociVersion":"1.2.0","root":{"path":"rootfs"},"linux":)" + linux_json + "}";
}

}  // namespace

TEST(SpecParse, FullConfigTopLevel) {
  spec::Spec s = spec::load_bundle_config(kFullBundle);
  EXPECT_EQ(s.oci_version, "1.2.0");
  EXPECT_EQ(s.root.path, "rootfs");
  EXPECT_TRUE(s.root.readonly);
  EXPECT_EQ(s.hostname, "box");
  EXPECT_EQ(s.domainname, "example.org");
  ASSERT_EQ(s.annotations.size(), 2u);
  EXPECT_EQ(s.annotations.at("org.example.key"), "value");
  EXPECT_EQ(s.annotations.at("com.example.other"), "");
  EXPECT_NO_THROW(spec::validate(s));
}

TEST(SpecParse, FullConfigProcess) {
  spec::Spec s = spec::load_bundle_config(kFullBundle);
  ASSERT_TRUE(s.process);
  const spec::Process& p = *s.process;
  EXPECT_TRUE(p.terminal);
  ASSERT_TRUE(p.console_size);
  EXPECT_EQ(p.console_size->height, 25u);
  EXPECT_EQ(p.console_size->width, 80u);
  EXPECT_EQ(p.user.uid, 1000u);
  EXPECT_EQ(p.user.gid, 1001u);
  EXPECT_EQ(p.user.umask, 18u);
  EXPECT_EQ(p.user.additional_gids, (std::vector<uint32_t>{5, 6}));
  EXPECT_EQ(p.user.username, "ignored-on-linux");
  EXPECT_EQ(p.args, (std::vector<std::string>{"/bin/sh", "-c", "echo hi"}));
  EXPECT_EQ(p.env, (std::vector<std::string>{"PATH=/usr/bin:/bin", "TERM=xterm"}));
  EXPECT_EQ(p.cwd, "/work");
  ASSERT_TRUE(p.capabilities);
  EXPECT_EQ(p.capabilities->bounding->size(), 3u);
  EXPECT_EQ(*p.capabilities->effective, std::vector<std::string>{"CAP_KILL"});
  ASSERT_TRUE(p.capabilities->inheritable);  // present but empty is distinct from absent
  EXPECT_TRUE(p.capabilities->inheritable->empty());
  EXPECT_EQ(p.capabilities->permitted->size(), 2u);
  EXPECT_EQ(*p.capabilities->ambient, std::vector<std::string>{"CAP_NET_BIND_SERVICE"});
  ASSERT_EQ(p.rlimits.size(), 2u);
  EXPECT_EQ(p.rlimits[0].type, "RLIMIT_NOFILE");
  EXPECT_EQ(p.rlimits[0].soft, 1024u);
  EXPECT_EQ(p.rlimits[0].hard, 4096u);
  EXPECT_EQ(p.rlimits[1].hard, UINT64_MAX);
  EXPECT_TRUE(p.no_new_privileges);
  EXPECT_EQ(p.apparmor_profile, "barge-default");
  EXPECT_EQ(p.oom_score_adj, -500);
  ASSERT_TRUE(p.scheduler);
  EXPECT_EQ(p.scheduler->policy, "SCHED_DEADLINE");
  EXPECT_EQ(p.scheduler->nice, -5);
  EXPECT_EQ(p.scheduler->flags, std::vector<std::string>{"SCHED_FLAG_RESET_ON_FORK"});
  EXPECT_EQ(p.scheduler->runtime, 10000000u);
  EXPECT_EQ(p.scheduler->deadline, 20000000u);
  EXPECT_EQ(p.scheduler->period, 30000000u);
  EXPECT_EQ(p.selinux_label, "system_u:system_r:container_t:s0:c1,c2");
  ASSERT_TRUE(p.io_priority);
  EXPECT_EQ(p.io_priority->io_class, "IOPRIO_CLASS_BE");
  EXPECT_EQ(p.io_priority->priority, 4);
  ASSERT_TRUE(p.exec_cpu_affinity);
  EXPECT_EQ(p.exec_cpu_affinity->initial, "0");
  EXPECT_EQ(p.exec_cpu_affinity->final_, "0-1");
}

TEST(SpecParse, FullConfigMountsAndHooks) {
  spec::Spec s = spec::load_bundle_config(kFullBundle);
  ASSERT_EQ(s.mounts.size(), 2u);
  EXPECT_EQ(s.mounts[0].destination, "/proc");
  EXPECT_TRUE(s.mounts[0].options.empty());
  const spec::Mount& bind = s.mounts[1];
  EXPECT_EQ(bind.type, "bind");
  EXPECT_EQ(bind.source, "/srv/data");
  EXPECT_EQ(bind.options, (std::vector<std::string>{"rbind", "ro"}));
  ASSERT_EQ(bind.uid_mappings.size(), 1u);
  EXPECT_EQ(bind.uid_mappings[0].host_id, 100000u);
  EXPECT_EQ(bind.uid_mappings[0].size, 65536u);
  ASSERT_EQ(bind.gid_mappings.size(), 1u);
  EXPECT_EQ(bind.gid_mappings[0].host_id, 200000u);

  ASSERT_TRUE(s.hooks);
  ASSERT_EQ(s.hooks->prestart.size(), 1u);
  EXPECT_EQ(s.hooks->prestart[0].path, "/usr/bin/prestart");
  EXPECT_EQ(s.hooks->prestart[0].args, (std::vector<std::string>{"prestart", "a"}));
  EXPECT_EQ(s.hooks->prestart[0].env, std::vector<std::string>{"X=1"});
  EXPECT_FALSE(s.hooks->prestart[0].timeout);
  EXPECT_EQ(s.hooks->create_runtime.at(0).timeout, 5);
  EXPECT_EQ(s.hooks->create_container.at(0).path, "/usr/bin/cc");
  EXPECT_EQ(s.hooks->start_container.at(0).path, "/usr/bin/sc");
  EXPECT_EQ(s.hooks->poststart.at(0).path, "/usr/bin/ps");
  EXPECT_EQ(s.hooks->poststop.at(0).timeout, 30);
}

TEST(SpecParse, FullConfigLinuxBasics) {
  spec::Spec s = spec::load_bundle_config(kFullBundle);
  ASSERT_TRUE(s.linux);
  const spec::Linux& l = *s.linux;
  ASSERT_EQ(l.namespaces.size(), 8u);
  EXPECT_EQ(l.namespaces[1].type, "network");
  EXPECT_EQ(l.namespaces[1].path, "/var/run/netns/blue");
  ASSERT_NE(l.find_namespace("time"), nullptr);
  EXPECT_EQ(l.find_namespace("bogus"), nullptr);
  ASSERT_EQ(l.uid_mappings.size(), 1u);
  EXPECT_EQ(l.uid_mappings[0].container_id, 0u);
  EXPECT_EQ(l.uid_mappings[0].host_id, 100000u);
  ASSERT_EQ(l.gid_mappings.size(), 2u);
  EXPECT_EQ(l.gid_mappings[1].container_id, 1000u);
  EXPECT_EQ(l.gid_mappings[1].size, 1u);
  ASSERT_EQ(l.time_offsets.size(), 2u);
  EXPECT_EQ(l.time_offsets.at("monotonic").secs, -86400);
  EXPECT_EQ(l.time_offsets.at("monotonic").nanosecs, 500u);
  EXPECT_EQ(l.time_offsets.at("boottime").secs, 3600);
  ASSERT_EQ(l.devices.size(), 2u);
  EXPECT_EQ(l.devices[0].path, "/dev/fuse");
  EXPECT_EQ(l.devices[0].type, "c");
  EXPECT_EQ(l.devices[0].major, 10);
  EXPECT_EQ(l.devices[0].minor, 229);
  EXPECT_EQ(l.devices[0].file_mode, 0666u);
  EXPECT_EQ(l.devices[0].uid, 0u);
  EXPECT_FALSE(l.devices[1].file_mode);
  EXPECT_FALSE(l.devices[1].gid);
  EXPECT_EQ(l.cgroups_path, "/barge/full");
  EXPECT_EQ(l.sysctl.at("net.ipv4.ip_forward"), "1");
  EXPECT_EQ(l.rootfs_propagation, "rslave");
  EXPECT_EQ(l.masked_paths, (std::vector<std::string>{"/proc/kcore", "/sys/firmware"}));
  EXPECT_EQ(l.readonly_paths.size(), 2u);
  EXPECT_EQ(l.mount_label, "system_u:object_r:container_file_t:s0:c1,c2");
  ASSERT_TRUE(l.personality);
  EXPECT_EQ(l.personality->domain, "LINUX32");
  ASSERT_TRUE(l.intel_rdt);
  EXPECT_EQ(l.intel_rdt->clos_id, "guaranteed");
  EXPECT_EQ(l.intel_rdt->l3_cache_schema, "L3:0=7f0");
  EXPECT_EQ(l.intel_rdt->mem_bw_schema, "MB:0=20");
  EXPECT_TRUE(l.intel_rdt->enable_cmt);
  EXPECT_TRUE(l.intel_rdt->enable_mbm);
  ASSERT_EQ(l.net_devices.size(), 2u);
  EXPECT_EQ(l.net_devices.at("eth1").name, "ctr0");
  EXPECT_EQ(l.net_devices.at("dummy0").name, "");
}

TEST(SpecParse, FullConfigResources) {
  spec::Spec s = spec::load_bundle_config(kFullBundle);
  ASSERT_TRUE(s.linux && s.linux->resources);
  const spec::Resources& r = *s.linux->resources;
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_FALSE(r.devices[0].allow);
  EXPECT_EQ(r.devices[0].type, "");
  EXPECT_FALSE(r.devices[0].major);
  EXPECT_EQ(r.devices[0].access, "rwm");
  EXPECT_TRUE(r.devices[1].allow);
  EXPECT_EQ(r.devices[1].major, 10);
  EXPECT_EQ(r.devices[1].minor, 229);

  ASSERT_TRUE(r.memory);
  EXPECT_EQ(r.memory->limit, 536870912);
  EXPECT_EQ(r.memory->reservation, 268435456);
  EXPECT_EQ(r.memory->swap, 1073741824);
  EXPECT_EQ(r.memory->kernel, -1);
  EXPECT_EQ(r.memory->kernel_tcp, 1048576);
  EXPECT_EQ(r.memory->swappiness, 60u);
  EXPECT_EQ(r.memory->disable_oom_killer, true);
  EXPECT_EQ(r.memory->use_hierarchy, false);
  EXPECT_EQ(r.memory->check_before_update, true);

  ASSERT_TRUE(r.cpu);
  EXPECT_EQ(r.cpu->shares, 1024u);
  EXPECT_EQ(r.cpu->quota, 50000);
  EXPECT_EQ(r.cpu->burst, 10000u);
  EXPECT_EQ(r.cpu->period, 100000u);
  EXPECT_EQ(r.cpu->realtime_runtime, 950000);
  EXPECT_EQ(r.cpu->realtime_period, 1000000u);
  EXPECT_EQ(r.cpu->cpus, "0-1");
  EXPECT_EQ(r.cpu->mems, "0");
  EXPECT_EQ(r.cpu->idle, 1);
  EXPECT_EQ(r.pids_limit, 128);

  ASSERT_TRUE(r.block_io);
  EXPECT_EQ(r.block_io->weight, 500);
  EXPECT_EQ(r.block_io->leaf_weight, 300);
  ASSERT_EQ(r.block_io->weight_device.size(), 1u);
  EXPECT_EQ(r.block_io->weight_device[0].major, 8);
  EXPECT_EQ(r.block_io->weight_device[0].weight, 600);
  EXPECT_EQ(r.block_io->weight_device[0].leaf_weight, 200);
  EXPECT_EQ(r.block_io->throttle_read_bps_device.at(0).rate, 104857600u);
  EXPECT_EQ(r.block_io->throttle_write_bps_device.at(0).minor, 16);
  EXPECT_EQ(r.block_io->throttle_read_iops_device.at(0).rate, 1000u);
  EXPECT_EQ(r.block_io->throttle_write_iops_device.at(0).rate, 500u);

  ASSERT_EQ(r.hugepage_limits.size(), 1u);
  EXPECT_EQ(r.hugepage_limits[0].page_size, "2MB");
  EXPECT_EQ(r.hugepage_limits[0].limit, 209715200u);
  ASSERT_TRUE(r.network);
  EXPECT_EQ(r.network->class_id, 1048577u);
  EXPECT_EQ(r.network->priorities.at(0).name, "eth0");
  EXPECT_EQ(r.network->priorities.at(0).priority, 500u);
  EXPECT_EQ(r.rdma.at("mlx5_1").hca_handles, 3u);
  EXPECT_EQ(r.rdma.at("mlx5_1").hca_objects, 10000u);
  EXPECT_EQ(r.unified.at("io.max"), "8:0 rbps=1048576");
  EXPECT_EQ(r.unified.size(), 2u);
}

TEST(SpecParse, FullConfigSeccomp) {
  spec::Spec s = spec::load_bundle_config(kFullBundle);
  ASSERT_TRUE(s.linux && s.linux->seccomp);
  const spec::Seccomp& sc = *s.linux->seccomp;
  EXPECT_EQ(sc.default_action, "SCMP_ACT_ERRNO");
  EXPECT_EQ(sc.default_errno_ret, 1u);
  EXPECT_EQ(sc.architectures, (std::vector<std::string>{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"}));
  EXPECT_EQ(sc.flags, std::vector<std::string>{"SECCOMP_FILTER_FLAG_LOG"});
  EXPECT_EQ(sc.listener_path, "/run/seccomp-agent.sock");
  EXPECT_EQ(sc.listener_metadata, "meta");
  ASSERT_EQ(sc.syscalls.size(), 4u);
  EXPECT_EQ(sc.syscalls[0].names, (std::vector<std::string>{"read", "write"}));
  EXPECT_EQ(sc.syscalls[0].action, "SCMP_ACT_ALLOW");
  EXPECT_FALSE(sc.syscalls[0].errno_ret);
  ASSERT_EQ(sc.syscalls[1].args.size(), 2u);
  EXPECT_EQ(sc.syscalls[1].args[0].value, 4294967295u);
  EXPECT_EQ(sc.syscalls[1].args[0].op, "SCMP_CMP_EQ");
  EXPECT_EQ(sc.syscalls[1].args[1].index, 1u);
  EXPECT_EQ(sc.syscalls[1].args[1].value, 255u);
  EXPECT_EQ(sc.syscalls[1].args[1].value_two, 8u);
  EXPECT_EQ(sc.syscalls[1].args[1].op, "SCMP_CMP_MASKED_EQ");
  EXPECT_EQ(sc.syscalls[2].errno_ret, 38u);
  EXPECT_EQ(sc.syscalls[3].action, "SCMP_ACT_NOTIFY");
}

TEST(SpecParse, AbsentOptionalsStayEmpty) {
  spec::Spec s = spec::parse(R"({"ociVersion":"1.0.0","root":{"path":"r"}})");
  EXPECT_FALSE(s.process);
  EXPECT_FALSE(s.hooks);
  EXPECT_FALSE(s.linux);
  EXPECT_TRUE(s.mounts.empty());
  EXPECT_FALSE(s.root.readonly);
}

TEST(SpecParse, NullMeansAbsent) {
  spec::Spec s = spec::parse(R"({"ociVersion":"1.0.0","root":{"path":"r"},"hooks":null,
      "process":{"args":["x"],"cwd":"/","oomScoreAdj":null,"capabilities":null}})");
  EXPECT_FALSE(s.hooks);
  ASSERT_TRUE(s.process);
  EXPECT_FALSE(s.process->oom_score_adj);
  EXPECT_FALSE(s.process->capabilities);
}

TEST(SpecParse, UnknownFieldsIgnored) {
  spec::Spec s = spec::parse(R"({"ociVersion":"1.2.0","future":{"x":[1]},"root":{"path":"r",
      "extra":true},"process":{"args":["sh"],"cwd":"/","newThing":3,"user":{"uid":1,"sid":9}},
      "linux":{"memoryPolicy":{"mode":"MPOL_BIND"},"namespaces":[{"type":"pid","flags":1}]},
      "windows":{"layerFolders":[]},"solaris":{}})");
  EXPECT_EQ(s.root.path, "r");
  EXPECT_EQ(s.process->user.uid, 1u);
  EXPECT_EQ(s.linux->namespaces.at(0).type, "pid");
}

TEST(SpecParse, MalformedJsonReportsLineAndColumn) {
  std::string text = "{\n  \"ociVersion\": \"1.2.0\",\n  \"root\" {\"path\": \"r\"}\n}\n";
  std::string error = parse_error(text);
  EXPECT_TRUE(error.starts_with("config.json:3:10: ")) << error;
  EXPECT_NE(error.find("syntax error"), std::string::npos) << error;
  EXPECT_EQ(error.find("json.exception"), std::string::npos) << error;
}

TEST(SpecParse, MalformedJsonFirstLine) {
  EXPECT_TRUE(parse_error("{,}").starts_with("config.json:1:2: ")) << parse_error("{,}");
}

TEST(SpecParse, MalformedJsonTruncatedAndEmpty) {
  std::string truncated = parse_error("{\n \"a\": [1,\n");
  EXPECT_TRUE(truncated.starts_with("config.json:3:1: ")) << truncated;
  EXPECT_TRUE(parse_error("").starts_with("config.json:1:1: ")) << parse_error("");
}

TEST(SpecParse, MalformedJsonNamesSource) {
  try {
    spec::parse("{\"a\": tru}", "/b/config.json");
    FAIL();
  } catch (const barge::Error& e) {
    EXPECT_TRUE(std::string(e.what()).starts_with("/b/config.json:1:")) << e.what();
  }
}

// Found by tests/fuzz: nlohmann throws out_of_range (not parse_error) for numbers beyond a
// double, which escaped as "internal error".
TEST(SpecParse, NumberBeyondDoubleIsABargeError) {
  EXPECT_EQ(parse_error(with_process(R"({"oomScoreAdj": 1e400})")),
            "config.json: number overflow parsing '1e400'");
}

TEST(SpecParse, TopLevelMustBeObject) {
  EXPECT_EQ(parse_error("[1]"), "config: expected object, got array");
}

TEST(SpecParse, WrongTypeInArrayNamesIndex) {
  EXPECT_EQ(parse_error(with_process(R"({"args":["sh", 1],"cwd":"/"})")),
            "process.args[1]: expected string, got number");
}

TEST(SpecParse, WrongTypeForInteger) {
  EXPECT_EQ(parse_error(with_linux(R"({"resources":{"memory":{"limit":"1G"}}})")),
            "linux.resources.memory.limit: expected integer, got string");
}

TEST(SpecParse, FractionalNumberIsNotInteger) {
  EXPECT_EQ(parse_error(with_linux(R"({"resources":{"cpu":{"quota":1.5}}})")),
            "linux.resources.cpu.quota: expected integer, got non-integer number");
}

TEST(SpecParse, WrongTypeForBooleanObjectAndArray) {
  EXPECT_EQ(parse_error(with_process(R"({"terminal":"yes"})")),
            "process.terminal: expected boolean, got string");
  EXPECT_EQ(parse_error(R"({"root":"rootfs"})"), "root: expected object, got string");
  EXPECT_EQ(parse_error(R"({"mounts":{}})"), "mounts: expected array, got object");
  EXPECT_EQ(parse_error(with_linux(R"({"sysctl":{"a":1}})")),
            "linux.sysctl.a: expected string, got number");
}

TEST(SpecParse, WrongTypeDeepInSeccomp) {
  EXPECT_EQ(parse_error(with_linux(
                R"({"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],
          "action":"SCMP_ACT_ALLOW"},{"names":["b"],"action":"SCMP_ACT_ALLOW","args":[
          {"index":0,"value":"x","op":"SCMP_CMP_EQ"}]}]}})")),
            "linux.seccomp.syscalls[1].args[0].value: expected integer, got string");
}

TEST(SpecParse, NegativeUnsignedRejected) {
  EXPECT_EQ(parse_error(with_linux(R"({"uidMappings":[{"containerID":0,"hostID":-1,"size":1}]})")),
            "linux.uidMappings[0].hostID: must not be negative, got -1");
  EXPECT_EQ(
      parse_error(with_process(R"({"rlimits":[{"type":"RLIMIT_NOFILE","soft":-1,"hard":1}]})")),
      "process.rlimits[0].soft: must not be negative, got -1");
  EXPECT_EQ(parse_error(with_linux(R"({"resources":{"cpu":{"shares":-2}}})")),
            "linux.resources.cpu.shares: must not be negative, got -2");
}

TEST(SpecParse, OutOfRangeRejected) {
  EXPECT_EQ(parse_error(with_linux(R"({"resources":{"blockIO":{"weight":70000}}})")),
            "linux.resources.blockIO.weight: value 70000 out of range (0..65535)");
  EXPECT_EQ(parse_error(with_process(R"({"user":{"uid":4294967296}})")),
            "process.user.uid: value 4294967296 out of range (0..4294967295)");
  EXPECT_EQ(parse_error(with_process(R"({"oomScoreAdj":9999999999})")),
            "process.oomScoreAdj: value 9999999999 out of range (-2147483648..2147483647)");
}

TEST(SpecParse, NegativeSignedAccepted) {
  spec::Spec s = spec::parse(with_linux(R"({"resources":{"memory":{"limit":-1,"swap":-1},
      "cpu":{"quota":-1}},"devices":[{"type":"c","path":"/dev/x","major":-1,"minor":-1}]})"));
  EXPECT_EQ(s.linux->resources->memory->limit, -1);
  EXPECT_EQ(s.linux->resources->cpu->quota, -1);
  EXPECT_EQ(s.linux->devices.at(0).major, -1);
}

TEST(SpecParse, LoadBundleConfigMissingFileNamesPath) {
  try {
    spec::load_bundle_config("/nonexistent-barge-bundle");
    FAIL();
  } catch (const barge::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-barge-bundle/config.json"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file or directory"), std::string::npos)
        << e.what();
    EXPECT_EQ(e.code(), ENOENT);
  }
}

TEST(SpecParse, LoadBundleConfigTrailingSlash) {
  EXPECT_EQ(spec::load_bundle_config(kFullBundle + "/").hostname, "box");
}

// exec: a new process inside a running container, in all of its namespaces and its cgroup,
// with the config's process as the base and runc's flags on top.
#include <unistd.h>

#include <fstream>

#include "tests/integration/harness.hpp"

namespace barge::test {
namespace {

class Exec : public RuntimeTest {
 protected:
  // A running container whose init sleeps; returns its id and host pid.
  std::string start_sleeper(int* pid_out, const ConfigEdit& edit = {}) {
    std::string id = create_container({"sleep", "120"}, edit);
    ProcResult started = runtime({"start", id});
    EXPECT_EQ(started.status, 0) << started.describe();
    auto st = state(id);
    *pid_out = st ? (*st)["pid"].get<int>() : 0;
    return id;
  }
};

TEST_F(Exec, JoinsEveryNamespaceAndTheCgroupOfTheContainer) {
  int init_pid = 0;
  std::string id = start_sleeper(&init_pid);
  ASSERT_GT(init_pid, 0);
  ProcResult r = runtime({"exec", id, "sh", "-c",
                          "for ns in pid mnt net ipc uts cgroup; do readlink /proc/self/ns/$ns; "
                          "done; echo $$"});
  ASSERT_EQ(r.status, 0) << r.describe();
  auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 7u) << r.describe();
  const char* names[] = {"pid", "mnt", "net", "ipc", "uts", "cgroup"};
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(lines[i], ns_link(std::to_string(init_pid), names[i])) << names[i];
  EXPECT_NE(lines[6], "1");  // not the init, but in its pid namespace
  ProcResult detached =
      runtime({"exec", "--detach", "--pid-file", test_dir() + "/exec.pid", id, "sleep", "60"});
  ASSERT_EQ(detached.status, 0) << detached.describe();
  std::string exec_pid = trim(slurp(test_dir() + "/exec.pid"));
  ASSERT_FALSE(exec_pid.empty());
  EXPECT_TRUE(process_alive(std::stoi(exec_pid))) << "detached exec died with barge";
  std::string cgroups = slurp("/proc/" + exec_pid + "/cgroup");
  EXPECT_NE(cgroups.find(":memory:/" + cgroup_rel(id)), std::string::npos) << cgroups;
  for (const auto& line : split_lines(cgroups))  // every v1 hierarchy and the cgroup2 tree
    EXPECT_TRUE(line.ends_with(":/" + cgroup_rel(id))) << line;
  EXPECT_EQ(runtime({"delete", "--force", id}).status, 0);
  EXPECT_FALSE(process_alive(std::stoi(exec_pid)));
  EXPECT_NO_LEFTOVERS(id);
}

TEST_F(Exec, ExitCodeEnvCwdAndUserFollowTheFlags) {
  int pid = 0;
  std::string id = start_sleeper(&pid);
  ProcResult code = runtime({"exec", id, "sh", "-c", "exit 7"});
  EXPECT_EQ(code.status, 7) << code.describe();
  ProcResult r = runtime({"exec", "-e", "GREETING=hi", "--cwd", "/proc", "-u", "65534:65534", id,
                          "sh", "-c", "echo $GREETING; pwd; id -u; id -g"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(split_lines(r.out), (std::vector<std::string>{"hi", "/proc", "65534", "65534"}));
}

TEST_F(Exec, ProcessJsonReplacesTheCommandLine) {
  int pid = 0;
  std::string id = start_sleeper(&pid);
  std::string file = test_dir() + "/process.json";
  std::ofstream(file) << Json{{"args", {"sh", "-c", "echo from-json:$MARK; pwd"}},
                              {"env", {"PATH=/bin", "MARK=m1"}},
                              {"cwd", "/tmp"},
                              {"user", {{"uid", 0}, {"gid", 0}}}}
                             .dump();
  ProcResult r = runtime({"exec", "--process", file, id});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(split_lines(r.out), (std::vector<std::string>{"from-json:m1", "/tmp"}));
}

TEST_F(Exec, NoHostFdReachesTheExecdProcess) {
  int pid = 0;
  std::string id = start_sleeper(&pid);
  ProcResult r = runtime({"exec", id, "sh", "-c", "ls /proc/self/fd | tr '\\n' ' '"});
  ASSERT_EQ(r.status, 0) << r.describe();
  // 0 1 2, plus the fd ls itself holds on /proc/self/fd.
  EXPECT_EQ(trim(r.out), "0 1 2 3") << r.describe();
}

TEST_F(Exec, FailsClearlyForAMissingCommandOrAStoppedContainer) {
  int pid = 0;
  std::string id = start_sleeper(&pid);
  ProcResult missing = runtime({"exec", id, "no-such-command"});
  EXPECT_NE(missing.status, 0);
  if (testing_barge()) {
    EXPECT_NE(missing.err.find("no-such-command"), std::string::npos) << missing.err;
  }
  ASSERT_EQ(runtime({"kill", id, "KILL"}).status, 0);
  EXPECT_EQ(wait_for_status(id, "stopped"), "stopped");
  ProcResult stopped = runtime({"exec", id, "true"});
  EXPECT_NE(stopped.status, 0);
}

TEST_F(Exec, TheContainersSeccompFilterAppliesToExecdProcesses) {
  int pid = 0;
  std::string id = start_sleeper(&pid, [](Json& c) {
    c["mounts"].push_back({{"destination", "/tmp"}, {"type", "tmpfs"}, {"source", "tmpfs"}});
    c["linux"]["seccomp"] = {
        {"defaultAction", "SCMP_ACT_ALLOW"},
        {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
        {"syscalls",
         {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 42}}}}};
  });
  ProcResult r = runtime(
      {"exec", id, "sh", "-c", "mkdir /tmp/x || echo denied; grep Seccomp: /proc/self/status"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_NE(r.out.find("denied"), std::string::npos) << r.describe();
  EXPECT_NE(r.out.find("Seccomp:\t2"), std::string::npos) << r.describe();
}

}  // namespace
}  // namespace barge::test

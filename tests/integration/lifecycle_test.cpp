// The runc lifecycle contract: run/create/start/state/kill/delete/list/spec, exit codes and JSON.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "tests/integration/harness.hpp"

namespace barge::test {
namespace {

class Lifecycle : public RuntimeTest {};

void drop_namespace(Json& config, const std::string& type) {
  auto& ns = config["linux"]["namespaces"];
  ns.erase(std::remove_if(ns.begin(), ns.end(), [&](const Json& n) { return n["type"] == type; }),
           ns.end());
}

int state_pid(const Json& s) {
  return s.value("pid", 0);
}

TEST_F(Lifecycle, RunTrueExitsZero) {
  std::string id;
  auto r = run_container({"true"}, {}, &id);
  EXPECT_EQ(r.status, 0) << r.describe();
  // A foreground run removes the container when the process exits.
  EXPECT_FALSE(state(id).has_value());
  EXPECT_NO_LEFTOVERS(id);
}

TEST_F(Lifecycle, RunPropagatesExitCode) {
  auto r = run_container({"sh", "-c", "exit 3"});
  EXPECT_EQ(r.status, 3) << r.describe();
}

TEST_F(Lifecycle, RunOutputReachesCaller) {
  auto r = run_container({"sh", "-c", "echo out-line; echo err-line >&2"});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.out, "out-line\n");
  EXPECT_NE(r.err.find("err-line"), std::string::npos) << r.describe();
}

TEST_F(Lifecycle, RunKilledBySignalExits128PlusSignal) {
  // pid 1 of a pid namespace cannot SIGKILL itself, so run without one.
  auto r = run_container({"sh", "-c", "kill -KILL $$; sleep 5"},
                         [](Json& c) { drop_namespace(c, "pid"); });
  EXPECT_EQ(r.status, 128 + SIGKILL) << r.describe();
}

TEST_F(Lifecycle, CreateStartKillDelete) {
  const std::string id = create_container({"sleep", "100"});
  auto created = state(id);
  ASSERT_TRUE(created);
  EXPECT_EQ((*created)["status"], "created");
  int pid = state_pid(*created);
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(path_exists("/proc/" + std::to_string(pid) + "/status"));

  auto start = runtime({"start", id});
  ASSERT_EQ(start.status, 0) << start.describe();
  auto running = state(id);
  ASSERT_TRUE(running);
  EXPECT_EQ((*running)["status"], "running");
  EXPECT_EQ(state_pid(*running), pid);
  // The process now runs the user program.
  EXPECT_NE(slurp("/proc/" + std::to_string(pid) + "/cmdline").find("sleep"), std::string::npos);

  auto kill = runtime({"kill", id, "KILL"});
  EXPECT_EQ(kill.status, 0) << kill.describe();
  EXPECT_EQ(wait_for_status(id, "stopped"), "stopped");
  EXPECT_FALSE(process_alive(pid));

  auto del = runtime({"delete", id});
  EXPECT_EQ(del.status, 0) << del.describe();
  ProcResult failed;
  EXPECT_FALSE(state(id, &failed).has_value());
  EXPECT_NE(failed.status, 0);
  if (testing_barge()) {
    EXPECT_NE(failed.err.find(id), std::string::npos) << failed.describe();
  }
  EXPECT_NO_LEFTOVERS(id);
}

TEST_F(Lifecycle, StateJsonHasAllFields) {
  const std::string id = create_container({"sleep", "100"}, [](Json& c) {
    c["annotations"] = {{"org.barge.test", "value-1"}, {"other", "2"}};
  });
  auto s = state(id);
  ASSERT_TRUE(s);
  for (const char* key : {"ociVersion", "id", "status", "pid", "bundle", "rootfs", "created",
                          "owner", "annotations"}) {
    EXPECT_TRUE(s->contains(key)) << "missing " << key << " in " << s->dump();
  }
  EXPECT_EQ((*s)["id"], id);
  EXPECT_EQ((*s)["bundle"], bundle_dir(id));
  EXPECT_EQ((*s)["rootfs"], bundle_dir(id) + "/rootfs");
  EXPECT_TRUE((*s)["pid"].is_number_integer());
  EXPECT_TRUE((*s)["created"].is_string());
  EXPECT_EQ((*s)["annotations"]["org.barge.test"], "value-1");
  EXPECT_EQ((*s)["annotations"]["other"], "2");
}

TEST_F(Lifecycle, StartTwiceFails) {
  const std::string id = create_container({"sleep", "100"});
  ASSERT_EQ(runtime({"start", id}).status, 0);
  auto again = runtime({"start", id});
  EXPECT_NE(again.status, 0) << again.describe();
  EXPECT_EQ(wait_for_status(id, "running", 1s), "running");
}

TEST_F(Lifecycle, StartAfterExitFails) {
  const std::string id = create_container({"true"});
  ASSERT_EQ(runtime({"start", id}).status, 0);
  ASSERT_EQ(wait_for_status(id, "stopped"), "stopped");
  auto again = runtime({"start", id});
  EXPECT_NE(again.status, 0) << again.describe();
  EXPECT_EQ(runtime({"delete", id}).status, 0);
  EXPECT_NO_LEFTOVERS(id);
}

TEST_F(Lifecycle, DeleteRunningWithoutForceFails) {
  const std::string id = create_container({"sleep", "100"});
  ASSERT_EQ(runtime({"start", id}).status, 0);
  int pid = state_pid(*state(id));
  auto del = runtime({"delete", id});
  EXPECT_NE(del.status, 0) << del.describe();
  auto s = state(id);
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)["status"], "running");
  EXPECT_TRUE(process_alive(pid));
}

TEST_F(Lifecycle, DeleteForceRunning) {
  const std::string id = create_container({"sleep", "100"});
  ASSERT_EQ(runtime({"start", id}).status, 0);
  int pid = state_pid(*state(id));
  auto del = runtime({"delete", "--force", id});
  EXPECT_EQ(del.status, 0) << del.describe();
  EXPECT_FALSE(state(id).has_value());
  for (int i = 0; i < 100 && process_alive(pid); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(process_alive(pid));
  EXPECT_NO_LEFTOVERS(id);
}

TEST_F(Lifecycle, DeleteForceCreated) {
  const std::string id = create_container({"sleep", "100"});
  int pid = state_pid(*state(id));
  EXPECT_EQ(runtime({"delete", "--force", id}).status, 0);
  for (int i = 0; i < 100 && process_alive(pid); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(process_alive(pid));
  EXPECT_NO_LEFTOVERS(id);
}

class LifecycleKillSignal : public RuntimeTest,
                            public ::testing::WithParamInterface<const char*> {};

TEST_P(LifecycleKillSignal, StopsContainer) {
  const std::string id = create_container({"sleep", "100"});
  ASSERT_EQ(runtime({"start", id}).status, 0);
  auto kill = runtime({"kill", id, GetParam()});
  EXPECT_EQ(kill.status, 0) << kill.describe();
  EXPECT_EQ(wait_for_status(id, "stopped"), "stopped");
}

INSTANTIATE_TEST_SUITE_P(Lifecycle, LifecycleKillSignal, ::testing::Values("KILL", "SIGKILL", "9"));

// kill without a signal sends SIGTERM: the handler runs (marker file) instead of a SIGKILL death.
TEST_F(Lifecycle, KillDefaultsToTerm) {
  const std::string id = create_container(
      {"sh", "-c", "trap 'echo term > /term-marker; exit 7' TERM; while :; do sleep 0.1; done"},
      [](Json& c) { c["root"]["readonly"] = false; });
  ASSERT_EQ(runtime({"start", id}).status, 0);
  std::this_thread::sleep_for(100ms);  // let the shell install its trap
  auto kill = runtime({"kill", id});
  EXPECT_EQ(kill.status, 0) << kill.describe();
  EXPECT_EQ(wait_for_status(id, "stopped"), "stopped");
  EXPECT_EQ(slurp(bundle_dir(id) + "/rootfs/term-marker"), "term\n");
}

TEST_F(Lifecycle, KillAllReachesEveryProcess) {
  // Without a pid namespace killing init leaves its children: only --all reaches them.
  const std::string id = create_container({"sh", "-c", "sleep 100 & sleep 100 & wait"},
                                          [](Json& c) { drop_namespace(c, "pid"); });
  ASSERT_EQ(runtime({"start", id}).status, 0);
  const std::string procs = "/sys/fs/cgroup/pids/" + cgroup_rel(id) + "/cgroup.procs";
  for (int i = 0; i < 100 && split_words(slurp(procs)).size() < 3; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  auto before = split_words(slurp(procs));
  ASSERT_GE(before.size(), 3u) << slurp(procs);
  auto kill = runtime({"kill", "--all", id, "KILL"});
  EXPECT_EQ(kill.status, 0) << kill.describe();
  EXPECT_EQ(wait_for_status(id, "stopped"), "stopped");
  for (const auto& pid : before) {
    int p = std::stoi(pid);
    for (int i = 0; i < 100 && process_alive(p); ++i) std::this_thread::sleep_for(20ms);
    EXPECT_FALSE(process_alive(p)) << "pid " << p << " survived kill --all";
  }
}

TEST_F(Lifecycle, RunDetach) {
  std::string id = new_id();
  Bundle b = make_bundle(id, {"sleep", "100"});
  auto r = runtime({"run", "--detach", "--bundle", b.dir, id}, {.timeout = 10s});
  EXPECT_EQ(r.status, 0) << r.describe();
  auto s = state(id);
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)["status"], "running");
  EXPECT_TRUE(process_alive(state_pid(*s)));
}

TEST_F(Lifecycle, PidFileHoldsInitPid) {
  std::string id = new_id();
  Bundle b = make_bundle(id, {"sleep", "100"});
  const std::string pid_file = test_dir() + "/pid-" + id;
  auto r = runtime({"create", "--pid-file", pid_file, "--bundle", b.dir, id});
  ASSERT_EQ(r.status, 0) << r.describe();
  auto s = state(id);
  ASSERT_TRUE(s);
  EXPECT_EQ(trim(slurp(pid_file)), std::to_string(state_pid(*s)));

  std::string id2 = new_id();
  Bundle b2 = make_bundle(id2, {"sleep", "100"});
  const std::string pid_file2 = test_dir() + "/pid-" + id2;
  r = runtime({"run", "-d", "--pid-file", pid_file2, "--bundle", b2.dir, id2});
  ASSERT_EQ(r.status, 0) << r.describe();
  auto s2 = state(id2);
  ASSERT_TRUE(s2);
  EXPECT_EQ(trim(slurp(pid_file2)), std::to_string(state_pid(*s2)));
}

TEST_F(Lifecycle, ListTableJsonQuiet) {
  const std::string a = create_container({"sleep", "100"});
  const std::string b = create_container({"sleep", "100"});
  ASSERT_EQ(runtime({"start", b}).status, 0);

  auto table = runtime({"list"});
  ASSERT_EQ(table.status, 0) << table.describe();
  auto lines = split_lines(table.out);
  ASSERT_GE(lines.size(), 3u) << table.out;
  EXPECT_EQ(split_words(lines[0]),
            (std::vector<std::string>{"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"}));
  bool saw_a = false, saw_b = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    auto w = split_words(lines[i]);
    ASSERT_GE(w.size(), 5u) << lines[i];
    if (w[0] == a) saw_a = (w[2] == "created" && w[3] == bundle_dir(a));
    if (w[0] == b) saw_b = (w[2] == "running" && w[3] == bundle_dir(b));
  }
  EXPECT_TRUE(saw_a && saw_b) << table.out;

  auto json = runtime({"list", "--format", "json"});
  ASSERT_EQ(json.status, 0) << json.describe();
  Json arr = Json::parse(json.out);
  ASSERT_TRUE(arr.is_array());
  ASSERT_EQ(arr.size(), 2u) << json.out;
  for (const auto& c : arr) {
    for (const char* key : {"id", "pid", "status", "bundle", "created", "owner"}) {
      EXPECT_TRUE(c.contains(key)) << key << " missing in " << c.dump();
    }
    EXPECT_EQ(c["status"], c["id"] == a ? "created" : "running");
  }

  for (const char* flag : {"--quiet", "-q"}) {
    auto quiet = runtime({"list", flag});
    ASSERT_EQ(quiet.status, 0) << quiet.describe();
    auto ids = split_words(quiet.out);
    std::sort(ids.begin(), ids.end());
    std::vector<std::string> want{a, b};
    std::sort(want.begin(), want.end());
    EXPECT_EQ(ids, want) << flag;
  }
}

TEST_F(Lifecycle, ListEmptyRoot) {
  auto r = runtime({"list", "--format", "json"});
  ASSERT_EQ(r.status, 0) << r.describe();
  Json arr = Json::parse(trim(r.out).empty() ? "null" : r.out);
  EXPECT_TRUE(arr.is_null() || (arr.is_array() && arr.empty())) << r.out;
}

TEST_F(Lifecycle, ConcurrentCreateSameIdOneWins) {
  if (!testing_barge()) {
    // runc 1.1.5 checks for the state dir with stat() and then MkdirAll()s it: both creates can
    // pass, the loser fails on the exec fifo and its cleanup destroys the winner's state.
    GTEST_SKIP() << "runc 1.1 races on concurrent create of one id";
  }
  for (int round = 0; round < 3; ++round) {
    std::string id = new_id();
    Bundle b = make_bundle(id, {"sleep", "100"});
    ProcResult r1, r2;
    std::thread t1([&] { r1 = runtime({"create", "--bundle", b.dir, id}); });
    std::thread t2([&] { r2 = runtime({"create", "--bundle", b.dir, id}); });
    t1.join();
    t2.join();
    EXPECT_EQ((r1.status == 0) + (r2.status == 0), 1) << r1.describe() << "\n" << r2.describe();
    const ProcResult& loser = r1.status == 0 ? r2 : r1;
    EXPECT_NE(loser.err.find("exists"), std::string::npos) << loser.describe();
    ProcResult state_failure;
    auto s = state(id, &state_failure);
    ASSERT_TRUE(s) << state_failure.describe() << "\nfirst create: " << r1.describe()
                   << "\nsecond create: " << r2.describe();
    EXPECT_EQ((*s)["status"], "created");
    EXPECT_TRUE(process_alive(state_pid(*s)));
    EXPECT_EQ(runtime({"delete", "--force", id}).status, 0);
    EXPECT_NO_LEFTOVERS(id);
  }
}

TEST_F(Lifecycle, CreateExistingIdFails) {
  const std::string id = create_container({"sleep", "100"});
  int pid = state_pid(*state(id));
  auto again = runtime({"create", "--bundle", bundle_dir(id), id});
  EXPECT_NE(again.status, 0) << again.describe();
  EXPECT_NE(again.err.find("exists"), std::string::npos) << again.describe();
  auto s = state(id);
  ASSERT_TRUE(s);
  EXPECT_EQ(state_pid(*s), pid);
  EXPECT_TRUE(process_alive(pid));
}

TEST_F(Lifecycle, SpecWritesRunnableConfig) {
  std::string id = new_id();
  const std::string dir = bundle_dir(id);
  std::filesystem::create_directories(dir);
  auto spec = runtime({"spec", "--bundle", dir});
  ASSERT_EQ(spec.status, 0) << spec.describe();
  Json config = Json::parse(slurp(dir + "/config.json"));
  EXPECT_TRUE(config.contains("ociVersion"));
  EXPECT_EQ(config["root"]["path"], "rootfs");
  // A second spec refuses to overwrite.
  EXPECT_NE(runtime({"spec", "--bundle", dir}).status, 0);

  std::filesystem::copy(
      cached_rootfs(), dir + "/rootfs",
      std::filesystem::copy_options::recursive | std::filesystem::copy_options::copy_symlinks);
  config["process"]["terminal"] = false;
  config["process"]["args"] = {"sh", "-c", "echo spec-ok"};
  config["linux"]["cgroupsPath"] = "/" + cgroup_rel(id);
  Bundle{dir, config}.write();
  auto r = runtime({"run", "--bundle", dir, id});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.out, "spec-ok\n");
}

TEST_F(Lifecycle, BundleDefaultsToCwd) {
  std::string id = new_id();
  Bundle b = make_bundle(id, {"true"});
  // The runtime runs with cwd = bundle via `sh -c cd`.
  auto r = run_process({"/bin/sh", "-c", "cd \"$1\" && exec \"$2\" --root \"$3\" run \"$4\"", "sh",
                        b.dir, runtime_binary(), root(), id});
  EXPECT_EQ(r.status, 0) << r.describe();
}

// Many cycles must not accumulate mounts, cgroup dirs or state dirs.
TEST_F(Lifecycle, RepeatedRunDeleteLeavesNothing) {
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    std::string id = new_id();
    ids.push_back(id);
    Bundle b = make_bundle(id, {"true"});
    if (i % 2 == 0) {
      auto r = runtime({"run", "--bundle", b.dir, id});
      ASSERT_EQ(r.status, 0) << r.describe();
    } else {
      auto r = runtime({"run", "--detach", "--bundle", b.dir, id});
      ASSERT_EQ(r.status, 0) << r.describe();
      ASSERT_EQ(wait_for_status(id, "stopped"), "stopped");
      auto del = runtime({"delete", id});
      ASSERT_EQ(del.status, 0) << del.describe();
    }
  }
  // Only our own mounts count: other processes on the host may mount and unmount meanwhile.
  for (const auto& line : mounts_mentioning(test_dir()))
    ADD_FAILURE() << "leftover mount: " << line;
  for (const auto& id : ids) EXPECT_NO_LEFTOVERS(id);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root(), ec)) {
    ADD_FAILURE() << "state root not empty: " << entry.path();
  }
}

}  // namespace
}  // namespace barge::test

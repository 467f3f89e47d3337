// OCI hooks: each phase runs at its point, in the namespaces the runtime-spec says, with the
// state JSON on stdin; failures fail create (or only warn, for poststart/poststop).
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/harness.hpp"

namespace barge::test {
namespace {

Json shell_hook(const std::string& script, std::optional<int> timeout = std::nullopt) {
  Json hook = {{"path", "/bin/sh"},
               {"args", {"sh", "-c", script}},
               {"env", {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}}};
  if (timeout) hook["timeout"] = *timeout;
  return hook;
}

class Hooks : public RuntimeTest {
 protected:
  std::string host_file(const std::string& name) { return test_dir() + "/" + name; }
};

TEST_F(Hooks, EveryPhaseRunsWithTheStateOnStdin) {
  std::string id = new_id();
  std::string out = test_dir();
  make_bundle(id, {"sh", "-c", "cat /tmp/start-marker"}, [&](Json& c) {
    c["root"]["readonly"] = false;
    c["mounts"].push_back({{"destination", "/tmp"}, {"type", "tmpfs"}, {"source", "tmpfs"}});
    c["hooks"]["prestart"] = {shell_hook("cat > " + out + "/prestart.json")};
    c["hooks"]["createRuntime"] = {shell_hook("cat > " + out + "/createRuntime.json")};
    c["hooks"]["createContainer"] = {
        shell_hook("cat > " + out + "/createContainer.json; readlink /proc/self/ns/mnt > " + out +
                   "/createContainer.mntns")};
    // startContainer runs inside the container: its path and files are the container's.
    c["hooks"]["startContainer"] = {shell_hook("echo started-in-container > /tmp/start-marker")};
    c["hooks"]["poststart"] = {shell_hook("cat > " + out + "/poststart.json")};
    c["hooks"]["poststop"] = {shell_hook("cat > " + out + "/poststop.json")};
  });
  // The container's stdio is the one `create` had (runc semantics).
  ProcResult created = runtime({"create", "--bundle", bundle_dir(id), id},
                               {.stdout_file = host_file("container.out")});
  ASSERT_EQ(created.status, 0) << created.describe();
  auto st = state(id);
  ASSERT_TRUE(st);
  int pid = (*st)["pid"].get<int>();
  for (const char* phase : {"prestart", "createRuntime", "createContainer"}) {
    Json hook_state = Json::parse(slurp(host_file(std::string(phase) + ".json")), nullptr, false);
    ASSERT_FALSE(hook_state.is_discarded()) << phase;
    EXPECT_EQ(hook_state["id"], id) << phase;
    EXPECT_EQ(hook_state["pid"], pid) << phase;
    EXPECT_EQ(hook_state["status"], "creating") << phase;
  }
  // createContainer ran in the container's mount namespace, the others in the host's.
  EXPECT_EQ(trim(slurp(host_file("createContainer.mntns"))), ns_link(std::to_string(pid), "mnt"));
  EXPECT_NE(ns_link(std::to_string(pid), "mnt"), ns_link("self", "mnt"));
  EXPECT_FALSE(path_exists(host_file("poststart.json")));

  ProcResult started = runtime({"start", id});
  ASSERT_EQ(started.status, 0) << started.describe();
  Json poststart = Json::parse(slurp(host_file("poststart.json")), nullptr, false);
  ASSERT_FALSE(poststart.is_discarded());
  EXPECT_EQ(poststart["id"], id);
  EXPECT_EQ(wait_for_status(id, "stopped"), "stopped");
  EXPECT_EQ(trim(slurp(host_file("container.out"))), "started-in-container");

  EXPECT_FALSE(path_exists(host_file("poststop.json")));
  ASSERT_EQ(runtime({"delete", id}).status, 0);
  Json poststop = Json::parse(slurp(host_file("poststop.json")), nullptr, false);
  ASSERT_FALSE(poststop.is_discarded());
  EXPECT_EQ(poststop["id"], id);
  EXPECT_NO_LEFTOVERS(id);
}

TEST_F(Hooks, FailingCreateRuntimeHookFailsCreateAndLeavesNothing) {
  std::string id = new_id();
  make_bundle(id, {"true"}, [](Json& c) {
    c["hooks"]["createRuntime"] = {shell_hook("echo hook-said-no >&2; exit 3")};
  });
  ProcResult r = runtime({"create", "--bundle", bundle_dir(id), id});
  EXPECT_NE(r.status, 0);
  if (testing_barge()) {
    EXPECT_NE(r.err.find("hooks.createRuntime[0]"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("hook-said-no"), std::string::npos) << r.err;
  }
  EXPECT_NO_LEFTOVERS(id);
}

TEST_F(Hooks, HookTimeoutKillsTheHookAndFailsCreate) {
  std::string id = new_id();
  make_bundle(id, {"true"},
              [](Json& c) { c["hooks"]["createRuntime"] = {shell_hook("sleep 30", 1)}; });
  auto begin = std::chrono::steady_clock::now();
  ProcResult r = runtime({"create", "--bundle", bundle_dir(id), id});
  EXPECT_NE(r.status, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 20s) << "timeout not honoured";
  if (testing_barge()) {
    EXPECT_NE(r.err.find("timed out"), std::string::npos) << r.err;
  }
  EXPECT_NO_LEFTOVERS(id);
}

TEST_F(Hooks, FailingPoststopHookOnlyWarns) {
  std::string id = new_id();
  make_bundle(id, {"true"}, [](Json& c) { c["hooks"]["poststop"] = {shell_hook("exit 1")}; });
  ProcResult r = runtime({"run", "--bundle", bundle_dir(id), id});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_NO_LEFTOVERS(id);
}

}  // namespace
}  // namespace barge::test

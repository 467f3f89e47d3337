// linux.seccomp in real containers through the runtime binary (busybox rootfs). Every assertion
// holds for runc too (BARGE_TEST_RUNTIME=$(command -v runc)).
#include <poll.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <cstring>
#include <future>
#include <string>

#include "common/fd.hpp"
#include "runtime/seccomp.hpp"
#include "tests/integration/harness.hpp"

namespace barge::test {
namespace {

constexpr int kSigsysStatus = 128 + SIGSYS;

Json allow_default(Json syscalls) {
  return {{"defaultAction", "SCMP_ACT_ALLOW"}, {"syscalls", std::move(syscalls)}};
}

ConfigEdit with_seccomp(Json profile) {
  return [profile](Json& config) { config["linux"]["seccomp"] = profile; };
}

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

class SeccompContainerTest : public RuntimeTest {};

TEST_F(SeccompContainerTest, ErrnoRetIsWhatTheContainerSees) {
  Json profile = allow_default(
      {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 42}}});
  auto r = run_container({"mkdir", "/tmp/x"}, with_seccomp(profile));
  EXPECT_NE(r.status, 0) << r.describe();
  // strerror(42) = ENOMSG: the errno came from the filter, not from the read-only rootfs.
  EXPECT_TRUE(contains(r.out + r.err, "No message of desired type")) << r.describe();
}

TEST_F(SeccompContainerTest, WithoutNoNewPrivilegesTheFilterStillApplies) {
  // Loaded while the init still has CAP_SYS_ADMIN, before the capabilities are dropped.
  Json profile = allow_default(
      {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 42}}});
  auto edit = [profile](Json& config) {
    config["linux"]["seccomp"] = profile;
    config["process"]["noNewPrivileges"] = false;
  };
  auto r = run_container({"sh", "-c", "grep NoNewPrivs /proc/self/status; mkdir /tmp/x"}, edit);
  EXPECT_NE(r.status, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "NoNewPrivs:\t0")) << r.describe();
  EXPECT_TRUE(contains(r.out + r.err, "No message of desired type")) << r.describe();
}

TEST_F(SeccompContainerTest, KillProcessEndsTheContainerWithSigsys) {
  Json profile = allow_default({{{"names", {"uname"}}, {"action", "SCMP_ACT_KILL_PROCESS"}}});
  auto r = run_container({"uname", "-s"}, with_seccomp(profile));
  EXPECT_EQ(r.status, kSigsysStatus) << r.describe();
  EXPECT_FALSE(contains(r.out, "Linux")) << r.describe();
}

TEST_F(SeccompContainerTest, MaskedEqualDeniesOnePersonality) {
  Json profile = allow_default({{{"names", {"personality"}},
                                 {"action", "SCMP_ACT_ERRNO"},
                                 {"errnoRet", 42},
                                 {"args",
                                  {{{"index", 0},
                                    {"value", 0xff},
                                    {"valueTwo", 8},  // PER_LINUX32
                                    {"op", "SCMP_CMP_MASKED_EQ"}}}}}});
  auto denied = run_container({"linux32", "uname", "-m"}, with_seccomp(profile));
  EXPECT_NE(denied.status, 0) << denied.describe();
  EXPECT_TRUE(contains(denied.out + denied.err, "No message of desired type")) << denied.describe();
  auto allowed = run_container({"linux64", "uname", "-m"}, with_seccomp(profile));
  EXPECT_EQ(allowed.status, 0) << allowed.describe();
}

TEST_F(SeccompContainerTest, DefaultProfileRunsAShellAndDeniesPrivilegedSyscalls) {
  // CAP_SYS_ADMIN is granted so that only the filter can refuse mount and unshare.
  auto edit = [](Json& config) {
    config["linux"]["seccomp"] = Json::parse(seccomp::default_profile_json());
    for (const char* set : {"bounding", "effective", "permitted"})
      config["process"]["capabilities"][set].push_back("CAP_SYS_ADMIN");
  };
  const std::string script =
      "grep -E '^Seccomp(_filters)?:' /proc/self/status; "
      "echo nested=$(echo $((6*7))); (echo subshell) ; ls / >/dev/null && echo ls-ok; "
      "mount -t tmpfs none /tmp 2>&1; echo mount=$?; "
      "unshare -u true 2>&1; echo unshare=$?; "
      "echo done";
  auto r = run_container({"sh", "-c", script}, edit);
  EXPECT_EQ(r.status, 0) << r.describe();
  for (const char* expected : {"Seccomp:\t2\n", "Seccomp_filters:\t1\n", "nested=42\n",
                               "subshell\n", "ls-ok\n", "mount=1\n", "unshare=1\n", "done\n"})
    EXPECT_TRUE(contains(r.out, expected)) << expected << "\n" << r.describe();
  EXPECT_TRUE(contains(r.out, "Operation not permitted")) << r.describe();
  EXPECT_TRUE(contains(r.out, "unshare")) << r.describe();
}

// The seccomp agent side of SCMP_ACT_NOTIFY: accepts the runtime's connection on listenerPath,
// keeps the state message, and answers every notified syscall with 4242.
struct Agent {
  UniqueFd socket;
  std::string path;
  std::string message;
  bool got_fd = false;
  int answered = 0;
  std::string failure;

  void run() {
    pollfd accept_poll{socket.get(), POLLIN, 0};
    if (::poll(&accept_poll, 1, 15000) != 1) return void(failure = "no connection");
    UniqueFd conn(::accept4(socket.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) return void(failure = "accept failed");
    auto [payload, listener] = seccomp::receive_with_fd(conn.get());
    message = payload;
    got_fd = listener.valid();
    if (!got_fd) return;
    seccomp_notif* request = nullptr;
    seccomp_notif_resp* response = nullptr;
    if (seccomp_notify_alloc(&request, &response) != 0) return void(failure = "notify_alloc");
    for (;;) {
      pollfd pfd{listener.get(), POLLIN, 0};
      if (::poll(&pfd, 1, 15000) != 1 || !(pfd.revents & POLLIN)) break;  // HUP: all exited
      std::memset(request, 0, sizeof *request);
      if (seccomp_notify_receive(listener.get(), request) != 0) continue;
      std::memset(response, 0, sizeof *response);
      response->id = request->id;
      response->val = 4242;
      if (seccomp_notify_respond(listener.get(), response) == 0) ++answered;
    }
    seccomp_notify_free(request, response);
  }
};

TEST_F(SeccompContainerTest, NotifySendsTheListenerAndStateToTheAgent) {
  Agent agent;
  agent.path = test_dir() + "/agent.sock";
  agent.socket.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(agent.path.size(), sizeof addr.sun_path);
  std::strcpy(addr.sun_path, agent.path.c_str());
  ASSERT_EQ(::bind(agent.socket.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(agent.socket.get(), 1), 0);
  auto agent_done = std::async(std::launch::async, [&] { agent.run(); });

  Json profile = allow_default({{{"names", {"getppid"}}, {"action", "SCMP_ACT_NOTIFY"}}});
  profile["listenerPath"] = agent.path;
  profile["listenerMetadata"] = "agent-metadata";
  std::string id;
  // busybox ash sets $PPID from getppid() at start-up: the agent's answer.
  auto r = run_container({"sh", "-c", "echo ppid=$PPID"}, with_seccomp(profile), &id);
  agent_done.wait();
  ASSERT_EQ(agent.failure, "");
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "ppid=4242")) << r.describe();
  EXPECT_TRUE(agent.got_fd);
  EXPECT_GE(agent.answered, 1);

  Json message = Json::parse(agent.message);
  EXPECT_EQ(message["fds"], Json::array({"seccompFd"})) << message;
  EXPECT_EQ(message["metadata"], "agent-metadata") << message;
  EXPECT_GT(message["pid"].get<int>(), 0) << message;
  EXPECT_TRUE(message.contains("ociVersion")) << message;
  const Json& state = message["state"];
  EXPECT_EQ(state["id"], id) << message;
  EXPECT_EQ(state["status"], "creating") << message;
  EXPECT_EQ(state["pid"], message["pid"]) << message;
  EXPECT_EQ(state["bundle"], bundle_dir(id)) << message;
}

}  // namespace
}  // namespace barge::test

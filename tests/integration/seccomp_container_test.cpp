// linux.seccomp in real containers through the runtime binary (busybox rootfs). Every assertion
// holds for runc too (BARGE_TEST_RUNTIME=$(command -v runc)).
#include <fcntl.h>
#include <poll.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <cstring>
#include <future>
#include <string>
#include <vector>

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

// The seccomp audit records (type=1326) /dev/kmsg receives after construction.
class KernelLog {
 public:
  KernelLog() : fd_(::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)) {
    if (fd_) ::lseek(fd_.get(), 0, SEEK_END);
  }
  bool ok() const { return fd_.valid(); }
  // Reads what arrived; records_ keeps every seccomp record so far.
  void read_new() {
    char record[8192];
    for (;;) {
      ssize_t n = ::read(fd_.get(), record, sizeof record - 1);
      if (n < 0 && errno == EPIPE) continue;  // overwritten while we read: skip ahead
      if (n <= 0) return;
      std::string text(record, static_cast<size_t>(n));
      if (contains(text, "type=1326 ")) records_.push_back(text);
    }
  }
  std::vector<std::string> records_of(int pid) const {
    std::vector<std::string> found;
    for (const auto& r : records_)
      if (contains(r, " pid=" + std::to_string(pid) + " ")) found.push_back(r);
    return found;
  }

 private:
  UniqueFd fd_;
  std::vector<std::string> records_;
};

// SECCOMP_FILTER_FLAG_LOG makes the kernel log every action but ALLOW (when listed in
// /proc/sys/kernel/seccomp/actions_logged, as errno is by default); without the flag an ERRNO
// is silent. The init itself runs mkdir so the record carries the pid `state` reports. kauditd
// prints asynchronously but in order: once the flagged container's record is there, one for the
// unflagged container (run first) would be too.
TEST_F(SeccompContainerTest, FlagLogMakesTheKernelAuditErrnoActions) {
  if (!testing_barge()) GTEST_SKIP() << "runc 1.1: \"seccomp flags are not yet supported\"";
  if (!contains(slurp("/proc/sys/kernel/seccomp/actions_logged"), "errno"))
    GTEST_SKIP() << "errno is not in /proc/sys/kernel/seccomp/actions_logged";
  KernelLog kmsg;
  ASSERT_TRUE(kmsg.ok()) << "open /dev/kmsg";
  auto run_mkdir = [&](bool log_flag) {
    Json profile = allow_default(
        {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 42}}});
    if (log_flag) profile["flags"] = {"SECCOMP_FILTER_FLAG_LOG"};
    std::string id = create_container({"mkdir", "/tmp/x"}, with_seccomp(profile));
    auto st = state(id);
    EXPECT_TRUE(st);
    EXPECT_EQ(runtime({"start", id}).status, 0);
    EXPECT_EQ(wait_for_status(id, "stopped"), "stopped");
    EXPECT_EQ(runtime({"delete", id}).status, 0);
    return st ? (*st)["pid"].get<int>() : -1;
  };
  int silent = run_mkdir(false);
  int logged = run_mkdir(true);
  for (int i = 0; i < 100 && kmsg.records_of(logged).empty(); ++i) {
    kmsg.read_new();
    if (kmsg.records_of(logged).empty()) ::usleep(100'000);
  }
  std::vector<std::string> records = kmsg.records_of(logged);
  ASSERT_FALSE(records.empty()) << "no audit record with SECCOMP_FILTER_FLAG_LOG";
#ifdef SYS_mkdir
  bool mkdir_record = contains(records.front(), " syscall=" + std::to_string(SYS_mkdir) + " ");
#else
  bool mkdir_record = false;
#endif
  mkdir_record |= contains(records.front(), " syscall=" + std::to_string(SYS_mkdirat) + " ");
  EXPECT_TRUE(mkdir_record) << records.front();
  EXPECT_TRUE(contains(records.front(), " code=0x50000")) << records.front();  // RET_ERRNO
  EXPECT_TRUE(kmsg.records_of(silent).empty()) << "an ERRNO was audited without the flag";
}

// defaultErrnoRet is what every syscall the allow list does not name returns: barge's default
// profile without mkdir, denying with 42 (ENOMSG) instead of EPERM.
TEST_F(SeccompContainerTest, DefaultErrnoRetIsWhatUnlistedSyscallsReturn) {
  Json profile = Json::parse(seccomp::default_profile_json());
  ASSERT_EQ(profile["defaultAction"], "SCMP_ACT_ERRNO");
  profile["defaultErrnoRet"] = 42;
  Json kept = Json::array();
  for (auto rule : profile["syscalls"]) {
    Json names = Json::array();
    for (const auto& name : rule["names"])
      if (name != "mkdir" && name != "mkdirat") names.push_back(name);
    if (names.empty()) continue;
    rule["names"] = names;
    kept.push_back(rule);
  }
  profile["syscalls"] = kept;
  auto r = run_container({"sh", "-c", "mkdir /tmp/x; echo still-running"}, with_seccomp(profile));
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "still-running")) << r.describe();
  EXPECT_TRUE(contains(r.err, "No message of desired type")) << r.describe();
}

// Unknown syscall names are skipped (the rest of the rule still applies) with a warning through
// the one logger, so --log receives it as a JSON line.
TEST_F(SeccompContainerTest, UnknownSyscallNameIsSkippedWithALoggedWarning) {
  Json profile = allow_default({{{"names", {"no_such_syscall_barge", "mkdir", "mkdirat"}},
                                 {"action", "SCMP_ACT_ERRNO"},
                                 {"errnoRet", 42}}});
  std::string log_file = test_dir() + "/runtime.log";
  std::string id = new_id();
  Bundle bundle = make_bundle(id, {"mkdir", "/tmp/x"}, with_seccomp(profile));
  auto r = runtime_with_globals({"--log", log_file, "--log-format", "json"},
                                {"run", "--bundle", bundle.dir, id});
  EXPECT_NE(r.status, 0) << r.describe();
  EXPECT_TRUE(contains(r.out + r.err, "No message of desired type")) << r.describe();
  if (!testing_barge()) return;  // runc words (and levels) its message differently
  bool warned = false;
  for (const auto& line : split_lines(slurp(log_file))) {
    Json entry = Json::parse(line, nullptr, false);
    if (entry.is_object() && entry.value("level", "") == "warning" &&
        contains(entry.value("msg", ""), "unknown syscall \"no_such_syscall_barge\" skipped"))
      warned = true;
  }
  EXPECT_TRUE(warned) << slurp(log_file);
  EXPECT_NO_LEFTOVERS(id);
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

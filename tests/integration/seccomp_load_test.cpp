// seccomp::load in a forked child of the test process (root): the filter is compiled in the
// parent, as barge does before clone, and the child sets no_new_privs, loads it and tries real
// syscalls. These run without the runtime binary; seccomp_container_test.cpp covers containers.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "runtime/seccomp.hpp"
#include "runtime/spec.hpp"

namespace seccomp = barge::seccomp;
namespace spec = barge::spec;
using Json = nlohmann::json;

namespace {

constexpr int kSigsysStatus = 128 + SIGSYS;  // 159
constexpr int kLoadFailed = 250;
constexpr int kBodyThrew = 251;

spec::Seccomp parse_seccomp(const Json& seccomp_json) {
  Json config = {{"ociVersion", "1.2.0"},
                 {"root", {{"path", "rootfs"}}},
                 {"linux", {{"seccomp", seccomp_json}}}};
  return *spec::parse(config.dump()).linux->seccomp;
}

Json allow_default(Json syscalls) {
  return {{"defaultAction", "SCMP_ACT_ALLOW"}, {"syscalls", std::move(syscalls)}};
}

int wait_status(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Compiles profile here, then forks a child that sets no_new_privs, loads the filter and exits
// with body()'s result. Returns the child's exit code, or 128+signal.
int run_filtered(const spec::Seccomp& profile, const std::function<int()>& body,
                 bool no_new_privs = true) {
  seccomp::Filter filter = seccomp::compile(profile);
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (no_new_privs) ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    try {
      seccomp::load(filter);
    } catch (...) {
      ::_exit(kLoadFailed);
    }
    try {
      ::_exit(body());
    } catch (...) {
      ::_exit(kBodyThrew);  // never unwind into the test framework's copy in the child
    }
  }
  return wait_status(pid);
}

int run_filtered(const Json& profile, const std::function<int()>& body) {
  return run_filtered(parse_seccomp(profile), body);
}

// The errno a raw syscall failed with, 0 on success.
int errno_of(long rc) {
  return rc < 0 ? errno : 0;
}

// The default profile with its explicit clone3 rule removed: clone3 then relies on compile()'s
// own ENOSYS handling.
Json default_profile_without_clone3() {
  Json profile = Json::parse(seccomp::default_profile_json());
  auto& rules = profile["syscalls"];
  for (auto it = rules.begin(); it != rules.end();) {
    if ((*it)["names"] == Json::array({"clone3"}))
      it = rules.erase(it);
    else
      ++it;
  }
  return profile;
}

}  // namespace

TEST(SeccompLoad, ErrnoRetIsWhatTheSyscallReturns) {
  Json profile = allow_default(
      {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 42}}});
  EXPECT_EQ(
      run_filtered(profile, [] { return errno_of(::syscall(SYS_mkdir, "/nonexistent/x", 0700)); }),
      42);
  // Unfiltered the same call fails differently: the 42 really is the filter's.
  EXPECT_EQ(errno_of(::syscall(SYS_mkdir, "/nonexistent/x", 0700)), ENOENT);
}

TEST(SeccompLoad, KernelReportsTheFilter) {
  Json profile = allow_default({{{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}}});
  int rc = run_filtered(profile, [] {
    char buf[8192];
    int fd = ::open("/proc/self/status", O_RDONLY);
    ssize_t n = fd >= 0 ? ::read(fd, buf, sizeof buf - 1) : -1;
    if (n <= 0) return 2;
    buf[n] = 0;
    std::string status(buf);
    bool mode = status.find("\nSeccomp:\t2\n") != std::string::npos;
    bool count = status.find("\nSeccomp_filters:\t1\n") != std::string::npos;
    return mode && count ? 0 : 1;
  });
  EXPECT_EQ(rc, 0);
}

TEST(SeccompLoad, KillActionsDieBySigsys) {
  for (const char* action :
       {"SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"}) {
    Json profile = allow_default({{{"names", {"getppid"}}, {"action", action}}});
    EXPECT_EQ(run_filtered(profile, [] { return ::syscall(SYS_getppid) > 0 ? 0 : 1; }),
              kSigsysStatus)
        << action;
  }
}

TEST(SeccompLoad, LogAndAllowLetTheSyscallThrough) {
  Json profile = allow_default({{{"names", {"getppid"}}, {"action", "SCMP_ACT_LOG"}}});
  profile["flags"] = {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"};
  EXPECT_EQ(run_filtered(profile, [] { return ::syscall(SYS_getppid) > 0 ? 0 : 1; }), 0);
}

TEST(SeccompLoad, TraceWithoutTracerFailsWithErrnoRet) {
  // With no tracer attached the kernel fails a SECCOMP_RET_TRACE syscall with ENOSYS.
  Json profile =
      allow_default({{{"names", {"getppid"}}, {"action", "SCMP_ACT_TRACE"}, {"errnoRet", 5}}});
  EXPECT_EQ(run_filtered(profile, [] { return errno_of(::syscall(SYS_getppid)); }), ENOSYS);
}

TEST(SeccompLoad, ArgumentOperatorsCompareLikeTheKernel) {
  struct Case {
    const char* op;
    uint64_t value, value_two, probe;
    bool denied;
  };
  const uint64_t big = 0x100000005ULL;  // differs from 5 only in the upper 32 bits
  for (const Case& c : {Case{"SCMP_CMP_EQ", 5, 0, 5, true}, Case{"SCMP_CMP_EQ", 5, 0, 6, false},
                        Case{"SCMP_CMP_EQ", 5, 0, big, false}, Case{"SCMP_CMP_NE", 5, 0, 5, false},
                        Case{"SCMP_CMP_NE", 5, 0, 6, true}, Case{"SCMP_CMP_LT", 5, 0, 4, true},
                        Case{"SCMP_CMP_LT", 5, 0, 5, false}, Case{"SCMP_CMP_LE", 5, 0, 5, true},
                        Case{"SCMP_CMP_LE", 5, 0, 6, false}, Case{"SCMP_CMP_GT", 5, 0, 6, true},
                        Case{"SCMP_CMP_GT", 5, 0, 5, false}, Case{"SCMP_CMP_GT", 5, 0, big, true},
                        Case{"SCMP_CMP_GE", 5, 0, 5, true}, Case{"SCMP_CMP_GE", 5, 0, 4, false},
                        Case{"SCMP_CMP_MASKED_EQ", 0xf0, 0x30, 0x135, true},
                        Case{"SCMP_CMP_MASKED_EQ", 0xf0, 0x30, 0x145, false}}) {
    Json profile = allow_default(
        {{{"names", {"getppid"}},
          {"action", "SCMP_ACT_ERRNO"},
          {"errnoRet", 99},
          {"args",
           {{{"index", 0}, {"value", c.value}, {"valueTwo", c.value_two}, {"op", c.op}}}}}});
    uint64_t probe = c.probe;
    int rc = run_filtered(profile, [probe] { return errno_of(::syscall(SYS_getppid, probe)); });
    EXPECT_EQ(rc, c.denied ? 99 : 0) << c.op << " value " << c.value << " probe " << c.probe;
  }
}

TEST(SeccompLoad, ConditionsOnTwoArgumentsAreAnded) {
  Json profile = allow_default({{{"names", {"getppid"}},
                                 {"action", "SCMP_ACT_ERRNO"},
                                 {"errnoRet", 99},
                                 {"args",
                                  {{{"index", 0}, {"value", 1}, {"op", "SCMP_CMP_EQ"}},
                                   {{"index", 1}, {"value", 2}, {"op", "SCMP_CMP_EQ"}}}}}});
  EXPECT_EQ(run_filtered(profile, [] { return errno_of(::syscall(SYS_getppid, 1, 2)); }), 99);
  EXPECT_EQ(run_filtered(profile, [] { return errno_of(::syscall(SYS_getppid, 1, 3)); }), 0);
}

TEST(SeccompLoad, ConditionsOnTheSameArgumentAreOred) {
  Json profile = allow_default({{{"names", {"getppid"}},
                                 {"action", "SCMP_ACT_ERRNO"},
                                 {"errnoRet", 99},
                                 {"args",
                                  {{{"index", 0}, {"value", 1}, {"op", "SCMP_CMP_EQ"}},
                                   {{"index", 0}, {"value", 2}, {"op", "SCMP_CMP_EQ"}}}}}});
  EXPECT_EQ(run_filtered(profile, [] { return errno_of(::syscall(SYS_getppid, 1)); }), 99);
  EXPECT_EQ(run_filtered(profile, [] { return errno_of(::syscall(SYS_getppid, 2)); }), 99);
  EXPECT_EQ(run_filtered(profile, [] { return errno_of(::syscall(SYS_getppid, 3)); }), 0);
}

TEST(SeccompLoad, MaskedEqualDeniesOnePersonality) {
  // Deny personality(2) when the persona byte is PER_LINUX32; queries (0xffffffff) still work.
  Json profile = allow_default({{{"names", {"personality"}},
                                 {"action", "SCMP_ACT_ERRNO"},
                                 {"errnoRet", 42},
                                 {"args",
                                  {{{"index", 0},
                                    {"value", 0xff},
                                    {"valueTwo", PER_LINUX32},
                                    {"op", "SCMP_CMP_MASKED_EQ"}}}}}});
  EXPECT_EQ(run_filtered(profile, [] { return errno_of(::personality(PER_LINUX32)); }), 42);
  EXPECT_EQ(run_filtered(profile, [] { return errno_of(::personality(0xffffffff)); }), 0);
  EXPECT_EQ(run_filtered(profile, [] { return errno_of(::personality(PER_LINUX)); }), 0);
}

TEST(SeccompLoad, DefaultProfileDeniesPrivilegedSyscalls) {
  // The test process is root with every capability: EPERM here comes from the filter.
  Json profile = Json::parse(seccomp::default_profile_json());
  auto expect_eperm = [&](const char* what, std::function<int()> body) {
    EXPECT_EQ(run_filtered(profile, body), EPERM) << what;
  };
  expect_eperm("unshare", [] { return errno_of(::unshare(CLONE_NEWUTS)); });
  expect_eperm("setns", [] { return errno_of(::setns(-1, 0)); });
  expect_eperm("mount", [] { return errno_of(::mount("none", "/tmp", "tmpfs", 0, nullptr)); });
  // Invalid flags: without the filter the kernel would answer EINVAL after the capability check.
  expect_eperm("kexec_load",
               [] { return errno_of(::syscall(SYS_kexec_load, 0, 0, nullptr, 0xffffffffUL)); });
  expect_eperm("init_module", [] { return errno_of(::syscall(SYS_init_module, nullptr, 0, "")); });
  expect_eperm("keyctl", [] { return errno_of(::syscall(SYS_keyctl, 0, 0, 0, 0, 0)); });
  expect_eperm("clone with CLONE_NEWNS", [] {
    return errno_of(::syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, nullptr, nullptr, nullptr, 0));
  });
  expect_eperm("socket(AF_VSOCK)", [] { return errno_of(::socket(40, SOCK_STREAM, 0)); });
  EXPECT_EQ(run_filtered(profile, [] { return errno_of(::personality(0xffffffff)); }), 0);
}

TEST(SeccompLoad, NewerSyscallsGetEnosysSoLibcFallsBack) {
  for (const Json& profile :
       {Json::parse(seccomp::default_profile_json()), default_profile_without_clone3()}) {
    EXPECT_EQ(run_filtered(profile, [] { return errno_of(::syscall(SYS_clone3, nullptr, 0)); }),
              ENOSYS);
    // fchmodat2 (452, Linux 6.6) is newer than the profile and unknown to libseccomp 2.5.4.
    EXPECT_EQ(run_filtered(profile,
                           [] { return errno_of(::syscall(452, AT_FDCWD, "/nonexistent", 0, 0)); }),
              ENOSYS);
    // glibc's pthread_create tries clone3 first and must fall back to clone.
    EXPECT_EQ(run_filtered(profile,
                           [] {
                             int value = 0;
                             std::thread t([&] { value = 7; });
                             t.join();
                             return value == 7 ? 0 : 1;
                           }),
              0);
    EXPECT_EQ(run_filtered(profile,
                           [] {
                             pid_t child = ::fork();
                             if (child == 0) ::_exit(3);
                             return child > 0 ? wait_status(child) : 1;
                           }),
              3);
  }
  // Without the filter the kernel knows both (EFAULT for clone3's NULL args, ENOENT for the path).
  EXPECT_EQ(errno_of(::syscall(SYS_clone3, nullptr, 0)), EINVAL);
  EXPECT_EQ(errno_of(::syscall(452, AT_FDCWD, "/nonexistent", 0, 0)), ENOENT);
}

TEST(SeccompLoad, DenyByDefaultKillStillGivesEnosysForNewSyscalls) {
  Json profile = Json::parse(seccomp::default_profile_json());
  profile["defaultAction"] = "SCMP_ACT_KILL_PROCESS";
  EXPECT_EQ(run_filtered(profile, [] { return errno_of(::syscall(452, AT_FDCWD, "/", 0, 0)); }),
            ENOSYS);
  EXPECT_EQ(run_filtered(profile, [] { return errno_of(::unshare(CLONE_NEWUTS)); }), kSigsysStatus);
}

TEST(SeccompLoad, WithoutNoNewPrivsNeedsCapSysAdmin) {
  Json profile = allow_default({{{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}}});
  seccomp::Filter filter = seccomp::compile(parse_seccomp(profile));
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    cap_t caps = cap_get_proc();
    cap_value_t admin = CAP_SYS_ADMIN;
    cap_set_flag(caps, CAP_EFFECTIVE, 1, &admin, CAP_CLEAR);
    if (cap_set_proc(caps) != 0) ::_exit(2);
    try {
      seccomp::load(filter);
    } catch (const barge::Error& e) {
      bool explains =
          std::string(e.what()).find("noNewPrivileges or CAP_SYS_ADMIN") != std::string::npos;
      ::_exit(explains && e.code() == EACCES ? 0 : 3);
    }
    ::_exit(4);
  }
  EXPECT_EQ(wait_status(pid), 0);
  // As root with CAP_SYS_ADMIN no_new_privs is not needed.
  EXPECT_EQ(run_filtered(
                parse_seccomp(profile), [] { return 0; }, /*no_new_privs=*/false),
            0);
}

TEST(SeccompLoad, NotifyListenerReachesTheAgentAndAnswersTheSyscall) {
  char dir_template[] = "/tmp/barge-seccomp-agent-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  std::string socket_path = std::string(dir_template) + "/agent.sock";
  barge::UniqueFd agent(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, socket_path.c_str());
  ASSERT_EQ(::bind(agent.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(agent.get(), 1), 0);

  Json profile = allow_default({{{"names", {"getppid"}}, {"action", "SCMP_ACT_NOTIFY"}}});
  profile["listenerPath"] = socket_path;
  profile["flags"] = {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
  seccomp::Filter filter = seccomp::compile(parse_seccomp(profile));
  const std::string state = R"({"ociVersion":"1.2.0","id":"c1","status":"creating","pid":0,)"
                            R"("bundle":"/b","annotations":{"k":"v"}})";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    try {
      barge::UniqueFd listener(seccomp::load(filter));
      seccomp::send_listener(listener.get(), socket_path, "agent-meta", state, ::getpid());
    } catch (...) {
      ::_exit(kLoadFailed);
    }
    ::_exit(::syscall(SYS_getppid) == 4242 ? 0 : 1);
  }

  barge::UniqueFd conn(::accept4(agent.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(conn.valid());
  auto [payload, listener] = seccomp::receive_with_fd(conn.get());
  ASSERT_TRUE(listener.valid());
  Json message = Json::parse(payload);
  EXPECT_EQ(message["ociVersion"], spec::kRuntimeSpecVersion);
  EXPECT_EQ(message["fds"], Json::array({"seccompFd"}));
  EXPECT_EQ(message["pid"], pid);
  EXPECT_EQ(message["metadata"], "agent-meta");
  EXPECT_EQ(message["state"]["id"], "c1");
  EXPECT_EQ(message["state"]["status"], "creating");
  EXPECT_EQ(message["state"]["annotations"]["k"], "v");

  seccomp_notif* request = nullptr;
  seccomp_notif_resp* response = nullptr;
  ASSERT_EQ(seccomp_notify_alloc(&request, &response), 0);
  pollfd pfd{listener.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 10000), 1);
  ASSERT_EQ(seccomp_notify_receive(listener.get(), request), 0);
  EXPECT_EQ(request->data.nr, SYS_getppid);
  EXPECT_EQ(static_cast<pid_t>(request->pid), pid);
  response->id = request->id;
  response->val = 4242;
  response->error = 0;
  response->flags = 0;
  EXPECT_EQ(seccomp_notify_respond(listener.get(), response), 0);
  seccomp_notify_free(request, response);
  EXPECT_EQ(wait_status(pid), 0);
  ::unlink(socket_path.c_str());
  ::rmdir(dir_template);
}

// Container escapes really attempted from inside containers (issue 5), each checking afterwards
// that the host is intact. The attacker's side is tests/helpers/escape_probe.cpp, a static binary
// copied into the busybox rootfs.
//
// CVE-2019-5736: the attacks aim at a COPY of the runtime binary in a temporary directory (the
// test drives that copy), so a broken protection never destroys the build. barge_unprotected is
// barge built without the protection (CMakeLists.txt, BARGE_UNPROTECTED_FOR_TESTS): the same
// attack against it must succeed, which shows these tests catch an escape. By hand: copy
// build/barge_unprotected to a temp dir, run a container whose entrypoint is a `#!/proc/self/exe`
// script in the pid namespace of a container running `escape_probe overwrite-runtime`, and the
// copy's first bytes become the probe's payload.
#include <fcntl.h>
#include <linux/keyctl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "common/fd.hpp"
#include "image/digest.hpp"
#include "tests/integration/harness.hpp"

namespace barge::test {
namespace {

namespace fs = std::filesystem;

std::string file_digest(const std::string& path) {
  return image::sha256_of(slurp(path));
}

// Polls for a report file of the probe; "" when it did not appear in time (hang protection only).
std::string wait_for_report(const std::string& path, std::chrono::seconds limit = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (path_exists(path)) return trim(slurp(path));
    std::this_thread::sleep_for(10ms);
  }
  return "";
}

// A pipe whose buffer is already full: a process writing to it blocks until drain() reads. The
// runtime started through `#!/proc/self/exe` prints a usage error and exits; with its output
// going here it stays alive until the probe has caught it, so the test does not race it.
class FullPipe {
 public:
  FullPipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return;
    read_.reset(fds[0]);
    write_.reset(fds[1]);
    std::string block(4096, 'x');
    while (::write(write_.get(), block.data(), block.size()) > 0) {
    }
    // Blocking again for the writers (the flag belongs to the shared open file description).
    ::fcntl(write_.get(), F_SETFL, 0);
  }
  int write_end() const { return write_.get(); }
  void close_write_end() { write_.reset(); }
  // Reads until every writer has closed its end (or the limit passes); returns what was read
  // after the filler.
  std::string drain(std::chrono::seconds limit = 30s) {
    std::string text;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    char buf[4096];
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd pfd{read_.get(), POLLIN, 0};
      if (::poll(&pfd, 1, 100) <= 0) continue;
      ssize_t n = ::read(read_.get(), buf, sizeof buf);
      if (n == 0) break;
      if (n > 0) text.append(buf, static_cast<size_t>(n));
    }
    text.erase(0, text.find_first_not_of('x'));
    return text;
  }

 private:
  UniqueFd read_, write_;
};

// fork/exec with stdout and stderr on out_fd; its own process group so it can be killed whole.
pid_t spawn(const std::vector<std::string>& argv, int out_fd) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::setpgid(0, 0);
  int devnull = ::open("/dev/null", O_RDONLY);
  ::dup2(devnull, 0);
  ::dup2(out_fd, 1);
  ::dup2(out_fd, 2);
  ::syscall(SYS_close_range, 3U, ~0U, 0U);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execv(args[0], args.data());
  ::_exit(127);
}

int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void copy_executable(const std::string& from, const std::string& to) {
  fs::create_directories(fs::path(to).parent_path());
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
  fs::permissions(to, fs::perms(0755));
}

// What one attempt of CVE-2019-5736 did.
struct Overwrite {
  std::string caught;  // /proc/PID/exe target the probe got hold of ("" if none)
  std::string result;  // "wrote", "open-failed ERRNO", "write-failed ERRNO" ("" if none)
  std::string digest_before, digest_after;
  std::string details;  // for assertion messages
};

enum class Via { exec, run };

class Escape : public RuntimeTest {
 protected:
  void SetUp() override {
    RuntimeTest::SetUp();
#ifndef BARGE_ESCAPE_PROBE
    GTEST_SKIP() << "escape_probe helper not built (sanitizer build)";
#endif
  }

  // The probe at /escape_probe and the `#!/proc/self/exe` script at /evil of a bundle's rootfs,
  // plus the shared libraries of the runtime binary: a dynamically linked runtime started inside
  // the container finds its loader and libraries in the container's root (a real attacker
  // ships them in the image, possibly doctored).
  static void install_probe(const Bundle& bundle) {
#ifdef BARGE_ESCAPE_PROBE
    copy_executable(BARGE_ESCAPE_PROBE, bundle.rootfs() + "/escape_probe");
#endif
  }
  static void arm_rootfs(const Bundle& bundle, const std::string& runtime_copy) {
    install_probe(bundle);
    std::ofstream(bundle.rootfs() + "/evil") << "#!/proc/self/exe\n";
    fs::permissions(bundle.rootfs() + "/evil", fs::perms(0755));
    ProcResult ldd = run_process({"ldd", runtime_copy});
    for (const auto& word : split_words(ldd.out)) {
      if (word.front() != '/' || !fs::exists(word)) continue;
      fs::path target = bundle.rootfs() + word;
      fs::create_directories(target.parent_path());
      fs::copy_file(fs::canonical(word), target, fs::copy_options::overwrite_existing);
    }
  }

  // Runs the runtime binary at `binary` (a copy made for this test) with our --root.
  std::vector<std::string> with_binary(const std::string& binary,
                                       const std::vector<std::string>& args) const {
    std::vector<std::string> argv{binary, "--root", root()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  // Container A: the attacker, `escape_probe overwrite-runtime /report` as its init, /report a
  // host directory. Returns A's id; *init_pid gets its host pid.
  std::string start_attacker(const std::string& report_dir, const std::string& runtime_copy,
                             int* init_pid) {
    fs::create_directories(report_dir);
    std::string id = new_id();
    Bundle bundle =
        make_bundle(id, {"/escape_probe", "overwrite-runtime", "/report"}, [&](Json& c) {
          c["mounts"].push_back({{"destination", "/report"},
                                 {"type", "bind"},
                                 {"source", report_dir},
                                 {"options", {"rbind", "rw"}}});
        });
    arm_rootfs(bundle, runtime_copy);
    ProcResult created = runtime({"create", "--bundle", bundle.dir, id});
    EXPECT_EQ(created.status, 0) << created.describe();
    ProcResult started = runtime({"start", id});
    EXPECT_EQ(started.status, 0) << started.describe();
    auto st = state(id);
    *init_pid = st ? (*st)["pid"].get<int>() : 0;
    return id;
  }

  // The whole attack against the runtime binary at `binary` (a copy): the attacker container
  // waits; the runtime then starts `/evil` (#!/proc/self/exe) in the attacker's pid namespace,
  // either by `exec` into the attacker or by `run` of a second container that joins the
  // attacker's pid namespace and has /evil as its entrypoint.
  Overwrite attack(const std::string& binary, Via via) {
    Overwrite o;
    o.digest_before = file_digest(binary);
    const std::string report = test_dir() + "/report-" + std::to_string(++attacks_);
    int attacker_pid = 0;
    std::string attacker = start_attacker(report, binary, &attacker_pid);
    if (wait_for_report(report + "/ready").empty()) {
      o.details = "the probe never started";
      return o;
    }
    std::vector<std::string> argv;
    if (via == Via::exec) {
      argv = with_binary(binary, {"exec", attacker, "/evil"});
    } else {
      std::string id = new_id();
      Bundle victim = make_bundle(id, {"/evil"}, [&](Json& c) {
        for (auto& ns : c["linux"]["namespaces"])
          if (ns["type"] == "pid") ns["path"] = "/proc/" + std::to_string(attacker_pid) + "/ns/pid";
      });
      arm_rootfs(victim, binary);
      argv = with_binary(binary, {"run", "--bundle", victim.dir, id});
    }
    FullPipe output;
    pid_t pid = spawn(argv, output.write_end());
    output.close_write_end();
    o.caught = wait_for_report(report + "/caught");
    if (o.caught.empty()) ::kill(-pid, SIGKILL);
    std::string printed = output.drain();
    int status = wait_exit(pid);
    if (!o.caught.empty()) o.result = wait_for_report(report + "/result");
    o.digest_after = file_digest(binary);
    o.details = "caught=" + o.caught + " result=" + o.result + "\nruntime (status " +
                std::to_string(status) + ") printed:\n" + printed;
    return o;
  }

  // The copy of the binary under test the attacks aim at.
  std::string copy_of_runtime() {
    std::string copy =
        test_dir() + "/runtime-copy/" + fs::path(runtime_binary()).filename().string();
    copy_executable(runtime_binary(), copy);
    return copy;
  }

  static void expect_protected(const Overwrite& o, const std::string& binary) {
    ASSERT_FALSE(o.caught.empty()) << "the attack never got hold of the runtime: " << o.details;
    EXPECT_NE(o.result, "wrote") << o.details;
    EXPECT_FALSE(o.result.empty()) << o.details;
    EXPECT_EQ(o.digest_after, o.digest_before) << "the runtime binary was modified! " << o.details;
    if (testing_barge()) {
      // The process ran from the protected view, not from the file on the host.
      EXPECT_NE(o.caught, binary) << o.details;
    }
  }

 private:
  int attacks_ = 0;
};

TEST_F(Escape, ExecOfAProcSelfExeScriptCannotOverwriteTheRuntime) {
  std::string copy = copy_of_runtime();
  Overwrite o = attack(copy, Via::exec);
  expect_protected(o, copy);
  if (testing_barge()) {
    EXPECT_EQ(o.result, "open-failed EROFS") << o.details;
  }
}

TEST_F(Escape, ProcSelfExeEntrypointCannotOverwriteTheRuntime) {
  std::string copy = copy_of_runtime();
  Overwrite o = attack(copy, Via::run);
  expect_protected(o, copy);
  if (testing_barge()) {
    EXPECT_EQ(o.result, "open-failed EROFS") << o.details;
  }
}

// The test can fail: the same attacks overwrite barge built without the protection.
TEST_F(Escape, WithoutTheProtectionTheSameAttacksOverwriteTheRuntime) {
  if (!testing_barge()) GTEST_SKIP() << "barge_unprotected is barge's";
  for (Via via : {Via::exec, Via::run}) {
    std::string copy =
        test_dir() + "/unprotected-" + std::to_string(static_cast<int>(via)) + "/barge_unprotected";
    copy_executable(BARGE_UNPROTECTED_BINARY, copy);
    Overwrite o = attack(copy, via);
    EXPECT_EQ(o.result, "wrote") << o.details;
    EXPECT_NE(o.digest_after, o.digest_before) << o.details;
    EXPECT_EQ(slurp(copy).rfind("#!/bin/sh\necho PWNED", 0), 0u) << o.details;
  }
}

// overlayfs refuses a lower layer that is already two overlays deep, so barge falls back to the
// sealed memfd copy for a binary there, which must hold as well. The top overlay has an upper
// layer: a binary on a read-only mount needs no protection and is run as it is.
class StackedOverlay {
 public:
  explicit StackedOverlay(const std::string& dir) : dir_(dir) {
    for (const char* d : {"l1", "l2", "upper", "work", "m1", "m2"})
      fs::create_directories(dir + "/" + d);
    std::string first = "lowerdir=" + dir + "/l1:" + dir + "/l2";
    std::string second =
        "lowerdir=" + dir + "/m1,upperdir=" + dir + "/upper,workdir=" + dir + "/work";
    ok_ = ::mount("overlay", (dir + "/m1").c_str(), "overlay", 0, first.c_str()) == 0 &&
          ::mount("overlay", (dir + "/m2").c_str(), "overlay", 0, second.c_str()) == 0;
  }
  ~StackedOverlay() {
    ::umount2((dir_ + "/m2").c_str(), MNT_DETACH);
    ::umount2((dir_ + "/m1").c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }
  std::string lower() const { return dir_ + "/l1"; }
  std::string top() const { return dir_ + "/m2"; }

 private:
  std::string dir_;
  bool ok_ = false;
};

TEST_F(Escape, SealedMemfdFallbackAlsoHolds) {
  if (!testing_barge()) GTEST_SKIP() << "barge's fallback";
  StackedOverlay stack(test_dir() + "/stack");
  ASSERT_TRUE(stack.ok()) << strerror(errno);
  copy_executable(runtime_binary(), stack.lower() + "/barge");
  std::string copy = stack.top() + "/barge";
  Overwrite o = attack(copy, Via::exec);
  expect_protected(o, copy);
  EXPECT_NE(o.caught.find("memfd:"), std::string::npos) << o.details;
  EXPECT_EQ(o.result, "write-failed EPERM") << o.details;
}

// The init waiting for `start` and an exec'd process run from the protected view: even host root
// cannot open the binary behind their /proc/PID/exe for writing. The re-exec marker reaches
// neither the container's environment nor an exec'd process's.
TEST_F(Escape, ContainerProcessesRunFromTheProtectedViewAndKeepNoMarker) {
  std::string id = create_container({"sh", "-c", "env; sleep 60"});
  auto st = state(id);
  ASSERT_TRUE(st);
  const std::string exe = "/proc/" + std::to_string((*st)["pid"].get<int>()) + "/exe";
  if (testing_barge()) {
    std::error_code ec;
    EXPECT_NE(fs::read_symlink(exe, ec), fs::path(runtime_binary())) << ec.message();
    UniqueFd writable(::open(exe.c_str(), O_WRONLY | O_CLOEXEC));
    EXPECT_FALSE(writable.valid());
    EXPECT_EQ(errno, EROFS) << strerror(errno);
  }
  ProcResult exec = runtime({"exec", id, "env"});
  ASSERT_EQ(exec.status, 0) << exec.describe();
  EXPECT_EQ(exec.out.find("_BARGE"), std::string::npos) << exec.out;
  std::string run_id;
  ProcResult run = run_container({"env"}, {}, &run_id);
  ASSERT_EQ(run.status, 0) << run.describe();
  EXPECT_EQ(run.out.find("_BARGE"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("PATH="), std::string::npos) << run.out;
}

// ---- the runtime's own processes -------------------------------------------------------------

ConfigEdit join_pid_namespace_of(int pid) {
  return [pid](Json& c) {
    for (auto& ns : c["linux"]["namespaces"])
      if (ns["type"] == "pid") ns["path"] = "/proc/" + std::to_string(pid) + "/ns/pid";
  };
}

struct Inspected {
  std::string name, exe, mem, fd, ptrace;
};

// escape_probe inspect-others output, by pid.
std::map<int, Inspected> parse_inspection(const std::string& out) {
  std::map<int, Inspected> by_pid;
  for (const auto& line : split_lines(out)) {
    auto words = split_words(line);
    if (words.size() != 6) continue;
    auto value = [&](size_t i) { return words[i].substr(words[i].find('=') + 1); };
    by_pid[std::stoi(words[0])] = {words[1], value(2), value(3), value(4), value(5)};
  }
  return by_pid;
}

// A created container's init is a runtime process (barge's image, before its execve) sitting in
// the container's pid namespace until `start`. A second container sharing that pid namespace
// tries to trace it and to open its exe, mem and fd directory: all refused, because the init is
// not dumpable. Its capabilities are already the configured ones by then, so nothing else stands
// in the way: the same probes reach the attacker's own pid 1 (the control).
TEST_F(Escape, ARuntimeProcessInThePidNamespaceCannotBeTracedOrOpened) {
  std::string attacker = new_id();
  Bundle a = make_bundle(attacker, {"sleep", "600"});
  install_probe(a);
  ASSERT_EQ(runtime({"create", "--bundle", a.dir, attacker}).status, 0);
  ASSERT_EQ(runtime({"start", attacker}).status, 0);
  auto st = state(attacker);
  ASSERT_TRUE(st);
  std::string waiting = new_id();
  Bundle w = make_bundle(waiting, {"true"}, join_pid_namespace_of((*st)["pid"].get<int>()));
  ProcResult created = runtime({"create", "--bundle", w.dir, waiting});
  ASSERT_EQ(created.status, 0) << created.describe();

  ProcResult r = runtime({"exec", attacker, "/escape_probe", "inspect-others"});
  ASSERT_EQ(r.status, 0) << r.describe();
  auto seen = parse_inspection(r.out);
  ASSERT_EQ(seen.size(), 2u) << r.out;
  ASSERT_TRUE(seen.count(1)) << r.out;
  for (const auto& probe : {seen[1].exe, seen[1].mem, seen[1].fd, seen[1].ptrace})
    EXPECT_EQ(probe, "ok") << r.out;
  for (const auto& [pid, probe] : seen) {
    if (pid == 1) continue;
    EXPECT_NE(probe.name, "sleep") << r.out;
    EXPECT_NE(probe.exe, "ok") << r.out;
    EXPECT_NE(probe.mem, "ok") << r.out;
    EXPECT_NE(probe.fd, "ok") << r.out;
    EXPECT_EQ(probe.ptrace, "EPERM") << r.out;
  }
}

// ---- what the default spec (`barge spec`) denies ---------------------------------------------

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

class DefaultSpecEscape : public Escape {
 protected:
  // A bundle whose config is what `barge spec` writes (also when the runtime under test is
  // another one), with our args, no terminal and the test's cgroup path.
  ConfigEdit barge_spec(const ConfigEdit& extra = {}) {
    const std::string dir = test_dir() + "/spec-" + std::to_string(++specs_);
    fs::create_directories(dir);
    ProcResult spec = run_process({BARGE_BINARY, "spec", "--bundle", dir});
    EXPECT_EQ(spec.status, 0) << spec.describe();
    Json base = Json::parse(slurp(dir + "/config.json"));
    return [base, extra](Json& config) {
      Json out = base;
      out["process"]["args"] = config["process"]["args"];
      out["process"]["terminal"] = false;
      out["linux"]["cgroupsPath"] = config["linux"]["cgroupsPath"];
      config = out;
      if (extra) extra(config);
    };
  }
  ProcResult run_probe(const std::vector<std::string>& args, const ConfigEdit& edit,
                       const std::vector<std::string>& flags = {}) {
    std::string id = new_id();
    Bundle b = make_bundle(id, args, edit);
    install_probe(b);
    std::vector<std::string> argv{"run"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.insert(argv.end(), {"--bundle", b.dir, id});
    return runtime(argv);
  }

 private:
  int specs_ = 0;
};

std::string host_hostname() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

const std::string kPrivilegedScript =
    "/escape_probe syscall kexec_load; /escape_probe syscall init_module;"
    "/escape_probe syscall mount; /escape_probe syscall keyctl-session;"
    "mount -t tmpfs none /tmp 2>/dev/null && echo busybox-mount=ok || echo busybox-mount=denied;"
    "try() { (echo \"$2\" > \"$1\") 2>/dev/null && echo \"$1=written\" || echo \"$1=denied\"; };"
    "try /proc/sys/kernel/core_pattern '|/escape_probe'; try /proc/sysrq-trigger h;"
    "try /proc/sys/kernel/hostname pwned; try /proc/self/attr/current unconfined;"
    "try /proc/self/attr/exec unconfined; hostname pwned 2>/dev/null; echo hostname=$(hostname)";

// /proc/self/attr: this host runs no LSM, so the kernel refuses every label whatever the spec
// says; those two lines only prove something on a host with AppArmor or SELinux.
TEST_F(DefaultSpecEscape, PrivilegedSyscallsAndProcWritesAreDenied) {
  const std::string core_pattern = slurp("/proc/sys/kernel/core_pattern");
  const std::string hostname = host_hostname();
  ProcResult r = run_probe({"sh", "-c", kPrivilegedScript}, barge_spec());
  ASSERT_EQ(r.status, 0) << r.describe();
  for (const char* expected :
       {"kexec_load EPERM\n", "init_module EPERM\n", "mount EPERM\n", "keyctl-session EPERM\n",
        "busybox-mount=denied\n", "/proc/sys/kernel/core_pattern=denied\n",
        "/proc/sysrq-trigger=denied\n", "/proc/sys/kernel/hostname=denied\n",
        "/proc/self/attr/current=denied\n", "/proc/self/attr/exec=denied\n", "hostname=barge\n"})
    EXPECT_TRUE(contains(r.out, expected)) << expected << "\n" << r.describe();
  EXPECT_EQ(slurp("/proc/sys/kernel/core_pattern"), core_pattern);
  EXPECT_EQ(host_hostname(), hostname);
  // Control: without the seccomp filter and with the capabilities, the same probes get through
  // to the kernel (kexec_load and init_module then fail for their arguments, or ENOSYS when the
  // kernel lacks them, never EPERM), so the EPERMs above come from the spec. The read-only
  // /proc/sys stays: the host's core_pattern is not namespaced.
  ProcResult control =
      run_probe({"sh", "-c", kPrivilegedScript}, barge_spec([](Json& c) {
                  c["linux"].erase("seccomp");
                  for (const char* set : {"bounding", "effective", "permitted"})
                    for (const char* cap : {"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_MODULE"})
                      c["process"]["capabilities"][set].push_back(cap);
                }));
  ASSERT_EQ(control.status, 0) << control.describe();
  for (const char* expected : {"kexec_load EPERM", "init_module EPERM", "mount EPERM"})
    EXPECT_FALSE(contains(control.out, expected)) << expected << "\n" << control.describe();
  EXPECT_TRUE(contains(control.out, "busybox-mount=ok")) << control.describe();
  EXPECT_TRUE(contains(control.out, "/proc/sys/kernel/core_pattern=denied")) << control.describe();
  EXPECT_EQ(slurp("/proc/sys/kernel/core_pattern"), core_pattern);
  EXPECT_EQ(host_hostname(), hostname);
}

// The container joins a new session keyring (not the host's), unless --no-new-keyring.
TEST_F(DefaultSpecEscape, SessionKeyringIsTheContainersOwnUnlessNoNewKeyring) {
  long host = ::syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
  ASSERT_GT(host, 0) << strerror(errno);
  const std::string shared_line = "keyctl-session " + std::to_string(host) + "\n";
  // keyctl itself is denied by the default profile: the filter goes for this probe.
  auto no_filter = barge_spec([](Json& c) { c["linux"].erase("seccomp"); });
  ProcResult own = run_probe({"/escape_probe", "syscall", "keyctl-session"}, no_filter);
  ASSERT_EQ(own.status, 0) << own.describe();
  EXPECT_TRUE(contains(own.out, "keyctl-session ")) << own.describe();
  EXPECT_FALSE(contains(own.out, shared_line)) << "host keyring " << host << "\n" << own.describe();
  ProcResult shared =
      run_probe({"/escape_probe", "syscall", "keyctl-session"}, no_filter, {"--no-new-keyring"});
  ASSERT_EQ(shared.status, 0) << shared.describe();
  EXPECT_TRUE(contains(shared.out, shared_line)) << "host keyring " << host << "\n"
                                                 << shared.describe();
}

// ---- CVE-2024-21626: leaked fds ---------------------------------------------------------------

// Prints "inside:PATH" when the working directory is the directory PATH names inside the
// container's root, "OUTSIDE:PATH" when it is reachable only through the fd (a host directory).
const std::string kWhereAmI =
    "p=$(readlink /proc/self/cwd); a=$(stat -c %d:%i .); b=$(stat -c %d:%i \"$p\" 2>/dev/null);"
    "[ \"$a\" = \"$b\" ] && echo \"inside:$p\" || echo \"OUTSIDE:$p\"";

void expect_not_outside(const ProcResult& r, const std::string& what) {
  if (r.status != 0) return;  // refused: fine
  EXPECT_EQ(r.out.rfind("inside:", 0), 0u) << what << "\n" << r.describe();
}

// process.cwd = /proc/self/fd/N for every fd a runtime might hold open: the container either
// fails to start or works in a directory of its own root, never in a host directory.
TEST_F(Escape, LeakedFdAsTheInitsWorkingDirectoryNeverReachesTheHost) {
  for (int fd = 3; fd <= 20; ++fd) {
    const std::string cwd = "/proc/self/fd/" + std::to_string(fd);
    ProcResult r =
        run_container({"sh", "-c", kWhereAmI}, [&](Json& c) { c["process"]["cwd"] = cwd; });
    expect_not_outside(r, "process.cwd " + cwd);
  }
  // Control: the probe tells the container's own directories apart.
  ProcResult control =
      run_container({"sh", "-c", kWhereAmI}, [](Json& c) { c["process"]["cwd"] = "/etc"; });
  ASSERT_EQ(control.status, 0) << control.describe();
  EXPECT_EQ(control.out, "inside:/etc\n");
}

TEST_F(Escape, LeakedFdAsAnExecsWorkingDirectoryNeverReachesTheHost) {
  std::string id = create_container({"sleep", "600"});
  ASSERT_EQ(runtime({"start", id}).status, 0);
  for (int fd = 3; fd <= 20; ++fd) {
    const std::string cwd = "/proc/self/fd/" + std::to_string(fd);
    ProcResult r = runtime({"exec", "--cwd", cwd, id, "sh", "-c", kWhereAmI});
    expect_not_outside(r, "exec --cwd " + cwd);
  }
  ProcResult control = runtime({"exec", "--cwd", "/etc", id, "sh", "-c", kWhereAmI});
  ASSERT_EQ(control.status, 0) << control.describe();
  EXPECT_EQ(control.out, "inside:/etc\n");
}

// Every fd above 2 in the container's processes is one the caller asked to pass: the init of a
// created-then-started container (Isolation.NoFdLeaks covers `run`) and an exec'd process with
// --preserve-fds. Two fds reach the runtime each time; one is preserved for exec, none for init.
TEST_F(Escape, OnlyPreservedFdsReachTheInitAndExecdProcesses) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  UniqueFd pipe_r(pipe_fds[0]), pipe_w(pipe_fds[1]);
  UniqueFd dir(::open(test_dir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  const std::vector<int> extra{dir.get(), pipe_r.get()};
  const std::string init_out = test_dir() + "/init.out";
  std::string id = create_container({"sh", "-c", "ls /proc/self/fd | tr '\\n' ' '; sleep 600"}, {},
                                    {.stdout_file = init_out, .extra_fds = extra});
  ASSERT_EQ(runtime({"start", id}, {.extra_fds = extra}).status, 0);
  // 0 1 2 and the fd ls itself opens on /proc/self/fd.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (slurp(init_out).empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(trim(slurp(init_out)), "0 1 2 3");
  ProcResult exec = runtime({"exec", "--preserve-fds", "1", id, "sh", "-c",
                             "ls /proc/self/fd | tr '\\n' ' '; echo; readlink /proc/self/fd/3"},
                            {.extra_fds = extra});
  ASSERT_EQ(exec.status, 0) << exec.describe();
  auto lines = split_lines(exec.out);
  ASSERT_EQ(lines.size(), 2u) << exec.describe();
  EXPECT_EQ(trim(lines[0]), "0 1 2 3 4") << exec.describe();
  // fd 3 is the directory the caller passed on purpose (the only way a host directory gets in).
  EXPECT_EQ(lines[1], test_dir()) << exec.describe();
}

// ---- hostile rootfs: symlinks where masked/readonly paths and mount targets go ----------------

// A host directory that a mount through a symlink would land on. It is a shared tmpfs mount and
// the containers use rootfsPropagation rshared, so a mount that lands on it inside a container's
// mount namespace propagates back and shows in the host's mountinfo (with the host's private
// root, it would otherwise stay invisible to the host). Also checked: its contents, that it is
// still writable, and the host's root mount options.
class HostTarget {
 public:
  explicit HostTarget(const std::string& path) : dir(path) {
    fs::create_directories(dir);
    mounted_ = ::mount("barge-escape-target", dir.c_str(), "tmpfs", 0, "size=64k") == 0 &&
               ::mount(nullptr, dir.c_str(), nullptr, MS_SHARED, nullptr) == 0;
    std::ofstream(dir + "/canary") << "host data\n";
    root_options_ = root_mount_options();
  }
  ~HostTarget() {
    while (::umount2(dir.c_str(), MNT_DETACH) == 0) {
    }
  }
  HostTarget(const HostTarget&) = delete;
  HostTarget& operator=(const HostTarget&) = delete;

  bool ok() const { return mounted_; }
  static void share_mounts_with_host(Json& config) {
    config["linux"]["rootfsPropagation"] = "rshared";
  }
  void expect_intact(const std::string& context) const {
    EXPECT_EQ(mounts_mentioning(dir).size(), 1u) << "a mount landed on the host directory\n"
                                                 << context;
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename());
    EXPECT_EQ(names, std::vector<std::string>{"canary"}) << context;
    EXPECT_EQ(slurp(dir + "/canary"), "host data\n") << context;
    std::ofstream probe(dir + "/writable");
    EXPECT_TRUE(probe.good()) << "host directory made read-only? " << context;
    probe.close();
    fs::remove(dir + "/writable");
    EXPECT_EQ(root_mount_options(), root_options_) << context;
  }

  const std::string dir;

 private:
  static std::string root_mount_options() {
    for (const auto& line : split_lines(slurp("/proc/self/mountinfo"))) {
      auto w = split_words(line);
      if (w.size() > 5 && w[4] == "/") return w[5];
    }
    return "?";
  }
  bool mounted_ = false;
  std::string root_options_;
};

// rootfs entries that are symlinks out of the container: absolute to the host directory,
// relative with enough .. to climb out of the rootfs, and to /.
void plant_escaping_links(const Bundle& b, const std::string& prefix, const std::string& target) {
  fs::create_symlink(target, b.rootfs() + "/" + prefix + "-abs");
  fs::create_symlink("../../../../../../../../../../.." + target,
                     b.rootfs() + "/" + prefix + "-rel");
  fs::create_symlink("/", b.rootfs() + "/" + prefix + "-root");
}

// Control for the three tests below: a mount that does land on the host directory (here on
// purpose, through a bind mount of it and CAP_SYS_ADMIN) is seen by HostTarget.
TEST_F(Escape, HostTargetSeesAMountThatLandsOnIt) {
  HostTarget target(test_dir() + "/host-target");
  ASSERT_TRUE(target.ok()) << strerror(errno);
  ProcResult r = run_container({"mount", "-t", "tmpfs", "landed", "/shared"}, [&](Json& c) {
    HostTarget::share_mounts_with_host(c);
    c["mounts"].push_back({{"destination", "/shared"},
                           {"type", "bind"},
                           {"source", target.dir},
                           {"options", {"rbind", "rw"}}});
    for (const char* set : {"bounding", "effective", "permitted"})
      c["process"]["capabilities"][set].push_back("CAP_SYS_ADMIN");
  });
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(mounts_mentioning(target.dir).size(), 2u) << r.describe();
  EXPECT_FALSE(path_exists(target.dir + "/canary"));
}

TEST_F(Escape, MaskedAndReadonlyPathsThroughSymlinksStayInsideTheContainer) {
  HostTarget target(test_dir() + "/host-target");
  ASSERT_TRUE(target.ok()) << strerror(errno);
  std::string id = new_id();
  Bundle b = make_bundle(id, {"sh", "-c", "cat /masked-abs/canary /ro-rel/canary 2>&1; echo ran"},
                         [](Json& c) {
                           HostTarget::share_mounts_with_host(c);
                           for (const char* suffix : {"-abs", "-rel", "-root"}) {
                             c["linux"]["maskedPaths"].push_back(std::string("/masked") + suffix);
                             c["linux"]["readonlyPaths"].push_back(std::string("/ro") + suffix);
                           }
                         });
  plant_escaping_links(b, "masked", target.dir);
  plant_escaping_links(b, "ro", target.dir);
  ProcResult r = runtime({"run", "--bundle", b.dir, id});
  target.expect_intact(r.describe());
  // Whether it ran or refused, the container never read the host's file through the links.
  EXPECT_FALSE(contains(r.out, "host data")) << r.describe();
}

TEST_F(Escape, BindMountDestinationThroughASymlinkStaysInsideTheContainer) {
  HostTarget target(test_dir() + "/host-target");
  ASSERT_TRUE(target.ok()) << strerror(errno);
  const std::string volume = test_dir() + "/volume";
  fs::create_directories(volume);
  std::ofstream(volume + "/from-volume") << "volume\n";
  for (const char* suffix : {"-abs", "-rel", "-root"}) {
    std::string id = new_id();
    Bundle b =
        make_bundle(id, {"sh", "-c", "ls / /data-abs /data-rel 2>&1; echo ran"}, [&](Json& c) {
          HostTarget::share_mounts_with_host(c);
          c["mounts"].push_back({{"destination", std::string("/data") + suffix},
                                 {"type", "bind"},
                                 {"source", volume},
                                 {"options", {"rbind", "ro"}}});
        });
    plant_escaping_links(b, "data", target.dir);
    ProcResult r = runtime({"run", "--bundle", b.dir, id});
    target.expect_intact(std::string("destination /data") + suffix + "\n" + r.describe());
    // The volume is not mounted over the container's root either.
    if (r.status == 0) {
      EXPECT_FALSE(contains(r.out, "from-volume\nbin")) << r.describe();
    }
  }
}

// A host-side process flips a mount destination between a directory and a symlink to a host
// directory while containers are created (two containers sharing a volume can do this to each
// other: CVE-2021-30465). The mount must never land on the host directory.
TEST_F(Escape, MountDestinationSwappedForASymlinkDuringCreateStaysInside) {
  HostTarget target(test_dir() + "/host-target");
  ASSERT_TRUE(target.ok()) << strerror(errno);
  const std::string volume = test_dir() + "/volume";
  fs::create_directories(volume);
  std::ofstream(volume + "/from-volume") << "volume\n";
  for (int round = 0; round < 10; ++round) {
    std::string id = new_id();
    Bundle b = make_bundle(id, {"true"}, [&](Json& c) {
      HostTarget::share_mounts_with_host(c);
      c["mounts"].push_back({{"destination", "/data"},
                             {"type", "bind"},
                             {"source", volume},
                             {"options", {"rbind", "ro"}}});
    });
    const std::string data = b.rootfs() + "/data", link = b.rootfs() + "/data-link",
                      dir = b.rootfs() + "/data-dir";
    fs::create_directories(dir);
    fs::create_symlink(target.dir, link);
    std::atomic<bool> stop{false};
    std::thread swapper([&] {
      bool as_link = false;
      while (!stop) {
        // rename(2) swaps atomically: /data is always either the directory or the symlink.
        ::rename((as_link ? link : dir).c_str(), data.c_str());
        ::rename(data.c_str(), (as_link ? link : dir).c_str());
        as_link = !as_link;
      }
    });
    ProcResult r = runtime({"run", "--bundle", b.dir, id});
    stop = true;
    swapper.join();
    target.expect_intact("round " + std::to_string(round) + "\n" + r.describe());
  }
}

// ---- what a container sees of the host --------------------------------------------------------

std::vector<std::string> interface_names(const std::string& proc_net_dev) {
  std::vector<std::string> names;
  for (const auto& line : split_lines(proc_net_dev)) {
    auto colon = line.find(':');
    if (colon != std::string::npos) names.push_back(trim(line.substr(0, colon)));
  }
  return names;
}

TEST_F(Escape, HostNetworkInterfacesAndProcessesAreInvisible) {
  auto host = interface_names(slurp("/proc/net/dev"));
  ASSERT_GT(host.size(), 1u) << "the host has only lo: nothing to hide";
  const std::string script =
      "cat /proc/net/dev; echo ---; cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '";
  ProcResult r = run_container({"sh", "-c", script});
  ASSERT_EQ(r.status, 0) << r.describe();
  auto split = r.out.find("---\n");
  ASSERT_NE(split, std::string::npos) << r.describe();
  EXPECT_EQ(interface_names(r.out.substr(0, split)), std::vector<std::string>{"lo"}) << r.out;
  const std::string self = fs::read_symlink("/proc/self/exe").filename();
  EXPECT_FALSE(contains(r.out.substr(split), self)) << r.out;
  // Control: without the network and pid namespaces both show up.
  ProcResult shared = run_container({"sh", "-c", script}, [](Json& c) {
    auto& ns = c["linux"]["namespaces"];
    Json kept = Json::array();
    for (const auto& n : ns)
      if (n["type"] != "network" && n["type"] != "pid") kept.push_back(n);
    ns = kept;
  });
  ASSERT_EQ(shared.status, 0) << shared.describe();
  EXPECT_GT(interface_names(shared.out.substr(0, shared.out.find("---\n"))).size(), 1u)
      << shared.out;
  EXPECT_TRUE(contains(shared.out, self)) << shared.out;
}

}  // namespace
}  // namespace barge::test

// Proof with the real client: a private containerd (Debian's 1.6, its own root, state, socket and
// config.toml under a temp dir, CRI and unused plugins off) whose runc shim
// (containerd-shim-runc-v2) drives the runtime under test through `ctr run --runc-binary`, with a
// private runtime root (`--runc-root`). The image is the busybox test image built by
// tests/make-image.py and imported with `ctr images import`.
//
// Runtime under test: BARGE_BINARY, or BARGE_TEST_RUNTIME (runc is the oracle: everything here
// must hold for it too). BARGE_RECORD_ARGV=LOG wraps the runtime so that every argv the shim passes
// is appended to LOG (see argv_fixture_test.cpp for turning it into the fixture).
//
// Every container id is checked after deletion: no mount of its containerd bundle, no bundle dir,
// no cgroup dir <namespace>/<id> in any hierarchy, no runtime state dir, no shim process, no shim
// socket. The daemon, its shims and everything they made are removed when the suite ends, also
// after failures.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "image/digest.hpp"
#include "tests/integration/harness.hpp"

extern char** environ;

namespace barge::test {
namespace {

namespace fs = std::filesystem;

constexpr const char* kImage = "docker.io/library/barge-busybox:ctrd";
constexpr const char* kShimSocketDir = "/run/containerd/s";
constexpr const char* kRequiredBinaries[] = {"/usr/bin/containerd", "/usr/bin/ctr",
                                             "/usr/bin/containerd-shim-runc-v2", "/usr/bin/script"};

// Everything in the image config that tests rely on (tests/make-image.py image_config).
constexpr const char* kImageCmdOutput = "hello-from-image\n0\n/data\n";

std::string shell_quote(const std::string& word) {
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string join_quoted(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + shell_quote(a);
  return out;
}

std::string without_cr(std::string text) {
  text.erase(std::remove(text.begin(), text.end(), '\r'), text.end());
  return text;
}

std::string tail_of(const std::string& path, size_t bytes = 4000) {
  std::string text = slurp(path);
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

template <typename Predicate>
bool eventually(Predicate done, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// A long-running child (the daemon, `ctr events`) with stdin from /dev/null and stdout+stderr
// appended to a file; SIGTERM then SIGKILL when stopped or destroyed.
class Background {
 public:
  Background() = default;
  Background(std::vector<std::string> args, const std::string& output) { spawn(args, output); }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  ~Background() { stop(); }

  void spawn(std::vector<std::string> args, const std::string& output) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, output.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = posix_spawn(&pid_, argv[0], &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
      pid_ = -1;
      throw std::runtime_error("posix_spawn " + args[0] + ": " + strerror(rc));
    }
  }

  // True (and reaped) once the child has exited.
  bool exited() {
    if (pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == pid_) pid_ = -1;
    return pid_ <= 0;
  }

  void stop() {
    if (exited()) return;
    kill(pid_, SIGTERM);
    if (!eventually([&] { return exited(); })) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

 private:
  pid_t pid_ = -1;
};

// ---- the private daemon ----------------------------------------------------------------------

class Containerd {
 public:
  // "" when the suite can run here, else why not.
  static std::string unavailable_reason() {
    if (geteuid() != 0) return "the containerd suite needs root";
    for (const char* bin : kRequiredBinaries) {
      if (access(bin, X_OK) != 0) return std::string(bin) + " is not installed";
    }
    return "";
  }

  void start() {
    dir_ = base_temp_dir() + "/containerd";
    fs::create_directories(dir_);
    address_ = dir_ + "/containerd.sock";
    namespace_ = "barge-" + std::to_string(getpid());
    runtime_root_ = dir_ + "/runtime-root";
    // Host dirs the shim may create: its sockets, and its default runtime root when it cleans up
    // after a failed create. Those that are new are removed (when empty) at the end.
    const std::vector<std::string> host_dirs{"/run/containerd", kShimSocketDir,
                                             "/run/containerd/runc",
                                             "/run/containerd/runc/" + namespace_};
    for (const auto& dir : host_dirs) {
      if (!path_exists(dir)) new_host_dirs_.insert(new_host_dirs_.begin(), dir);
    }
    runtime_ = runtime_binary();
    if (const char* log = std::getenv("BARGE_RECORD_ARGV"); log && *log) wrap_runtime(log);
    write_config();
    spawn_daemon();
    wait_until_serving();
    import_image();
  }

  // Safe to call after a failed start: ends everything the daemon and its shims left.
  void stop() {
    if (dir_.empty()) return;
    if (!daemon_.exited()) remove_all_containers();
    daemon_.stop();
    for (int pid : all_shim_pids()) kill(pid, SIGKILL);
    kill_processes_mentioning(runtime_root_);
    for (const auto& id : runtime_state_ids()) {
      run_process({runtime_, "--root", runtime_root_ + "/" + namespace_, "delete", "--force", id});
      remove_cgroup_dirs(namespace_ + "/" + id);
      unlink(shim_socket(id).c_str());
    }
    for (const auto& dir : cgroup_dirs(namespace_)) rmdir(dir.c_str());
    for (const auto& dir : new_host_dirs_) rmdir(dir.c_str());  // deepest first
  }

  // The complete ctr command line for args (our socket and namespace).
  std::vector<std::string> ctr_argv(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{"/usr/bin/ctr", "--address", address_, "--namespace", namespace_};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  ProcResult ctr(const std::vector<std::string>& args, const ProcOptions& options = {}) const {
    return run_process(ctr_argv(args), options);
  }

  // `ctr run` with the runtime under test and its private root; flags go before the image.
  std::vector<std::string> run_argv(const std::vector<std::string>& flags, const std::string& id,
                                    const std::vector<std::string>& command = {}) const {
    std::vector<std::string> argv{"run",         "--runc-binary", runtime_,      "--runc-root",
                                  runtime_root_, "--fifo-dir",    dir_ + "/fifo"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.push_back(kImage);
    argv.push_back(id);
    argv.insert(argv.end(), command.begin(), command.end());
    return argv;
  }

  std::vector<std::string> exec_argv(const std::vector<std::string>& flags, const std::string& id,
                                     const std::string& exec_id,
                                     const std::vector<std::string>& command) const {
    std::vector<std::string> argv{"task",         "exec",      "--fifo-dir",
                                  dir_ + "/fifo", "--exec-id", exec_id};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.push_back(id);
    argv.insert(argv.end(), command.begin(), command.end());
    return argv;
  }

  // The ctr command line as one shell word list, for script(1), which gives ctr a pty.
  std::string ctr_command_line(const std::vector<std::string>& args) const {
    return join_quoted(ctr_argv(args));
  }

  std::string cgroup_rel(const std::string& id) const { return namespace_ + "/" + id; }
  std::string bundle(const std::string& id) const {
    return dir_ + "/state/io.containerd.runtime.v2.task/" + namespace_ + "/" + id;
  }
  std::string rootfs(const std::string& id) const { return bundle(id) + "/rootfs"; }
  std::string runtime_state(const std::string& id) const {
    return runtime_root_ + "/" + namespace_ + "/" + id;
  }
  // containerd 1.6: unix:///run/containerd/s/sha256(<address>/<namespace>/<id>).
  std::string shim_socket(const std::string& id) const {
    return std::string(kShimSocketDir) + "/" +
           image::sha256_of(address_ + "/" + namespace_ + "/" + id).substr(7);
  }
  // Shims carry "-namespace NS -id ID -address ADDRESS" (cmdline NULs read as spaces).
  std::vector<int> shim_pids(const std::string& id) const {
    return pids_mentioning(" -namespace " + namespace_ + " -id " + id + " -address " + address_ +
                           " ");
  }
  std::vector<int> all_shim_pids() const { return pids_mentioning(" -address " + address_ + " "); }
  std::vector<std::string> runtime_state_ids() const {
    std::vector<std::string> ids;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(runtime_root_ + "/" + namespace_, ec)) {
      ids.push_back(e.path().filename().string());
    }
    return ids;
  }
  std::string log_tail() const { return tail_of(dir_ + "/containerd.log"); }
  const std::string& dir() const { return dir_; }

 private:
  void wrap_runtime(const std::string& log) {
    const std::string wrapper = dir_ + "/runtime-argv-recorder";
    auto r = run_process({"/usr/bin/python3", std::string(BARGE_TEST_SCRIPTS) + "/argv-fixture.py",
                          "wrap", wrapper, log, runtime_});
    if (r.status != 0) throw std::runtime_error("argv-fixture.py wrap failed: " + r.describe());
    runtime_ = wrapper;
  }

  void write_config() const {
    std::ofstream out(dir_ + "/config.toml");
    out << "version = 2\n"
        << "root = \"" << dir_ << "/root\"\n"
        << "state = \"" << dir_
        << "/state\"\n"
        // Only what ctr run needs: no CRI, no /opt/containerd (opt), no other snapshotters.
        << "disabled_plugins = [\"io.containerd.grpc.v1.cri\", \"io.containerd.internal.v1.opt\", "
           "\"io.containerd.snapshotter.v1.aufs\", \"io.containerd.snapshotter.v1.btrfs\", "
           "\"io.containerd.snapshotter.v1.devmapper\", \"io.containerd.snapshotter.v1.zfs\", "
           "\"io.containerd.snapshotter.v1.native\", \"io.containerd.tracing.processor.v1.otlp\", "
           "\"io.containerd.internal.v1.tracing\"]\n"
        << "[grpc]\n  address = \"" << address_ << "\"\n"
        << "[plugins.\"io.containerd.gc.v1.scheduler\"]\n  deletion_threshold = 0\n";
  }

  void spawn_daemon() {
    daemon_.spawn({"/usr/bin/containerd", "--config", dir_ + "/config.toml"},
                  dir_ + "/containerd.log");
  }

  void wait_until_serving() {
    bool ready = eventually(
        [&] { return daemon_.exited() || (path_exists(address_) && ctr({"version"}).status == 0); },
        30s);
    if (!ready || daemon_.exited()) {
      throw std::runtime_error("containerd did not come up:\n" + log_tail());
    }
  }

  void import_image() const {
    const std::string tar = dir_ + "/busybox.tar";
    auto made = run_process({"/usr/bin/python3", std::string(BARGE_TEST_SCRIPTS) + "/make-image.py",
                             "busybox", tar, "--format", "docker", "--tar", "--name", kImage},
                            {.timeout = 120s});
    if (made.status != 0) throw std::runtime_error("make-image.py failed: " + made.describe());
    auto imported = ctr({"images", "import", tar}, {.timeout = 120s});
    if (imported.status != 0) throw std::runtime_error("ctr import: " + imported.describe());
  }

  void remove_all_containers() const {
    for (const auto& id : split_words(ctr({"containers", "list", "--quiet"}).out)) {
      ctr({"task", "kill", "--all", "--signal", "SIGKILL", id});
      ctr({"task", "delete", "--force", id}, {.timeout = 20s});
      ctr({"containers", "delete", id}, {.timeout = 20s});
    }
  }

  std::string dir_, address_, namespace_, runtime_root_, runtime_;
  Background daemon_;
  std::vector<std::string> new_host_dirs_;
};

// ---- fixture -----------------------------------------------------------------------------------

struct TaskInfo {
  int pid = 0;
  std::string status;  // RUNNING, PAUSED, STOPPED, "" when there is no task
};

class ContainerdTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_reason_ = Containerd::unavailable_reason();
    if (!skip_reason_.empty()) return;
    daemon_ = std::make_unique<Containerd>();
    try {
      daemon_->start();
    } catch (const std::exception& e) {
      start_error_ = e.what();
    }
  }

  static void TearDownTestSuite() {
    if (daemon_) daemon_->stop();
    daemon_.reset();
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_TRUE(start_error_.empty()) << start_error_;
  }

  void TearDown() override {
    if (!daemon_ || !start_error_.empty()) return;
    auto existing = split_words(ctr({"containers", "list", "--quiet"}).out);
    for (const auto& id : ids_) {
      if (std::find(existing.begin(), existing.end(), id) == existing.end()) continue;
      ctr({"task", "kill", "--all", "--signal", "SIGKILL", id});
      ctr({"task", "delete", "--force", id}, {.timeout = 20s});
      ctr({"containers", "delete", id}, {.timeout = 20s});
    }
    for (const auto& id : ids_) {
      for (const auto& problem : leftovers(id)) ADD_FAILURE() << "leftover after test: " << problem;
    }
    if (HasFailure()) std::cerr << "--- containerd log (tail) ---\n" << d().log_tail() << "\n";
  }

  static const Containerd& d() { return *daemon_; }

  std::string new_id() {
    static int counter = 0;
    ids_.push_back("c" + std::to_string(getpid()) + "-" + std::to_string(++counter));
    return ids_.back();
  }

  ProcResult ctr(const std::vector<std::string>& args, const ProcOptions& options = {}) const {
    return d().ctr(args, options);
  }
  ProcResult run(const std::vector<std::string>& flags, const std::string& id,
                 const std::vector<std::string>& command = {}) const {
    return ctr(d().run_argv(flags, id, command), {.timeout = 60s});
  }
  // A detached container running command; asserts it started.
  std::string start_detached(const std::vector<std::string>& command,
                             const std::vector<std::string>& flags = {}) {
    std::string id = new_id();
    std::vector<std::string> all_flags{"--detach", "--null-io"};
    all_flags.insert(all_flags.end(), flags.begin(), flags.end());
    auto r = run(all_flags, id, command);
    EXPECT_EQ(r.status, 0) << "ctr run -d " << id << ": " << r.describe();
    return id;
  }
  ProcResult exec(const std::string& id, const std::string& exec_id,
                  const std::vector<std::string>& command,
                  const std::vector<std::string>& flags = {}) const {
    return ctr(d().exec_argv(flags, id, exec_id, command), {.timeout = 30s});
  }

  TaskInfo task(const std::string& id) const {
    for (const auto& line : split_lines(ctr({"task", "list"}).out)) {
      auto words = split_words(line);
      if (words.size() == 3 && words[0] == id) return {std::atoi(words[1].c_str()), words[2]};
    }
    return {};
  }
  std::string wait_for_task_status(const std::string& id, const std::string& want) const {
    std::string last;
    eventually([&] { return (last = task(id).status) == want; });
    return last;
  }

  // The container's cgroup directory in the hierarchy that has file (v1 controller or unified).
  std::string cgroup_file(const std::string& id, const std::string& file) const {
    for (const auto& dir : cgroup_dirs(d().cgroup_rel(id))) {
      if (path_exists(dir + "/" + file)) return dir + "/" + file;
    }
    return "";
  }

  std::vector<std::string> leftovers(const std::string& id) const {
    std::vector<std::string> problems;
    // The shim exits asynchronously after the task is deleted.
    eventually([&] { return d().shim_pids(id).empty() && !path_exists(d().shim_socket(id)); });
    for (int pid : d().shim_pids(id)) problems.push_back("shim process " + std::to_string(pid));
    if (path_exists(d().shim_socket(id))) problems.push_back("shim socket " + d().shim_socket(id));
    for (const auto& line : mounts_mentioning(d().bundle(id))) problems.push_back("mount: " + line);
    if (path_exists(d().bundle(id))) problems.push_back("bundle dir: " + d().bundle(id));
    for (const auto& dir : cgroup_dirs(d().cgroup_rel(id))) problems.push_back("cgroup: " + dir);
    if (path_exists(d().runtime_state(id))) {
      problems.push_back("runtime state dir: " + d().runtime_state(id));
    }
    return problems;
  }

 private:
  static inline std::unique_ptr<Containerd> daemon_;
  static inline std::string skip_reason_;
  static inline std::string start_error_;
  std::vector<std::string> ids_;
};

// ---- tests -------------------------------------------------------------------------------------

TEST_F(ContainerdTest, RunsToCompletionWithExitCodeAndStdout) {
  auto id = new_id();
  auto r = run({"--rm"}, id, {"sh", "-c", "echo out-$((6 * 7)); echo to-stderr >&2; exit 5"});
  EXPECT_EQ(r.status, 5) << r.describe();
  EXPECT_EQ(r.out, "out-42\n") << r.describe();
  EXPECT_NE(r.err.find("to-stderr"), std::string::npos) << r.describe();

  auto ok = run({"--rm"}, new_id(), {"true"});
  EXPECT_EQ(ok.status, 0) << ok.describe();
}

TEST_F(ContainerdTest, ImageConfigGivesEntrypointCmdEnvAndCwd) {
  auto image_default = run({"--rm"}, new_id());
  EXPECT_EQ(image_default.status, 0) << image_default.describe();
  EXPECT_EQ(image_default.out, kImageCmdOutput) << image_default.describe();

  auto env_cwd = run({"--rm", "--env", "EXTRA=from-ctr"}, new_id(),
                     {"sh", "-c", "echo $FOO $EXTRA; pwd; echo $PATH"});
  EXPECT_EQ(env_cwd.status, 0) << env_cwd.describe();
  EXPECT_EQ(env_cwd.out,
            "bar from-ctr\n/data\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n")
      << env_cwd.describe();

  auto cwd_flag = run({"--rm", "--cwd", "/etc"}, new_id(), {"pwd"});
  EXPECT_EQ(cwd_flag.out, "/etc\n") << cwd_flag.describe();
}

TEST_F(ContainerdTest, ExecJoinsTheRunningContainer) {
  auto id = start_detached({"sleep", "1000"});
  auto t = task(id);
  ASSERT_EQ(t.status, "RUNNING");
  ASSERT_GT(t.pid, 0);
  // The leftover probes must see a live container, or their silence after delete proves nothing.
  EXPECT_EQ(d().shim_pids(id).size(), 1u);
  EXPECT_TRUE(path_exists(d().shim_socket(id))) << d().shim_socket(id);
  EXPECT_FALSE(mounts_mentioning(d().bundle(id)).empty());
  EXPECT_FALSE(cgroup_dirs(d().cgroup_rel(id)).empty());
  EXPECT_TRUE(path_exists(d().runtime_state(id)));

  auto simple = exec(id, "e1", {"sh", "-c", "echo exec-out; echo $FOO; pwd; exit 7"});
  EXPECT_EQ(simple.status, 7) << simple.describe();
  EXPECT_EQ(simple.out, "exec-out\nbar\n/data\n") << simple.describe();

  // Same namespaces and cgroup as the container's init, as the kernel reports them.
  const std::vector<std::string> kinds{"pid", "mnt", "net", "ipc", "uts"};
  std::string script;
  for (const auto& ns : kinds) script += "readlink /proc/self/ns/" + ns + "; ";
  script += "grep memory /proc/self/cgroup";
  auto joined = exec(id, "e2", {"sh", "-c", script});
  ASSERT_EQ(joined.status, 0) << joined.describe();
  auto lines = split_lines(joined.out);
  ASSERT_EQ(lines.size(), kinds.size() + 1) << joined.describe();
  for (size_t i = 0; i < kinds.size(); ++i) {
    EXPECT_EQ(lines[i], ns_link(std::to_string(t.pid), kinds[i])) << kinds[i];
  }
  EXPECT_NE(lines.back().find("/" + d().cgroup_rel(id)), std::string::npos) << lines.back();

  auto as_user = exec(id, "e4", {"sh", "-c", "id -u; id -g"}, {"--user", "app"});
  EXPECT_EQ(as_user.out, "1000\n1000\n") << as_user.describe();
  auto signalled = exec(id, "e5", {"sh", "-c", "kill -9 $$"});
  EXPECT_EQ(signalled.status, 128 + SIGKILL) << signalled.describe();

  auto missing = exec(id, "e3", {"/no/such/binary"});
  EXPECT_NE(missing.status, 0) << missing.describe();
  EXPECT_EQ(task(id).status, "RUNNING") << "a failed exec must not hurt the container";
}

TEST_F(ContainerdTest, PsListsTheContainersProcesses) {
  auto id = start_detached({"sleep", "1000"});
  auto background = exec(id, "bg", {"sleep", "999"}, {"--detach"});
  ASSERT_EQ(background.status, 0) << background.describe();
  const std::string procs = cgroup_file(id, "cgroup.procs");
  ASSERT_FALSE(procs.empty());
  // The kernel's list of the container's processes must match what ps reports.
  std::set<std::string> kernel;
  ASSERT_TRUE(eventually([&] {
    auto words = split_words(slurp(procs));
    kernel = std::set<std::string>(words.begin(), words.end());
    return kernel.size() == 2;
  })) << slurp(procs);
  auto ps = ctr({"task", "ps", id});
  ASSERT_EQ(ps.status, 0) << ps.describe();
  std::set<std::string> listed;
  for (const auto& line : split_lines(ps.out)) {
    auto words = split_words(line);
    if (!words.empty() && words[0] != "PID") listed.insert(words[0]);
  }
  EXPECT_EQ(listed, kernel) << ps.describe();
  EXPECT_EQ(listed.count(std::to_string(task(id).pid)), 1u) << ps.describe();
}

TEST_F(ContainerdTest, PauseFreezesAndResumeThaws) {
  // A counter the host can read through the rootfs; rename keeps every read whole.
  auto id = start_detached({"sh", "-c",
                            "i=0; while :; do i=$((i+1)); echo $i > /tmp/n.new; mv /tmp/n.new "
                            "/tmp/n; sleep 0.02; done"});
  const std::string counter = d().rootfs(id) + "/tmp/n";
  auto value = [&] { return std::atol(slurp(counter).c_str()); };
  ASSERT_TRUE(eventually([&] { return value() > 10; })) << "counter does not run";

  auto paused = ctr({"task", "pause", id});
  ASSERT_EQ(paused.status, 0) << paused.describe();
  EXPECT_EQ(task(id).status, "PAUSED");
  const std::string v1_state = cgroup_file(id, "freezer.state");
  const std::string v2_freeze = cgroup_file(id, "cgroup.freeze");
  ASSERT_FALSE(v1_state.empty() && v2_freeze.empty()) << "no freezer for " << id;
  if (!v1_state.empty()) {
    EXPECT_EQ(trim(slurp(v1_state)), "FROZEN");
  } else {
    EXPECT_EQ(trim(slurp(v2_freeze)), "1");
  }
  const long frozen_at = value();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(value(), frozen_at) << "the container made progress while paused";

  auto resumed = ctr({"task", "resume", id});
  ASSERT_EQ(resumed.status, 0) << resumed.describe();
  EXPECT_EQ(task(id).status, "RUNNING");
  if (!v1_state.empty()) {
    EXPECT_EQ(trim(slurp(v1_state)), "THAWED");
  } else {
    EXPECT_EQ(trim(slurp(v2_freeze)), "0");
  }
  EXPECT_TRUE(eventually([&] { return value() > frozen_at; })) << "no progress after resume";
}

TEST_F(ContainerdTest, KillDeliversTheSignalAndDeleteReportsTheExit) {
  auto id = start_detached({"sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.1; done"});
  const int pid = task(id).pid;
  ASSERT_TRUE(process_alive(pid));
  auto killed = ctr({"task", "kill", id});
  ASSERT_EQ(killed.status, 0) << killed.describe();
  ASSERT_EQ(wait_for_task_status(id, "STOPPED"), "STOPPED");
  EXPECT_FALSE(process_alive(pid));
  auto deleted = ctr({"task", "delete", id});
  EXPECT_EQ(deleted.status, 0) << deleted.describe();
  EXPECT_NE(deleted.err.find("exit code 42"), std::string::npos) << deleted.describe();
  auto removed = ctr({"containers", "delete", id});
  EXPECT_EQ(removed.status, 0) << removed.describe();
  for (const auto& problem : leftovers(id)) ADD_FAILURE() << problem;

  // SIGKILL to every process (kill --all), exec'd ones included.
  auto other = start_detached({"sleep", "1000"});
  ASSERT_EQ(exec(other, "bg", {"sleep", "999"}, {"--detach"}).status, 0);
  auto all = ctr({"task", "kill", "--all", "--signal", "SIGKILL", other});
  ASSERT_EQ(all.status, 0) << all.describe();
  EXPECT_EQ(wait_for_task_status(other, "STOPPED"), "STOPPED");
  EXPECT_TRUE(eventually([&] {
    return split_words(slurp(cgroup_file(other, "cgroup.procs"))).empty();
  })) << "processes left in the container's cgroup";
}

TEST_F(ContainerdTest, TerminalRun) {
  auto id = new_id();
  auto argv = d().run_argv({"--rm", "--tty"}, id,
                           {"sh", "-c", "tty; [ -t 0 ] && [ -t 1 ] && echo both-ttys; exit 3"});
  // script(1) gives ctr a pty (ctr -t puts it in raw mode and relays it through the shim).
  auto r = run_process({"/usr/bin/script", "--quiet", "--return", "--command",
                        d().ctr_command_line(argv), "/dev/null"},
                       {.timeout = 60s});
  EXPECT_EQ(r.status, 3) << r.describe();
  auto out = without_cr(r.out);
  EXPECT_NE(out.find("/dev/pts/"), std::string::npos) << r.describe();
  EXPECT_NE(out.find("both-ttys"), std::string::npos) << r.describe();
}

TEST_F(ContainerdTest, TerminalExec) {
  auto id = start_detached({"sleep", "1000"});
  auto argv = d().exec_argv({"--tty"}, id, "tty1", {"sh", "-c", "tty; exit 4"});
  auto r = run_process({"/usr/bin/script", "--quiet", "--return", "--command",
                        d().ctr_command_line(argv), "/dev/null"},
                       {.timeout = 60s});
  EXPECT_EQ(r.status, 4) << r.describe();
  EXPECT_NE(without_cr(r.out).find("/dev/pts/"), std::string::npos) << r.describe();
}

TEST_F(ContainerdTest, MemoryLimitReachesTheCgroup) {
  constexpr long kLimit = 64L << 20;
  auto id = start_detached({"sleep", "1000"}, {"--memory-limit", std::to_string(kLimit)});
  const int pid = task(id).pid;
  std::string file = cgroup_file(id, "memory.limit_in_bytes");
  if (file.empty()) file = cgroup_file(id, "memory.max");
  ASSERT_FALSE(file.empty()) << "no memory cgroup for " << id;
  EXPECT_EQ(std::atol(slurp(file).c_str()), kLimit) << file;
  auto procs = split_words(slurp(fs::path(file).parent_path().string() + "/cgroup.procs"));
  EXPECT_NE(std::find(procs.begin(), procs.end(), std::to_string(pid)), procs.end())
      << "init " << pid << " is not in " << fs::path(file).parent_path();
}

TEST_F(ContainerdTest, OutOfMemoryKillIsReportedAsAnOomEvent) {
  const std::string events_file = d().dir() + "/events-" + std::to_string(getpid());
  Background events(d().ctr_argv({"events"}), events_file);
  // The hog waits for the host's go-ahead so that the event stream is surely subscribed.
  auto id = start_detached({"sh", "-c",
                            "while [ ! -e /tmp/go ]; do sleep 0.05; done; "
                            "x=a; while :; do x=$x$x; done"},
                           {"--memory-limit", std::to_string(16L << 20)});
  ASSERT_TRUE(eventually([&] {
    return slurp(events_file).find("/tasks/start {\"container_id\":\"" + id) != std::string::npos;
  })) << slurp(events_file);
  std::ofstream(d().rootfs(id) + "/tmp/go").put('1');
  ASSERT_EQ(wait_for_task_status(id, "STOPPED"), "STOPPED");
  EXPECT_TRUE(eventually([&] {
    return slurp(events_file).find("/tasks/oom {\"container_id\":\"" + id + "\"}") !=
           std::string::npos;
  })) << slurp(events_file);
  auto deleted = ctr({"task", "delete", id});
  EXPECT_NE(deleted.err.find("exit code 137"), std::string::npos) << deleted.describe();
}

TEST_F(ContainerdTest, FiftyContainersInARowLeaveNothingBehind) {
  std::vector<std::string> ids;
  for (int i = 0; i < 50; ++i) {
    ids.push_back(new_id());
    auto r = run({"--rm"}, ids.back(), {"true"});
    ASSERT_EQ(r.status, 0) << "container " << i << ": " << r.describe();
  }
  for (const auto& id : ids) {
    for (const auto& problem : leftovers(id)) ADD_FAILURE() << id << ": " << problem;
  }
  EXPECT_TRUE(d().all_shim_pids().empty()) << d().all_shim_pids().size() << " shims left";
  EXPECT_TRUE(d().runtime_state_ids().empty());
  for (const auto& line : mounts_mentioning(d().dir() + "/state"))
    ADD_FAILURE() << "mount: " << line;
  auto containers = ctr({"containers", "list", "--quiet"});
  EXPECT_EQ(containers.out, "") << containers.describe();
}

}  // namespace
}  // namespace barge::test

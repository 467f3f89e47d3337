// podman 4.3 + conmon driving the runtime under test (BARGE_BINARY, or BARGE_TEST_RUNTIME=runc as
// the oracle), with a busybox image the suite builds itself.
//
// Isolation: every podman call gets a private --root/--runroot/--tmpdir, cgroupfs, file events,
// no network, and CONTAINERS_CONF/STORAGE_CONF/REGISTRIES_CONF pointing at files written here;
// containers go under a cgroup parent of our own. The runtime is reached through a wrapper script
// that adds a private `--root` (podman passes none, and its cleanup process could not be told one)
// and logs the argv podman and conmon pass (a shell printf: a Python wrapper costs seconds per call
// on a loaded machine). With BARGE_RECORD_ARGV=LOG those calls are appended to LOG as JSON lines;
// `tests/argv-fixture.py normalize LOG > tests/data/client-argv/podman.argv` makes the fixture.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/fd.hpp"
#include "tests/integration/harness.hpp"

namespace fs = std::filesystem;

namespace barge::test {
namespace {

constexpr auto kPodmanTimeout = 90s;
const std::string kImage = "localhost/barge-busybox:podman";

bool podman_installed() {
  return access("/usr/bin/podman", X_OK) == 0 && access("/usr/bin/conmon", X_OK) == 0;
}

std::string storage_driver() {
  return slurp("/proc/filesystems").find("\toverlay\n") != std::string::npos ? "overlay" : "vfs";
}

void write_text(const std::string& path, const std::string& text, mode_t mode = 0644) {
  std::ofstream(path, std::ios::trunc) << text;
  chmod(path.c_str(), mode);
}

// The image tar, built once by make-image.py and cached next to the test binary.
std::string cached_image_tar() {
  const std::string scripts = BARGE_TEST_SCRIPTS;
  const size_t key = std::hash<std::string>{}(slurp(scripts + "/make-image.py") +
                                              slurp(scripts + "/make-rootfs.sh") + kImage);
  const fs::path exe_dir = fs::canonical("/proc/self/exe").parent_path();
  const std::string tar = (exe_dir / ("podman-image-" + std::to_string(key) + ".tar")).string();
  if (path_exists(tar)) return tar;
  const std::string tmp = tar + ".tmp-" + std::to_string(getpid());
  auto r = run_process({"python3", scripts + "/make-image.py", "busybox", tmp, "--format", "docker",
                        "--tar", "--name", kImage},
                       {.timeout = 300s});
  if (r.status != 0) throw std::runtime_error("make-image.py failed: " + r.describe());
  if (rename(tmp.c_str(), tar.c_str()) != 0) unlink(tmp.c_str());  // lost a race
  return tar;
}

// ---- the argv log ------------------------------------------------------------------------------

std::vector<std::vector<std::string>> read_argv_log(const std::string& path) {
  const std::string text = slurp(path);
  std::vector<std::string> fields;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\0', pos);
    if (end == std::string::npos) break;
    fields.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  std::vector<std::vector<std::string>> calls;
  for (size_t i = 0; i < fields.size();) {
    size_t count = std::stoul(fields[i++]);
    if (i + count > fields.size()) break;
    calls.emplace_back(fields.begin() + static_cast<long>(i),
                       fields.begin() + static_cast<long>(i + count));
    i += count;
  }
  return calls;
}

// Appends the calls as the raw log tests/argv-fixture.py normalises: one JSON array per line.
void append_argv_record(const std::string& log, const std::string& out) {
  std::ofstream file(out, std::ios::app);
  for (const auto& call : read_argv_log(log)) file << Json(call).dump() << "\n";
}

// ---- one private podman world per test process -------------------------------------------------

class PodmanWorld {
 public:
  PodmanWorld() : dir_(base_temp_dir() + "/podman") {
    for (const char* sub : {"root", "runroot", "tmp", "runtime-root", "net", "volumes"})
      fs::create_directories(dir_ + "/" + sub);
    chmod(dir_.c_str(), 0755);
    cgroup_parent_ = "/barge-podman-" + std::to_string(getpid());
    write_configs();
    write_text(wrapper(),
               "#!/bin/sh\nprintf '%s\\0' \"$#\" \"$@\" >> '" + argv_log() + "'\nexec '" +
                   runtime_binary() + "' --root='" + dir_ + "/runtime-root' \"$@\"\n",
               0755);
  }

  const std::string& dir() const { return dir_; }
  const std::string& cgroup_parent() const { return cgroup_parent_; }
  std::string wrapper() const { return dir_ + "/runtime.sh"; }
  std::string argv_log() const { return dir_ + "/argv.log"; }
  std::string runtime_root() const { return dir_ + "/runtime-root"; }

  std::vector<std::string> command(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{"env",
                                  "CONTAINERS_CONF=" + dir_ + "/containers.conf",
                                  "CONTAINERS_STORAGE_CONF=" + dir_ + "/storage.conf",
                                  "CONTAINERS_REGISTRIES_CONF=" + dir_ + "/registries.conf",
                                  "TMPDIR=" + dir_ + "/tmp",
                                  "podman",
                                  "--root",
                                  dir_ + "/root",
                                  "--runroot",
                                  dir_ + "/runroot",
                                  "--tmpdir",
                                  dir_ + "/tmp",
                                  "--cgroup-manager=cgroupfs",
                                  "--events-backend=file",
                                  "--runtime",
                                  wrapper()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  // extra_fds become podman's fds 3, 4, ... (for --preserve-fds).
  ProcResult podman(const std::vector<std::string>& args, std::vector<int> extra_fds = {}) const {
    return run_process(command(args),
                       {.timeout = kPodmanTimeout, .extra_fds = std::move(extra_fds)});
  }

  // `podman load` copies through containers/image, which keeps a blob-info cache in
  // /var/lib/containers whatever --root says; an empty tmpfs there in a private mount namespace
  // keeps that host state untouched.
  ProcResult load(const std::string& tar) const {
    std::vector<std::string> argv{"unshare",
                                  "--mount",
                                  "--propagation",
                                  "private",
                                  "sh",
                                  "-c",
                                  "mount -t tmpfs barge-podman-test /var/lib && exec \"$@\"",
                                  "sh"};
    for (auto& arg : command({"load", "-i", tar})) argv.push_back(arg);
    return run_process(argv, {.timeout = kPodmanTimeout});
  }

  // Everything the containers of this world left on the host; empty once they are all removed.
  std::vector<std::string> leftovers() const {
    std::vector<std::string> problems;
    for (const auto& line : mounts_mentioning(dir_)) {
      auto words = split_words(line);
      // containers/storage keeps its overlay directory as a private bind mount of itself.
      if (words.size() > 4 && words[4] == dir_ + "/root/overlay") continue;
      problems.push_back("mount: " + line);
    }
    for (const auto& parent : cgroup_dirs(cgroup_parent_.substr(1))) {
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(parent, ec)) {
        if (!entry.is_directory(ec)) continue;
        // podman keeps one cgroup for all conmons under the parent: it must only be empty.
        const std::string procs = slurp(entry.path().string() + "/cgroup.procs");
        if (entry.path().filename() == "conmon" && trim(procs).empty()) continue;
        problems.push_back("cgroup dir: " + entry.path().string() + " (procs: " + procs + ")");
      }
    }
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(runtime_root(), ec))
      if (entry.path().filename() != "@seccomp-cache")  // shared by containers, not theirs
        problems.push_back("runtime state: " + entry.path().string());
    for (int pid : pids_mentioning(dir_)) {
      std::string cmdline = slurp("/proc/" + std::to_string(pid) + "/cmdline");
      std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
      problems.push_back("process " + std::to_string(pid) + ": " + cmdline);
    }
    return problems;
  }

  // podman's cleanup process (conmon's exit command) may still be finishing when `rm` returns.
  std::vector<std::string> leftovers_after_settling() const {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    for (;;) {
      auto problems = leftovers();
      if (problems.empty() || std::chrono::steady_clock::now() > deadline) return problems;
      std::this_thread::sleep_for(100ms);
    }
  }

  void remove_all_containers() const { podman({"rm", "--all", "--force", "--time", "0"}); }

  // Last resort after a failure: whatever podman could not remove goes by force.
  void force_clean() const {
    kill_processes_mentioning(dir_);
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(runtime_root(), ec)) {
      run_process({runtime_binary(), "--root", runtime_root(), "delete", "--force",
                   entry.path().filename().string()});
      remove_dir_safely(entry.path().string());
    }
    for (const auto& line : mounts_mentioning(dir_)) {
      auto words = split_words(line);
      if (words.size() > 4 && words[4] != dir_ + "/root/overlay") unmount_under(words[4]);
    }
    remove_cgroup_dirs(cgroup_parent_.substr(1));
  }

  void destroy() const {
    remove_all_containers();
    force_clean();
    if (const char* out = std::getenv("BARGE_RECORD_ARGV"); out && *out)
      append_argv_record(argv_log(), out);
    remove_dir_safely(dir_);
  }

 private:
  void write_configs() const {
    // podman's default RLIMIT_NOFILE/NPROC (1048576) need CAP_SYS_RESOURCE to exceed the hard
    // limits, which this machine does not grant even to root.
    write_text(dir_ + "/containers.conf",
               "[containers]\nnetns = \"none\"\nlog_driver = \"k8s-file\"\n"
               "default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n"
               "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"
               "volume_path = \"" +
                   dir_ + "/volumes\"\n[network]\nnetwork_config_dir = \"" + dir_ + "/net\"\n");
    write_text(dir_ + "/storage.conf", "[storage]\ndriver = \"" + storage_driver() +
                                           "\"\ngraphroot = \"" + dir_ + "/root\"\nrunroot = \"" +
                                           dir_ + "/runroot\"\n");
    write_text(dir_ + "/registries.conf", "unqualified-search-registries = []\n");
  }

  std::string dir_;
  std::string cgroup_parent_;
};

// ---- host views of a container's cgroup --------------------------------------------------------

bool unified_only() {
  return !path_exists("/sys/fs/cgroup/memory") && path_exists("/sys/fs/cgroup/cgroup.controllers");
}

// The host file of a container's cgroup: <controller>/<cgroup>/<v1 file>, or <cgroup>/<v2 file>.
std::string cgroup_file(const std::string& cgroup, const std::string& controller,
                        const std::string& v1_file, const std::string& v2_file) {
  if (unified_only()) return "/sys/fs/cgroup" + cgroup + "/" + v2_file;
  return "/sys/fs/cgroup/" + controller + cgroup + "/" + v1_file;
}

// "key value" lines (memory.oom_control, pids.events, memory.events) -> value of key.
long keyed_value(const std::string& text, const std::string& key) {
  for (const auto& line : split_lines(text)) {
    auto words = split_words(line);
    if (words.size() == 2 && words[0] == key) return std::stol(words[1]);
  }
  return -1;
}

// ---- fixture -----------------------------------------------------------------------------------

class Podman : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0 || !podman_installed()) return;
    world_ = new PodmanWorld();
    try {
      auto r = world_->load(cached_image_tar());
      if (r.status != 0) load_error_ = "podman load failed: " + r.describe();
    } catch (const std::exception& e) {
      load_error_ = e.what();
    }
  }

  static void TearDownTestSuite() {
    if (!world_) return;
    world_->destroy();
    delete world_;
    world_ = nullptr;
  }

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the podman suite needs root";
    if (!podman_installed()) GTEST_SKIP() << "podman or conmon is not installed";
    ASSERT_TRUE(load_error_.empty()) << load_error_;
  }

  void TearDown() override {
    if (!world_) return;
    world_->remove_all_containers();
    for (const auto& problem : world_->leftovers_after_settling())
      ADD_FAILURE() << "left behind: " << problem;
    world_->force_clean();
  }

  static ProcResult podman(const std::vector<std::string>& args, std::vector<int> extra_fds = {}) {
    return world_->podman(args, std::move(extra_fds));
  }

  // `podman run` in our cgroup parent; args are the run options, then the image and command.
  static ProcResult run(const std::vector<std::string>& args, std::vector<int> extra_fds = {}) {
    std::vector<std::string> full{"run", "--cgroup-parent", world_->cgroup_parent(), "--network",
                                  "none"};
    full.insert(full.end(), args.begin(), args.end());
    return podman(full, std::move(extra_fds));
  }

  // A file whose read fd is passed on as fd 3 (--preserve-fds).
  static UniqueFd file_with(const std::string& content) {
    const std::string path = world_->dir() + "/fd-source";
    write_text(path, content);
    return UniqueFd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  }

  // A detached container running script (the image's entrypoint is `/bin/sh -c`).
  static std::string run_detached(const std::string& name, const std::string& script,
                                  const std::vector<std::string>& options = {}) {
    std::vector<std::string> args{"-d", "--name", name};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back(kImage);
    args.push_back(script);
    auto r = run(args);
    EXPECT_EQ(r.status, 0) << r.describe();
    return trim(r.out);
  }

  static std::string inspect(const std::string& name, const std::string& format) {
    auto r = podman({"inspect", "--format", format, name});
    EXPECT_EQ(r.status, 0) << r.describe();
    return trim(r.out);
  }

  // The container's cgroup path as podman's cgroupfs manager names it.
  static std::string container_cgroup(const std::string& id) {
    return world_->cgroup_parent() + "/libpod-" + id;
  }

  // Polls the container's logs until they contain text (a detached script reaching a point).
  static bool wait_for_log(const std::string& name, const std::string& text) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (podman({"logs", name}).out.find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  static PodmanWorld* world_;
  static std::string load_error_;
};

PodmanWorld* Podman::world_ = nullptr;
std::string Podman::load_error_;

TEST_F(Podman, RunRemoveGivesOutputAndExitCodes) {
  auto r = run({"--rm", kImage, "echo out; echo err >&2; exit 0"});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.out, "out\n");
  EXPECT_NE(r.err.find("err"), std::string::npos) << r.describe();

  r = run({"--rm", kImage, "exit 3"});
  EXPECT_EQ(r.status, 3) << r.describe();

  // The image's own Cmd, Env, WorkingDir.
  r = run({"--rm", kImage});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.out, "hello-from-image\n0\n/data\n");
  r = run({"--rm", kImage, "echo $FOO"});
  EXPECT_EQ(r.out, "bar\n") << r.describe();

  // podman maps the runtime's "not found" / "permission denied" errors to 127 / 126.
  r = run({"--rm", "--entrypoint", "/nonexistent", kImage});
  EXPECT_EQ(r.status, 127) << r.describe();
  r = run({"--rm", "--entrypoint", "/etc/passwd", kImage});
  EXPECT_EQ(r.status, 126) << r.describe();
}

TEST_F(Podman, PreservedFdsReachRunAndExec) {
  UniqueFd fd = file_with("through-fd-3\n");
  auto r = run({"--rm", "--preserve-fds", "1", kImage, "cat <&3"}, {fd.get()});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.out, "through-fd-3\n");

  run_detached("fds", "sleep 1000");
  fd = file_with("exec-fd-3\n");
  r = podman({"exec", "--preserve-fds", "1", "fds", "sh", "-c", "cat <&3"}, {fd.get()});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.out, "exec-fd-3\n");
}

TEST_F(Podman, DetachedExecLogsStopRemove) {
  const std::string id = run_detached(
      "detached", "echo started; trap 'echo stopping; exit 7' TERM; while :; do sleep 0.1; done");
  ASSERT_EQ(id.size(), 64u) << id;
  ASSERT_TRUE(wait_for_log("detached", "started"));
  EXPECT_EQ(inspect("detached", "{{.State.Status}}"), "running");

  auto r = podman({"exec", "detached", "sh", "-c", "echo in-exec $$; exit 5"});
  EXPECT_EQ(r.status, 5) << r.describe();
  EXPECT_EQ(r.out.rfind("in-exec ", 0), 0u) << r.describe();
  EXPECT_NE(r.out, "in-exec 1\n") << "exec ran as the container's pid 1";
  r = podman({"exec", "--user", "1000:1000", "--workdir", "/tmp", "--env", "X=y", "detached", "sh",
              "-c", "id -u; id -g; pwd; echo $X"});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.out, "1000\n1000\n/tmp\ny\n");
  EXPECT_EQ(podman({"exec", "detached", "/nonexistent"}).status, 127);
  EXPECT_EQ(podman({"exec", "detached", "nonexistent"}).status, 127);
  EXPECT_EQ(podman({"exec", "detached", "/etc/passwd"}).status, 126);
  EXPECT_EQ(podman({"exec", "--workdir", "/no/such/dir", "detached", "true"}).status, 127);

  r = podman({"logs", "detached"});
  EXPECT_EQ(r.out, "started\n") << r.describe();

  r = podman({"stop", "--time", "60", "detached"});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(inspect("detached", "{{.State.Status}} {{.State.ExitCode}}"), "exited 7");
  EXPECT_EQ(podman({"logs", "detached"}).out, "started\nstopping\n");

  r = podman({"rm", "detached"});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_NE(podman({"container", "exists", "detached"}).status, 0);
  EXPECT_TRUE(cgroup_dirs(container_cgroup(id).substr(1)).empty());
  EXPECT_FALSE(path_exists(world_->runtime_root() + "/" + id));
}

TEST_F(Podman, KilledContainerExits137) {
  run_detached("killed", "sleep 1000");
  auto r = podman({"kill", "killed"});
  EXPECT_EQ(r.status, 0) << r.describe();
  r = podman({"wait", "killed"});
  EXPECT_EQ(trim(r.out), "137") << r.describe();

  // pid 1 ignores SIGTERM without a handler: stop falls back to SIGKILL.
  run_detached("stubborn", "sleep 1000");
  r = podman({"stop", "--time", "1", "stubborn"});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(inspect("stubborn", "{{.State.ExitCode}}"), "137");

  // In the host's pid namespace podman stops with `kill --all`.
  run_detached("hostpid", "trap 'exit 9' TERM; while :; do sleep 0.1; done", {"--pid", "host"});
  r = podman({"stop", "--time", "60", "hostpid"});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(inspect("hostpid", "{{.State.ExitCode}}"), "9");
}

TEST_F(Podman, TerminalForRunAndExec) {
  auto r = run({"--rm", "-t", kImage, "tty; test -t 0 && echo in-tty; test -t 1 && echo out-tty"});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.out, "/dev/pts/0\r\nin-tty\r\nout-tty\r\n");

  r = run({"--rm", kImage, "test -t 0 || test -t 1 || echo no-tty"});
  EXPECT_EQ(r.out, "no-tty\n") << r.describe();

  run_detached("tty", "sleep 1000");
  r = podman({"exec", "-t", "tty", "sh", "-c", "tty; test -t 0 && echo in-tty"});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.out.rfind("/dev/pts/", 0), 0u) << r.describe();
  EXPECT_NE(r.out.find("in-tty\r\n"), std::string::npos) << r.describe();
}

TEST_F(Podman, MemoryLimitAndOomKill) {
  const std::string id = run_detached("memory", "sleep 1000", {"--memory", "32m"});
  const std::string cgroup = container_cgroup(id);
  const std::string limit_file =
      cgroup_file(cgroup, "memory", "memory.limit_in_bytes", "memory.max");
  EXPECT_EQ(trim(slurp(limit_file)), "33554432") << limit_file;

  auto r = podman({"exec", "memory", "sh", "-c", "x=a; while :; do x=$x$x; done"});
  EXPECT_EQ(r.status, 137) << r.describe();
  const std::string events =
      slurp(cgroup_file(cgroup, "memory", "memory.oom_control", "memory.events"));
  EXPECT_GE(keyed_value(events, "oom_kill"), 1) << events;
  // Only the hog died: the container's pid 1 runs on.
  EXPECT_EQ(inspect("memory", "{{.State.Status}}"), "running");
}

TEST_F(Podman, InitIsPid1AndPassesTheExitCodeOn) {
  ASSERT_EQ(access("/usr/libexec/podman/catatonit", X_OK), 0)
      << "podman --init needs Debian's catatonit (scripts/quickstart.sh installs it)";
  auto r = run({"--rm", "--init", kImage, "tr '\\0' ' ' </proc/1/cmdline; echo; echo $$; exit 5"});
  EXPECT_EQ(r.status, 5) << r.describe();
  auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.describe();
  EXPECT_EQ(lines[0].rfind("/run/podman-init -- ", 0), 0u) << lines[0];
  EXPECT_NE(lines[1], "1") << "the command, not the init, is pid 1";
}

TEST_F(Podman, PidsLimitStopsAProcessFlood) {
  const std::string id = run_detached("pids", "sleep 1000", {"--pids-limit", "20"});
  const std::string cgroup = container_cgroup(id);
  EXPECT_EQ(trim(slurp(cgroup_file(cgroup, "pids", "pids.max", "pids.max"))), "20");

  auto r = podman(
      {"exec", "pids", "sh", "-c", "i=0; while [ $i -lt 100 ]; do sleep 1000 & i=$((i+1)); done"});
  EXPECT_NE(r.status, 0) << r.describe();
  EXPECT_NE(r.err.find("can't fork"), std::string::npos) << r.describe();
  EXPECT_LE(std::stol(trim(slurp(cgroup_file(cgroup, "pids", "pids.current", "pids.current")))),
            20);
  const std::string events = slurp(cgroup_file(cgroup, "pids", "pids.events", "pids.events"));
  EXPECT_GE(keyed_value(events, "max"), 1) << events;
}

TEST_F(Podman, ReadOnlyRootWithTmpfsCopyUp) {
  // podman's tmpfs mounts carry "tmpcopyup": the image's files under the mount point show through.
  auto r = run({"--rm", "--read-only", "--tmpfs", "/opt", "--tmpfs", "/home", kImage,
                "cat /opt/old/z; stat -c '%a %u:%g' /home/app; stat -c '%a %n' /run /tmp; "
                "touch /opt/new && echo writable; "
                "touch /x 2>/dev/null || echo root-readonly; grep ' /opt ' /proc/self/mounts | "
                "cut -d' ' -f3"});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.out, "new z\n750 1000:1000\n755 /run\n1777 /tmp\nwritable\nroot-readonly\ntmpfs\n");
}

TEST_F(Podman, PauseResumeAndUpdate) {
  const std::string id = run_detached("paused", "sleep 1000", {"--memory", "64m"});
  const std::string cgroup = container_cgroup(id);
  ASSERT_EQ(podman({"pause", "paused"}).status, 0);
  EXPECT_EQ(inspect("paused", "{{.State.Status}}"), "paused");
  if (!unified_only()) {
    EXPECT_EQ(trim(slurp("/sys/fs/cgroup/freezer" + cgroup + "/freezer.state")), "FROZEN");
  }
  ASSERT_EQ(podman({"unpause", "paused"}).status, 0);
  EXPECT_EQ(inspect("paused", "{{.State.Status}}"), "running");

  auto r = podman({"update", "--memory", "96m", "paused"});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(trim(slurp(cgroup_file(cgroup, "memory", "memory.limit_in_bytes", "memory.max"))),
            "100663296");

  // Killing a paused container ends it (the runtime thaws after SIGKILL).
  ASSERT_EQ(podman({"pause", "paused"}).status, 0);
  r = podman({"kill", "paused"});
  EXPECT_EQ(r.status, 0) << r.describe();
  r = podman({"wait", "paused"});
  EXPECT_EQ(trim(r.out), "137") << r.describe();
}

TEST_F(Podman, TwentyContainersInARowLeaveNothingBehind) {
  for (int i = 0; i < 20; ++i) {
    auto r = run({"--rm", kImage, "echo run-" + std::to_string(i)});
    ASSERT_EQ(r.status, 0) << "container " << i << ": " << r.describe();
    ASSERT_EQ(r.out, "run-" + std::to_string(i) + "\n");
  }
  EXPECT_EQ(trim(podman({"ps", "--all", "--quiet"}).out), "");
  for (const auto& problem : world_->leftovers_after_settling())
    ADD_FAILURE() << "left behind: " << problem;
}

TEST_F(Podman, InfoNamesTheRuntime) {
  auto r = podman({"info", "--format", "{{.Host.OCIRuntime.Version}}"});
  EXPECT_EQ(r.status, 0) << r.describe();
  const std::string name = fs::path(runtime_binary()).filename().string();
  EXPECT_NE(r.out.find(name + " version"), std::string::npos) << r.describe();
}

}  // namespace
}  // namespace barge::test

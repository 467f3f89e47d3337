#include "tests/integration/harness.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/fd.hpp"

#ifndef BARGE_BINARY
#error "BARGE_BINARY must be defined by the build"
#endif
#ifndef BARGE_TEST_SCRIPTS
#error "BARGE_TEST_SCRIPTS must be defined by the build"
#endif

namespace fs = std::filesystem;

namespace barge::test {
namespace {

constexpr size_t kMaxExtraFds = 16;
constexpr int kHighFd = 200;

// ---- process helpers ---------------------------------------------------------------------------

struct ChildSetup {
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  std::array<int, kMaxExtraFds> extra{};
  size_t extra_count = 0;
};

// Runs in the forked child: only async-signal-safe calls.
[[noreturn]] void exec_child(const ChildSetup& s, char* const* argv) {
  setpgid(0, 0);
  signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  std::array<int, kMaxExtraFds> moved{};
  for (size_t i = 0; i < s.extra_count; ++i) moved[i] = fcntl(s.extra[i], F_DUPFD, kHighFd);
  if (dup2(s.stdin_fd, 0) < 0 || dup2(s.stdout_fd, 1) < 0 || dup2(s.stderr_fd, 2) < 0) _exit(126);
  for (size_t i = 0; i < s.extra_count; ++i) {
    if (moved[i] < 0 || dup2(moved[i], static_cast<int>(3 + i)) < 0) _exit(126);
  }
  syscall(SYS_close_range, 3 + s.extra_count, ~0U, 0);
  execv(argv[0], argv);
  _exit(127);
}

void read_available(int fd, std::string& sink, bool& open) {
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      sink.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) open = false;
    if (n < 0 && errno == EINTR) continue;
    return;  // EOF or EAGAIN
  }
}

int decode_status(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return -1;
}

std::string resolve_in_path(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return name;
}

// ---- temp dirs and cleanup ---------------------------------------------------------------------

std::vector<std::string> cgroup_hierarchies() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/sys/fs/cgroup", ec)) {
    if (entry.is_directory(ec) && !entry.is_symlink(ec)) out.push_back(entry.path().string());
  }
  return out;
}

void kill_and_rmdir_cgroup(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_directory(ec)) kill_and_rmdir_cgroup(entry.path());
  }
  for (int attempt = 0; attempt < 100; ++attempt) {
    for (const auto& word : split_words(slurp((dir / "cgroup.procs").string()))) {
      int pid = std::atoi(word.c_str());
      if (pid > 1) kill(pid, SIGKILL);  // processes of our own test container only
    }
    if (rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    std::this_thread::sleep_for(10ms);
  }
}

class CleanupEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    remove_dir_safely(base_temp_dir());
    // The shared parent of our test cgroups; rmdir only succeeds when nobody uses it.
    for (const auto& h : cgroup_hierarchies()) rmdir((h + "/barge-test").c_str());
  }
};

// gtest takes ownership of the environment.
[[maybe_unused]] ::testing::Environment* const kCleanup =
    ::testing::AddGlobalTestEnvironment(new CleanupEnvironment);

std::atomic<int> g_id_counter{0};
std::atomic<int> g_test_counter{0};

std::string hex(size_t v) {
  std::ostringstream s;
  s << std::hex << v;
  return s.str();
}

std::string busybox_fingerprint() {
  for (const char* p : {"/bin/busybox", "/usr/bin/busybox"}) {
    struct stat st {};
    if (stat(p, &st) == 0) {
      return std::string(p) + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtime);
    }
  }
  return "none";
}

std::string build_rootfs_cache() {
  const std::string script = std::string(BARGE_TEST_SCRIPTS) + "/make-rootfs.sh";
  const size_t key = std::hash<std::string>{}(slurp(script) + busybox_fingerprint());
  std::error_code ec;
  fs::path exe_dir = fs::canonical("/proc/self/exe", ec).parent_path();
  fs::path cache = exe_dir / ("rootfs-cache-" + hex(key));
  if (path_exists((cache / "bin/busybox").string())) return cache.string();

  fs::path tmp = cache.string() + ".tmp-" + std::to_string(getpid());
  remove_dir_safely(tmp.string());
  auto result = run_process({"/bin/sh", script, tmp.string()}, {.timeout = 120s});
  if (result.status != 0) {
    // The build dir may be read-only: fall back to a per-process cache.
    tmp = base_temp_dir() + "/rootfs-cache";
    result = run_process({"/bin/sh", script, tmp.string()}, {.timeout = 120s});
    if (result.status != 0) throw std::runtime_error("make-rootfs.sh failed: " + result.describe());
    return tmp.string();
  }
  if (rename(tmp.c_str(), cache.c_str()) != 0) remove_dir_safely(tmp.string());  // lost a race
  return cache.string();
}

}  // namespace

// ---- processes ---------------------------------------------------------------------------------

std::string ProcResult::describe() const {
  std::ostringstream s;
  s << "status=" << status << (timed_out ? " (TIMED OUT)" : "") << "\n--- stdout ---\n"
    << out << "\n--- stderr ---\n"
    << err;
  return s.str();
}

ProcResult run_process(const std::vector<std::string>& argv, const ProcOptions& options) {
  ProcResult result;
  if (argv.empty() || options.extra_fds.size() > kMaxExtraFds) return result;
  std::vector<std::string> args = argv;
  args[0] = resolve_in_path(args[0]);
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return result;
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (pipe2(err_pipe, O_CLOEXEC) != 0) return result;
  UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);
  UniqueFd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
  UniqueFd out_file;
  if (!options.stdout_file.empty()) {
    out_file.reset(
        open(options.stdout_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  }

  ChildSetup setup;
  setup.stdin_fd = devnull.get();
  setup.stdout_fd = out_file ? out_file.get() : out_w.get();
  setup.stderr_fd = err_w.get();
  for (int fd : options.extra_fds) setup.extra[setup.extra_count++] = fd;

  pid_t pid = fork();
  if (pid < 0) return result;
  if (pid == 0) exec_child(setup, cargv.data());
  out_w.reset();
  err_w.reset();
  fcntl(out_r.get(), F_SETFL, O_NONBLOCK);
  fcntl(err_r.get(), F_SETFL, O_NONBLOCK);
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));

  bool out_open = true, err_open = true;
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  int wstatus = 0;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      result.timed_out = true;
      waitpid(pid, &wstatus, 0);
      break;
    }
    std::array<pollfd, 3> fds{{{out_open ? out_r.get() : -1, POLLIN, 0},
                               {err_open ? err_r.get() : -1, POLLIN, 0},
                               {pidfd.get(), POLLIN, 0}}};
    int n = poll(fds.data(), fds.size(), static_cast<int>(std::min<long>(left.count(), 100)));
    if (n < 0 && errno != EINTR) break;
    if (fds[0].revents) read_available(out_r.get(), result.out, out_open);
    if (fds[1].revents) read_available(err_r.get(), result.err, err_open);
    // pidfd readable (or no pidfd: poll the pid) means the child has exited.
    if (fds[2].revents || (!pidfd && waitpid(pid, &wstatus, WNOHANG) == pid)) {
      if (pidfd) waitpid(pid, &wstatus, 0);
      break;
    }
  }
  // Whatever was written before the exit is in the pipes; a detached container may hold them open,
  // so take what is there and do not wait for EOF.
  if (out_open) read_available(out_r.get(), result.out, out_open);
  if (err_open) read_available(err_r.get(), result.err, err_open);
  result.status = result.timed_out ? -1 : decode_status(wstatus);
  return result;
}

// ---- environment -------------------------------------------------------------------------------

const std::string& runtime_binary() {
  static const std::string path = [] {
    const char* env = std::getenv("BARGE_TEST_RUNTIME");
    return resolve_in_path(env && *env ? env : BARGE_BINARY);
  }();
  return path;
}

bool testing_barge() {
  static const bool barge = [] {
    std::string name = fs::path(runtime_binary()).filename().string();
    return name.find("runc") == std::string::npos && name != "crun" &&
           name.find("youki") == std::string::npos;
  }();
  return barge;
}

const std::string& base_temp_dir() {
  static const std::string dir = [] {
    std::string tmpl = "/tmp/barge-it-XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    return tmpl;
  }();
  return dir;
}

const std::string& cached_rootfs() {
  static const std::string dir = build_rootfs_cache();
  return dir;
}

// ---- host inspection ---------------------------------------------------------------------------

// Lazily detaches every mount at or below dir (deepest first) so remove_all never crosses into a
// mount a misbehaving runtime left behind.
void unmount_under(const std::string& dir) {
  for (int round = 0; round < 8; ++round) {
    auto lines = mounts_mentioning(dir);
    if (lines.empty()) return;
    std::vector<std::string> points;
    for (const auto& line : lines) {
      auto words = split_words(line);
      if (words.size() > 4 && (words[4] == dir || words[4].rfind(dir + "/", 0) == 0)) {
        points.push_back(words[4]);
      }
    }
    if (points.empty()) return;
    std::sort(points.begin(), points.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
    for (const auto& p : points) umount2(p.c_str(), MNT_DETACH);
  }
}

void remove_dir_safely(const std::string& dir) {
  if (dir.empty() || !path_exists(dir)) return;
  unmount_under(dir);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool path_exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream s(text);
  for (std::string line; std::getline(s, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> words;
  std::stringstream s(text);
  for (std::string w; s >> w;) words.push_back(w);
  return words;
}

std::string trim(const std::string& text) {
  auto b = text.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  auto e = text.find_last_not_of(" \t\r\n");
  return text.substr(b, e - b + 1);
}

std::vector<std::string> mounts_mentioning(const std::string& needle) {
  std::vector<std::string> out;
  for (const auto& line : split_lines(slurp("/proc/self/mountinfo"))) {
    auto words = split_words(line);
    if (words.size() < 5) continue;
    for (const auto& field : {words[3], words[4]}) {
      if (field == needle || field.rfind(needle + "/", 0) == 0) {
        out.push_back(line);
        break;
      }
    }
  }
  return out;
}

std::vector<std::string> cgroup_dirs(const std::string& rel) {
  std::vector<std::string> out;
  for (const auto& h : cgroup_hierarchies()) {
    std::string dir = h + "/" + rel;
    if (path_exists(dir)) out.push_back(dir);
  }
  return out;
}

void remove_cgroup_dirs(const std::string& rel) {
  for (const auto& dir : cgroup_dirs(rel)) kill_and_rmdir_cgroup(dir);
}

std::vector<int> pids_mentioning(const std::string& needle) {
  std::vector<int> pids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const int pid = std::atoi(name.c_str());
    if (pid == getpid()) continue;
    std::string cmdline = slurp(entry.path().string() + "/cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(needle) != std::string::npos) pids.push_back(pid);
  }
  return pids;
}

void kill_processes_mentioning(const std::string& needle) {
  for (int pid : pids_mentioning(needle)) kill(pid, SIGKILL);
}

bool process_alive(int pid) {
  if (pid <= 0) return false;
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  auto paren = stat.rfind(')');
  if (stat.empty() || paren == std::string::npos || paren + 2 >= stat.size()) return false;
  char state = stat[paren + 2];
  return state != 'Z' && state != 'X';
}

std::string ns_link(const std::string& proc_pid, const std::string& ns) {
  std::error_code ec;
  return fs::read_symlink("/proc/" + proc_pid + "/ns/" + ns, ec).string();
}

// ---- bundles -----------------------------------------------------------------------------------

Json default_config(const std::vector<std::string>& args, const std::string& id) {
  const Json caps = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  return Json{
      {"ociVersion", "1.0.2-dev"},
      {"process",
       {{"terminal", false},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"args", args},
        {"env",
         {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}},
        {"cwd", "/"},
        {"capabilities",
         {{"bounding", caps}, {"effective", caps}, {"permitted", caps}, {"ambient", caps}}},
        {"rlimits", {{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}}},
        {"noNewPrivileges", true}}},
      {"root", {{"path", "rootfs"}, {"readonly", true}}},
      {"hostname", "barge-test"},
      {"mounts",
       {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
        {{"destination", "/dev"},
         {"type", "tmpfs"},
         {"source", "tmpfs"},
         {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
        {{"destination", "/dev/pts"},
         {"type", "devpts"},
         {"source", "devpts"},
         {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}}},
        {{"destination", "/dev/shm"},
         {"type", "tmpfs"},
         {"source", "shm"},
         {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
        {{"destination", "/dev/mqueue"},
         {"type", "mqueue"},
         {"source", "mqueue"},
         {"options", {"nosuid", "noexec", "nodev"}}},
        {{"destination", "/sys"},
         {"type", "sysfs"},
         {"source", "sysfs"},
         {"options", {"nosuid", "noexec", "nodev", "ro"}}},
        {{"destination", "/sys/fs/cgroup"},
         {"type", "cgroup"},
         {"source", "cgroup"},
         {"options", {"nosuid", "noexec", "nodev", "relatime", "ro"}}}}},
      {"linux",
       {{"cgroupsPath", "/" + RuntimeTest::cgroup_rel(id)},
        {"resources", {{"devices", {{{"allow", false}, {"access", "rwm"}}}}}},
        {"namespaces",
         {{{"type", "pid"}},
          {{"type", "network"}},
          {{"type", "ipc"}},
          {{"type", "uts"}},
          {{"type", "mount"}}}},
        {"maskedPaths",
         {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
          "/proc/scsi"}},
        {"readonlyPaths",
         {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}}}}};
}

void Bundle::write() const {
  std::ofstream out(config_path(), std::ios::trunc);
  out << config.dump(2) << "\n";
}

// ---- fixture -----------------------------------------------------------------------------------

void RuntimeTest::SetUp() {
  if (geteuid() != 0) GTEST_SKIP() << "integration tests need root";
  dir_ = base_temp_dir() + "/test-" + std::to_string(++g_test_counter);
  root_ = dir_ + "/root";
  fs::create_directories(root_);
  chmod(dir_.c_str(), 0755);
  (void)cached_rootfs();
}

void RuntimeTest::TearDown() {
  if (dir_.empty()) return;
  for (const auto& id : ids_) runtime({"delete", "--force", id}, {.timeout = 10s});
  for (const auto& id : ids_) {
    for (const auto& problem : leftovers(id)) ADD_FAILURE() << "leftover after test: " << problem;
  }
  // Runtime processes still carrying our private --root (a hung create, say) are ours to end.
  kill_processes_mentioning(root_);
  for (const auto& id : ids_) force_clean(id);
  remove_dir_safely(dir_);
}

std::vector<std::string> RuntimeTest::leftovers(const std::string& id) const {
  std::vector<std::string> problems;
  for (const auto& line : mounts_mentioning(bundle_dir(id))) problems.push_back("mount: " + line);
  for (const auto& dir : cgroup_dirs(cgroup_rel(id))) problems.push_back("cgroup dir: " + dir);
  for (const auto& dir : cgroup_dirs("barge/" + id)) problems.push_back("cgroup dir: " + dir);
  if (path_exists(root_ + "/" + id)) problems.push_back("state dir: " + root_ + "/" + id);
  return problems;
}

void RuntimeTest::force_clean(const std::string& id) {
  unmount_under(bundle_dir(id));
  remove_cgroup_dirs(cgroup_rel(id));
  remove_cgroup_dirs("barge/" + id);
}

std::string RuntimeTest::new_id() {
  std::string id = "t-" + std::to_string(getpid()) + "-" + std::to_string(++g_id_counter);
  ids_.push_back(id);
  return id;
}

Bundle RuntimeTest::make_bundle(const std::string& id, const std::vector<std::string>& args,
                                const ConfigEdit& edit) {
  Bundle bundle{bundle_dir(id), default_config(args, id)};
  fs::create_directories(bundle.dir);
  fs::copy(cached_rootfs(), bundle.rootfs(),
           fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  if (edit) edit(bundle.config);
  bundle.write();
  return bundle;
}

ProcResult RuntimeTest::runtime_with_globals(const std::vector<std::string>& globals,
                                             const std::vector<std::string>& args,
                                             const ProcOptions& options) {
  std::vector<std::string> argv{runtime_binary()};
  argv.insert(argv.end(), globals.begin(), globals.end());
  argv.push_back("--root");
  argv.push_back(root_);
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, options);
}

ProcResult RuntimeTest::runtime(const std::vector<std::string>& args, const ProcOptions& options) {
  return runtime_with_globals({}, args, options);
}

ProcResult RuntimeTest::run_container(const std::vector<std::string>& args, const ConfigEdit& edit,
                                      std::string* id_out) {
  std::string id = new_id();
  if (id_out) *id_out = id;
  Bundle bundle = make_bundle(id, args, edit);
  return runtime({"run", "--bundle", bundle.dir, id});
}

std::string RuntimeTest::create_container(const std::vector<std::string>& args,
                                          const ConfigEdit& edit, const ProcOptions& options) {
  std::string id = new_id();
  Bundle bundle = make_bundle(id, args, edit);
  auto r = runtime({"create", "--bundle", bundle.dir, id}, options);
  EXPECT_EQ(r.status, 0) << "create " << id << ": " << r.describe();
  return id;
}

std::optional<Json> RuntimeTest::state(const std::string& id, ProcResult* failed) {
  auto r = runtime({"state", id});
  if (r.status != 0) {
    if (failed) *failed = r;
    return std::nullopt;
  }
  try {
    return Json::parse(r.out);
  } catch (const Json::exception& e) {
    ADD_FAILURE() << "state output is not JSON: " << e.what() << "\n" << r.describe();
    if (failed) *failed = r;
    return std::nullopt;
  }
}

std::string RuntimeTest::wait_for_status(const std::string& id, const std::string& want,
                                         std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last;
  for (;;) {
    auto s = state(id);
    last = s && s->contains("status") ? (*s)["status"].get<std::string>() : "";
    if (last == want || std::chrono::steady_clock::now() > deadline) return last;
    std::this_thread::sleep_for(20ms);
  }
}

}  // namespace barge::test

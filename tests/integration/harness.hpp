// Integration-test harness: busybox bundles, running the runtime binary with a timeout, and
// leftover checks (mounts, cgroup dirs, state dirs) after every test.
//
// The runtime under test is BARGE_BINARY unless BARGE_TEST_RUNTIME names another one (runc is the
// oracle: every assertion that is not barge-specific must hold for runc too; barge-only assertions
// are guarded by testing_barge()).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace barge::test {

using Json = nlohmann::json;
using namespace std::chrono_literals;

// ---- processes ---------------------------------------------------------------------------------

struct ProcOptions {
  std::chrono::milliseconds timeout = 15s;
  // When set, the child's stdout goes to this file (appended) instead of the capture pipe.
  std::string stdout_file;
  // Parent fds made available to the child as 3, 4, ... (all other fds beyond 2 are closed).
  std::vector<int> extra_fds;
};

struct ProcResult {
  int status = -1;  // exit code, or 128+signal when killed by a signal
  bool timed_out = false;
  std::string out;
  std::string err;
  // One-line summary for assertion messages.
  std::string describe() const;
};

// fork/exec argv with stdin from /dev/null and stdout/stderr captured. Returns as soon as the
// direct child exits (a detached container may keep the pipes open); on timeout the child's process
// group is killed and timed_out is set.
ProcResult run_process(const std::vector<std::string>& argv, const ProcOptions& options = {});

// ---- environment -------------------------------------------------------------------------------

const std::string& runtime_binary();
// False when BARGE_TEST_RUNTIME points at another runtime (runc, crun): barge-only assertions off.
bool testing_barge();
// The busybox rootfs built once by tests/make-rootfs.sh and cached next to the test binary.
const std::string& cached_rootfs();
// Base temp dir of this test process (removed at exit).
const std::string& base_temp_dir();

// ---- host inspection ---------------------------------------------------------------------------

std::string slurp(const std::string& path);  // "" when unreadable
bool path_exists(const std::string& path);
// Lines of /proc/self/mountinfo whose mount point or root mentions needle.
std::vector<std::string> mounts_mentioning(const std::string& needle);
// Lazily detaches every mount at or below dir, deepest first.
void unmount_under(const std::string& dir);
// unmount_under, then rm -rf (never crossing into a mount left behind).
void remove_dir_safely(const std::string& dir);
// Existing cgroup directories /sys/fs/cgroup/<hierarchy>/<rel> over every hierarchy (v1 and v2).
std::vector<std::string> cgroup_dirs(const std::string& rel);
// Processes (other than this one) whose command line mentions needle.
std::vector<int> pids_mentioning(const std::string& needle);
// SIGKILLs every process whose command line mentions needle (our unique temp paths only).
void kill_processes_mentioning(const std::string& needle);
// Kills the processes left in those cgroup dirs and removes them (only call for our own test ids).
void remove_cgroup_dirs(const std::string& rel);
// True while /proc/<pid> exists and is not a zombie.
bool process_alive(int pid);
std::string ns_link(const std::string& proc_pid, const std::string& ns);
std::vector<std::string> split_lines(const std::string& text);
std::vector<std::string> split_words(const std::string& text);
std::string trim(const std::string& text);

// ---- bundles -----------------------------------------------------------------------------------

using ConfigEdit = std::function<void(Json&)>;

// A config modeled on `runc spec`: terminal false, readonly root, the usual mounts, masked and
// readonly paths, pid/net/ipc/uts/mount namespaces, linux.cgroupsPath = /barge-test/<id>.
Json default_config(const std::vector<std::string>& args, const std::string& id);

struct Bundle {
  std::string dir;
  Json config;
  std::string rootfs() const { return dir + "/rootfs"; }
  std::string config_path() const { return dir + "/config.json"; }
  void write() const;
};

// ---- fixture -----------------------------------------------------------------------------------

class RuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override;
  // Force-deletes every container this test made, fails the test on leftovers, then cleans them.
  void TearDown() override;

  // A unique id t-<pid>-<n>; remembered for TearDown.
  std::string new_id();
  // A bundle dir holding a copy of the cached rootfs and config.json (default_config + edit).
  Bundle make_bundle(const std::string& id, const std::vector<std::string>& args,
                     const ConfigEdit& edit = {});
  // Runs the runtime with --root <private root> prepended.
  ProcResult runtime(const std::vector<std::string>& args, const ProcOptions& options = {});
  // Runs the runtime with global args before --root (e.g. --log FILE).
  ProcResult runtime_with_globals(const std::vector<std::string>& globals,
                                  const std::vector<std::string>& args,
                                  const ProcOptions& options = {});

  // Convenience: new id + bundle + `run --bundle`; the output is the container's.
  ProcResult run_container(const std::vector<std::string>& args, const ConfigEdit& edit = {},
                           std::string* id_out = nullptr);
  // new id + bundle + `create`; asserts success and returns the id.
  std::string create_container(const std::vector<std::string>& args, const ConfigEdit& edit = {},
                               const ProcOptions& options = {});
  // `state` parsed; nullopt (with the result in *failed) when it fails.
  std::optional<Json> state(const std::string& id, ProcResult* failed = nullptr);
  // Polls `state` until status == want or timeout; returns the last status seen ("" on failure).
  std::string wait_for_status(const std::string& id, const std::string& want,
                              std::chrono::milliseconds timeout = 10s);

  // Problems left behind by container id (mounts of its bundle, cgroup dirs, state dir).
  std::vector<std::string> leftovers(const std::string& id) const;

  const std::string& root() const { return root_; }

 public:
  static std::string cgroup_rel(const std::string& id) { return "barge-test/" + id; }

 protected:
  const std::string& test_dir() const { return dir_; }
  std::string bundle_dir(const std::string& id) const { return dir_ + "/" + id; }

 private:
  void force_clean(const std::string& id);

  std::string dir_;
  std::string root_;
  std::vector<std::string> ids_;
};

// Leftover assertion usable from any test (after delete).
#define EXPECT_NO_LEFTOVERS(id)                                                  \
  do {                                                                           \
    auto barge_leftovers_ = leftovers(id);                                       \
    for (const auto& l_ : barge_leftovers_) ADD_FAILURE() << "leftover: " << l_; \
  } while (0)

}  // namespace barge::test

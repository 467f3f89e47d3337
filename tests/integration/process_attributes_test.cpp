// Process attributes beyond identity, checked from the kernel's side: scheduler policy and nice,
// I/O priority, personality, exec CPU affinity, id-mapped bind mounts, and the LSM / Intel RDT
// requests this host cannot honour failing cleanly (named field, nothing left behind).
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "runtime/lsm.hpp"
#include "tests/integration/harness.hpp"

namespace barge::test {
namespace {

namespace fs = std::filesystem;

class ProcessAttributes : public RuntimeTest {};

// Field n (1-based, as in proc(5)) of /proc/<pid>/stat, counted after the comm's ')'.
std::string stat_field(const std::string& stat, int n) {
  auto words = split_words(stat.substr(stat.rfind(')') + 2));
  return words.at(static_cast<size_t>(n - 3));
}

// process.noNewPrivileges is the kernel's no_new_privs bit of the container process, both ways.
TEST_F(ProcessAttributes, NoNewPrivilegesFromConfig) {
  for (bool on : {true, false}) {
    auto r = run_container({"grep", "NoNewPrivs:", "/proc/self/status"},
                           [on](Json& c) { c["process"]["noNewPrivileges"] = on; });
    ASSERT_EQ(r.status, 0) << r.describe();
    EXPECT_EQ(split_words(r.out), (std::vector<std::string>{"NoNewPrivs:", on ? "1" : "0"}))
        << "noNewPrivileges " << on;
  }
}

TEST_F(ProcessAttributes, SchedulerPolicyAndNiceFromConfig) {
  if (!testing_barge()) GTEST_SKIP() << "runc 1.1 has no process.scheduler";
  auto r = run_container({"cat", "/proc/self/stat"}, [](Json& c) {
    c["process"]["scheduler"] = {{"policy", "SCHED_BATCH"}, {"nice", 7}};
  });
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(stat_field(r.out, 19), "7") << r.out;  // nice
  EXPECT_EQ(stat_field(r.out, 41), "3") << r.out;  // policy: SCHED_BATCH
}

TEST_F(ProcessAttributes, IoPriorityFromConfigSeenByTheHost) {
  if (!testing_barge()) GTEST_SKIP() << "runc 1.1 has no process.ioPriority";
  if (!path_exists("/usr/bin/ionice")) GTEST_SKIP() << "ionice (util-linux) missing";
  std::string id = create_container({"sleep", "30"}, [](Json& c) {
    c["process"]["ioPriority"] = {{"class", "IOPRIO_CLASS_IDLE"}, {"priority", 0}};
  });
  auto s = state(id);
  ASSERT_TRUE(s);
  // The init sets it before execve, so the created (not yet started) process already has it.
  auto ionice = run_process({"/usr/bin/ionice", "-p", std::to_string((*s)["pid"].get<int>())});
  EXPECT_EQ(trim(ionice.out), "idle") << ionice.describe();
  EXPECT_EQ(runtime({"delete", "--force", id}).status, 0);
  EXPECT_NO_LEFTOVERS(id);
}

TEST_F(ProcessAttributes, Linux32PersonalityChangesUname) {
  if (!testing_barge()) GTEST_SKIP() << "runc 1.1 has no linux.personality";
  auto plain = run_container({"uname", "-m"});
  ASSERT_EQ(plain.status, 0) << plain.describe();
  if (trim(plain.out) != "x86_64") GTEST_SKIP() << "needs an x86_64 host";
  auto r = run_container({"uname", "-m"}, [](Json& c) {
    c["linux"]["personality"] = {{"domain", "LINUX32"}};
  });
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(trim(r.out), "i686");
}

TEST_F(ProcessAttributes, ExecCpuAffinityFinalPinsTheExecdProcess) {
  if (!testing_barge()) GTEST_SKIP() << "runc 1.1 has no process.execCPUAffinity";
  std::string id = create_container({"sleep", "30"});
  ASSERT_EQ(runtime({"start", id}).status, 0);
  Json process = default_config({"grep", "Cpus_allowed_list", "/proc/self/status"}, id)["process"];
  process["execCPUAffinity"] = {{"final", "0"}};
  std::string file = test_dir() + "/exec-process.json";
  std::ofstream(file) << process.dump();
  auto r = runtime({"exec", "--process", file, id});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(split_words(r.out).back(), "0") << r.out;
  EXPECT_EQ(runtime({"delete", "--force", id}).status, 0);
}

// A host file owned by 0 seen through a mount that maps on-disk 0 to 4242.
bool can_create_user_namespaces() {
  return run_process({"unshare", "--user", "true"}).status == 0;  // not in a chroot (test VM)
}

TEST_F(ProcessAttributes, IdMappedBindMountShowsMappedOwner) {
  if (!testing_barge()) GTEST_SKIP() << "runc 1.1 has no id-mapped mounts";
  if (!can_create_user_namespaces()) GTEST_SKIP() << "user namespaces unavailable here";
  std::string shared = test_dir() + "/idmapped-src";
  fs::create_directories(shared);
  std::ofstream(shared + "/owned-by-root") << "x";
  ASSERT_EQ(::chown((shared + "/owned-by-root").c_str(), 0, 0), 0);
  auto r = run_container({"stat", "-c", "%u:%g", "/mnt/idmapped/owned-by-root"}, [&](Json& c) {
    c["mounts"].push_back({{"destination", "/mnt/idmapped"},
                           {"type", "bind"},
                           {"source", shared},
                           {"options", {"rbind", "ro"}},
                           {"uidMappings", {{{"containerID", 0}, {"hostID", 4242}, {"size", 1}}}},
                           {"gidMappings", {{{"containerID", 0}, {"hostID", 4343}, {"size", 1}}}}});
  });
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(trim(r.out), "4242:4343");
  // The host's view of the same file is unchanged.
  struct stat st {};
  ASSERT_EQ(::stat((shared + "/owned-by-root").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
}

// The case id-mapped mounts exist for: a container whose root is host uid 100000 gets a host
// directory owned by host root as its own: it reads as 0 inside, and what it creates there is
// owned by host root on disk (not 100000).
TEST_F(ProcessAttributes, IdMappedBindMountInAUserNamespaceContainer) {
  if (!testing_barge()) GTEST_SKIP() << "runc 1.1 has no id-mapped mounts";
  if (!can_create_user_namespaces()) GTEST_SKIP() << "user namespaces unavailable here";
  constexpr int kBase = 100000;
  // The mapped root must be able to reach the bundle.
  for (const std::string& dir : {base_temp_dir(), test_dir()}) ::chmod(dir.c_str(), 0711);
  std::string shared = test_dir() + "/idmapped-userns";
  fs::create_directories(shared);
  std::ofstream(shared + "/host-root-file") << "x";
  Json mapping = Json::array({{{"containerID", 0}, {"hostID", kBase}, {"size", 65536}}});
  auto r = run_container({"sh", "-c", "stat -c %u /tmp/host-root-file; touch /tmp/made-inside"},
                         [&](Json& c) {
                           c["linux"]["namespaces"].push_back({{"type", "user"}});
                           c["linux"]["uidMappings"] = mapping;
                           c["linux"]["gidMappings"] = mapping;
                           c["mounts"].push_back({{"destination", "/tmp"},
                                                  {"type", "bind"},
                                                  {"source", shared},
                                                  {"options", {"rbind", "rw"}},
                                                  {"uidMappings", mapping},
                                                  {"gidMappings", mapping}});
                         });
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(trim(r.out), "0");
  struct stat st {};
  ASSERT_EQ(::stat((shared + "/made-inside").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 0u);
}

TEST_F(ProcessAttributes, IdMappingOnANonBindMountIsRefused) {
  if (!testing_barge()) GTEST_SKIP() << "barge's error text";
  std::string id;
  auto r = run_container(
      {"true"},
      [](Json& c) {
        c["mounts"].push_back(
            {{"destination", "/mnt/t"},
             {"type", "tmpfs"},
             {"source", "tmpfs"},
             {"uidMappings", {{{"containerID", 0}, {"hostID", 1}, {"size", 1}}}},
             {"gidMappings", {{{"containerID", 0}, {"hostID", 1}, {"size", 1}}}}});
      },
      &id);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("only bind mounts can be id-mapped"), std::string::npos) << r.describe();
  EXPECT_NO_LEFTOVERS(id);
}

// A loaded AppArmor profile for the test's lifetime (apparmor_parser -r / -R).
class AppArmorProfile {
 public:
  AppArmorProfile(std::string name, const std::string& dir) : name_(std::move(name)) {
    file_ = dir + "/" + name_ + ".profile";
    std::ofstream(file_) << "profile " << name_ << " flags=(attach_disconnected) {\n"
                         << "  file,\n  capability,\n  network,\n  signal,\n  unix,\n"
                         << "  mount,\n  umount,\n  pivot_root,\n  ptrace,\n"
                         // Any prefix: mediation paths of a pivoted root vary by kernel.
                         << "  deny /**/etc/group r,\n}\n";
    auto r = run_process({"apparmor_parser", "-r", file_});
    loaded_ = r.status == 0;
    error_ = r.describe();
  }
  ~AppArmorProfile() {
    if (loaded_) run_process({"apparmor_parser", "-R", file_});
  }
  bool loaded() const { return loaded_; }
  const std::string& error() const { return error_; }

 private:
  std::string name_, file_, error_;
  bool loaded_ = false;
};

// Proven in the test VM (Debian's kernel has AppArmor on): run-in-vm.sh -- integration_tests
// --gtest_filter='ProcessAttributes.AppArmor*'. Skips on hosts without AppArmor.
TEST_F(ProcessAttributes, AppArmorProfileConfinesInitAndExec) {
  if (!runtime::lsm::apparmor_enabled()) GTEST_SKIP() << "AppArmor is not enabled on this host";
  if (!path_exists("/usr/sbin/apparmor_parser") && !path_exists("/sbin/apparmor_parser"))
    GTEST_SKIP() << "apparmor_parser (package apparmor) missing";
  std::string name = "barge-test-" + std::to_string(::getpid());
  AppArmorProfile profile(name, test_dir());
  ASSERT_TRUE(profile.loaded()) << profile.error();
  auto r = run_container({"sh", "-c", "cat /proc/self/attr/current; cat /etc/group || echo denied"},
                         [&](Json& c) { c["process"]["apparmorProfile"] = name; });
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.out, name + " (enforce)\ndenied\n") << r.describe();

  // exec --apparmor puts an exec'd process under the profile too.
  std::string id = create_container({"sleep", "30"});
  ASSERT_EQ(runtime({"start", id}).status, 0);
  auto plain = runtime({"exec", id, "cat", "/proc/self/attr/current"});
  EXPECT_EQ(trim(plain.out), "unconfined") << plain.describe();
  auto confined = runtime({"exec", "--apparmor", name, id, "cat", "/proc/self/attr/current"});
  EXPECT_EQ(trim(confined.out), name + " (enforce)") << confined.describe();
  EXPECT_EQ(runtime({"delete", "--force", id}).status, 0);
}

struct Unsupported {
  const char* name;
  std::function<void(Json&)> edit;
  const char* expected;
};

TEST_F(ProcessAttributes, LsmAndRdtRequestsTheHostCannotHonourFailCleanly) {
  if (!testing_barge()) GTEST_SKIP() << "runc ignores missing LSMs silently";
  const Unsupported cases[] = {
      {"apparmor", [](Json& c) { c["process"]["apparmorProfile"] = "barge-test"; },
       "process.apparmorProfile: AppArmor is not enabled"},
      {"selinux",
       [](Json& c) { c["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0"; },
       "process.selinuxLabel: SELinux is not enabled"},
      {"mountLabel",
       [](Json& c) { c["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0"; },
       "linux.mountLabel: SELinux is not enabled"},
      {"intelRdt",
       [](Json& c) {
         c["linux"]["intelRdt"] = {{"closID", "barge"}};
       },
       "linux.intelRdt: Intel RDT (resctrl) is not supported"},
  };
  for (const auto& unsupported : cases) {
    if (std::string(unsupported.name) == "apparmor" && path_exists("/sys/kernel/security/apparmor"))
      continue;
    if (std::string(unsupported.name) != "apparmor" &&
        std::string(unsupported.name) != "intelRdt" && path_exists("/sys/fs/selinux/enforce"))
      continue;
    std::string id;
    auto r = run_container({"true"}, unsupported.edit, &id);
    EXPECT_NE(r.status, 0) << unsupported.name;
    EXPECT_NE(r.err.find(unsupported.expected), std::string::npos)
        << unsupported.name << ": " << r.describe();
    EXPECT_NO_LEFTOVERS(id);
  }
}

TEST_F(ProcessAttributes, ExecWithAnAppArmorProfileOnAHostWithoutItFails) {
  if (!testing_barge()) GTEST_SKIP() << "runc ignores missing LSMs silently";
  if (runtime::lsm::apparmor_enabled()) GTEST_SKIP() << "AppArmor is enabled here";
  std::string id = create_container({"sleep", "30"});
  ASSERT_EQ(runtime({"start", id}).status, 0);
  auto r = runtime({"exec", "--apparmor", "barge-test", id, "true"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("AppArmor is not enabled"), std::string::npos) << r.describe();
  EXPECT_EQ(runtime({"delete", "--force", id}).status, 0);
}

}  // namespace
}  // namespace barge::test

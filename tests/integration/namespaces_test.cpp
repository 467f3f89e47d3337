// Namespaces beyond the defaults: a user namespace with id mappings, joining namespaces by path,
// time namespace offsets, and --no-pivot. Each check reads what the kernel reports.
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "tests/integration/harness.hpp"

namespace barge::test {
namespace {

constexpr int kHostIdBase = 100000;
constexpr int kGidBase = 200000;  // a gid range distinct from the uid one

void add_user_namespace(Json& config) {
  config["linux"]["namespaces"].push_back({{"type", "user"}});
  Json mapping = Json::array({{{"containerID", 0}, {"hostID", kHostIdBase}, {"size", 65536}}});
  config["linux"]["uidMappings"] = mapping;
  config["linux"]["gidMappings"] = mapping;
}

void replace_namespace(Json& config, const std::string& type, const std::string& path) {
  for (auto& ns : config["linux"]["namespaces"])
    if (ns["type"] == type) ns["path"] = path;
}

// A network namespace made with `ip netns add`, removed when the test ends.
class NamedNetns {
 public:
  explicit NamedNetns(std::string name) : name_(std::move(name)) {
    ok_ = run_process({"ip", "netns", "add", name_}).status == 0;
  }
  ~NamedNetns() {
    if (ok_) run_process({"ip", "netns", "del", name_});
  }
  bool ok() const { return ok_; }
  std::string path() const { return "/var/run/netns/" + name_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  bool ok_ = false;
};

std::string field_of_status(int pid, const std::string& field) {
  for (const auto& line : split_lines(slurp("/proc/" + std::to_string(pid) + "/status")))
    if (line.rfind(field + ":", 0) == 0) return trim(line.substr(field.size() + 1));
  return "";
}

// Inode of the user namespace that owns /proc/<pid>/ns/<type> (NS_GET_USERNS), 0 on failure.
ino_t owning_user_namespace(int pid, const std::string& type) {
  std::string path = "/proc/" + std::to_string(pid) + "/ns/" + type;
  int ns = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0) return 0;
  int owner = ::ioctl(ns, NS_GET_USERNS);
  ::close(ns);
  if (owner < 0) return 0;
  struct stat st {};
  int rc = ::fstat(owner, &st);
  ::close(owner);
  return rc == 0 ? st.st_ino : 0;
}

ino_t namespace_inode(int pid, const std::string& type) {
  struct stat st {};
  std::string path = "/proc/" + std::to_string(pid) + "/ns/" + type;
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

class Namespaces : public RuntimeTest {
 protected:
  // A mapped root is "others" to the host's 0700 temp dirs: like runc, it must reach the rootfs.
  void SetUp() override {
    RuntimeTest::SetUp();
    for (const std::string& dir : {base_temp_dir(), test_dir()}) ::chmod(dir.c_str(), 0711);
  }
};

TEST_F(Namespaces, UserNamespaceMakesContainerRootAnUnprivilegedHostUid) {
  std::string id = create_container({"sleep", "60"}, add_user_namespace);
  ProcResult started = runtime({"start", id});
  ASSERT_EQ(started.status, 0) << started.describe();
  auto st = state(id);
  ASSERT_TRUE(st);
  int pid = (*st)["pid"].get<int>();
  // The host sees the container's root as the mapped uid/gid, in all four id slots.
  EXPECT_EQ(split_words(field_of_status(pid, "Uid")),
            std::vector<std::string>(4, std::to_string(kHostIdBase)));
  EXPECT_EQ(split_words(field_of_status(pid, "Gid")),
            std::vector<std::string>(4, std::to_string(kHostIdBase)));
  EXPECT_NE(ns_link(std::to_string(pid), "user"), ns_link("self", "user"));
  EXPECT_EQ(trim(slurp("/proc/" + std::to_string(pid) + "/uid_map")), "0     100000      65536");
  EXPECT_EQ(runtime({"delete", "--force", id}).status, 0);
  EXPECT_NO_LEFTOVERS(id);
}

// Every namespace the container creates next to a new user namespace belongs to it (the
// container's root may administer them), whether made by the clone or unshared later. The
// cgroup namespace's root is the container's cgroup: it is made after the cgroup join.
TEST_F(Namespaces, NewNamespacesBelongToTheNewUserNamespace) {
  std::string id = create_container({"sleep", "60"}, [](Json& c) {
    add_user_namespace(c);
    c["linux"]["namespaces"].push_back({{"type", "cgroup"}});
  });
  ASSERT_EQ(runtime({"start", id}).status, 0);
  auto st = state(id);
  ASSERT_TRUE(st);
  int pid = (*st)["pid"].get<int>();
  ino_t userns = namespace_inode(pid, "user");
  ASSERT_NE(userns, 0u);
  ASSERT_NE(userns, namespace_inode(::getpid(), "user"));
  for (const char* type : {"mnt", "net", "uts", "ipc", "cgroup", "pid"}) {
    EXPECT_NE(namespace_inode(pid, type), namespace_inode(::getpid(), type)) << type;
    EXPECT_EQ(owning_user_namespace(pid, type), userns) << type;
  }
  ProcResult cgroups = runtime({"exec", id, "cat", "/proc/self/cgroup"});
  ASSERT_EQ(cgroups.status, 0) << cgroups.describe();
  for (const auto& line : split_lines(cgroups.out)) {
    std::string path = line.substr(line.find(':', line.find(':') + 1) + 1);
    EXPECT_EQ(path, "/") << "cgroup namespace root is not the container's cgroup: " << line;
  }
  EXPECT_EQ(runtime({"delete", "--force", id}).status, 0);
  EXPECT_NO_LEFTOVERS(id);
}

// With the user namespace joined by path, the new ones belong to the joined one. (The pid
// namespace is joined too: one made by the clone would belong to the host's user namespace, and
// the joined user namespace's root could not mount its /proc.)
TEST_F(Namespaces, NewNamespacesBelongToAJoinedUserNamespace) {
  std::string first = create_container({"sleep", "60"}, add_user_namespace);
  ASSERT_EQ(runtime({"start", first}).status, 0);
  auto first_state = state(first);
  ASSERT_TRUE(first_state);
  int owner_pid = (*first_state)["pid"].get<int>();
  std::string owner_proc = "/proc/" + std::to_string(owner_pid);
  std::string id = create_container({"sleep", "60"}, [&](Json& c) {
    c["linux"]["namespaces"].push_back({{"type", "user"}, {"path", owner_proc + "/ns/user"}});
    replace_namespace(c, "pid", owner_proc + "/ns/pid");
  });
  ASSERT_EQ(runtime({"start", id}).status, 0);
  auto st = state(id);
  ASSERT_TRUE(st);
  int pid = (*st)["pid"].get<int>();
  ino_t userns = namespace_inode(owner_pid, "user");
  EXPECT_EQ(namespace_inode(pid, "user"), userns);
  for (const char* type : {"mnt", "net", "uts", "ipc"}) {
    EXPECT_NE(namespace_inode(pid, type), namespace_inode(owner_pid, type)) << type;
    EXPECT_EQ(owning_user_namespace(pid, type), userns) << type;
  }
  EXPECT_EQ(runtime({"delete", "--force", id}).status, 0);
  EXPECT_EQ(runtime({"delete", "--force", first}).status, 0);
  EXPECT_NO_LEFTOVERS(id);
}

TEST_F(Namespaces, FilesCreatedInAUserNamespaceHaveTheMappedOwnerOnTheHost) {
  std::string shared = test_dir() + "/shared-" + std::to_string(::getpid());
  ASSERT_EQ(::mkdir(shared.c_str(), 0777), 0);
  ASSERT_EQ(::chmod(shared.c_str(), 0777), 0);
  ProcResult r = run_container({"sh", "-c", "id -u; touch /tmp/made-inside"}, [&](Json& c) {
    add_user_namespace(c);
    c["mounts"].push_back({{"destination", "/tmp"},
                           {"type", "bind"},
                           {"source", shared},
                           {"options", {"rbind", "rw"}}});
  });
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(trim(r.out), "0");
  struct stat st {};
  ASSERT_EQ(::stat((shared + "/made-inside").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, static_cast<uid_t>(kHostIdBase));
  EXPECT_EQ(st.st_gid, static_cast<gid_t>(kHostIdBase));
}

// Lines of "sh -c" output after a "== name" marker, up to the next marker.
std::vector<std::string> section(const std::string& out, const std::string& name) {
  std::vector<std::string> lines;
  bool in = false;
  for (const auto& line : split_lines(out)) {
    if (line.rfind("== ", 0) == 0) {
      in = line == "== " + name;
      continue;
    }
    if (in) lines.push_back(trim(line));
  }
  return lines;
}

std::vector<std::string> host_interfaces() {
  ProcResult r = run_process({"ls", "/sys/class/net"});
  return split_words(r.out);
}

// The way podman and friends prepare a user-namespaced container: the rootfs belongs to the
// mapped root. Then the container's root owns it, /dev works through bind-mounted nodes, /proc
// and a fresh sysfs of its own network namespace mount, and what it writes is owned by the
// mapped id on the host.
TEST_F(Namespaces, RootfsOwnedByTheMappingWorksEndToEnd) {
  std::string id = new_id();
  const std::string script =
      "echo '== owner'; stat -c %u:%g /bin/busybox /etc;"
      "echo '== write'; touch /made-in-root && echo ok;"
      "echo '== dev'; echo x >/dev/null && head -c 3 /dev/zero | wc -c; stat -c %F:%t:%T /dev/null;"
      "echo '== maps'; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups;"
      "echo '== sys'; ls /sys/class/net";
  Bundle bundle = make_bundle(id, {"sh", "-c", script}, [](Json& c) {
    add_user_namespace(c);
    c["root"]["readonly"] = false;
  });
  ProcResult chown = run_process({"chown", "-R", "-h",
                                  std::to_string(kHostIdBase) + ":" + std::to_string(kHostIdBase),
                                  bundle.rootfs()});
  ASSERT_EQ(chown.status, 0) << chown.describe();
  ProcResult r = runtime({"run", "--bundle", bundle.dir, id});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(section(r.out, "owner"), (std::vector<std::string>{"0:0", "0:0"})) << r.out;
  EXPECT_EQ(section(r.out, "write"), std::vector<std::string>{"ok"}) << r.out;
  EXPECT_EQ(section(r.out, "dev"), (std::vector<std::string>{"3", "character special file:1:3"}))
      << r.out;
  std::vector<std::string> maps = section(r.out, "maps");
  ASSERT_EQ(maps.size(), 3u) << r.out;
  EXPECT_EQ(split_words(maps[0]), (std::vector<std::string>{"0", "100000", "65536"}));
  EXPECT_EQ(split_words(maps[1]), (std::vector<std::string>{"0", "100000", "65536"}));
  EXPECT_EQ(maps[2], "allow");
  // Its own network namespace, so sysfs is a fresh mount showing only its loopback.
  EXPECT_EQ(section(r.out, "sys"), std::vector<std::string>{"lo"}) << r.out;
  struct stat st {};
  ASSERT_EQ(::lstat((bundle.rootfs() + "/made-in-root").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, static_cast<uid_t>(kHostIdBase));
  EXPECT_EQ(st.st_gid, static_cast<gid_t>(kHostIdBase));
  EXPECT_NO_LEFTOVERS(id);
}

// Without a network namespace of its own a user-namespaced container may not mount sysfs (the
// kernel ties it to the network namespace's owner): /sys is the host's, bind-mounted.
TEST_F(Namespaces, UserNamespaceWithoutNetworkNamespaceBindsTheHostSys) {
  if (!testing_barge()) GTEST_SKIP() << "runc 1.1 fails the sysfs mount (EPERM) instead";
  const std::string script =
      "echo '== net'; ls /sys/class/net; echo '== mount'; awk '$5 == \"/sys\"' "
      "/proc/self/mountinfo";
  ProcResult r = run_container({"sh", "-c", script}, [](Json& c) {
    add_user_namespace(c);
    Json kept = Json::array();
    for (const auto& ns : c["linux"]["namespaces"])
      if (ns["type"] != "network") kept.push_back(ns);
    c["linux"]["namespaces"] = kept;
  });
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(section(r.out, "net"), host_interfaces()) << r.out;
  std::vector<std::string> mounts = section(r.out, "mount");
  ASSERT_EQ(mounts.size(), 1u) << r.out;
  EXPECT_NE(mounts[0].find(" - sysfs "), std::string::npos) << mounts[0];
  // The host's sysfs instance (same device), not a new one.
  std::string host_sys_device;
  for (const auto& line : split_lines(slurp("/proc/self/mountinfo")))
    if (split_words(line).size() > 4 && split_words(line)[4] == "/sys")
      host_sys_device = split_words(line)[2];
  EXPECT_EQ(split_words(mounts[0]).at(2), host_sys_device) << mounts[0];
  EXPECT_NE(mounts[0].find(" /sys ro,"), std::string::npos)
      << "read-only as configured: " << mounts[0];
}

// uid and gid maps are written as configured (different ranges here), setgroups stays allowed for
// a root-created namespace, so process.user.additionalGids apply inside; the host sees the
// groups mapped.
TEST_F(Namespaces, GidMapAndAdditionalGidsInAUserNamespace) {
  std::string id = create_container({"sleep", "60"}, [](Json& c) {
    add_user_namespace(c);
    c["linux"]["gidMappings"] =
        Json::array({{{"containerID", 0}, {"hostID", kGidBase}, {"size", 65536}}});
    c["process"]["user"]["additionalGids"] = {10, 20};
  });
  ASSERT_EQ(runtime({"start", id}).status, 0);
  auto st = state(id);
  ASSERT_TRUE(st);
  std::string proc = "/proc/" + std::to_string((*st)["pid"].get<int>());
  EXPECT_EQ(split_words(slurp(proc + "/uid_map")),
            (std::vector<std::string>{"0", std::to_string(kHostIdBase), "65536"}));
  EXPECT_EQ(split_words(slurp(proc + "/gid_map")),
            (std::vector<std::string>{"0", std::to_string(kGidBase), "65536"}));
  EXPECT_EQ(trim(slurp(proc + "/setgroups")), "allow");
  EXPECT_EQ(
      split_words(field_of_status((*st)["pid"].get<int>(), "Groups")),
      (std::vector<std::string>{std::to_string(kGidBase + 10), std::to_string(kGidBase + 20)}));
  EXPECT_EQ(split_words(field_of_status((*st)["pid"].get<int>(), "Gid")),
            std::vector<std::string>(4, std::to_string(kGidBase)));
  EXPECT_EQ(runtime({"delete", "--force", id}).status, 0);
  EXPECT_NO_LEFTOVERS(id);
}

TEST_F(Namespaces, JoinsANetworkNamespaceGivenByPath) {
  NamedNetns netns("barge-t-" + std::to_string(::getpid()));
  ASSERT_TRUE(netns.ok()) << "ip netns add failed";
  struct stat st {};
  ASSERT_EQ(::stat(netns.path().c_str(), &st), 0);
  ProcResult r = run_container({"readlink", "/proc/self/ns/net"},
                               [&](Json& c) { replace_namespace(c, "network", netns.path()); });
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(trim(r.out), "net:[" + std::to_string(st.st_ino) + "]");
}

TEST_F(Namespaces, JoinsTheNamespacesOfAnotherContainer) {
  std::string first = create_container({"sleep", "60"});
  ASSERT_EQ(runtime({"start", first}).status, 0);
  auto st = state(first);
  ASSERT_TRUE(st);
  std::string proc = "/proc/" + std::to_string((*st)["pid"].get<int>());
  ProcResult r = run_container(
      {"sh", "-c", "readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts; hostname"},
      [&](Json& c) {
        replace_namespace(c, "ipc", proc + "/ns/ipc");
        replace_namespace(c, "uts", proc + "/ns/uts");
        c.erase("hostname");
      });
  ASSERT_EQ(r.status, 0) << r.describe();
  auto lines = split_lines(r.out);
  ASSERT_GE(lines.size(), 2u) << r.describe();
  EXPECT_EQ(lines[0], ns_link(proc.substr(6), "ipc"));
  EXPECT_EQ(lines[1], ns_link(proc.substr(6), "uts"));
  EXPECT_EQ(runtime({"delete", "--force", first}).status, 0);
}

TEST_F(Namespaces, MissingNamespacePathFailsNamingTheFieldAndLeavesNothing) {
  std::string id = new_id();
  make_bundle(id, {"true"}, [](Json& c) {
    c["linux"]["namespaces"].push_back({{"type", "cgroup"}, {"path", "/nonexistent/barge/ns"}});
    Json kept = Json::array();
    bool seen = false;
    for (auto& ns : c["linux"]["namespaces"]) {  // keep only the last "cgroup" entry
      if (ns["type"] == "cgroup" && !ns.contains("path") && !seen) continue;
      kept.push_back(ns);
      seen = seen || ns["type"] == "cgroup";
    }
    c["linux"]["namespaces"] = kept;
  });
  ProcResult r = runtime({"create", "--bundle", bundle_dir(id), id});
  EXPECT_NE(r.status, 0);
  if (testing_barge()) {
    EXPECT_NE(r.err.find("linux.namespaces["), std::string::npos) << r.err;
  }
  EXPECT_NO_LEFTOVERS(id);
}

TEST_F(Namespaces, TimeNamespaceOffsetsShiftBoottime) {
  if (!path_exists("/proc/self/ns/time")) GTEST_SKIP() << "kernel without time namespaces";
  if (!testing_barge()) GTEST_SKIP() << "runc 1.1 has no time namespace support";
  ProcResult r = run_container({"cut", "-d.", "-f1", "/proc/uptime"}, [](Json& c) {
    c["linux"]["namespaces"].push_back({{"type", "time"}});
    c["linux"]["timeOffsets"] = {{"boottime", {{"secs", 86400 * 3}, {"nanosecs", 0}}}};
  });
  ASSERT_EQ(r.status, 0) << r.describe();
  long inside = std::stol(trim(r.out));
  long host = std::stol(split_words(slurp("/proc/uptime")).at(0));
  EXPECT_GE(inside, host + 86400 * 3 - 5);
  EXPECT_LE(inside, host + 86400 * 3 + 5);
}

TEST_F(Namespaces, NoPivotStillIsolatesTheRootfs) {
  std::string id = new_id();
  make_bundle(id, {"sh", "-c",
                   "echo $$; test -e /bin/busybox && ! test -e /etc/os-release && echo isolated"});
  ProcResult r = runtime({"run", "--no-pivot", "--bundle", bundle_dir(id), id});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(split_lines(r.out), (std::vector<std::string>{"1", "isolated"}));
  EXPECT_NO_LEFTOVERS(id);
}

}  // namespace
}  // namespace barge::test

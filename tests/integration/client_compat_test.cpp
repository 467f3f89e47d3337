// Runtime behaviours that clients (podman/conmon, containerd's shim) depend on beyond the spec:
// runc's error wording that they map to exit codes, and runc's mount extensions they emit.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "tests/integration/harness.hpp"

namespace barge::test {
namespace {

class ClientCompat : public RuntimeTest {};

// The error message as a client matches it: case-insensitive, JSON quote escapes dropped.
std::string as_client_reads_it(std::string text) {
  std::erase(text, '\\');
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// podman turns "no such file or directory" / "executable file not found" into exit code 127 and
// "permission denied" into 126; containerd shows the message to the user.
TEST_F(ClientCompat, ExecutableErrorsUseRuncWording) {
  struct Case {
    std::string command;
    std::string message;
  };
  for (const auto& [command, message] :
       {Case{"/no/such/binary",
             "exec: \"/no/such/binary\": stat /no/such/binary: no such file or directory"},
        Case{"no-such-binary", "exec: \"no-such-binary\": executable file not found in $path"},
        Case{"/etc/passwd", "exec: \"/etc/passwd\": permission denied"},
        Case{"/etc", "exec: \"/etc\": permission denied"}}) {
    std::string id;
    auto r = run_container({command}, {}, &id);
    EXPECT_NE(r.status, 0) << command << ": " << r.describe();
    EXPECT_NE(as_client_reads_it(r.err).find(message), std::string::npos) << r.describe();
    EXPECT_NO_LEFTOVERS(id);
  }
}

TEST_F(ClientCompat, ExecIntoContainerUsesTheSameWording) {
  std::string id = create_container({"sleep", "1000"});
  ASSERT_EQ(runtime({"start", id}).status, 0);
  auto r = runtime({"exec", id, "/no/such/binary"});
  EXPECT_NE(r.status, 0) << r.describe();
  EXPECT_NE(as_client_reads_it(r.err).find("stat /no/such/binary: no such file or directory"),
            std::string::npos)
      << r.describe();
  r = runtime({"exec", id, "/etc/passwd"});
  EXPECT_NE(r.status, 0) << r.describe();
  EXPECT_NE(as_client_reads_it(r.err).find("exec: \"/etc/passwd\": permission denied"),
            std::string::npos)
      << r.describe();
}

// runc creates a missing cwd for the init but not for an exec; podman expects the exec to fail
// (exit code 127 from "no such file or directory") and the container to stay untouched.
TEST_F(ClientCompat, ExecIntoMissingCwdFails) {
  std::string id =
      create_container({"sleep", "1000"}, [](Json& c) { c["process"]["cwd"] = "/made"; });
  ASSERT_EQ(runtime({"start", id}).status, 0);
  EXPECT_EQ(runtime({"exec", id, "test", "-d", "/made"}).status, 0) << "init cwd not created";
  auto r = runtime({"exec", "--cwd", "/no/such/dir", id, "true"});
  EXPECT_NE(r.status, 0) << r.describe();
  EXPECT_NE(as_client_reads_it(r.err).find("no such file or directory"), std::string::npos)
      << r.describe();
  EXPECT_NE(runtime({"exec", id, "test", "-e", "/no/such/dir"}).status, 0)
      << "exec created its cwd inside the container";
}

// podman kill of a paused container: SIGKILL must end it, not leave it frozen.
TEST_F(ClientCompat, SigkillEndsAPausedContainer) {
  for (bool all : {false, true}) {
    std::string id = create_container({"sleep", "1000"});
    ASSERT_EQ(runtime({"start", id}).status, 0);
    ASSERT_EQ(runtime({"pause", id}).status, 0);
    std::vector<std::string> kill{"kill"};
    if (all) kill.push_back("--all");
    kill.insert(kill.end(), {id, "KILL"});
    auto r = runtime(kill);
    EXPECT_EQ(r.status, 0) << r.describe();
    EXPECT_EQ(wait_for_status(id, "stopped"), "stopped") << (all ? "kill --all" : "kill");
  }
}

// "tmpcopyup" (podman puts it on every tmpfs): the new tmpfs starts with a copy of what it covers,
// owners, modes, symlinks and all, while the rootfs itself stays untouched (and read-only).
TEST_F(ClientCompat, TmpfsCopyUp) {
  std::string id = new_id();
  Bundle b = make_bundle(
      id,
      {"sh", "-c",
       "cd /data && stat -c '%a %u:%g %n' file sub sub/inner && readlink link && "
       "grep ' /data ' /proc/self/mounts | cut -d' ' -f3 && echo new > new && cat new"},
      [](Json& c) {
        c["mounts"].push_back({{"destination", "/data"},
                               {"type", "tmpfs"},
                               {"source", "tmpfs"},
                               {"options", {"rw", "rprivate", "nosuid", "nodev", "tmpcopyup"}}});
      });
  const std::string data = b.rootfs() + "/data";
  std::filesystem::create_directories(data + "/sub");
  std::ofstream(data + "/file") << "content\n";
  std::ofstream(data + "/sub/inner") << "inner\n";
  ASSERT_EQ(chown((data + "/file").c_str(), 1000, 1001), 0);
  ASSERT_EQ(chmod((data + "/file").c_str(), 0640), 0);
  ASSERT_EQ(chmod((data + "/sub").c_str(), 0777), 0);
  ASSERT_EQ(chmod((data + "/sub/inner").c_str(), 04755), 0);
  ASSERT_EQ(symlink("file", (data + "/link").c_str()), 0);

  auto r = runtime({"run", "--bundle", b.dir, id});
  EXPECT_EQ(r.status, 0) << r.describe();
  // runc 1.1 lets the umask narrow copied directories (its issue 3991, fixed later).
  const std::string sub_mode = testing_barge() ? "777" : "755";
  EXPECT_EQ(r.out,
            "640 1000:1001 file\n" + sub_mode + " 0:0 sub\n4755 0:0 sub/inner\nfile\ntmpfs\nnew\n");
  EXPECT_FALSE(path_exists(data + "/new")) << "the write went to the rootfs";
  EXPECT_NO_LEFTOVERS(id);
}

// A tmpfs over an existing directory takes that directory's mode unless its options name one (runc
// since 1.1.8, crun); over a missing one it has tmpfs's default 1777. podman relies on this for
// --read-only's /run (0755) and /tmp (1777).
TEST_F(ClientCompat, TmpfsKeepsTheModeOfTheDirectoryItCovers) {
  auto tmpfs = [](const std::string& destination, Json options) {
    return Json{{"destination", destination},
                {"type", "tmpfs"},
                {"source", "tmpfs"},
                {"options", std::move(options)}};
  };
  std::string id = new_id();
  Bundle b =
      make_bundle(id, {"stat", "-c", "%a %n", "/covered", "/explicit", "/fresh"}, [&](Json& c) {
        c["mounts"].push_back(tmpfs("/covered", {"nosuid"}));
        c["mounts"].push_back(tmpfs("/explicit", {"nosuid", "mode=700"}));
        c["mounts"].push_back(tmpfs("/fresh", {"nosuid"}));
      });
  for (const char* dir : {"/covered", "/explicit"}) {
    ASSERT_EQ(mkdir((b.rootfs() + dir).c_str(), 0750), 0);
    ASSERT_EQ(chmod((b.rootfs() + dir).c_str(), 0750), 0);
  }
  auto r = runtime({"run", "--bundle", b.dir, id});
  EXPECT_EQ(r.status, 0) << r.describe();
  // runc 1.1.5 (Debian 12) still chmods over an explicit mode= (its issue 3911).
  const std::string explicit_mode = testing_barge() ? "700" : "750";
  EXPECT_EQ(r.out, "750 /covered\n" + explicit_mode + " /explicit\n1777 /fresh\n");
  EXPECT_NO_LEFTOVERS(id);
}

}  // namespace
}  // namespace barge::test

// Failures: invalid and malformed configs, --log JSON, missing bundles and ids, exec not found, and
// the command line itself (--version, --help, unknown flags).
#include <filesystem>
#include <fstream>
#include <regex>

#include "tests/integration/harness.hpp"

namespace barge::test {
namespace {

namespace fs = std::filesystem;

class Errors : public RuntimeTest {};
class Cli : public RuntimeTest {};

TEST_F(Errors, UnknownNamespaceType) {
  for (const char* command : {"create", "run"}) {
    std::string id = new_id();
    Bundle b =
        make_bundle(id, {"true"}, [](Json& c) { c["linux"]["namespaces"][2]["type"] = "foo"; });
    auto r = runtime({command, "--bundle", b.dir, id});
    EXPECT_NE(r.status, 0) << command << ": " << r.describe();
    if (testing_barge()) {
      EXPECT_NE(r.err.find("linux.namespaces[2].type"), std::string::npos) << r.describe();
    }
    EXPECT_FALSE(state(id).has_value());
    EXPECT_NO_LEFTOVERS(id);
  }
}

TEST_F(Errors, MalformedJson) {
  std::string id = new_id();
  Bundle b = make_bundle(id, {"true"});
  // Line 3 is cut off mid-object.
  std::ofstream(b.config_path(), std::ios::trunc)
      << "{\n  \"ociVersion\": \"1.0.2\",\n  \"process\": {\"args\": [\n";
  auto r = runtime({"create", "--bundle", b.dir, id});
  EXPECT_NE(r.status, 0) << r.describe();
  if (testing_barge()) {
    EXPECT_NE(r.err.find("config.json"), std::string::npos) << r.describe();
    EXPECT_TRUE(std::regex_search(r.err, std::regex(R"((\d+:\d+)|(line \d+))"))) << r.describe();
  }
  EXPECT_FALSE(state(id).has_value());
  EXPECT_NO_LEFTOVERS(id);
}

TEST_F(Errors, WrongFieldType) {
  std::string id = new_id();
  Bundle b = make_bundle(id, {"true"}, [](Json& c) { c["process"]["args"] = "not-an-array"; });
  auto r = runtime({"create", "--bundle", b.dir, id});
  EXPECT_NE(r.status, 0) << r.describe();
  if (testing_barge()) {
    EXPECT_NE(r.err.find("process.args"), std::string::npos) << r.describe();
  }
  EXPECT_NO_LEFTOVERS(id);
}

TEST_F(Errors, LogFileJsonOnFailure) {
  std::string id = new_id();
  Bundle b =
      make_bundle(id, {"true"}, [](Json& c) { c["linux"]["namespaces"][2]["type"] = "foo"; });
  const std::string log = test_dir() + "/runtime.log";
  auto r = runtime_with_globals({"--log", log, "--log-format", "json"},
                                {"create", "--bundle", b.dir, id});
  EXPECT_NE(r.status, 0) << r.describe();
  auto lines = split_lines(slurp(log));
  ASSERT_FALSE(lines.empty()) << "empty log file; " << r.describe();
  for (const auto& line : lines) {
    EXPECT_FALSE(Json::parse(line, nullptr, false).is_discarded())
        << "non-JSON line in log: " << line;
  }
  Json last = Json::parse(lines.back(), nullptr, false);
  ASSERT_TRUE(last.is_object()) << lines.back();
  EXPECT_EQ(last.value("level", ""), "error") << lines.back();
  EXPECT_FALSE(last.value("msg", "").empty()) << lines.back();
  EXPECT_TRUE(last.contains("time")) << lines.back();
  if (testing_barge()) {
    EXPECT_NE(last.value("msg", "").find("linux.namespaces[2].type"), std::string::npos);
  }
  EXPECT_NO_LEFTOVERS(id);
}

TEST_F(Errors, MissingBundle) {
  std::string id = new_id();
  const std::string missing = test_dir() + "/no-such-bundle";
  for (const char* command : {"create", "run"}) {
    auto r = runtime({command, "--bundle", missing, id});
    EXPECT_NE(r.status, 0) << r.describe();
    EXPECT_FALSE(r.err.empty());
  }
  EXPECT_FALSE(state(id).has_value());
  EXPECT_NO_LEFTOVERS(id);
}

TEST_F(Errors, MissingConfigJson) {
  std::string id = new_id();
  Bundle b = make_bundle(id, {"true"});
  fs::remove(b.config_path());
  auto r = runtime({"create", "--bundle", b.dir, id});
  EXPECT_NE(r.status, 0) << r.describe();
  EXPECT_NO_LEFTOVERS(id);
}

TEST_F(Errors, NonexistentId) {
  const std::string id = "no-such-" + new_id();
  for (std::vector<std::string> args : {std::vector<std::string>{"state", id},
                                        {"start", id},
                                        {"kill", id},
                                        {"kill", id, "KILL"},
                                        {"delete", id}}) {
    auto r = runtime(args);
    EXPECT_NE(r.status, 0) << args[0] << ": " << r.describe();
    EXPECT_FALSE(r.err.empty()) << args[0];
    if (testing_barge()) {
      EXPECT_NE(r.err.find(id), std::string::npos) << r.describe();
    }
  }
}

TEST_F(Errors, DeleteForceNonexistentId) {
  // runc: delete --force of an unknown id succeeds (containerd's shim and podman clean up
  // unconditionally); plain delete still fails. Nothing may be left behind either way.
  const std::string id = new_id();
  auto forced = runtime({"delete", "--force", id});
  EXPECT_EQ(forced.status, 0) << forced.describe();
  EXPECT_NE(runtime({"delete", id}).status, 0);
  EXPECT_NO_LEFTOVERS(id);
}

TEST_F(Errors, InvalidContainerId) {
  std::string id = new_id();
  Bundle b = make_bundle(id, {"true"});
  for (const char* bad : {"../escape", "a/b", ".."}) {
    auto r = runtime({"create", "--bundle", b.dir, bad});
    EXPECT_NE(r.status, 0) << bad << ": " << r.describe();
  }
  EXPECT_FALSE(path_exists(fs::path(root()).parent_path().string() + "/escape"));
}

TEST_F(Errors, ExecutableNotFound) {
  for (const char* command : {"create", "run"}) {
    std::string id = new_id();
    Bundle b = make_bundle(id, {"/no/such/binary"});
    auto r = runtime({command, "--bundle", b.dir, id});
    EXPECT_NE(r.status, 0) << command << ": " << r.describe();
    if (testing_barge()) {
      EXPECT_NE(r.err.find("/no/such/binary"), std::string::npos) << r.describe();
    }
    EXPECT_FALSE(state(id).has_value()) << command;
    EXPECT_NO_LEFTOVERS(id);
  }
}

TEST_F(Errors, RelativeCwd) {
  std::string id = new_id();
  Bundle b = make_bundle(id, {"true"}, [](Json& c) { c["process"]["cwd"] = "tmp"; });
  auto r = runtime({"run", "--bundle", b.dir, id});
  EXPECT_NE(r.status, 0) << r.describe();
  EXPECT_NO_LEFTOVERS(id);
}

TEST_F(Cli, Version) {
  auto r = run_process({runtime_binary(), "--version"});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_NE(r.out.find("version"), std::string::npos) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(^spec: \S+)", std::regex::multiline)))
      << r.out;
  if (testing_barge()) {
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(spec: 1\.[0-9]+\.[0-9]+)"))) << r.out;
  }
  auto short_flag = run_process({runtime_binary(), "-v"});
  EXPECT_EQ(short_flag.status, 0) << short_flag.describe();
  EXPECT_EQ(short_flag.out, r.out);
}

class CliHelp : public RuntimeTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(CliHelp, ExitsZero) {
  auto r = run_process({runtime_binary(), GetParam(), "--help"});
  EXPECT_EQ(r.status, 0) << r.describe();
  EXPECT_FALSE(r.out.empty()) << r.describe();
}

INSTANTIATE_TEST_SUITE_P(Cli, CliHelp,
                         ::testing::Values("create", "start", "run", "state", "kill", "delete",
                                           "list", "spec"));

TEST_F(Cli, GlobalHelpExitsZero) {
  auto r = run_process({runtime_binary(), "--help"});
  EXPECT_EQ(r.status, 0) << r.describe();
  for (const char* command :
       {"create", "start", "run", "state", "kill", "delete", "list", "spec"}) {
    EXPECT_NE(r.out.find(command), std::string::npos) << command << " missing from --help";
  }
}

TEST_F(Cli, UnknownFlagFails) {
  EXPECT_NE(run_process({runtime_binary(), "--no-such-flag"}).status, 0);
  EXPECT_NE(runtime({"state", "--no-such-flag", "x"}).status, 0);
  EXPECT_NE(runtime({"run", "--no-such-flag", "x"}).status, 0);
}

TEST_F(Cli, UnknownCommandFails) {
  auto r = runtime({"no-such-command", "--flag", "id"});
  EXPECT_NE(r.status, 0) << r.describe();
  if (testing_barge()) {
    EXPECT_NE(r.err.find("unknown command \"no-such-command\""), std::string::npos) << r.describe();
  }
}

TEST_F(Cli, MissingIdFails) {
  for (const char* command : {"create", "start", "run", "state", "kill", "delete"}) {
    auto r = runtime({command});
    EXPECT_NE(r.status, 0) << command << ": " << r.describe();
  }
}

}  // namespace
}  // namespace barge::test

// Every command line that a real client passed to its runtime must be accepted by barge's parser.
//
// Fixtures: tests/data/client-argv/<client>.argv, one per client (containerd.argv, podman.argv).
// Format: one JSON array of strings per line = the runtime's argv without argv[0], as the client
// passed it; ids and paths may be normalised to placeholders (<ID>, <PATH>) since only parsing is
// checked. Empty lines and lines starting with '#' are ignored.
// Recording: tests/argv-fixture.py wrap WRAPPER LOG RUNTIME makes a wrapper that logs each argv and
// execs the runtime; run the client suite through it (the containerd suite does this when
// BARGE_RECORD_ARGV=LOG is set), then `tests/argv-fixture.py normalize LOG > CLIENT.argv`.
// Checking: barge with BARGE_PARSE_ONLY=1 exits 0 right after a successful command-line parse
// (nothing runs, nothing is created) and still fails on unknown commands or flags.
#include <algorithm>
#include <filesystem>

#include "tests/integration/harness.hpp"

namespace barge::test {
namespace {

namespace fs = std::filesystem;

const std::string kFixtureDir = std::string(BARGE_TEST_SCRIPTS) + "/data/client-argv";

struct RecordedArgv {
  std::string file;
  int line = 0;
  std::vector<std::string> args;
};

std::vector<RecordedArgv> load_fixtures() {
  std::vector<RecordedArgv> all;
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(kFixtureDir, ec)) {
    if (entry.path().extension() == ".argv") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    int number = 0;
    for (const auto& line : split_lines(slurp(file.string()))) {
      ++number;
      if (trim(line).empty() || trim(line)[0] == '#') continue;
      RecordedArgv recorded{file.filename().string(), number, {}};
      try {
        recorded.args = Json::parse(line).get<std::vector<std::string>>();
      } catch (const Json::exception& e) {
        ADD_FAILURE() << file << ":" << number << ": not a JSON array of strings: " << e.what();
        continue;
      }
      all.push_back(std::move(recorded));
    }
  }
  return all;
}

ProcResult parse_only(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"/usr/bin/env", "BARGE_PARSE_ONLY=1", runtime_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv);
}

class ClientArgvFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing_barge()) GTEST_SKIP() << "BARGE_PARSE_ONLY is a barge test hook";
  }
};

TEST_F(ClientArgvFixture, EveryRecordedArgvIsAccepted) {
  auto recorded = load_fixtures();
  ASSERT_FALSE(recorded.empty()) << "no *.argv fixture in " << kFixtureDir;
  for (const auto& r : recorded) {
    auto result = parse_only(r.args);
    EXPECT_EQ(result.status, 0) << r.file << ":" << r.line << ": " << Json(r.args).dump() << "\n"
                                << result.describe();
  }
}

TEST_F(ClientArgvFixture, ParseOnlyStillRejectsUnknownFlagsAndCommands) {
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--no-such-global", "state", "x"},
        {"delete", "--no-such-flag", "x"},
        {"exec", "--no-such-flag", "x", "true"},
        {"exec", "--process", "/p.json", "x", "--no-such-flag"},
        {"no-such-command", "x"},
        {"kill"},
        {"--log-format", "yaml", "state", "x"}}) {
    auto result = parse_only(bad);
    EXPECT_NE(result.status, 0) << Json(bad).dump() << " was accepted";
    EXPECT_FALSE(result.err.empty()) << Json(bad).dump() << ": no error message";
  }
}

TEST_F(ClientArgvFixture, ParseOnlyRunsNothing) {
  const std::string root = base_temp_dir() + "/parse-only-root";
  auto result = parse_only({"--root", root, "--log", root + "/log.json", "run", "--bundle",
                            "/nonexistent", "never-created"});
  EXPECT_EQ(result.status, 0) << result.describe();
  EXPECT_FALSE(path_exists(root)) << "parse-only created " << root;
}

}  // namespace
}  // namespace barge::test

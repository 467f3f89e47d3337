// Replays every input in tests/fuzz/regressions (crashes the fuzzers found, and the inputs that
// led to them) through the fuzz targets' code: each must end in success or a barge::Error.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/file.hpp"
#include "tests/fuzz/targets.hpp"

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> regression_inputs() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(BARGE_SOURCE_DIR "/tests/fuzz/regressions"))
    if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

template <typename Target>
void expect_clean_outcome(const char* target_name, Target target) {
  std::vector<fs::path> files = regression_inputs();
  ASSERT_FALSE(files.empty()) << "no inputs in tests/fuzz/regressions";
  for (const auto& file : files) {
    SCOPED_TRACE(file.filename().string());
    try {
      target(barge::read_file(file.string()));
    } catch (const barge::Error&) {
      // A clean rejection.
    } catch (const std::exception& e) {
      ADD_FAILURE() << target_name << ": escaped as " << typeid(e).name() << ": " << e.what();
    }
  }
}

TEST(FuzzRegressions, ConfigParseAndValidateEndCleanly) {
  expect_clean_outcome("plan_container", barge::fuzz::plan_container);
}

TEST(FuzzRegressions, ResourcesUpdateEndsCleanly) {
  expect_clean_outcome("update_resources", barge::fuzz::update_resources);
  expect_clean_outcome("parse_memory_size", barge::fuzz::parse_memory_size);
}

}  // namespace

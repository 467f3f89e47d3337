#include <gtest/gtest.h>

#include "common/error.hpp"
#include "common/log.hpp"

TEST(Log, JsonLineHasRuncShape) {
  std::string line = barge::log::format_line(barge::log::Level::error, "boom \"x\"",
                                             barge::log::Format::json);
  EXPECT_NE(line.find("\"level\":\"error\""), std::string::npos);
  EXPECT_NE(line.find("\"msg\":\"boom \\\"x\\\"\""), std::string::npos);
  EXPECT_NE(line.find("\"time\":\""), std::string::npos);
  EXPECT_EQ(line.back(), '\n');
}

TEST(Error, ContextChainsOutermostFirst) {
  try {
    barge::with_context("create", [] { barge::throw_errno("mount /proc", EPERM); });
    FAIL();
  } catch (const barge::Error& e) {
    EXPECT_STREQ(e.what(), "create: mount /proc: Operation not permitted");
    EXPECT_EQ(e.code(), EPERM);
  }
}

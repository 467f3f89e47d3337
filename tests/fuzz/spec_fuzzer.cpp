// libFuzzer target: config.json bytes through barge::fuzz::plan_container (parse, validate,
// capabilities, cgroup path, linux.resources round trip, seccomp compile). barge::Error is the
// expected answer to bad input; a crash, a sanitizer report, a leak or any other exception
// escaping is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/log.hpp"
#include "tests/fuzz/targets.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Unknown syscall names and ignored flags are logged as warnings: keep formatting them (the
  // JSON logger must cope with any bytes) but write them nowhere.
  barge::log::configure({.file = "/dev/null", .format = barge::log::Format::json});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    barge::fuzz::plan_container(text);
  } catch (const barge::Error& e) {
    // What the CLI does with it: one log line.
    barge::log::format_line(barge::log::Level::error, e.what(), barge::log::Format::json);
  }
  return 0;
}

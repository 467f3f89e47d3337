// libFuzzer target: what `barge update` reads from the user, a linux.resources JSON file
// (--resources) and runc's size syntax (--memory 512m), through barge::fuzz::update_resources
// and parse_memory_size. barge::Error or success; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tests/fuzz/targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    barge::fuzz::update_resources(text);
  } catch (const barge::Error&) {
  }
  try {
    barge::fuzz::parse_memory_size(text);
  } catch (const barge::Error&) {
  }
  return 0;
}

// Crash injection for recovery tests: when BARGE_FAILPOINT names a point the process reaches,
// it SIGKILLs itself there, the way a kill -9 at that moment would.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <string_view>

namespace barge {

inline void failpoint(std::string_view name) {
  const char* armed = std::getenv("BARGE_FAILPOINT");
  if (armed != nullptr && name == armed) ::kill(::getpid(), SIGKILL);
}

}  // namespace barge

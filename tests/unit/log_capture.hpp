// Captures barge::log output in a temp file for the lifetime of the object (unit tests).
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <string>

#include "common/file.hpp"
#include "common/log.hpp"

namespace barge::testing {

class LogCapture {
 public:
  LogCapture() {
    char name[] = "/tmp/barge-test-log-XXXXXX";
    int fd = ::mkstemp(name);
    if (fd >= 0) ::close(fd);
    path_ = name;
    log::configure({.file = path_});
  }
  ~LogCapture() {
    log::configure({});
    ::unlink(path_.c_str());
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::string text() const { return read_file(path_); }

 private:
  std::string path_;
};

}  // namespace barge::testing

#include "common/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include "common/time.hpp"

namespace barge::log {
namespace {

struct State {
  Options options;
  int fd = STDERR_FILENO;
};

State& state() {
  static State s;
  return s;
}

const char* level_name(Level level) {
  switch (level) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warning:
      return "warning";
    case Level::error:
      return "error";
  }
  return "info";
}

}  // namespace

void configure(const Options& options) {
  State& s = state();
  if (s.fd != STDERR_FILENO) ::close(s.fd);
  s.options = options;
  s.fd = STDERR_FILENO;
  if (!options.file.empty()) {
    int fd = ::open(options.file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) s.fd = fd;
  }
}

Format format() {
  return state().options.format;
}

bool logs_to_stderr() {
  return state().fd == STDERR_FILENO;
}

std::string format_line(Level level, std::string_view message, Format fmt) {
  if (fmt == Format::json) {
    nlohmann::json line = {{"level", level_name(level)}, {"msg", message}, {"time", rfc3339_now()}};
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  std::string msg =
      nlohmann::json(message).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return "time=\"" + rfc3339_now() + "\" level=" + level_name(level) + " msg=" + msg + "\n";
}

void write(Level level, std::string_view message) {
  State& s = state();
  if (level == Level::debug && !s.options.debug) return;
  std::string line = format_line(level, message, s.options.format);
  // One write() per line keeps lines whole when several processes append to one file.
  ssize_t ignored = ::write(s.fd, line.data(), line.size());
  (void)ignored;
}

}  // namespace barge::log

// The one logger. Text or JSON lines (runc's shape: {"level":"error","msg":"...","time":"..."}),
// to the --log file when given, else to stderr. containerd reads the last error line of --log.
#pragma once

#include <string>
#include <string_view>

namespace barge::log {

enum class Level { debug, info, warning, error };
enum class Format { text, json };

struct Options {
  std::string file;  // empty: stderr
  Format format = Format::text;
  bool debug = false;
};

void configure(const Options& options);
Format format();
void write(Level level, std::string_view message);
inline void debug(std::string_view m) {
  write(Level::debug, m);
}
inline void info(std::string_view m) {
  write(Level::info, m);
}
inline void warn(std::string_view m) {
  write(Level::warning, m);
}
inline void error(std::string_view m) {
  write(Level::error, m);
}
// Formats a line exactly as it would be written (exposed for tests).
std::string format_line(Level level, std::string_view message, Format format);
// True when log lines already reach stderr (no --log file), so callers need not print twice.
bool logs_to_stderr();

}  // namespace barge::log

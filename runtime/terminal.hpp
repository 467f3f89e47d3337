// process.terminal: the init allocates a pty in the container's devpts and hands the master to
// whoever listens on --console-socket (SCM_RIGHTS, as runc does); the slave becomes the
// process's controlling terminal and /dev/console.
#pragma once

#include <termios.h>

#include <optional>
#include <string>

#include "common/fd.hpp"
#include "runtime/spec.hpp"

namespace barge::runtime {

// Parent side, before clone: a connected unix socket to the console socket path.
UniqueFd connect_console_socket(const std::string& path);
// Init side, after pivot_root: allocate the pty, send the master, bind the slave on
// /dev/console, make it the controlling terminal and stdin/stdout/stderr.
// bind_console: false for exec, whose container already has its /dev/console.
void set_up_terminal(int console_socket_fd, const std::optional<spec::ConsoleSize>& size,
                     bool bind_console = true);
// Sends fd over a unix socket with SCM_RIGHTS; name goes in the payload (runc sends the pty name).
void send_fd(int socket_fd, int fd, const std::string& name);

// Receives a fd sent with send_fd (the pty master), or throws.
UniqueFd receive_fd(int socket_fd);

// Foreground `run` with a terminal: the caller's stdin in raw mode (restored on destruction)
// relayed to the pty master, the master's output to stdout, window size kept in sync.
class TerminalRelay {
 public:
  explicit TerminalRelay(UniqueFd master);
  TerminalRelay(const TerminalRelay&) = delete;
  TerminalRelay& operator=(const TerminalRelay&) = delete;
  ~TerminalRelay();

  int master_fd() const { return master_.get(); }
  // Copies what is readable: stdin -> master (returns false at stdin EOF) ...
  bool pump_input();
  // ... and master -> stdout (returns false once the slave side is gone).
  bool pump_output();
  void sync_window_size();

 private:
  UniqueFd master_;
  bool restore_ = false;
  termios saved_{};
};

}  // namespace barge::runtime

// Waiting in the foreground for a process barge started (run, exec): signals forwarded, the
// terminal relayed, the exit code returned the shell way.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <utility>

#include "common/fd.hpp"
#include "runtime/terminal.hpp"

namespace barge::runtime {

// The signals barge passes on; block them before the child exists so none is lost.
sigset_t forwarded_set();
// Waits for our child pid; relay may be null. Returns the exit code (128+signal when killed).
int wait_forwarding_signals(pid_t pid, TerminalRelay* relay);
// Whether pid (any process, not only a child) exits within timeout_ms (-1: no limit); a pid
// that is already gone counts as exited.
bool wait_for_exit(pid_t pid, int timeout_ms);
// A socketpair standing in for --console-socket when barge relays the terminal itself.
std::pair<UniqueFd, UniqueFd> console_socket_pair();

}  // namespace barge::runtime

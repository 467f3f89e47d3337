#include "runtime/foreground.hpp"

#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>

#include "common/error.hpp"
#include "common/syscalls.hpp"

namespace barge::runtime {
namespace {

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

}  // namespace

const std::array<int, 9> kForwardedSignals = {SIGHUP,  SIGINT,   SIGQUIT, SIGTERM, SIGUSR1,
                                              SIGUSR2, SIGWINCH, SIGCONT, SIGALRM};

sigset_t forwarded_set() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : kForwardedSignals) sigaddset(&set, sig);
  return set;
}

// Waits for our child init, passing on the signals barge itself receives and relaying the
// terminal when there is one.
int wait_forwarding_signals(pid_t pid, TerminalRelay* relay) {
  sigset_t set = forwarded_set();
  UniqueFd sigfd(::signalfd(-1, &set, SFD_CLOEXEC));
  UniqueFd pidfd(sys::pidfd_open(pid));
  if (!sigfd || !pidfd) throw_errno("wait for container");
  std::array<pollfd, 4> fds{{{sigfd.get(), POLLIN, 0},
                             {pidfd.get(), POLLIN, 0},
                             {relay ? STDIN_FILENO : -1, POLLIN, 0},
                             {relay ? relay->master_fd() : -1, POLLIN, 0}}};
  for (;;) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      throw_errno("wait for container");
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info{};
      if (::read(sigfd.get(), &info, sizeof info) == sizeof info) {
        if (relay && info.ssi_signo == SIGWINCH)
          relay->sync_window_size();
        else
          sys::pidfd_send_signal(pidfd.get(), static_cast<int>(info.ssi_signo));
      }
    }
    if (fds[2].revents && !relay->pump_input()) fds[2].fd = -1;
    if (fds[3].revents && !relay->pump_output()) fds[3].fd = -1;
    if (fds[1].revents & POLLIN) break;
  }
  if (relay) relay->pump_output();
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw_errno("waitpid container init");
  }
  return exit_code_of(status);
}

bool wait_for_exit(pid_t pid, int timeout_ms) {
  UniqueFd pidfd(sys::pidfd_open(pid));
  if (!pidfd) return errno == ESRCH;
  pollfd pfd{pidfd.get(), POLLIN, 0};
  int n;
  do {
    n = ::poll(&pfd, 1, timeout_ms);
  } while (n < 0 && errno == EINTR);
  return n > 0;
}

std::pair<UniqueFd, UniqueFd> console_socket_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    throw_errno("console socketpair");
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

}  // namespace barge::runtime

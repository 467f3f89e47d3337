#include "runtime/terminal.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "common/error.hpp"
#include "common/fd_passing.hpp"

namespace barge::runtime {

UniqueFd connect_console_socket(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw Error("--console-socket: path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw_errno("--console-socket: socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw_errno("--console-socket: connect " + path);
  return fd;
}

void send_fd(int socket_fd, int fd, const std::string& name) {
  with_context("--console-socket: send pty master",
               [&] { send_with_fd(socket_fd, fd, name.empty() ? "pty" : name); });
}

UniqueFd receive_fd(int socket_fd) {
  UniqueFd fd =
      with_context("receive pty master", [&] { return receive_with_fd(socket_fd).second; });
  if (!fd) throw Error("receive pty master: no fd in the message");
  return fd;
}

namespace {

// One read per call unless drain: stdin may be a blocking fd that poll said is readable once.
bool copy_available(int from, int to, bool drain) {
  char buf[8192];
  for (bool first = true; first || drain; first = false) {
    ssize_t n = ::read(from, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    if (n <= 0) return false;  // EOF, or EIO once the last slave fd is closed
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(to, buf + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return false;
      done += w;
    }
  }
  return true;
}

void bind_console_to(const std::string& slave_path) {
  int fd = ::open("/dev/console", O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd >= 0) ::close(fd);
  if (::mount(slave_path.c_str(), "/dev/console", nullptr, MS_BIND, nullptr) != 0)
    throw_errno("bind " + slave_path + " on /dev/console");
}

}  // namespace

void set_up_terminal(int console_socket_fd, const std::optional<spec::ConsoleSize>& size,
                     bool bind_console) {
  UniqueFd master(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master) throw_errno("process.terminal: open /dev/ptmx (is devpts mounted?)");
  if (::unlockpt(master.get()) != 0) throw_errno("process.terminal: unlockpt");
  char name[128];
  if (::ptsname_r(master.get(), name, sizeof name) != 0) throw_errno("process.terminal: ptsname");
  if (size) {
    winsize ws{static_cast<unsigned short>(size->height), static_cast<unsigned short>(size->width),
               0, 0};
    ::ioctl(master.get(), TIOCSWINSZ, &ws);
  }
  UniqueFd slave(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave) throw_errno(std::string("process.terminal: open ") + name);
  if (bind_console) bind_console_to(name);
  send_fd(console_socket_fd, master.get(), name);
  if (::setsid() < 0) throw_errno("process.terminal: setsid");
  if (::ioctl(slave.get(), TIOCSCTTY, 0) != 0) throw_errno("process.terminal: TIOCSCTTY");
  for (int target = 0; target <= 2; ++target)
    if (::dup3(slave.get(), target, 0) < 0) throw_errno("process.terminal: dup3");
}

TerminalRelay::TerminalRelay(UniqueFd master) : master_(std::move(master)) {
  ::fcntl(master_.get(), F_SETFL, ::fcntl(master_.get(), F_GETFL) | O_NONBLOCK);
  if (::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
    termios raw = saved_;
    ::cfmakeraw(&raw);
    restore_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  sync_window_size();
}

TerminalRelay::~TerminalRelay() {
  if (restore_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
}

bool TerminalRelay::pump_input() {
  return copy_available(STDIN_FILENO, master_.get(), false);
}

bool TerminalRelay::pump_output() {
  return copy_available(master_.get(), STDOUT_FILENO, true);
}

void TerminalRelay::sync_window_size() {
  winsize ws{};
  if (::ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) ::ioctl(master_.get(), TIOCSWINSZ, &ws);
}

}  // namespace barge::runtime

// process.terminal through --console-socket, as containerd's shim uses it: the runtime sends the
// pty master over the socket and the container's stdio is the slave.
#include "runtime/terminal.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "common/fd.hpp"
#include "tests/integration/harness.hpp"

namespace barge::test {
namespace {

UniqueFd listen_on(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return UniqueFd();
  if (::listen(fd.get(), 1) != 0) return UniqueFd();
  return fd;
}

std::string read_until_eof(int fd, std::chrono::milliseconds timeout) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, 100) <= 0) continue;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;  // EIO once the slave side is closed
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

class Terminal : public RuntimeTest {};

TEST_F(Terminal, ConsoleSocketReceivesAPtyMasterThatIsTheProcessStdio) {
  std::string socket_path = test_dir() + "/console.sock";
  UniqueFd listener = listen_on(socket_path);
  ASSERT_TRUE(listener) << "cannot listen on " << socket_path;
  std::string id = new_id();
  make_bundle(id, {"sh", "-c", "tty; test -t 0 && test -t 1 && echo all-tty; stty size"},
              [](Json& c) {
                c["process"]["terminal"] = true;
                c["process"]["consoleSize"] = {{"height", 33}, {"width", 101}};
              });
  ProcResult created =
      runtime({"create", "--console-socket", socket_path, "--bundle", bundle_dir(id), id});
  ASSERT_EQ(created.status, 0) << created.describe();
  UniqueFd connection(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(connection);
  UniqueFd master = runtime::receive_fd(connection.get());
  ASSERT_TRUE(master);
  EXPECT_TRUE(::isatty(master.get()));
  ASSERT_EQ(runtime({"start", id}).status, 0);
  std::string out = read_until_eof(master.get(), 10s);
  EXPECT_NE(out.find("/dev/pts/0"), std::string::npos) << out;
  EXPECT_NE(out.find("all-tty"), std::string::npos) << out;
  EXPECT_NE(out.find("33 101"), std::string::npos) << out;
  EXPECT_EQ(wait_for_status(id, "stopped"), "stopped");
  EXPECT_EQ(runtime({"delete", id}).status, 0);
  EXPECT_NO_LEFTOVERS(id);
}

TEST_F(Terminal, TerminalWithoutConsoleSocketIsRefusedForCreate) {
  std::string id = new_id();
  make_bundle(id, {"true"}, [](Json& c) { c["process"]["terminal"] = true; });
  ProcResult r = runtime({"create", "--bundle", bundle_dir(id), id});
  EXPECT_NE(r.status, 0);
  EXPECT_NO_LEFTOVERS(id);
}

}  // namespace
}  // namespace barge::test

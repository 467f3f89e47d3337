#include "runtime/sync.hpp"

#include <sys/socket.h>

#include <array>

#include "common/error.hpp"

namespace barge::runtime::sync {

std::pair<UniqueFd, UniqueFd> make_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) throw_errno("socketpair");
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void send(int fd, Message type, std::string_view payload) {
  std::string packet(1, static_cast<char>(type));
  packet.append(payload.substr(0, 60000));
  while (::send(fd, packet.data(), packet.size(), MSG_NOSIGNAL) < 0) {
    if (errno != EINTR) throw_errno("sync: send");
  }
}

std::optional<Packet> receive(int fd) {
  std::array<char, 65536> buf{};
  ssize_t n;
  do {
    n = ::recv(fd, buf.data(), buf.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == ECONNRESET) return std::nullopt;
    throw_errno("sync: receive");
  }
  if (n == 0) return std::nullopt;
  return Packet{static_cast<Message>(buf[0]),
                std::string(buf.data() + 1, static_cast<size_t>(n - 1))};
}

}  // namespace barge::runtime::sync

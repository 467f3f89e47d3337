#include "runtime/sync.hpp"

#include <sys/socket.h>

#include "common/error.hpp"
#include "common/fd_passing.hpp"

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

void send_with_fd(int fd, Message type, int attached_fd) {
  barge::send_with_fd(fd, attached_fd, std::string(1, static_cast<char>(type)));
}

std::optional<Packet> receive(int fd) {
  try {
    auto [raw, attached] = receive_with_fd(fd);
    if (raw.empty()) return std::nullopt;  // the peer closed its end
    return Packet{static_cast<Message>(raw[0]), raw.substr(1), std::move(attached)};
  } catch (const Error& e) {
    if (e.code() == ECONNRESET) return std::nullopt;
    throw;
  }
}

}  // namespace barge::runtime::sync

#include "common/fd_passing.hpp"

#include <sys/socket.h>

#include <cstring>
#include <memory>

#include "common/error.hpp"

namespace barge {

void send_with_fd(int socket_fd, int fd, std::string_view payload) {
  char placeholder = 0;
  iovec iov{};
  if (payload.empty()) {
    iov = {&placeholder, 1};  // SCM_RIGHTS needs at least one byte of data
  } else {
    iov = {const_cast<char*>(payload.data()), payload.size()};
  }
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  ssize_t n;
  do {
    n = ::sendmsg(socket_fd, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw_errno("sendmsg with fd");
  if (static_cast<size_t>(n) != iov.iov_len) throw Error("sendmsg with fd: short write");
}

std::pair<std::string, UniqueFd> receive_with_fd(int socket_fd) {
  // Not zero-filled: a container init receives into it, and each page it writes is charged to the
  // container's memory cgroup (a zero-filled 64 KiB were 16 pages of every container).
  constexpr size_t kMaxPayload = 65536;
  auto buffer = std::make_unique_for_overwrite<char[]>(kMaxPayload);
  iovec iov{buffer.get(), kMaxPayload};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(socket_fd, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw_errno("recvmsg with fd");
  UniqueFd fd;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int received = -1;
      std::memcpy(&received, CMSG_DATA(c), sizeof(int));
      fd.reset(received);
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) throw Error("recvmsg with fd: control data truncated");
  return {std::string(buffer.get(), static_cast<size_t>(n)), std::move(fd)};
}

}  // namespace barge

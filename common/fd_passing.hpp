// Passing one fd over a unix socket with SCM_RIGHTS, with a text payload alongside.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "common/fd.hpp"

namespace barge {

// An empty payload still sends one byte: SCM_RIGHTS needs data to ride on.
void send_with_fd(int socket_fd, int fd, std::string_view payload);
// The payload and the fd (invalid when the message carried none). Received close-on-exec.
std::pair<std::string, UniqueFd> receive_with_fd(int socket_fd);

}  // namespace barge

// The parent <-> container-init channel: one SOCK_SEQPACKET socketpair, one message per packet.
// A packet is a one-byte type followed by a text payload (empty for pure signals), and at most
// one attached fd.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/fd.hpp"

namespace barge::runtime::sync {

enum class Message : char {
  go = 'G',     // parent -> init: id maps written and cgroup joined; continue setup
  ready = 'R',  // init -> parent: setup done, init now waits on the exec fifo
  error = 'E',  // init -> parent: setup failed; payload is the error message
  hooks = 'H',  // init -> parent: namespaces and mounts exist; run prestart/createRuntime hooks
  hooks_done = 'h',  // parent -> init: hooks ran; payload is the state JSON for the init's hooks
  seccomp_listener = 'S',  // init -> parent: the seccomp notify fd is attached (SCM_RIGHTS)
};

struct Packet {
  Message type;
  std::string payload;
  UniqueFd fd;  // set when the sender attached one
};

std::pair<UniqueFd, UniqueFd> make_pair();  // both ends close-on-exec
void send(int fd, Message type, std::string_view payload = {});
// Same, with attached_fd passed along (SCM_RIGHTS).
void send_with_fd(int fd, Message type, int attached_fd);
// nullopt when the peer closed its end (it died or exec'd).
std::optional<Packet> receive(int fd);

}  // namespace barge::runtime::sync

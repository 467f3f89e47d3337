// A UDP echo server for the network tests (busybox has no UDP server applet), linked statically
// so it runs inside a busybox container: answers every datagram with "echo:" + its payload.
//   udp_echo PORT
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: udp_echo PORT\n");
    return 2;
  }
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    std::perror("udp_echo: bind");
    return 1;
  }
  char buffer[2048];
  std::memcpy(buffer, "echo:", 5);
  for (;;) {
    sockaddr_in peer{};
    socklen_t peer_length = sizeof peer;
    ssize_t n = ::recvfrom(fd, buffer + 5, sizeof buffer - 5, 0, reinterpret_cast<sockaddr*>(&peer),
                           &peer_length);
    if (n < 0) continue;
    ::sendto(fd, buffer, static_cast<size_t>(n) + 5, 0, reinterpret_cast<sockaddr*>(&peer),
             peer_length);
  }
}

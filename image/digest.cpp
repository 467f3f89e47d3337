#include "image/digest.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "common/error.hpp"

namespace barge::image {

// nettle (linked statically) rather than libcrypto: every barge command, container starts
// included, would otherwise pay for loading and relocating libcrypto.
Sha256::Sha256() {
  sha256_init(&ctx_);
}

void Sha256::update(const void* data, size_t size) {
  if (size > 0) sha256_update(&ctx_, size, static_cast<const uint8_t*>(data));
}

std::string Sha256::digest() {
  uint8_t raw[SHA256_DIGEST_SIZE];
  unsigned int length = SHA256_DIGEST_SIZE;
  sha256_digest(&ctx_, SHA256_DIGEST_SIZE, raw);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[raw[i] >> 4];
    out += kHex[raw[i] & 0xf];
  }
  return out;
}

std::string sha256_of(std::string_view data) {
  Sha256 hasher;
  hasher.update(data);
  return hasher.digest();
}

FdDigest sha256_of_fd(int fd, const std::function<void(std::string_view)>& copy,
                      std::optional<int64_t> limit) {
  Sha256 hasher;
  FdDigest out;
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("read blob");
    }
    if (n == 0) break;
    out.size += n;
    if (limit && out.size > *limit)
      throw_error("larger than the " + std::to_string(*limit) + " bytes its descriptor declares");
    std::string_view block(buf.data(), static_cast<size_t>(n));
    hasher.update(block);
    if (copy) copy(block);
  }
  out.digest = hasher.digest();
  return out;
}

bool is_valid_digest(std::string_view digest) {
  constexpr std::string_view kPrefix = "sha256:";
  if (digest.size() != kPrefix.size() + 64 || !digest.starts_with(kPrefix)) return false;
  for (char c : digest.substr(kPrefix.size()))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string digest_hex(std::string_view digest) {
  if (!is_valid_digest(digest))
    throw_error("invalid digest \"" + std::string(digest) + "\" (want sha256:<64 hex digits>)");
  return std::string(digest.substr(7));
}

}  // namespace barge::image

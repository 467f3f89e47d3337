// sha256 digests in OCI form ("sha256:<64 hex>"), computed while streaming.
#pragma once

#include <nettle/sha2.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace barge::image {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  // "sha256:<hex>"; the hasher cannot be updated afterwards.
  std::string digest();

 private:
  sha256_ctx ctx_{};
};

std::string sha256_of(std::string_view data);

struct FdDigest {
  std::string digest;
  int64_t size = 0;
};
// Hashes fd from its offset to its end, handing every block to copy (when set) on the way.
// Reading more than limit bytes throws.
FdDigest sha256_of_fd(int fd, const std::function<void(std::string_view)>& copy = {},
                      std::optional<int64_t> limit = std::nullopt);
// True for "sha256:" + 64 lowercase hex digits (the only algorithm barge stores).
bool is_valid_digest(std::string_view digest);
// The hex part of a valid digest; throws barge::Error naming it otherwise.
std::string digest_hex(std::string_view digest);

}  // namespace barge::image

// sha256 digests in OCI form ("sha256:<64 hex>"), computed while streaming.
#pragma once

#include <nettle/sha2.h>

#include <memory>
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
// Hashes a whole file.
std::string sha256_of_file(const std::string& path);
// True for "sha256:" + 64 lowercase hex digits (the only algorithm barge stores).
bool is_valid_digest(std::string_view digest);
// The hex part of a valid digest; throws barge::Error naming it otherwise.
std::string digest_hex(std::string_view digest);

}  // namespace barge::image

// Extracting one layer tar (gzip, zstd or plain) into an empty directory, in overlayfs form:
// `.wh.NAME` becomes a 0/0 character device NAME and `.wh..wh..opq` the trusted.overlay.opaque
// xattr on its directory. The tar is untrusted: names with ".." are refused, absolute names are
// taken relative to the layer, every parent is resolved inside the layer directory
// (RESOLVE_IN_ROOT), and nothing (chown, chmod, times, xattrs) ever follows the entry's own name.
#pragma once

#include <cstdint>
#include <string>

namespace barge::image {

struct UnpackOptions {
  // Largest apparent size of one file; sparse files keep their holes, so this bounds the
  // damage of a hostile "huge" entry rather than disk use.
  uint64_t max_file_size = uint64_t{1} << 40;
};

// Reads the blob from fd to the end and extracts it into dir (an existing, empty directory).
// Returns the digest of the uncompressed stream (the layer's diff_id).
std::string unpack_layer(int blob_fd, const std::string& dir, const UnpackOptions& options = {});

}  // namespace barge::image

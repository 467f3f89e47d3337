// Extracting one layer tar (gzip, zstd or plain) into an empty directory, in overlayfs form:
// `.wh.NAME` becomes a 0/0 character device NAME and `.wh..wh..opq` the trusted.overlay.opaque
// xattr on its directory. The tar is untrusted: names with ".." are refused, absolute names are
// taken relative to the layer, every parent is resolved inside the layer directory
// (RESOLVE_IN_ROOT), and nothing (chown, chmod, times, xattrs) ever follows the entry's own name.
//
// The blob is read once: the same pass hashes it as stored (the descriptor's digest), copies it
// (into the store), decompresses it, hashes the tar (the diff_id) and extracts it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace barge::image {

struct UnpackOptions {
  // Largest apparent size of one file; sparse files keep their holes, so this bounds the
  // damage of a hostile "huge" entry rather than disk use.
  uint64_t max_file_size = uint64_t{1} << 40;
  // Every byte read from the blob is also written here when >= 0.
  int copy_fd = -1;
  // The descriptor's size: a longer blob is refused as soon as the excess is read.
  std::optional<int64_t> blob_size;
};

struct UnpackResult {
  std::string digest;   // of the blob as read (compressed)
  int64_t size = 0;     // bytes of the blob
  std::string diff_id;  // of the uncompressed tar
  // Directories the tar did not list but its entries needed ("usr/bin" for "usr/bin/sh" when
  // no "usr/bin/" entry came first), parents first: they should look like the same directory
  // in the layers below (see copy_implied_dirs).
  std::vector<std::string> implied_dirs;
};

// Reads the blob from fd to the end and extracts it into dir (an existing, empty directory).
UnpackResult unpack_layer(int blob_fd, const std::string& dir, const UnpackOptions& options = {});

// Gives each implied directory of the layer at dir the owner, mode, times and xattrs of the
// directory a container would see at that path through lowers (unpacked layers in overlay form,
// nearest first), as if the layer had been applied on top of them. Directories no lower has
// stay as created (root, 0755).
void copy_implied_dirs(const std::string& dir, const std::vector<std::string>& implied,
                       const std::vector<std::string>& lowers);

}  // namespace barge::image

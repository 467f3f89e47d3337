// Pieces of import shared with the rest of image/ and tests.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "image/image.hpp"
#include "image/store.hpp"

namespace barge::image {

namespace media {
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayer = "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr std::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
}  // namespace media

// The one spelling barge stores and compares: "name" -> "name:latest", Docker Hub names short
// ("docker.io/library/busybox:latest" -> "busybox:latest"), "name@sha256:..." keeps its digest
// and gets no tag. Throws on an empty or malformed reference.
std::string normalize_name(std::string_view reference);
// Matches "os/arch[/variant]" against a descriptor's or config's fields.
bool platform_matches(std::string_view wanted, std::string_view os, std::string_view arch,
                      std::string_view variant);
// Where to read a layer's blob when the store lacks it: a file of the import source.
struct LayerSource {
  int dirfd = -1;    // the source directory; path resolves inside it
  std::string path;  // empty: only the store has it
};

struct LayerJob;

// Layers being brought into the store for one import: every layer the store lacks is verified
// and unpacked under tmp/ (each blob read once: hashed, copied and unpacked in one pass, digest,
// size and diff_id checked; layers side by side), and nothing reaches the store until commit(),
// so an import that fails anywhere leaves the store as it was. Uncommitted work is removed on
// destruction.
class LayerBatch {
 public:
  explicit LayerBatch(Store& store);
  LayerBatch(const LayerBatch&) = delete;
  LayerBatch& operator=(const LayerBatch&) = delete;
  ~LayerBatch();
  // Prepares every layer of record that neither the store nor this batch has. Blobs the store
  // lacks are read from sources[i]; a layer whose digest is empty (docker archives) gets
  // digest, size and media type from its blob.
  void add(ImageRecord& record, const std::vector<LayerSource>& sources = {});
  // Blobs first, then layers; a concurrent importer of the same content may have won a rename.
  void commit();

 private:
  Store& store_;
  std::vector<std::unique_ptr<LayerJob>> jobs_;
  std::map<std::string, std::string> staged_fs_;                  // diff_id -> tmp/.../fs
  std::map<std::string, std::pair<int64_t, std::string>> blobs_;  // digest -> size, media type
};

// LayerBatch for one record, committed at once (mount re-creating layers a crash lost).
void ensure_layers(Store& store, ImageRecord& record, const std::vector<LayerSource>& sources = {});
std::string now_rfc3339();

}  // namespace barge::image

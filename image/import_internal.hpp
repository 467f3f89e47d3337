// Pieces of import shared with the rest of image/ and tests.
#pragma once

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

// Makes every layer of record present in the store, as a blob and unpacked (layers side by
// side, each blob read once: hashed, copied and unpacked in one pass, digest, size and diff_id
// checked). Nothing is committed unless all of them verify. Blobs the store lacks are read from
// sources[i]; a layer whose digest is empty (docker archives) gets digest, size and media type
// from its blob.
void ensure_layers(Store& store, ImageRecord& record, const std::vector<LayerSource>& sources = {});
std::string now_rfc3339();

}  // namespace barge::image

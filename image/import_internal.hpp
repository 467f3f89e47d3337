// Pieces of import shared with the rest of image/ and tests.
#pragma once

#include <string>
#include <string_view>

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

// "name" -> "name:latest"; "name:tag" and "name@sha256:..." unchanged. Throws on an empty or
// malformed reference.
std::string normalize_name(std::string_view reference);
// Matches "os/arch[/variant]" against a descriptor's or config's fields.
bool platform_matches(std::string_view wanted, std::string_view os, std::string_view arch,
                      std::string_view variant);
// Unpacks every layer of record not yet in the store (in parallel), checking each diff_id.
void ensure_layers(Store& store, const ImageRecord& record);
std::string now_rfc3339();

}  // namespace barge::image

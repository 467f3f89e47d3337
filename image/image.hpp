// barge's image store: import OCI layouts and `docker save` archives into a content-addressed
// store, unpack each layer once, and turn an image into a bundle whose rootfs is an overlay of the
// shared layer directories plus a private writable layer.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace barge::image {

inline constexpr const char* kDefaultStorage = "/var/lib/barge";
inline constexpr const char* kStorageAnnotation = "dev.barge.image.storage";

struct LayerRecord {
  std::string digest;      // the blob as stored (maybe compressed)
  std::string diff_id;     // the uncompressed tar; names the unpacked directory
  std::string media_type;  // as in the manifest
  int64_t size = 0;
};

struct ImageRecord {
  std::string digest;               // the manifest's
  std::vector<std::string> names;   // "name:tag"
  std::string config;               // the config blob's digest
  std::string platform;             // "linux/amd64"
  std::vector<LayerRecord> layers;  // bottom first, as in the manifest
  std::string imported;             // RFC 3339 time
};

struct ImportOptions {
  std::string name;                      // overrides the names found in the archive
  std::string platform = "linux/amd64";  // os/arch[/variant]
};

struct PruneReport {
  int images = 0;  // unnamed images removed
  int blobs = 0;
  int layers = 0;
  uint64_t bytes = 0;  // blob bytes freed
};

// Imports FILE (a tar of an OCI layout or a `docker save` archive) or DIR (an OCI layout).
// Everything is verified before the image records are written: on error no record changes.
std::vector<ImageRecord> import_image(const std::string& storage, const std::string& path,
                                      const ImportOptions& options = {});
std::vector<ImageRecord> list_images(const std::string& storage);
// Accepts name[:tag], name@sha256:..., sha256:... and a unique hex prefix of the manifest digest.
ImageRecord find_image(const std::string& storage, const std::string& reference);
// The record plus the manifest and config documents.
nlohmann::json inspect_image(const std::string& storage, const std::string& reference);
// Untags a name reference; an image left without names (or named by digest) is removed, then
// every blob and layer no image or mount uses is freed.
void remove_image(const std::string& storage, const std::string& reference);
// Removes unnamed images, unreferenced blobs and layers, and leftovers of interrupted imports.
PruneReport prune(const std::string& storage);

// Mounts the image's overlay rootfs at target (created if missing) with a fresh writable layer;
// where overlayfs cannot be used, a private copy of the merged layers (the log says why).
void mount_image(const std::string& storage, const std::string& reference,
                 const std::string& target);
// Unmounts target (a mount point made by mount_image, or a bundle dir whose rootfs is one) and
// removes its writable layer.
void unmount_image(const std::string& storage, const std::string& target);
// Writes DIR/config.json from the image config over barge's default spec and mounts the rootfs
// at DIR/rootfs. config.json names the store in the kStorageAnnotation annotation, so that
// deleting a container made from the bundle (`barge delete`) unmounts the rootfs and drops its
// writable layer.
void make_bundle(const std::string& storage, const std::string& reference, const std::string& dir);

}  // namespace barge::image

// The on-disk store:
//   ROOT/lock                 flock: shared while importing or mounting, exclusive for GC
//   ROOT/index.lock           flock: exclusive while rewriting images.json
//   ROOT/images.json          image records, rewritten atomically
//   ROOT/blobs/sha256/HEX     verified blobs
//   ROOT/layers/sha256/HEX/fs unpacked layers keyed by diff_id
//   ROOT/mounts/ID/           a mounted rootfs: mount.json, upper/, work/
//   ROOT/tmp/                 partial blobs and unpacks (pruned under the exclusive lock)
// Blobs and layers are written to tmp/ and renamed into place, so a reader never sees a partial
// one and two importers of the same content cannot collide. Nothing is fsynced (like tar and
// umoci, and unlike a database): every read of a blob verifies its digest again, so a blob a
// power loss damaged is refused, never used.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.hpp"
#include "image/image.hpp"

namespace barge::image {

class FileLock {
 public:
  enum class Mode { shared, exclusive };
  FileLock(const std::string& path, Mode mode);

 private:
  UniqueFd fd_;
};

struct MountRecord {
  std::string id;
  std::string image;       // manifest digest
  std::string mountpoint;  // absolute
  std::vector<std::string> diff_ids;
};

class Store;

// A blob being written under tmp/: removed unless committed.
class PendingBlob {
 public:
  explicit PendingBlob(const Store& store);
  PendingBlob(const PendingBlob&) = delete;
  PendingBlob& operator=(const PendingBlob&) = delete;
  ~PendingBlob();
  int fd() const { return fd_.get(); }
  // Moves it to digest's place in the store (dropped when the store has that blob already).
  void commit(std::string_view digest);

 private:
  const Store& store_;
  std::string path_;
  UniqueFd fd_;
  bool committed_ = false;
};

class Store {
 public:
  // Creates the layout when missing.
  explicit Store(std::string root);

  const std::string& root() const { return root_; }
  FileLock shared_lock() const { return {root_ + "/lock", FileLock::Mode::shared}; }
  FileLock exclusive_lock() const { return {root_ + "/lock", FileLock::Mode::exclusive}; }

  std::string blob_path(std::string_view digest) const;
  bool has_blob(std::string_view digest) const;
  // Copies fd to the end into the store, hashing on the way. When expected is given, a different
  // digest (or size, when given) throws naming the expected digest and nothing is stored.
  std::string put_blob_from_fd(int fd, std::string_view expected,
                               std::optional<int64_t> expected_size = std::nullopt);
  std::string put_blob(std::string_view content, std::string_view expected = {});
  // Reads a (small, JSON) blob and verifies it again; max_size guards against huge documents.
  std::string read_blob(std::string_view digest, size_t max_size = 4 << 20) const;

  std::string layer_path(std::string_view diff_id) const;  // .../HEX (holds fs/)
  bool has_layer(std::string_view diff_id) const;
  // A fresh private directory under tmp/.
  std::string make_temp_dir(std::string_view prefix) const;

  std::vector<ImageRecord> load_images() const;
  // Runs edit on the records under the index lock and saves the result atomically.
  void update_images(const std::function<void(std::vector<ImageRecord>&)>& edit);

  std::string mounts_dir() const { return root_ + "/mounts"; }
  std::vector<MountRecord> load_mounts() const;
  void save_mount(const MountRecord& record) const;

  // Removes what no image or mount references, plus tmp/ leftovers. Call under exclusive_lock.
  PruneReport collect_garbage(bool drop_unnamed_images);

 private:
  std::string root_;
};

// Throws naming expected when the blob read (digest got, size bytes) is not the one described.
// An empty expected or no expected_size skips that check.
void check_blob(std::string_view expected, std::optional<int64_t> expected_size,
                const std::string& got, int64_t size);

nlohmann::json to_json(const ImageRecord& record);
ImageRecord image_from_json(const nlohmann::json& json);

}  // namespace barge::image

#include "image/store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <set>

#include "common/error.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "image/digest.hpp"

namespace barge::image {
namespace {

std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> names;
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) return names;
    throw_errno("opendir " + path);
  }
  while (dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(dir);
  return names;
}

std::string mismatch(std::string_view expected, const std::string& got) {
  return "blob " + std::string(expected) + ": digest mismatch (content hashes to " + got + ")";
}

}  // namespace

void check_blob(std::string_view expected, std::optional<int64_t> expected_size,
                const std::string& got, int64_t size) {
  if (!expected.empty() && got != expected) {
    if (expected_size && size != *expected_size)
      throw_error("blob " + std::string(expected) + ": truncated or wrong size (" +
                  std::to_string(size) + " bytes, descriptor says " +
                  std::to_string(*expected_size) + ")");
    throw_error(mismatch(expected, got));
  }
  if (expected_size && size != *expected_size)
    throw_error("blob " + got + ": size " + std::to_string(size) + " does not match the " +
                std::to_string(*expected_size) + " bytes its descriptor declares");
}

PendingBlob::PendingBlob(const Store& store)
    : store_(store), path_(store.root() + "/tmp/blob-XXXXXX") {
  int fd = ::mkostemp(path_.data(), O_CLOEXEC);
  if (fd < 0) throw_errno("create temp file " + path_);
  fd_.reset(fd);
}

PendingBlob::~PendingBlob() {
  if (!committed_) ::unlink(path_.c_str());
}

void PendingBlob::commit(std::string_view digest) {
  committed_ = true;
  if (store_.has_blob(digest)) {
    ::unlink(path_.c_str());
    return;
  }
  if (::fchmod(fd_.get(), 0444) != 0) throw_errno("chmod " + path_);
  if (::rename(path_.c_str(), store_.blob_path(digest).c_str()) != 0)
    throw_errno("rename " + store_.blob_path(digest));
}

FileLock::FileLock(const std::string& path, Mode mode)
    : fd_(open_or_throw(path, O_RDWR | O_CREAT, 0600)) {
  int op = mode == Mode::shared ? LOCK_SH : LOCK_EX;
  while (::flock(fd_.get(), op) != 0) {
    if (errno != EINTR) throw_errno("lock " + path);
  }
}

Store::Store(std::string root) : root_(std::move(root)) {
  if (root_.empty()) throw_error("image store: empty storage path");
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
  for (const char* sub : {"/blobs/sha256", "/layers/sha256", "/mounts", "/tmp"})
    make_dirs(root_ + sub, 0700);
}

std::string Store::blob_path(std::string_view digest) const {
  return root_ + "/blobs/sha256/" + digest_hex(digest);
}

bool Store::has_blob(std::string_view digest) const {
  return path_exists(blob_path(digest));
}

std::string Store::put_blob_from_fd(int fd, std::string_view expected,
                                    std::optional<int64_t> expected_size) {
  if (!expected.empty()) digest_hex(expected);  // validates before any work
  PendingBlob blob(*this);
  FdDigest read = with_context("blob " + std::string(expected), [&] {
    return sha256_of_fd(
        fd, [&](std::string_view block) { write_all(blob.fd(), block, "temp blob"); },
        expected_size);
  });
  check_blob(expected, expected_size, read.digest, read.size);
  blob.commit(read.digest);
  return read.digest;
}

std::string Store::put_blob(std::string_view content, std::string_view expected) {
  std::string got = sha256_of(content);
  if (!expected.empty() && got != expected) throw_error(mismatch(expected, got));
  if (has_blob(got)) return got;
  PendingBlob blob(*this);
  write_all(blob.fd(), content, "temp blob");
  blob.commit(got);
  return got;
}

std::string Store::read_blob(std::string_view digest, size_t max_size) const {
  std::string path = blob_path(digest);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw_errno("blob " + std::string(digest));
  if (static_cast<size_t>(st.st_size) > max_size)
    throw_error("blob " + std::string(digest) + ": " + std::to_string(st.st_size) +
                " bytes is too large for a JSON document");
  std::string content = read_file(path);
  std::string got = sha256_of(content);
  if (got != digest) throw_error(mismatch(digest, got) + " (store corrupted)");
  return content;
}

std::string Store::layer_path(std::string_view diff_id) const {
  return root_ + "/layers/sha256/" + digest_hex(diff_id);
}

bool Store::has_layer(std::string_view diff_id) const {
  return path_exists(layer_path(diff_id) + "/fs");
}

std::string Store::make_temp_dir(std::string_view prefix) const {
  std::string path = root_ + "/tmp/" + std::string(prefix) + "-XXXXXX";
  if (::mkdtemp(path.data()) == nullptr) throw_errno("mkdtemp " + path);
  return path;
}

nlohmann::json to_json(const ImageRecord& record) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& layer : record.layers)
    layers.push_back({{"digest", layer.digest},
                      {"diffID", layer.diff_id},
                      {"mediaType", layer.media_type},
                      {"size", layer.size}});
  return {{"digest", record.digest},     {"names", record.names}, {"config", record.config},
          {"platform", record.platform}, {"layers", layers},      {"imported", record.imported}};
}

ImageRecord image_from_json(const nlohmann::json& json) {
  ImageRecord record;
  record.digest = json.at("digest").get<std::string>();
  record.names = json.value("names", std::vector<std::string>{});
  record.config = json.at("config").get<std::string>();
  record.platform = json.value("platform", "");
  record.imported = json.value("imported", "");
  for (const auto& layer : json.at("layers"))
    record.layers.push_back({layer.at("digest").get<std::string>(),
                             layer.at("diffID").get<std::string>(), layer.value("mediaType", ""),
                             layer.value("size", int64_t{0})});
  return record;
}

std::vector<ImageRecord> Store::load_images() const {
  std::string path = root_ + "/images.json";
  if (!path_exists(path)) return {};
  return with_context(path, [&] {
    std::vector<ImageRecord> records;
    try {
      auto json = nlohmann::json::parse(read_file(path));
      for (const auto& entry : json.at("images")) records.push_back(image_from_json(entry));
    } catch (const nlohmann::json::exception& e) {
      throw_error(e.what());
    }
    return records;
  });
}

void Store::update_images(const std::function<void(std::vector<ImageRecord>&)>& edit) {
  FileLock lock(root_ + "/index.lock", FileLock::Mode::exclusive);
  auto records = load_images();
  edit(records);
  nlohmann::json images = nlohmann::json::array();
  for (const auto& record : records) images.push_back(to_json(record));
  nlohmann::json doc = {{"version", 1}, {"images", images}};
  write_file_atomic(root_ + "/images.json", doc.dump(2) + "\n");
}

std::vector<MountRecord> Store::load_mounts() const {
  std::vector<MountRecord> mounts;
  for (const auto& id : list_dir(mounts_dir())) {
    std::string path = mounts_dir() + "/" + id + "/mount.json";
    if (!path_exists(path)) continue;  // being created or removed
    try {
      auto json = nlohmann::json::parse(read_file(path));
      mounts.push_back({id, json.value("image", ""), json.value("mountpoint", ""),
                        json.value("diffIDs", std::vector<std::string>{})});
    } catch (const std::exception& e) {
      log::warn("image store: ignoring unreadable " + path + ": " + e.what());
    }
  }
  return mounts;
}

void Store::save_mount(const MountRecord& record) const {
  nlohmann::json json = {
      {"image", record.image}, {"mountpoint", record.mountpoint}, {"diffIDs", record.diff_ids}};
  write_file_atomic(mounts_dir() + "/" + record.id + "/mount.json", json.dump(2) + "\n");
}

PruneReport Store::collect_garbage(bool drop_unnamed_images) {
  PruneReport report;
  if (drop_unnamed_images) {
    update_images([&](std::vector<ImageRecord>& records) {
      std::erase_if(records, [&](const ImageRecord& r) {
        if (!r.names.empty()) return false;
        ++report.images;
        return true;
      });
    });
  }
  std::set<std::string> blobs;
  std::set<std::string> layers;
  for (const auto& record : load_images()) {
    blobs.insert(digest_hex(record.digest));
    blobs.insert(digest_hex(record.config));
    for (const auto& layer : record.layers) {
      blobs.insert(digest_hex(layer.digest));
      layers.insert(digest_hex(layer.diff_id));
    }
  }
  for (const auto& mount : load_mounts())
    for (const auto& diff_id : mount.diff_ids) layers.insert(digest_hex(diff_id));

  std::string blob_dir = root_ + "/blobs/sha256";
  for (const auto& name : list_dir(blob_dir)) {
    if (blobs.contains(name)) continue;
    struct stat st {};
    std::string path = blob_dir + "/" + name;
    if (::lstat(path.c_str(), &st) == 0) report.bytes += static_cast<uint64_t>(st.st_size);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw_errno("remove " + path);
    ++report.blobs;
  }
  std::string layer_dir = root_ + "/layers/sha256";
  for (const auto& name : list_dir(layer_dir)) {
    if (layers.contains(name)) continue;
    remove_tree(layer_dir + "/" + name);
    ++report.layers;
  }
  for (const auto& name : list_dir(root_ + "/tmp")) remove_tree(root_ + "/tmp/" + name);
  return report;
}

}  // namespace barge::image

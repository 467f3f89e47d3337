// Bringing an image's layers into the store: every blob read once (hashed, copied, decompressed,
// hashed again and extracted in one pass), layers side by side, and nothing committed until the
// whole image has verified.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "common/error.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "image/digest.hpp"
#include "image/import_internal.hpp"
#include "image/unpack.hpp"
#include "runtime/rootfs.hpp"

namespace barge::image {
namespace {

struct LayerJob {
  size_t index = 0;     // in record.layers
  bool unpack = false;  // else only the blob is wanted
  LayerSource source;   // empty path: the store's blob
  int64_t bytes = 0;    // for scheduling, largest first
  std::string staged;   // tmp dir holding fs/ until commit
  std::unique_ptr<PendingBlob> blob;
  UnpackResult result;
};

UniqueFd open_blob(const Store& store, const LayerRecord& layer, const LayerSource& source) {
  if (source.path.empty()) {
    if (!store.has_blob(layer.digest))
      throw_error("blob missing from the store (import the image again)");
    return open_or_throw(store.blob_path(layer.digest), O_RDONLY);
  }
  return rootfs::open_in_root(source.dirfd, source.path, O_RDONLY);
}

std::string detect_layer_type(int fd) {
  unsigned char magic[4] = {};
  ssize_t n = ::pread(fd, magic, sizeof magic, 0);
  if (n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) return std::string(media::kOciLayerGzip);
  if (n == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd)
    return std::string(media::kOciLayerZstd);
  return std::string(media::kOciLayer);
}

// Hashes the blob from fd's offset to its end, copying it into blob when given.
UnpackResult hash_blob(int fd, PendingBlob* blob = nullptr,
                       std::optional<int64_t> limit = std::nullopt) {
  std::function<void(std::string_view)> copy;
  if (blob) copy = [&](std::string_view block) { write_all(blob->fd(), block, "temp blob"); };
  FdDigest read = sha256_of_fd(fd, copy, limit);
  UnpackResult result;
  result.digest = read.digest;
  result.size = read.size;
  return result;
}

void run_job(Store& store, LayerRecord& layer, LayerJob& job) {
  UniqueFd fd = open_blob(store, layer, job.source);
  std::optional<int64_t> size;
  if (layer.size >= 0 && !layer.digest.empty()) size = layer.size;
  struct stat st {};
  if (size && ::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size != *size)
    throw_error("blob " + layer.digest + ": truncated or wrong size (" +
                std::to_string(st.st_size) + " bytes, descriptor says " + std::to_string(*size) +
                ")");
  if (layer.media_type.empty()) layer.media_type = detect_layer_type(fd.get());
  if (!job.source.path.empty()) job.blob = std::make_unique<PendingBlob>(store);
  if (!job.unpack) {
    job.result = hash_blob(fd.get(), job.blob.get(), size);
  } else {
    job.staged = store.make_temp_dir("layer");
    make_dirs(job.staged + "/fs", 0755);
    UnpackOptions options;
    options.copy_fd = job.blob ? job.blob->fd() : -1;
    options.blob_size = size;
    try {
      job.result = unpack_layer(fd.get(), job.staged + "/fs", options);
    } catch (const Error&) {
      // A damaged blob usually breaks decompression before its digest can be compared: name
      // the root cause when that is it.
      if (!layer.digest.empty() && ::lseek(fd.get(), 0, SEEK_SET) == 0) {
        UnpackResult whole = hash_blob(fd.get());
        check_blob(layer.digest, size, whole.digest, whole.size);
      }
      throw;
    }
  }
  check_blob(layer.digest, size, job.result.digest, job.result.size);
  if (job.unpack && job.result.diff_id != layer.diff_id)
    throw_error("layer " + job.result.digest + ": uncompressed content hashes to " +
                job.result.diff_id + " but the config's rootfs.diff_ids says " + layer.diff_id);
}

// What the store lacks for record, at most one job per blob and per unpacked layer.
std::vector<LayerJob> plan(const Store& store, const ImageRecord& record,
                           const std::vector<LayerSource>& sources) {
  std::vector<LayerJob> jobs;
  std::set<std::string> blobs, layers;
  for (size_t i = 0; i < record.layers.size(); ++i) {
    const LayerRecord& layer = record.layers[i];
    bool unpack = !store.has_layer(layer.diff_id) && !layers.contains(layer.diff_id);
    bool need_blob =
        layer.digest.empty() || (!store.has_blob(layer.digest) && !blobs.contains(layer.digest));
    if (!unpack && !need_blob) continue;
    LayerJob job;
    job.index = i;
    job.unpack = unpack;
    if (need_blob && i < sources.size()) job.source = sources[i];
    if (need_blob && job.source.path.empty() && !unpack) continue;  // nowhere to read it from
    job.bytes = layer.size;
    if (job.bytes < 0 && !job.source.path.empty()) {
      struct stat st {};
      UniqueFd fd = rootfs::open_in_root(job.source.dirfd, job.source.path, O_PATH);
      if (::fstat(fd.get(), &st) == 0) job.bytes = st.st_size;
    }
    layers.insert(layer.diff_id);
    if (!layer.digest.empty()) blobs.insert(layer.digest);
    jobs.push_back(std::move(job));
  }
  return jobs;
}

// Runs the jobs on up to one thread per cpu, largest first; returns the first failure.
std::exception_ptr run_jobs(Store& store, ImageRecord& record, std::vector<LayerJob>& jobs) {
  std::vector<LayerJob*> order;
  for (auto& job : jobs) order.push_back(&job);
  std::stable_sort(order.begin(), order.end(),
                   [](const LayerJob* a, const LayerJob* b) { return a->bytes > b->bytes; });
  size_t workers = std::min<size_t>(jobs.size(), std::max(1u, std::thread::hardware_concurrency()));
  std::atomic<size_t> next{0};
  std::mutex mutex;
  std::exception_ptr failure;
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < order.size();) {
      LayerJob& job = *order[i];
      LayerRecord& layer = record.layers[job.index];
      try {
        std::string name = layer.digest.empty() ? job.source.path : layer.digest;
        with_context("layer " + name, [&] { run_job(store, layer, job); });
      } catch (...) {
        std::lock_guard lock(mutex);
        if (!failure) failure = std::current_exception();
        next.store(order.size());
      }
    }
  };
  std::vector<std::jthread> threads;
  for (size_t i = 1; i < workers; ++i) threads.emplace_back(work);
  work();
  threads.clear();
  return failure;
}

// Implied parent directories take their look from the layers below, bottom layer first so each
// lower is final when an upper copies from it.
void fix_implied_dirs(const Store& store, const ImageRecord& record,
                      const std::vector<LayerJob>& jobs) {
  std::vector<std::string> fs(record.layers.size());
  for (size_t i = 0; i < record.layers.size(); ++i)
    fs[i] = store.layer_path(record.layers[i].diff_id) + "/fs";
  for (const auto& job : jobs)
    if (job.unpack) fs[job.index] = job.staged + "/fs";
  for (const auto& job : jobs) {
    if (!job.unpack || job.result.implied_dirs.empty()) continue;
    std::vector<std::string> lowers(fs.rend() - static_cast<long>(job.index), fs.rend());
    with_context("layer " + record.layers[job.index].diff_id,
                 [&] { copy_implied_dirs(job.staged + "/fs", job.result.implied_dirs, lowers); });
  }
}

// Blobs first, then layers; a concurrent importer of the same layer may have won the rename.
void commit(Store& store, ImageRecord& record, std::vector<LayerJob>& jobs) {
  for (auto& job : jobs) {
    LayerRecord& layer = record.layers[job.index];
    layer.digest = job.result.digest;
    layer.size = job.result.size;
    if (job.blob) job.blob->commit(layer.digest);
    if (!job.unpack) continue;
    if (::rename(job.staged.c_str(), store.layer_path(layer.diff_id).c_str()) != 0) {
      if (errno != EEXIST && errno != ENOTEMPTY) throw_errno("rename layer " + layer.diff_id);
      remove_tree(job.staged);
    }
    job.staged.clear();
  }
}

}  // namespace

void ensure_layers(Store& store, ImageRecord& record, const std::vector<LayerSource>& sources) {
  std::vector<LayerJob> jobs = plan(store, record, sources);
  auto cleanup = [&] {
    for (auto& job : jobs)
      if (!job.staged.empty()) remove_tree(job.staged);
  };
  try {
    if (std::exception_ptr failure = run_jobs(store, record, jobs)) std::rethrow_exception(failure);
    std::sort(jobs.begin(), jobs.end(),
              [](const LayerJob& a, const LayerJob& b) { return a.index < b.index; });
    fix_implied_dirs(store, record, jobs);
    commit(store, record, jobs);
  } catch (...) {
    cleanup();
    throw;
  }
  for (auto& layer : record.layers) {
    // A duplicate layer whose blob the source did not name shares the first one's blob.
    if (layer.digest.empty()) {
      for (const auto& other : record.layers)
        if (other.diff_id == layer.diff_id && !other.digest.empty()) layer = other;
    }
    // A docker archive named a blob the store had already: describe it from there.
    if ((layer.media_type.empty() || layer.size < 0) && store.has_blob(layer.digest)) {
      UniqueFd fd = open_or_throw(store.blob_path(layer.digest), O_RDONLY);
      struct stat st {};
      if (::fstat(fd.get(), &st) != 0) throw_errno("stat blob " + layer.digest);
      layer.size = st.st_size;
      if (layer.media_type.empty()) layer.media_type = detect_layer_type(fd.get());
    }
  }
}

}  // namespace barge::image

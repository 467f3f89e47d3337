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

struct LayerJob {
  size_t index = 0;     // in the record being added
  bool unpack = false;  // else only the blob is wanted
  LayerSource source;   // empty path: the store's blob
  int64_t bytes = 0;    // for scheduling, largest first
  std::string diff_id;
  std::string staged;  // tmp dir holding fs/ until commit
  std::unique_ptr<PendingBlob> blob;
  UnpackResult result;
};

namespace {

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

// What neither the store nor the batch (blobs, staged) has for record, at most one job per blob
// and per unpacked layer.
std::vector<std::unique_ptr<LayerJob>> plan(
    const Store& store, const ImageRecord& record, const std::vector<LayerSource>& sources,
    const std::map<std::string, std::string>& staged,
    const std::map<std::string, std::pair<int64_t, std::string>>& batch_blobs) {
  std::vector<std::unique_ptr<LayerJob>> jobs;
  std::set<std::string> blobs, layers;
  for (size_t i = 0; i < record.layers.size(); ++i) {
    const LayerRecord& layer = record.layers[i];
    bool unpack = !store.has_layer(layer.diff_id) && !staged.contains(layer.diff_id) &&
                  !layers.contains(layer.diff_id);
    bool need_blob = layer.digest.empty() ||
                     (!store.has_blob(layer.digest) && !batch_blobs.contains(layer.digest) &&
                      !blobs.contains(layer.digest));
    if (!unpack && !need_blob) continue;
    auto job = std::make_unique<LayerJob>();
    job->index = i;
    job->unpack = unpack;
    job->diff_id = layer.diff_id;
    if (need_blob && i < sources.size()) job->source = sources[i];
    if (need_blob && job->source.path.empty() && !unpack) continue;  // nowhere to read it from
    job->bytes = layer.size;
    if (job->bytes < 0 && !job->source.path.empty()) {
      struct stat st {};
      UniqueFd fd = rootfs::open_in_root(job->source.dirfd, job->source.path, O_PATH);
      if (::fstat(fd.get(), &st) == 0) job->bytes = st.st_size;
    }
    layers.insert(layer.diff_id);
    if (!layer.digest.empty()) blobs.insert(layer.digest);
    jobs.push_back(std::move(job));
  }
  return jobs;
}

// Runs the jobs on up to one thread per cpu, largest first; returns the first failure.
std::exception_ptr run_jobs(Store& store, ImageRecord& record,
                            const std::vector<std::unique_ptr<LayerJob>>& jobs) {
  std::vector<LayerJob*> order;
  order.reserve(jobs.size());
  for (const auto& job : jobs) order.push_back(job.get());
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

void remove_staged(LayerJob& job) {
  if (job.staged.empty()) return;
  remove_tree(job.staged);
  job.staged.clear();
}

}  // namespace

LayerBatch::LayerBatch(Store& store) : store_(store) {}

LayerBatch::~LayerBatch() {
  for (auto& job : jobs_) {
    try {
      remove_staged(*job);
    } catch (const std::exception& e) {
      log::warn(std::string("remove staged layer: ") + e.what());
    }
  }
}

void LayerBatch::add(ImageRecord& record, const std::vector<LayerSource>& sources) {
  auto jobs = plan(store_, record, sources, staged_fs_, blobs_);
  std::exception_ptr failure = run_jobs(store_, record, jobs);
  if (failure) {
    for (auto& job : jobs) remove_staged(*job);
    std::rethrow_exception(failure);
  }
  for (auto& job : jobs) {
    LayerRecord& layer = record.layers[job->index];
    layer.digest = job->result.digest;
    layer.size = job->result.size;
    blobs_[layer.digest] = {layer.size, layer.media_type};
    if (job->unpack) staged_fs_[layer.diff_id] = job->staged + "/fs";
  }
  // Implied parent directories take their look from the layers below, bottom layer first so
  // each lower is final when an upper copies from it.
  auto fs_of = [&](const std::string& diff_id) {
    auto staged = staged_fs_.find(diff_id);
    return staged != staged_fs_.end() ? staged->second : store_.layer_path(diff_id) + "/fs";
  };
  for (const auto& job : jobs) {
    if (!job->unpack || job->result.implied_dirs.empty()) continue;
    std::vector<std::string> lowers;
    for (size_t i = job->index; i-- > 0;) lowers.push_back(fs_of(record.layers[i].diff_id));
    with_context("layer " + job->diff_id,
                 [&] { copy_implied_dirs(job->staged + "/fs", job->result.implied_dirs, lowers); });
  }
  for (auto& job : jobs) jobs_.push_back(std::move(job));

  for (auto& layer : record.layers) {
    // A duplicate layer whose blob the source did not name shares the first one's blob.
    if (layer.digest.empty()) {
      for (const auto& other : record.layers)
        if (other.diff_id == layer.diff_id && !other.digest.empty()) layer = other;
    }
    if (!layer.media_type.empty() && layer.size >= 0) continue;
    // A docker archive named a blob the batch or the store has already: describe it from there.
    if (auto known = blobs_.find(layer.digest); known != blobs_.end()) {
      layer.size = known->second.first;
      if (layer.media_type.empty()) layer.media_type = known->second.second;
    } else if (store_.has_blob(layer.digest)) {
      UniqueFd fd = open_or_throw(store_.blob_path(layer.digest), O_RDONLY);
      struct stat st {};
      if (::fstat(fd.get(), &st) != 0) throw_errno("stat blob " + layer.digest);
      layer.size = st.st_size;
      if (layer.media_type.empty()) layer.media_type = detect_layer_type(fd.get());
    }
  }
}

void LayerBatch::commit() {
  for (auto& job : jobs_)
    if (job->blob) job->blob->commit(job->result.digest);
  for (auto& job : jobs_) {
    if (!job->unpack) continue;
    if (::rename(job->staged.c_str(), store_.layer_path(job->diff_id).c_str()) != 0) {
      if (errno != EEXIST && errno != ENOTEMPTY) throw_errno("rename layer " + job->diff_id);
      remove_tree(job->staged);
    }
    job->staged.clear();
  }
  jobs_.clear();
  staged_fs_.clear();
  blobs_.clear();
}

void ensure_layers(Store& store, ImageRecord& record, const std::vector<LayerSource>& sources) {
  LayerBatch batch(store);
  batch.add(record, sources);
  batch.commit();
}

}  // namespace barge::image

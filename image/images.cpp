// Image records: references, list, inspect, rm, prune.
#include <algorithm>

#include "common/error.hpp"
#include "common/log.hpp"
#include "image/digest.hpp"
#include "image/import_internal.hpp"

namespace barge::image {
namespace {

bool valid_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == '/' || c == ':' || c == '@';
}

}  // namespace

std::string normalize_name(std::string_view reference) {
  if (reference.empty()) throw_error("empty image reference");
  for (char c : reference)
    if (!valid_name_char(c))
      throw_error("invalid image reference \"" + std::string(reference) + "\"");
  std::string ref(reference);
  if (auto at = ref.find('@'); at != std::string::npos) {
    digest_hex(ref.substr(at + 1));
    return ref;
  }
  // A ':' after the last '/' is a tag; one before it is a registry port.
  auto slash = ref.rfind('/');
  auto colon = ref.rfind(':');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) ref += ":latest";
  if (ref.front() == ':' || ref.back() == ':' || ref.front() == '/')
    throw_error("invalid image reference \"" + std::string(reference) + "\"");
  return ref;
}

namespace {

// Index of the record reference names; throws when none or (for prefixes) several match.
size_t find_index(const std::vector<ImageRecord>& records, const std::string& reference) {
  auto by_digest = [&](const std::string& digest) -> std::optional<size_t> {
    for (size_t i = 0; i < records.size(); ++i)
      if (records[i].digest == digest) return i;
    return std::nullopt;
  };
  if (is_valid_digest(reference)) {
    if (auto i = by_digest(reference)) return *i;
  } else if (auto at = reference.find('@'); at != std::string::npos) {
    if (auto i = by_digest(reference.substr(at + 1))) return *i;
  } else {
    bool hex = reference.size() >= 6 &&
               reference.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (hex) {
      std::optional<size_t> found;
      for (size_t i = 0; i < records.size(); ++i) {
        if (records[i].digest.compare(7, reference.size(), reference) != 0) continue;
        if (found) throw_error("image id prefix " + reference + " is ambiguous");
        found = i;
      }
      if (found) return *found;
    }
    std::string name = normalize_name(reference);
    for (size_t i = 0; i < records.size(); ++i)
      if (std::find(records[i].names.begin(), records[i].names.end(), name) !=
          records[i].names.end())
        return i;
  }
  throw Error("image " + reference + ": not found", ENOENT);
}

}  // namespace

std::vector<ImageRecord> list_images(const std::string& storage) {
  return Store(storage).load_images();
}

ImageRecord find_image(const std::string& storage, const std::string& reference) {
  auto records = list_images(storage);
  return records[find_index(records, reference)];
}

nlohmann::json inspect_image(const std::string& storage, const std::string& reference) {
  Store store(storage);
  auto records = store.load_images();
  const ImageRecord& record = records[find_index(records, reference)];
  nlohmann::json out = to_json(record);
  out["manifest"] = nlohmann::json::parse(store.read_blob(record.digest));
  out["config"] = nlohmann::json::parse(store.read_blob(record.config));
  out["configDigest"] = record.config;
  return out;
}

void remove_image(const std::string& storage, const std::string& reference) {
  Store store(storage);
  FileLock lock = store.exclusive_lock();
  store.update_images([&](std::vector<ImageRecord>& records) {
    size_t i = find_index(records, reference);
    auto& names = records[i].names;
    bool by_name = !is_valid_digest(reference) && reference.find('@') == std::string::npos &&
                   std::find(names.begin(), names.end(), normalize_name(reference)) != names.end();
    if (by_name) std::erase(names, normalize_name(reference));
    if (!by_name || names.empty()) records.erase(records.begin() + static_cast<long>(i));
  });
  PruneReport report = store.collect_garbage(false);
  log::debug("image rm: freed " + std::to_string(report.blobs) + " blobs, " +
             std::to_string(report.layers) + " layers");
}

PruneReport prune(const std::string& storage) {
  Store store(storage);
  FileLock lock = store.exclusive_lock();
  return store.collect_garbage(true);
}

}  // namespace barge::image

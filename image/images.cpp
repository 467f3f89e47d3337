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
  auto invalid = [&](const char* why) {
    throw_error("invalid image reference \"" + std::string(reference) + "\": " + why);
  };
  if (reference.empty()) throw_error("empty image reference");
  for (char c : reference)
    if (!valid_name_char(c)) invalid("unexpected character");
  std::string name(reference);
  std::string digest;
  if (auto at = name.find('@'); at != std::string::npos) {
    digest = name.substr(at + 1);
    digest_hex(digest);
    name.resize(at);
  }
  // A ':' after the last '/' starts a tag; one before it is a registry port.
  std::string tag;
  auto slash = name.rfind('/');
  auto colon = name.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    tag = name.substr(colon + 1);
    name.resize(colon);
    if (tag.empty() || tag.find('@') != std::string::npos) invalid("empty tag");
  }
  // Docker Hub's names in their short form: docker.io/library/busybox is busybox.
  for (std::string_view hub : {"docker.io/", "index.docker.io/"})
    if (name.starts_with(hub)) name.erase(0, hub.size());
  if (name.starts_with("library/") && name.find('/', 8) == std::string::npos) name.erase(0, 8);
  if (name.empty() || name.front() == '/' || name.back() == '/' ||
      name.find("//") != std::string::npos)
    invalid("bad repository name");
  if (tag.empty() && digest.empty()) tag = "latest";
  return name + (tag.empty() ? "" : ":" + tag) + (digest.empty() ? "" : "@" + digest);
}

namespace {

// Names as stored by older versions may not be in today's normal form.
std::string stored_name(const std::string& name) {
  try {
    return normalize_name(name);
  } catch (const Error&) {
    return name;
  }
}

bool has_name(const ImageRecord& record, const std::string& normalized) {
  return std::any_of(record.names.begin(), record.names.end(),
                     [&](const std::string& n) { return stored_name(n) == normalized; });
}

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
      if (has_name(records[i], name)) return i;
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
                   has_name(records[i], normalize_name(reference));
    if (by_name)
      std::erase_if(
          names, [&](const std::string& n) { return stored_name(n) == normalize_name(reference); });
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

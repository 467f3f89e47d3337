#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <exception>
#include <map>
#include <memory>

#include "common/error.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "image/compression.hpp"
#include "image/digest.hpp"
#include "image/import_internal.hpp"
#include "runtime/rootfs.hpp"

namespace barge::image {
namespace {

using Json = nlohmann::json;
constexpr size_t kMaxJson = 4 << 20;

// NOLINTNEXTLINE(bugprone-exception-escape): nlohmann::json's special members are not noexcept
struct Descriptor {
  std::string media_type;
  std::string digest;
  int64_t size = -1;
  Json json;  // the whole descriptor (platform, annotations, urls)
};

Json parse_json(std::string_view text, const std::string& what) {
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    throw_error(what + ": " + e.what());
  }
}

Descriptor descriptor(const Json& json, const std::string& where) {
  if (!json.is_object()) throw_error(where + ": descriptor is not an object");
  Descriptor d;
  d.media_type = json.value("mediaType", "");
  d.digest = json.value("digest", "");
  if (!is_valid_digest(d.digest))
    throw_error(where + ": unsupported or invalid digest \"" + d.digest + "\"");
  if (!json.contains("size") || !json["size"].is_number_integer() || json["size"] < 0)
    throw_error(where + ": descriptor " + d.digest + " has no valid size");
  d.size = json["size"].get<int64_t>();
  d.json = json;
  return d;
}

bool is_index(std::string_view type) {
  return type == media::kOciIndex || type == media::kDockerList;
}
bool is_manifest(std::string_view type) {
  return type == media::kOciManifest || type == media::kDockerManifest;
}
bool is_layer(std::string_view type) {
  return type == media::kOciLayer || type == media::kOciLayerGzip || type == media::kOciLayerZstd ||
         type == media::kDockerLayer || type == media::kDockerLayerGzip;
}
bool is_foreign_layer(std::string_view type) {
  return type.find("nondistributable") != type.npos || type.find("foreign") != type.npos;
}

std::string base_name(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = std::min(path.find('/', pos), path.size());
    std::string_view part = path.substr(pos, end - pos);
    if (!part.empty() && part != ".") parts.emplace_back(part);
    pos = end + 1;
  }
  return parts;
}

// Extracts the outer archive (regular files, directories and symlinks only) into dir. Files are
// later opened with open_in_root, so symlinks (old `docker save` deduplicates layers with them)
// cannot lead outside dir.
void stage_archive(const std::string& path, const std::string& dir) {
  std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
  archive_read_support_format_tar(a.get());
  support_compressions(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 20) != ARCHIVE_OK)
    throw_error("open " + path + ": " + archive_error_string(a.get()));
  UniqueFd root = open_or_throw(dir, O_RDONLY | O_DIRECTORY);
  archive_entry* entry = nullptr;
  for (;;) {
    int r = archive_read_next_header(a.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) throw_error("read " + path + ": " + archive_error_string(a.get()));
    std::string name = archive_entry_pathname(entry);
    std::string rel;
    for (const auto& part : split_path(name)) {
      if (part == "..") throw_error(path + ": entry \"" + name + "\" escapes the archive");
      rel += (rel.empty() ? "" : "/") + part;
    }
    if (rel.empty()) continue;
    mode_t type = archive_entry_filetype(entry);
    auto slash = rel.rfind('/');
    UniqueFd parent = slash == std::string::npos
                          ? UniqueFd(::dup(root.get()))
                          : rootfs::mkdir_all_in_root(root.get(), rel.substr(0, slash));
    std::string leaf = slash == std::string::npos ? rel : rel.substr(slash + 1);
    if (type == AE_IFDIR) {
      if (::mkdirat(parent.get(), leaf.c_str(), 0700) != 0 && errno != EEXIST)
        throw_errno("stage " + rel);
    } else if (type == AE_IFLNK) {
      ::unlinkat(parent.get(), leaf.c_str(), 0);
      if (::symlinkat(archive_entry_symlink(entry), parent.get(), leaf.c_str()) != 0)
        throw_errno("stage " + rel);
    } else if (type == AE_IFREG && archive_entry_hardlink(entry) == nullptr) {
      ::unlinkat(parent.get(), leaf.c_str(), 0);
      UniqueFd out(::openat(parent.get(), leaf.c_str(),
                            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!out) throw_errno("stage " + rel);
      if (archive_read_data_into_fd(a.get(), out.get()) != ARCHIVE_OK)
        throw_error("read " + path + ": " + rel + ": " + archive_error_string(a.get()));
    }
  }
}

class Importer {
 public:
  Importer(Store& store, const std::string& source_dir, std::string source_name,
           const ImportOptions& options)
      : store_(store),
        source_(open_or_throw(source_dir, O_RDONLY | O_DIRECTORY)),
        source_name_(std::move(source_name)),
        options_(options) {}

  std::vector<ImageRecord> run() {
    if (exists("oci-layout") && exists("index.json")) return import_layout();
    if (exists("manifest.json")) return import_docker();
    throw_error(
        "neither an OCI image layout (oci-layout, index.json) nor a docker archive "
        "(manifest.json)");
  }

 private:
  bool exists(const std::string& rel) {
    try {
      rootfs::open_in_root(source_.get(), rel, O_PATH);
      return true;
    } catch (const Error&) {
      return false;
    }
  }
  UniqueFd open_source(const std::string& rel) {
    return rootfs::open_in_root(source_.get(), rel, O_RDONLY);
  }
  std::string read_source(const std::string& rel) {
    UniqueFd fd = open_source(rel);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw_errno("stat " + rel);
    if (static_cast<size_t>(st.st_size) > kMaxJson) throw_error(rel + ": too large");
    return read_file(std::string("/proc/self/fd/") + std::to_string(fd.get()));
  }

  // A JSON blob (index, manifest, config) from the store, or else read from the source at rel
  // and verified (against expected when not empty); kept in memory until commit().
  std::string json_blob(const std::string& rel, std::string_view expected,
                        std::optional<int64_t> size = std::nullopt) {
    std::string digest(expected);
    if (!digest.empty()) {
      if (auto pending = pending_json_.find(digest); pending != pending_json_.end())
        return pending->second;
      if (store_.has_blob(digest)) return store_.read_blob(digest);
    }
    std::string content = with_context(digest.empty() ? rel : "blob " + digest, [&] {
      std::string text = read_source(rel);
      check_blob(expected, size, sha256_of(text), static_cast<int64_t>(text.size()));
      return text;
    });
    if (digest.empty()) digest = sha256_of(content);
    pending_json_.emplace(digest, content);
    return content;
  }
  Json ingest_json(const Descriptor& d, const std::string& what) {
    if (d.size > static_cast<int64_t>(kMaxJson)) throw_error(what + " " + d.digest + ": too large");
    std::string text = json_blob("blobs/sha256/" + digest_hex(d.digest), d.digest, d.size);
    return parse_json(text, what + " " + d.digest);
  }

 public:
  // Moves everything the import verified into the store.
  void commit() {
    layers_.commit();
    for (const auto& [digest, content] : pending_json_) store_.put_blob(content, digest);
    pending_json_.clear();
  }

 private:
  std::vector<ImageRecord> import_layout();
  std::vector<ImageRecord> import_docker();
  std::optional<Descriptor> select_manifest(const Descriptor& d, int depth);
  ImageRecord import_manifest(const Descriptor& d);
  std::vector<std::string> names_for(const Descriptor& top);

  Store& store_;
  UniqueFd source_;
  std::string source_name_;
  const ImportOptions& options_;
  LayerBatch layers_{store_};
  std::map<std::string, std::string> pending_json_;  // digest -> content
};

std::optional<Descriptor> Importer::select_manifest(const Descriptor& d, int depth) {
  if (depth > 8) throw_error("index " + d.digest + ": indexes nested too deeply");
  if (is_manifest(d.media_type)) return d;
  if (!is_index(d.media_type))
    throw_error("descriptor " + d.digest + ": unsupported media type \"" + d.media_type + "\"");
  Json index = ingest_json(d, "index");
  if (!index.contains("manifests") || !index["manifests"].is_array())
    throw_error("index " + d.digest + ": no manifests array");
  for (const auto& entry : index["manifests"]) {
    Descriptor child = descriptor(entry, "index " + d.digest);
    if (child.json.contains("platform")) {
      const Json& p = child.json["platform"];
      if (!platform_matches(options_.platform, p.value("os", ""), p.value("architecture", ""),
                            p.value("variant", "")))
        continue;
    } else if (is_manifest(child.media_type)) {
      continue;  // a manifest without a platform inside an index (attestations and the like)
    }
    if (auto found = select_manifest(child, depth + 1)) return found;
  }
  return std::nullopt;
}

std::vector<std::string> Importer::names_for(const Descriptor& top) {
  if (!options_.name.empty()) return {normalize_name(options_.name)};
  Json annotations = top.json.value("annotations", Json::object());
  std::string full = annotations.value("io.containerd.image.name", "");
  if (!full.empty()) return {normalize_name(full)};
  std::string ref = annotations.value("org.opencontainers.image.ref.name", "");
  if (ref.empty()) return {};
  // A bare tag names the image after the layout.
  if (ref.find_first_of(":/@") == std::string::npos)
    return {normalize_name(source_name_ + ":" + ref)};
  return {normalize_name(ref)};
}

std::vector<ImageRecord> Importer::import_layout() {
  Json layout = parse_json(read_source("oci-layout"), "oci-layout");
  if (layout.value("imageLayoutVersion", "") != "1.0.0")
    throw_error("oci-layout: unsupported imageLayoutVersion");
  Json index = parse_json(read_source("index.json"), "index.json");
  if (!index.contains("manifests") || !index["manifests"].is_array())
    throw_error("index.json: no manifests array");
  std::vector<std::pair<Descriptor, std::vector<std::string>>> wanted;
  for (const auto& entry : index["manifests"]) {
    Descriptor top = descriptor(entry, "index.json");
    if (is_manifest(top.media_type) && top.json.contains("platform")) {
      const Json& p = top.json["platform"];
      if (!platform_matches(options_.platform, p.value("os", ""), p.value("architecture", ""),
                            p.value("variant", "")))
        continue;
    }
    auto manifest = select_manifest(top, 0);
    if (!manifest) {
      log::warn("index.json: " + top.digest + " has no manifest for " + options_.platform);
      continue;
    }
    wanted.emplace_back(*manifest, names_for(top));
  }
  if (wanted.empty()) throw_error("index.json: no image for platform " + options_.platform);
  if (!options_.name.empty() && wanted.size() > 1)
    throw_error("--name given but the layout holds " + std::to_string(wanted.size()) + " images");
  std::vector<ImageRecord> records;
  for (auto& [manifest, names] : wanted) {
    ImageRecord record = import_manifest(manifest);
    record.names = names;
    records.push_back(std::move(record));
  }
  return records;
}

ImageRecord Importer::import_manifest(const Descriptor& d) {
  return with_context("manifest " + d.digest, [&] {
    Json manifest = ingest_json(d, "manifest");
    if (manifest.value("schemaVersion", 0) != 2) throw_error("unsupported schemaVersion");
    Descriptor config_desc = descriptor(manifest.value("config", Json()), "config");
    Json config = ingest_json(config_desc, "config");
    if (!manifest.contains("layers") || !manifest["layers"].is_array())
      throw_error("no layers array");
    ImageRecord record;
    record.digest = d.digest;
    record.config = config_desc.digest;
    for (const auto& entry : manifest["layers"]) {
      Descriptor layer = descriptor(entry, "layers");
      if (is_foreign_layer(layer.media_type) || layer.json.contains("urls"))
        throw_error("layer " + layer.digest + " is non-distributable/foreign (" + layer.media_type +
                    "): barge imports only layers whose content is present");
      if (!is_layer(layer.media_type))
        throw_error("layer " + layer.digest + ": unsupported media type \"" + layer.media_type +
                    "\"");
      record.layers.push_back({layer.digest, "", layer.media_type, layer.size});
    }
    Json diff_ids = config.contains("rootfs") ? config["rootfs"].value("diff_ids", Json::array())
                                              : Json::array();
    if (!diff_ids.is_array() || diff_ids.size() != record.layers.size())
      throw_error("config " + config_desc.digest + ": rootfs.diff_ids has " +
                  std::to_string(diff_ids.size()) + " entries for " +
                  std::to_string(record.layers.size()) + " layers");
    for (size_t i = 0; i < record.layers.size(); ++i) {
      std::string diff_id = diff_ids[i].is_string() ? diff_ids[i].get<std::string>() : "";
      digest_hex(diff_id);
      record.layers[i].diff_id = diff_id;
    }
    std::vector<LayerSource> sources;
    for (const auto& layer : record.layers)
      sources.push_back({source_.get(), "blobs/sha256/" + digest_hex(layer.digest)});
    layers_.add(record, sources);
    std::string os = config.value("os", ""), arch = config.value("architecture", "");
    record.platform = os + "/" + arch;
    if (config.contains("variant") && config["variant"].is_string())
      record.platform += "/" + config["variant"].get<std::string>();
    if (!platform_matches(options_.platform, os, arch, config.value("variant", "")))
      log::warn("image " + d.digest + " is for " + record.platform + ", not " + options_.platform);
    return record;
  });
}

// "blobs/sha256/HEX" or "HEX.json" name their digest; "ID/layer.tar" does not.
std::string digest_from_path(const std::string& path) {
  std::string base = base_name(path);
  if (base.ends_with(".json")) base.resize(base.size() - 5);
  std::string candidate = "sha256:" + base;
  return is_valid_digest(candidate) ? candidate : "";
}

std::vector<ImageRecord> Importer::import_docker() {
  Json manifest = parse_json(read_source("manifest.json"), "manifest.json");
  if (!manifest.is_array() || manifest.empty()) throw_error("manifest.json: not a non-empty array");
  if (!options_.name.empty() && manifest.size() > 1)
    throw_error("--name given but the archive holds " + std::to_string(manifest.size()) +
                " images");
  std::vector<ImageRecord> records;
  for (const auto& entry : manifest) {
    std::string config_path = entry.value("Config", "");
    if (config_path.empty()) throw_error("manifest.json: an entry has no Config");
    std::string config_text = json_blob(config_path, digest_from_path(config_path));
    std::string config_digest = sha256_of(config_text);
    Json config = parse_json(config_text, "config " + config_path);
    Json diff_ids = config.contains("rootfs") ? config["rootfs"].value("diff_ids", Json::array())
                                              : Json::array();
    Json layers = entry.value("Layers", Json::array());
    if (!layers.is_array() || !diff_ids.is_array() || layers.size() != diff_ids.size())
      throw_error("config " + config_path + ": rootfs.diff_ids does not match Layers");
    Json foreign = entry.value("LayerSources", Json::object());
    ImageRecord record;
    record.config = config_digest;
    std::vector<LayerSource> sources;
    for (size_t i = 0; i < layers.size(); ++i) {
      std::string diff_id = diff_ids[i].is_string() ? diff_ids[i].get<std::string>() : "";
      digest_hex(diff_id);
      if (foreign.contains(diff_id) && is_foreign_layer(foreign[diff_id].value("mediaType", "")))
        throw_error("layer " + diff_id + " is non-distributable/foreign (" +
                    foreign[diff_id].value("mediaType", "") +
                    "): barge imports only layers whose content is present");
      if (!layers[i].is_string()) throw_error("manifest.json: Layers holds a non-string");
      std::string rel = layers[i].get<std::string>();
      record.layers.push_back({digest_from_path(rel), diff_id, "", -1});
      sources.push_back({source_.get(), rel});
    }
    layers_.add(record, sources);
    Json oci_layers = Json::array();
    for (const auto& layer : record.layers)
      oci_layers.push_back(
          {{"mediaType", layer.media_type}, {"digest", layer.digest}, {"size", layer.size}});
    Json oci = {{"schemaVersion", 2},
                {"mediaType", media::kOciManifest},
                {"config",
                 {{"mediaType", media::kOciConfig},
                  {"digest", config_digest},
                  {"size", config_text.size()}}},
                {"layers", oci_layers}};
    std::string manifest_text = oci.dump();
    record.digest = sha256_of(manifest_text);
    pending_json_.emplace(record.digest, std::move(manifest_text));
    record.platform = config.value("os", "") + "/" + config.value("architecture", "");
    if (!options_.name.empty()) {
      record.names = {normalize_name(options_.name)};
    } else {
      for (const auto& tag : entry.value("RepoTags", Json::array()))
        if (tag.is_string()) record.names.push_back(normalize_name(tag.get<std::string>()));
    }
    records.push_back(std::move(record));
  }
  return records;
}

}  // namespace

std::string now_rfc3339() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  ::gmtime_r(&ts.tv_sec, &utc);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

bool platform_matches(std::string_view wanted, std::string_view os, std::string_view arch,
                      std::string_view variant) {
  auto first = wanted.find('/');
  if (first == std::string_view::npos) return false;
  std::string_view want_os = wanted.substr(0, first);
  std::string_view rest = wanted.substr(first + 1);
  auto second = rest.find('/');
  std::string_view want_arch = rest.substr(0, second);
  std::string_view want_variant = second == std::string_view::npos ? "" : rest.substr(second + 1);
  if (want_os != os || want_arch != arch) return false;
  return want_variant.empty() || variant.empty() || want_variant == variant;
}

std::vector<ImageRecord> import_image(const std::string& storage, const std::string& path,
                                      const ImportOptions& options) {
  return with_context("import " + path, [&] {
    Store store(storage);
    FileLock lock = store.shared_lock();  // keeps GC away from our unreferenced blobs
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw_errno("stat " + path);
    std::string source = path;
    std::string staged;
    if (!S_ISDIR(st.st_mode)) {
      staged = store.make_temp_dir("import");
      source = staged;
    }
    auto cleanup = [&] {
      if (!staged.empty()) remove_tree(staged);
    };
    std::vector<ImageRecord> records;
    try {
      if (!staged.empty()) stage_archive(path, staged);
      std::string name = base_name(path);
      for (const char* suffix : {".tar", ".tgz", ".tar.gz", ".oci"})
        if (name.ends_with(suffix) && name.size() > std::string_view(suffix).size())
          name.resize(name.size() - std::string_view(suffix).size());
      Importer importer(store, source, name, options);
      records = importer.run();
      importer.commit();
    } catch (...) {
      cleanup();
      throw;
    }
    cleanup();
    std::string now = now_rfc3339();
    store.update_images([&](std::vector<ImageRecord>& existing) {
      for (auto& record : records) {
        record.imported = now;
        for (auto& other : existing)
          std::erase_if(other.names, [&](const std::string& n) {
            return std::find(record.names.begin(), record.names.end(), n) != record.names.end();
          });
        auto same = std::find_if(existing.begin(), existing.end(),
                                 [&](const ImageRecord& r) { return r.digest == record.digest; });
        if (same == existing.end()) {
          existing.push_back(record);
        } else {
          for (const auto& n : record.names) same->names.push_back(n);
          record = *same;
        }
      }
    });
    for (const auto& record : records)
      log::info("imported " + record.digest +
                (record.names.empty() ? "" : " as " + record.names[0]));
    return records;
  });
}

}  // namespace barge::image

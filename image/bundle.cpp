// Mounting images and writing bundles.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <ranges>

#include "common/error.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "image/bundle_internal.hpp"
#include "image/digest.hpp"
#include "image/import_internal.hpp"
#include "overlay/overlay.hpp"
#include "runtime/rootfs.hpp"
#include "runtime/spec.hpp"

namespace barge::image {
namespace {

using Json = nlohmann::json;

std::optional<uint32_t> parse_id(std::string_view text) {
  uint32_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  for (;;) {
    size_t end = text.find(sep, pos);
    out.push_back(text.substr(pos, end == text.npos ? text.npos : end - pos));
    if (end == text.npos) return out;
    pos = end + 1;
  }
}

// Lines of a passwd/group file split on ':' (comments and short lines skipped).
std::vector<std::vector<std::string_view>> records(std::string_view file, size_t min_fields) {
  std::vector<std::vector<std::string_view>> out;
  for (auto line : split(file, '\n')) {
    if (line.empty() || line.front() == '#') continue;
    auto fields = split(line, ':');
    if (fields.size() >= min_fields) out.push_back(std::move(fields));
  }
  return out;
}

std::string read_in_root(int rootfd, const std::string& path) {
  try {
    UniqueFd fd = rootfs::open_in_root(rootfd, path, O_RDONLY);
    return read_file("/proc/self/fd/" + std::to_string(fd.get()));
  } catch (const Error& e) {
    if (e.code() == ENOENT) return "";
    throw;
  }
}

std::string random_id() {
  std::string seed = std::to_string(::getpid()) + "-" + now_rfc3339() + "-" +
                     std::to_string(reinterpret_cast<uintptr_t>(&seed));
  UniqueFd urandom(::open("/dev/urandom", O_RDONLY | O_CLOEXEC));
  char bytes[16];
  if (urandom && ::read(urandom.get(), bytes, sizeof bytes) == sizeof bytes)
    seed.append(bytes, sizeof bytes);
  return sha256_of(seed).substr(7, 24);
}

std::string absolute(const std::string& path) {
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) throw_errno("resolve " + path);
  return resolved;
}

}  // namespace

ResolvedUser resolve_user(std::string_view user, std::string_view passwd, std::string_view group) {
  auto parts = split(user, ':');
  if (parts.size() > 2) throw_error("user \"" + std::string(user) + "\": too many ':'");
  std::string_view user_part = parts[0];
  std::optional<std::string_view> group_part;
  if (parts.size() == 2) group_part = parts[1];
  if (user_part.empty()) user_part = "0";

  ResolvedUser out;
  std::string_view username;
  bool found = false;
  for (const auto& entry : records(passwd, 7)) {
    bool match =
        entry[0] == user_part || (parse_id(user_part) && parse_id(entry[2]) == parse_id(user_part));
    if (!match) continue;
    auto uid = parse_id(entry[2]);
    auto gid = parse_id(entry[3]);
    if (!uid || !gid) continue;
    out.uid = *uid;
    out.gid = *gid;
    out.home = std::string(entry[5]);
    username = entry[0];
    found = true;
    break;
  }
  if (!found) {
    auto uid = parse_id(user_part);
    if (!uid) throw_error("user \"" + std::string(user_part) + "\" not found in /etc/passwd");
    out.uid = *uid;
  }
  auto groups = records(group, 3);
  if (group_part) {
    if (group_part->empty()) throw_error("user \"" + std::string(user) + "\": empty group");
    bool group_found = false;
    for (const auto& entry : groups) {
      if (entry[0] == *group_part ||
          (parse_id(*group_part) && parse_id(entry[2]) == parse_id(*group_part))) {
        if (auto gid = parse_id(entry[2])) {
          out.gid = *gid;
          group_found = true;
          break;
        }
      }
    }
    if (!group_found) {
      auto gid = parse_id(*group_part);
      if (!gid) throw_error("group \"" + std::string(*group_part) + "\" not found in /etc/group");
      out.gid = *gid;
    }
  }
  if (!username.empty()) {
    for (const auto& entry : groups) {
      auto gid = parse_id(entry[2]);
      if (!gid || *gid == out.gid || entry.size() < 4) continue;
      auto members = split(entry[3], ',');
      if (std::find(members.begin(), members.end(), username) != members.end() &&
          std::find(out.additional_gids.begin(), out.additional_gids.end(), *gid) ==
              out.additional_gids.end())
        out.additional_gids.push_back(*gid);
    }
  }
  return out;
}

Json bundle_config(const Json& image_config, int rootfd) {
  Json spec = Json::parse(spec::default_config_json(false));
  Json config = image_config.value("config", Json::object());
  if (config.is_null()) config = Json::object();
  auto strings = [&](const char* key) {
    std::vector<std::string> out;
    if (config.contains(key) && config[key].is_array())
      for (const auto& v : config[key])
        if (v.is_string()) out.push_back(v.get<std::string>());
    return out;
  };
  std::vector<std::string> args = strings("Entrypoint");
  for (auto& arg : strings("Cmd")) args.push_back(std::move(arg));
  if (args.empty()) throw_error("image config has neither Entrypoint nor Cmd");

  Json& process = spec["process"];
  process["terminal"] = false;
  process["args"] = args;
  std::vector<std::string> env = process.value("env", std::vector<std::string>{});
  auto set_env = [&](const std::string& entry) {
    std::string key = entry.substr(0, entry.find('='));
    std::erase_if(env, [&](const std::string& e) { return e.substr(0, e.find('=')) == key; });
    env.push_back(entry);
  };
  for (const auto& entry : strings("Env")) set_env(entry);
  std::string cwd = config.value("WorkingDir", "");
  process["cwd"] = cwd.empty() ? "/" : cwd;

  ResolvedUser user = with_context("image config User", [&] {
    return resolve_user(config.value("User", ""), read_in_root(rootfd, "/etc/passwd"),
                        read_in_root(rootfd, "/etc/group"));
  });
  process["user"] = {{"uid", user.uid}, {"gid", user.gid}};
  if (!user.additional_gids.empty()) process["user"]["additionalGids"] = user.additional_gids;
  bool has_home = std::any_of(env.begin(), env.end(),
                              [](const std::string& e) { return e.starts_with("HOME="); });
  if (!has_home) set_env("HOME=" + user.home.value_or("/"));
  process["env"] = env;

  Json annotations = spec.value("annotations", Json::object());
  if (config.contains("Labels") && config["Labels"].is_object())
    for (const auto& [key, value] : config["Labels"].items())
      if (value.is_string()) annotations[key] = value;
  if (config.contains("ExposedPorts") && config["ExposedPorts"].is_object()) {
    std::string ports;
    for (const auto& [port, ignored] : config["ExposedPorts"].items())
      ports += (ports.empty() ? "" : ",") + port;
    if (!ports.empty()) annotations["org.opencontainers.image.exposedPorts"] = ports;
  }
  if (config.contains("StopSignal") && config["StopSignal"].is_string())
    annotations["org.opencontainers.image.stopSignal"] = config["StopSignal"];
  if (!annotations.empty()) spec["annotations"] = annotations;
  // An image's root is meant to be written to (its writes go to the private upper layer).
  spec["root"] = {{"path", "rootfs"}, {"readonly", false}};
  return spec;
}

namespace {

// overlayfs at target, or when it cannot be mounted (old kernel, unsuitable filesystem, no
// permission), a private merged copy of the layers in dir bind-mounted there.
void mount_rootfs(const std::string& dir, const overlay::Layers& layers,
                  const std::string& target) {
  try {
    overlay::mount(target, layers);
    return;
  } catch (const Error& e) {
    log::warn(std::string("overlayfs cannot be used for ") + target + " (" + e.what() +
              "): copying the image's layers instead");
  }
  std::string copy = dir + "/copy";
  make_dirs(copy, 0755);
  overlay::copy_merged(layers.lower, copy);
  if (::mount(copy.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0)
    throw_errno("bind mount " + copy + " on " + target);
}

// Removes a directory this call created, when a later step failed.
void remove_created(bool created, const std::string& path) {
  if (created && ::rmdir(path.c_str()) != 0 && errno != ENOENT)
    log::warn("remove " + path + ": " + std::strerror(errno));
}

}  // namespace

void mount_image(const std::string& storage, const std::string& reference,
                 const std::string& target_path) {
  auto start = std::chrono::steady_clock::now();
  Store store(storage);
  FileLock lock = store.shared_lock();
  ImageRecord record = find_image(storage, reference);
  ensure_layers(store, record);  // re-creates layers a crash or manual cleanup lost
  bool created = !path_exists(target_path);
  make_dirs(target_path, 0755);
  std::string target = absolute(target_path);
  MountRecord mount{random_id(), record.digest, target, {}};
  std::string dir = store.mounts_dir() + "/" + mount.id;
  try {
    for (const auto& other : store.load_mounts())
      if (other.mountpoint == target) throw_error(target + ": an image is already mounted there");
    overlay::Layers layers{{}, dir + "/upper", dir + "/work", dir + "/l"};
    for (const auto& layer : std::ranges::reverse_view(record.layers)) {
      mount.diff_ids.push_back(layer.diff_id);
      layers.lower.push_back(store.layer_path(layer.diff_id) + "/fs");
    }
    make_dirs(layers.upper, 0755);
    make_dirs(layers.work, 0700);
    if (layers.lower.empty()) {  // an image without layers: an empty lower
      make_dirs(dir + "/empty", 0755);
      layers.lower.push_back(dir + "/empty");
    }
    store.save_mount(mount);  // before mounting: GC keeps the layers from here on
    mount_rootfs(dir, layers, target);
  } catch (...) {
    remove_tree(dir);
    remove_created(created, target);
    throw;
  }
  std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
  log::debug("mounted " + record.digest + " at " + target + " (" + mount.id + ") in " +
             std::to_string(took.count()) + " ms");
}

void unmount_image(const std::string& storage, const std::string& target_path) {
  if (!path_exists(storage)) throw Error(storage + ": no image store", ENOENT);
  Store store(storage);
  std::string target = absolute(target_path);
  for (const auto& mount : store.load_mounts()) {
    if (mount.mountpoint != target && mount.mountpoint != target + "/rootfs") continue;
    overlay::unmount(mount.mountpoint);
    remove_tree(store.mounts_dir() + "/" + mount.id);
    return;
  }
  throw Error(target + ": no image is mounted there", ENOENT);
}

void make_bundle(const std::string& storage, const std::string& reference,
                 const std::string& dir_path) {
  with_context("bundle " + dir_path, [&] {
    bool created = !path_exists(dir_path);
    make_dirs(dir_path, 0755);
    std::string dir = absolute(dir_path);
    std::string rootfs = dir + "/rootfs";
    try {
      Store store(storage);
      ImageRecord record = find_image(storage, reference);
      Json image_config = Json::parse(store.read_blob(record.config));
      mount_image(storage, reference, rootfs);
      try {
        UniqueFd rootfd = open_or_throw(rootfs, O_PATH | O_DIRECTORY);
        Json config = bundle_config(image_config, rootfd.get());
        // barge delete releases the rootfs of a container made from this bundle.
        config["annotations"][kStorageAnnotation] = absolute(store.root());
        write_file_atomic(dir + "/config.json", config.dump(2) + "\n");
      } catch (...) {
        unmount_image(storage, rootfs);
        remove_created(true, rootfs);
        throw;
      }
    } catch (...) {
      remove_created(created, dir);
      throw;
    }
  });
}

}  // namespace barge::image

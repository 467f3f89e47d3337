// The merged view of overlay layers, made by copying: the fallback for hosts where overlayfs
// cannot be mounted. Layers are applied bottom first the way overlayfs reads them: a 0/0
// character device deletes, an opaque directory hides what the layers below put there.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <ranges>
#include <string>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "common/file.hpp"
#include "overlay/overlay.hpp"
#include "runtime/rootfs.hpp"

namespace barge::overlay {
namespace {

constexpr std::string_view kOverlayXattrs = "trusted.overlay.";

std::string proc_path(int dir, const std::string& name) {
  return "/proc/self/fd/" + std::to_string(dir) + "/" + name;
}

std::vector<std::string> entries(int dirfd, const std::string& shown) {
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("open " + shown);
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    ::close(fd);
    throw_errno("opendir " + shown);
  }
  std::vector<std::string> names;
  while (dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(dir);
  return names;
}

bool is_opaque(int dirfd) {
  char value = 0;
  return ::fgetxattr(dirfd, "trusted.overlay.opaque", &value, 1) == 1 && value == 'y';
}

// Applies one layer onto dest. Hard links within the layer stay hard links.
class LayerCopy {
 public:
  explicit LayerCopy(int dest_root) : dest_root_(dest_root) {}
  void directory(int src, int dest, const std::string& rel);

 private:
  void entry(int src, int dest, const std::string& name, const std::string& rel);
  void remove(int dest, const std::string& name, const std::string& rel);
  void node(int src, int dest, const std::string& name, const struct stat& st,
            const std::string& rel);

  int dest_root_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

void LayerCopy::remove(int dest, const std::string& name, const std::string& rel) {
  struct stat st {};
  if (::fstatat(dest, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return;
    throw_errno("stat " + rel);
  }
  if (S_ISDIR(st.st_mode)) {
    remove_tree(proc_path(dest, name));
  } else if (::unlinkat(dest, name.c_str(), 0) != 0) {
    throw_errno("remove " + rel);
  }
}

void LayerCopy::node(int src, int dest, const std::string& name, const struct stat& st,
                     const std::string& rel) {
  remove(dest, name, rel);
  auto key = std::make_pair(st.st_dev, st.st_ino);
  if (st.st_nlink > 1) {
    if (auto it = links_.find(key); it != links_.end()) {
      auto [parent, leaf] = std::make_pair(it->second.substr(0, it->second.rfind('/') + 1),
                                           it->second.substr(it->second.rfind('/') + 1));
      UniqueFd first_parent =
          rootfs::open_in_root(dest_root_, parent.empty() ? "." : parent, O_PATH | O_DIRECTORY);
      if (::linkat(first_parent.get(), leaf.c_str(), dest, name.c_str(), 0) != 0)
        throw_errno("hard link " + rel);
      return;
    }
    links_[key] = rel;
  }
  if (S_ISREG(st.st_mode)) {
    UniqueFd in(::openat(src, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!in) throw_errno("open " + rel);
    UniqueFd out(
        ::openat(dest, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out) throw_errno("create " + rel);
    copy_file_data(in.get(), out.get(), rel);
  } else if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    ssize_t n = ::readlinkat(src, name.c_str(), target.data(), target.size());
    if (n < 0) throw_errno("readlink " + rel);
    target.resize(static_cast<size_t>(n));
    if (::symlinkat(target.c_str(), dest, name.c_str()) != 0) throw_errno("symlink " + rel);
  } else if (::mknodat(dest, name.c_str(), (st.st_mode & S_IFMT) | 0600, st.st_rdev) != 0) {
    throw_errno("mknod " + rel);
  }
  // Owner first: a chown after setxattr would drop security.capability.
  copy_attributes_at(dest, name.c_str(), st, rel);
  copy_xattrs_at(src, name, dest, name, kOverlayXattrs);
}

void LayerCopy::entry(int src, int dest, const std::string& name, const std::string& rel) {
  struct stat st {};
  if (::fstatat(src, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) throw_errno("stat " + rel);
  if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {  // a whiteout
    remove(dest, name, rel);
    return;
  }
  if (!S_ISDIR(st.st_mode)) {
    node(src, dest, name, st, rel);
    return;
  }
  UniqueFd src_dir(::openat(src, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!src_dir) throw_errno("open " + rel);
  struct stat existing {};
  bool keep = ::fstatat(dest, name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0 &&
              S_ISDIR(existing.st_mode) && !is_opaque(src_dir.get());
  if (!keep) {
    remove(dest, name, rel);
    if (::mkdirat(dest, name.c_str(), 0700) != 0) throw_errno("mkdir " + rel);
  }
  UniqueFd dest_dir(::openat(dest, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dest_dir) throw_errno("open " + rel);
  directory(src_dir.get(), dest_dir.get(), rel);
  copy_attributes_at(dest, name.c_str(), st, rel);  // after filling it, which changed its times
  copy_xattrs_at(src, name, dest, name, kOverlayXattrs);
}

void LayerCopy::directory(int src, int dest, const std::string& rel) {
  for (const auto& name : entries(src, rel.empty() ? "/" : rel))
    entry(src, dest, name, rel + "/" + name);
}

}  // namespace

void copy_merged(const std::vector<std::string>& lower, const std::string& dest) {
  UniqueFd dest_root = open_or_throw(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  for (const auto& layer : std::ranges::reverse_view(lower)) {
    with_context("copy layer " + layer, [&] {
      UniqueFd src = open_or_throw(layer, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      LayerCopy(dest_root.get()).directory(src.get(), dest_root.get(), "");
    });
  }
}

}  // namespace barge::overlay

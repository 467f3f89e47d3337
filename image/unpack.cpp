#include "image/unpack.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "image/compression.hpp"
#include "image/digest.hpp"
#include "runtime/rootfs.hpp"

namespace barge::image {
namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

struct ArchiveFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveFree>;

ArchivePtr new_archive() {
  ArchivePtr a(archive_read_new());
  if (!a) throw_error("libarchive: out of memory");
  return a;
}

[[noreturn]] void throw_archive(archive* a, std::string_view what) {
  const char* message = archive_error_string(a);
  throw Error(std::string(what) + ": " + (message ? message : "unknown libarchive error"),
              archive_errno(a));
}

// The decompressed stream: the outer archive (any filter, "raw" format) yields the bytes of the
// tar, which are hashed on their way to the inner (tar) archive.
struct Decompressed {
  archive* outer = nullptr;
  Sha256 hasher;
  std::string error;

  // Next block of the tar, or 0 at the end, or -1 (error set).
  la_ssize_t next(const void** buffer) {
    size_t size = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(outer, buffer, &size, &offset);
    if (r == ARCHIVE_EOF) return 0;
    if (r < ARCHIVE_WARN) {
      const char* message = archive_error_string(outer);
      error = message ? message : "decompression failed";
      return -1;
    }
    hasher.update(*buffer, size);
    return static_cast<la_ssize_t>(size);
  }
  void drain() {
    const void* buffer = nullptr;
    la_ssize_t n = 0;
    while ((n = next(&buffer)) > 0) {
    }
    if (n < 0) throw_error("decompress layer: " + error);
  }
};

la_ssize_t read_decompressed(archive* inner, void* client, const void** buffer) {
  auto* stream = static_cast<Decompressed*>(client);
  la_ssize_t n = stream->next(buffer);
  if (n < 0) archive_set_error(inner, EIO, "%s", stream->error.c_str());
  return n;
}

std::string display_name(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& part : parts) out += "/" + part;
  return out.empty() ? "/" : out;
}

// "./a//b/" -> {a, b}; absolute names are taken relative to the layer; ".." is refused.
std::vector<std::string> clean_name(std::string_view name) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= name.size()) {
    size_t end = name.find('/', pos);
    if (end == std::string_view::npos) end = name.size();
    std::string_view part = name.substr(pos, end - pos);
    if (part == "..")
      throw_error("entry \"" + std::string(name) + "\": \"..\" would escape the layer");
    if (!part.empty() && part != ".") parts.emplace_back(part);
    pos = end + 1;
  }
  return parts;
}

std::string proc_fd(int fd) {
  return "/proc/self/fd/" + std::to_string(fd);
}

int openat2_no_symlinks(int root, const std::string& path, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, root, path.c_str(), &how, sizeof how));
}

struct DirTimes {
  std::string path;
  timespec times[2];
};

class Extractor {
 public:
  Extractor(int root, const UnpackOptions& options) : root_(root), options_(options) {}

  void extract(archive* a, archive_entry* entry);
  void finish();

 private:
  UniqueFd parent_of(const std::vector<std::string>& parts, bool create);
  void remove_existing(int parent, const std::string& name, bool keep_dir,
                       const std::string& shown);
  void whiteout(int parent, std::string_view target, const std::string& shown);
  void regular(archive* a, archive_entry* entry, int parent, const std::string& name,
               const std::string& shown);
  void metadata(archive_entry* entry, int parent, const std::string& name, int fd,
                const std::string& shown);
  // Sets the entry's xattrs on fd when writable, else on path (followed only when follow).
  void xattrs(archive_entry* entry, const std::string& path, int fd, bool follow,
              const std::string& shown);

  int root_;
  const UnpackOptions& options_;
  std::vector<DirTimes> dir_times_;
};

UniqueFd Extractor::parent_of(const std::vector<std::string>& parts, bool create) {
  std::string path;
  for (size_t i = 0; i + 1 < parts.size(); ++i) path += (i ? "/" : "") + parts[i];
  if (path.empty()) path = ".";
  // A symlink in a parent resolves inside the layer (as if the layer were "/"), never outside.
  if (create) return rootfs::mkdir_all_in_root(root_, path);
  return rootfs::open_in_root(root_, path, O_PATH | O_DIRECTORY);
}

void Extractor::remove_existing(int parent, const std::string& name, bool keep_dir,
                                const std::string& shown) {
  struct stat st {};
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return;
    throw_errno("stat " + shown);
  }
  if (S_ISDIR(st.st_mode)) {
    if (keep_dir) return;
    remove_tree(proc_fd(parent) + "/" + name);
  } else if (::unlinkat(parent, name.c_str(), 0) != 0) {
    throw_errno("remove " + shown);
  }
}

void Extractor::whiteout(int parent, std::string_view target, const std::string& shown) {
  if (target.empty() || target == "." || target == ".." || target.find('/') != target.npos)
    throw_error("entry " + shown + ": whiteout of \"" + std::string(target) + "\" is invalid");
  std::string name(target);
  remove_existing(parent, name, false, shown);
  if (::mknodat(parent, name.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0)
    throw_errno("whiteout " + shown);
}

void Extractor::xattrs(archive_entry* entry, const std::string& path, int fd, bool follow,
                       const std::string& shown) {
  archive_entry_xattr_reset(entry);
  const char* key = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  while (archive_entry_xattr_next(entry, &key, &value, &size) == ARCHIVE_OK) {
    std::string_view name(key);
    // Only the whiteout conversion may set overlay's own attributes: a layer that sets
    // redirect/metacopy/origin could make overlayfs look at files outside the layer.
    if (name.starts_with("trusted.overlay.")) {
      log::warn("layer entry " + shown + ": ignoring xattr " + std::string(name));
      continue;
    }
    int r = fd >= 0  ? ::fsetxattr(fd, key, value, size, 0)
            : follow ? ::setxattr(path.c_str(), key, value, size, 0)
                     : ::lsetxattr(path.c_str(), key, value, size, 0);
    if (r != 0) {
      if (errno == ENOTSUP || errno == EPERM) {
        log::debug("layer entry " + shown + ": xattr " + std::string(name) + " not set");
        continue;
      }
      throw_errno("setxattr " + std::string(name) + " on " + shown);
    }
  }
}

void Extractor::metadata(archive_entry* entry, int parent, const std::string& name, int fd,
                         const std::string& shown) {
  uid_t uid = static_cast<uid_t>(archive_entry_uid(entry));
  gid_t gid = static_cast<gid_t>(archive_entry_gid(entry));
  mode_t mode = archive_entry_perm(entry) & 07777;
  mode_t type = archive_entry_filetype(entry);
  timespec times[2];
  times[1] = {archive_entry_mtime(entry), archive_entry_mtime_nsec(entry)};
  times[0] = archive_entry_atime_is_set(entry)
                 ? timespec{archive_entry_atime(entry), archive_entry_atime_nsec(entry)}
                 : times[1];
  // Symlinks: no mode; owner, xattrs and times on the link itself by name under the parent fd.
  if (type == AE_IFLNK) {
    if (::fchownat(parent, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
      throw_errno("chown " + shown);
    xattrs(entry, proc_fd(parent) + "/" + name, -1, false, shown);
    if (::utimensat(parent, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
      throw_errno("utimes " + shown);
    return;
  }
  UniqueFd owned;
  if (fd < 0) {
    owned = UniqueFd(::openat(parent, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!owned) throw_errno("open " + shown);
    fd = owned.get();
  }
  // chown before chmod: chown clears setuid/setgid.
  if (::fchownat(fd, "", uid, gid, AT_EMPTY_PATH) != 0) throw_errno("chown " + shown);
  if (::fchmodat(AT_FDCWD, proc_fd(fd).c_str(), mode, 0) != 0) throw_errno("chmod " + shown);
  // The magic link of an O_PATH fd leads to the inode itself.
  xattrs(entry, proc_fd(fd), owned ? -1 : fd, true, shown);
  if (type == AE_IFDIR) {
    dir_times_.push_back({shown, {times[0], times[1]}});
  } else if (::utimensat(AT_FDCWD, proc_fd(fd).c_str(), times, 0) != 0) {
    throw_errno("utimes " + shown);
  }
}

void Extractor::regular(archive* a, archive_entry* entry, int parent, const std::string& name,
                        const std::string& shown) {
  la_int64_t declared = archive_entry_size(entry);
  if (declared < 0 || static_cast<uint64_t>(declared) > options_.max_file_size)
    throw_error("entry " + shown + ": size " + std::to_string(declared) + " exceeds the limit of " +
                std::to_string(options_.max_file_size) + " bytes");
  UniqueFd fd(
      ::openat(parent, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) throw_errno("create " + shown);
  const void* buffer = nullptr;
  size_t size = 0;
  la_int64_t offset = 0;
  for (;;) {
    int r = archive_read_data_block(a, &buffer, &size, &offset);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) throw_archive(a, "read " + shown);
    if (offset < 0 || offset + static_cast<la_int64_t>(size) > declared)
      throw_error("entry " + shown + ": data beyond its declared size");
    // Writing at the block's offset keeps sparse files' holes.
    const char* data = static_cast<const char*>(buffer);
    while (size > 0) {
      ssize_t n = ::pwrite(fd.get(), data, size, offset);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_errno("write " + shown);
      }
      data += n;
      size -= static_cast<size_t>(n);
      offset += n;
    }
  }
  if (::ftruncate(fd.get(), declared) != 0) throw_errno("truncate " + shown);
  metadata(entry, parent, name, fd.get(), shown);
}

void Extractor::extract(archive* a, archive_entry* entry) {
  const char* raw_name = archive_entry_pathname(entry);
  if (raw_name == nullptr) throw_error("layer entry without a name");
  auto parts = clean_name(raw_name);
  const std::string shown = display_name(parts);
  mode_t type = archive_entry_filetype(entry);
  const char* hardlink = archive_entry_hardlink(entry);

  if (parts.empty()) {  // "./": the layer root itself
    if (type == AE_IFDIR && hardlink == nullptr) metadata(entry, root_, ".", -1, shown);
    return;
  }
  const std::string& name = parts.back();
  if (name.starts_with(kWhiteoutPrefix)) {
    UniqueFd parent = parent_of(parts, true);
    if (name == kOpaqueMarker) {
      if (::setxattr(proc_fd(parent.get()).c_str(), "trusted.overlay.opaque", "y", 1, 0) != 0)
        throw_errno("set opaque on " + shown);
    } else if (name.starts_with(std::string(kWhiteoutPrefix) + std::string(kWhiteoutPrefix))) {
      log::debug("layer entry " + shown + ": ignoring aufs metadata");
    } else {
      whiteout(parent.get(), std::string_view(name).substr(kWhiteoutPrefix.size()), shown);
    }
    return;
  }

  UniqueFd parent = parent_of(parts, true);
  if (hardlink != nullptr) {
    auto target = clean_name(hardlink);
    if (target.empty()) throw_error("entry " + shown + ": hard link to the layer root");
    UniqueFd target_parent = with_context("entry " + shown + ": hard link target",
                                          [&] { return parent_of(target, false); });
    remove_existing(parent.get(), name, false, shown);
    // Flags 0: a link to a symlink links the symlink itself, never what it points to.
    if (::linkat(target_parent.get(), target.back().c_str(), parent.get(), name.c_str(), 0) != 0)
      throw_errno("hard link " + shown + " to " + display_name(target));
    return;
  }

  remove_existing(parent.get(), name, type == AE_IFDIR, shown);
  switch (type) {
    case AE_IFREG:
      regular(a, entry, parent.get(), name, shown);
      return;
    case AE_IFDIR:
      if (::mkdirat(parent.get(), name.c_str(), 0700) != 0 && errno != EEXIST)
        throw_errno("mkdir " + shown);
      break;
    case AE_IFLNK: {
      const char* target = archive_entry_symlink(entry);
      if (::symlinkat(target ? target : "", parent.get(), name.c_str()) != 0)
        throw_errno("symlink " + shown);
      break;
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO: {
      dev_t dev = type == AE_IFIFO ? 0 : archive_entry_rdev(entry);
      if (::mknodat(parent.get(), name.c_str(), type | 0600, dev) != 0)
        throw_errno("mknod " + shown);
      break;
    }
    default:
      throw_error("entry " + shown + ": unsupported file type " + std::to_string(type));
  }
  metadata(entry, parent.get(), name, -1, shown);
}

void Extractor::finish() {
  // Directory times last: creating their children changed them.
  for (const auto& dir : dir_times_) {
    std::string path = dir.path == "/" ? "." : dir.path.substr(1);
    UniqueFd fd(openat2_no_symlinks(root_, path, O_PATH | O_DIRECTORY));
    if (!fd) continue;  // replaced or whited out later in the layer
    if (::utimensat(AT_FDCWD, proc_fd(fd.get()).c_str(), dir.times, 0) != 0)
      throw_errno("utimes " + dir.path);
  }
}

}  // namespace

std::string unpack_layer(int blob_fd, const std::string& dir, const UnpackOptions& options) {
  UniqueFd root = open_or_throw(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  ArchivePtr outer = new_archive();
  support_compressions(outer.get());
  archive_read_support_format_raw(outer.get());
  if (archive_read_open_fd(outer.get(), blob_fd, 1 << 20) != ARCHIVE_OK)
    throw_archive(outer.get(), "open layer");
  archive_entry* entry = nullptr;
  if (archive_read_next_header(outer.get(), &entry) != ARCHIVE_OK)
    throw_archive(outer.get(), "open layer");

  Decompressed stream;
  stream.outer = outer.get();
  ArchivePtr inner = new_archive();
  archive_read_support_format_tar(inner.get());
  if (archive_read_open(inner.get(), &stream, nullptr, read_decompressed, nullptr) != ARCHIVE_OK)
    throw_archive(inner.get(), "read layer tar");

  Extractor extractor(root.get(), options);
  for (;;) {
    int r = archive_read_next_header(inner.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) throw_archive(inner.get(), "read layer tar");
    const char* name = archive_entry_pathname(entry);
    with_context(std::string("layer entry ") + (name ? name : "?"),
                 [&] { extractor.extract(inner.get(), entry); });
  }
  extractor.finish();
  stream.drain();  // the tar's trailing blocks are part of the diff_id
  return stream.hasher.digest();
}

}  // namespace barge::image

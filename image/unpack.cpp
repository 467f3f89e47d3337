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
#include <cstring>
#include <memory>
#include <set>
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
constexpr const char* kOpaqueXattr = "trusted.overlay.opaque";
constexpr size_t kReadSize = 1 << 20;

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

// The blob as read from its fd: counted, hashed and copied on its way to the decompressor.
struct RawStream {
  int fd = -1;
  const UnpackOptions* options = nullptr;
  Sha256 hasher;
  int64_t size = 0;
  std::string buffer = std::string(kReadSize, '\0');
  std::string error;

  // Next block of the blob, 0 at its end, -1 with error set.
  la_ssize_t next(const void** out) {
    ssize_t n = 0;
    do {
      n = ::read(fd, buffer.data(), buffer.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      error = std::string("read blob: ") + std::strerror(errno);
      return -1;
    }
    size += n;
    if (options->blob_size && size > *options->blob_size) {
      error = "larger than the " + std::to_string(*options->blob_size) +
              " bytes its descriptor declares";
      return -1;
    }
    hasher.update(buffer.data(), static_cast<size_t>(n));
    if (options->copy_fd >= 0 && n > 0) {
      try {
        write_all(options->copy_fd, std::string_view(buffer.data(), static_cast<size_t>(n)),
                  "blob copy");
      } catch (const Error& e) {
        error = e.what();
        return -1;
      }
    }
    *out = buffer.data();
    return n;
  }
  // Whatever the decompressor did not need (padding, trailing garbage) is part of the digest.
  void drain() {
    const void* ignored = nullptr;
    la_ssize_t n = 0;
    while ((n = next(&ignored)) > 0) {
    }
    if (n < 0) throw_error(error);
  }
};

la_ssize_t read_raw(archive* a, void* client, const void** buffer) {
  auto* stream = static_cast<RawStream*>(client);
  la_ssize_t n = stream->next(buffer);
  if (n < 0) archive_set_error(a, EIO, "%s", stream->error.c_str());
  return n;
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

std::string join(const std::vector<std::string>& parts, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) out += (i ? "/" : "") + parts[i];
  return out;
}

std::string display_name(const std::vector<std::string>& parts) {
  return "/" + join(parts, parts.size());
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
      throw_error("entry \"" + std::string(name) + R"(": ".." would escape the layer)");
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

// Extracts entries one by one. The layer directory is private to this extraction (under the
// store's 0700 tmp/), so once an entry is created here, later calls by name under its parent fd
// reach that same entry; only the tar's own names are hostile.
class Extractor {
 public:
  Extractor(int root, const UnpackOptions& options) : root_(root), options_(options) {}

  void extract(archive* a, archive_entry* entry);
  void finish();
  std::vector<std::string> implied_dirs() const { return {implied_.begin(), implied_.end()}; }

 private:
  int parent_of(const std::vector<std::string>& parts);
  UniqueFd existing_parent(const std::vector<std::string>& parts);
  void note_implied(const std::vector<std::string>& parts);
  bool remove_existing(int parent, const std::string& name, bool keep_dir,
                       const std::string& shown);
  void whiteout(int parent, std::string_view target, const std::string& shown);
  void regular(archive* a, archive_entry* entry, int parent, const std::string& name,
               const std::string& shown);
  void directory(archive_entry* entry, int parent, const std::string& name,
                 const std::string& shown);
  void special(archive_entry* entry, int parent, const std::string& name, const std::string& shown);
  void owner_and_mode(archive_entry* entry, int fd, int parent, const std::string& name,
                      const std::string& shown);
  // Sets the entry's xattrs on fd when >= 0, else on parent/name (never following a symlink).
  void xattrs(archive_entry* entry, int fd, int parent, const std::string& name,
              const std::string& shown);

  int root_;
  const UnpackOptions& options_;
  std::vector<DirTimes> dir_times_;
  // The parent directory of the previous entry: tars list a directory's entries together.
  std::string cached_parent_;
  UniqueFd cached_fd_;
  std::set<std::string> listed_dirs_;
  std::set<std::string> implied_;
};

timespec mtime_of(archive_entry* entry) {
  return {archive_entry_mtime(entry), archive_entry_mtime_nsec(entry)};
}

void entry_times(archive_entry* entry, timespec times[2]) {
  times[1] = mtime_of(entry);
  times[0] = archive_entry_atime_is_set(entry)
                 ? timespec{archive_entry_atime(entry), archive_entry_atime_nsec(entry)}
                 : times[1];
}

int Extractor::parent_of(const std::vector<std::string>& parts) {
  std::string path = join(parts, parts.size() - 1);
  if (path.empty()) path = ".";
  if (cached_fd_ && path == cached_parent_) return cached_fd_.get();
  note_implied(parts);
  // A symlink in a parent resolves inside the layer (as if the layer were "/"), never outside.
  cached_fd_ = rootfs::mkdir_all_in_root(root_, path);
  cached_parent_ = path;
  return cached_fd_.get();
}

UniqueFd Extractor::existing_parent(const std::vector<std::string>& parts) {
  std::string path = join(parts, parts.size() - 1);
  return rootfs::open_in_root(root_, path.empty() ? "." : path, O_PATH | O_DIRECTORY);
}

// Parents no directory entry listed (by name; the extraction itself tells which exist).
void Extractor::note_implied(const std::vector<std::string>& parts) {
  for (size_t n = 1; n < parts.size(); ++n) {
    std::string prefix = join(parts, n);
    if (!listed_dirs_.contains(prefix)) implied_.insert(prefix);
  }
}

// Returns true when something was removed.
bool Extractor::remove_existing(int parent, const std::string& name, bool keep_dir,
                                const std::string& shown) {
  struct stat st {};
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return false;
    throw_errno("stat " + shown);
  }
  if (S_ISDIR(st.st_mode) && keep_dir) return false;
  // What the cached parent was resolved through may be what goes: look it up again next time
  // (its fd stays open, the caller may be using it).
  cached_parent_.clear();
  if (S_ISDIR(st.st_mode)) {
    remove_tree(proc_fd(parent) + "/" + name);
  } else if (::unlinkat(parent, name.c_str(), 0) != 0) {
    throw_errno("remove " + shown);
  }
  return true;
}

void Extractor::whiteout(int parent, std::string_view target, const std::string& shown) {
  if (target.empty() || target == "." || target == ".." || target.find('/') != target.npos)
    throw_error("entry " + shown + ": whiteout of \"" + std::string(target) + "\" is invalid");
  std::string name(target);
  remove_existing(parent, name, false, shown);
  if (::mknodat(parent, name.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0)
    throw_errno("whiteout " + shown);
}

void Extractor::xattrs(archive_entry* entry, int fd, int parent, const std::string& name,
                       const std::string& shown) {
  if (archive_entry_xattr_reset(entry) == 0) return;
  const std::string path = fd >= 0 ? std::string() : proc_fd(parent) + "/" + name;
  const char* key = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  while (archive_entry_xattr_next(entry, &key, &value, &size) == ARCHIVE_OK) {
    std::string_view attr(key);
    // Only the whiteout conversion may set overlay's own attributes: a layer that sets
    // redirect/metacopy/origin could make overlayfs look at files outside the layer.
    if (attr.starts_with("trusted.overlay.")) {
      log::warn("layer entry " + shown + ": ignoring xattr " + std::string(attr));
      continue;
    }
    int r = fd >= 0 ? ::fsetxattr(fd, key, value, size, 0)
                    : ::lsetxattr(path.c_str(), key, value, size, 0);
    if (r != 0) {
      if (errno == ENOTSUP || errno == EPERM) {
        log::debug("layer entry " + shown + ": xattr " + std::string(attr) + " not set");
        continue;
      }
      throw_errno("setxattr " + std::string(attr) + " on " + shown);
    }
  }
}

// chown before chmod: chown clears setuid/setgid. By fd when there is one, else by name under
// the parent (the entry was just created as a non-symlink, see Extractor).
void Extractor::owner_and_mode(archive_entry* entry, int fd, int parent, const std::string& name,
                               const std::string& shown) {
  auto uid = static_cast<uid_t>(archive_entry_uid(entry));
  auto gid = static_cast<gid_t>(archive_entry_gid(entry));
  mode_t mode = archive_entry_perm(entry) & 07777;
  if (fd >= 0) {
    if (::fchown(fd, uid, gid) != 0) throw_errno("chown " + shown);
    if (::fchmod(fd, mode) != 0) throw_errno("chmod " + shown);
    return;
  }
  if (::fchownat(parent, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
    throw_errno("chown " + shown);
  if (::fchmodat(parent, name.c_str(), mode, 0) != 0) throw_errno("chmod " + shown);
}

void Extractor::regular(archive* a, archive_entry* entry, int parent, const std::string& name,
                        const std::string& shown) {
  la_int64_t declared = archive_entry_size(entry);
  if (declared < 0 || static_cast<uint64_t>(declared) > options_.max_file_size)
    throw_error("entry " + shown + ": size " + std::to_string(declared) + " exceeds the limit of " +
                std::to_string(options_.max_file_size) + " bytes");
  constexpr int kCreate = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  UniqueFd fd(::openat(parent, name.c_str(), kCreate, 0600));
  if (!fd && errno == EEXIST) {
    remove_existing(parent, name, false, shown);
    fd.reset(::openat(parent, name.c_str(), kCreate, 0600));
  }
  if (!fd) throw_errno("create " + shown);
  const void* buffer = nullptr;
  size_t size = 0;
  la_int64_t offset = 0;
  la_int64_t end = 0;
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
    end = offset;
  }
  if (end != declared && ::ftruncate(fd.get(), declared) != 0) throw_errno("truncate " + shown);
  owner_and_mode(entry, fd.get(), parent, name, shown);
  xattrs(entry, fd.get(), -1, {}, shown);
  timespec times[2];
  entry_times(entry, times);
  if (::futimens(fd.get(), times) != 0) throw_errno("utimes " + shown);
}

void Extractor::directory(archive_entry* entry, int parent, const std::string& name,
                          const std::string& shown) {
  if (::mkdirat(parent, name.c_str(), 0700) != 0) {
    if (errno != EEXIST) throw_errno("mkdir " + shown);
    if (remove_existing(parent, name, true, shown) && ::mkdirat(parent, name.c_str(), 0700) != 0)
      throw_errno("mkdir " + shown);
  }
  owner_and_mode(entry, -1, parent, name, shown);
  xattrs(entry, -1, parent, name, shown);
  // Times last, in finish(): creating the directory's children changes them.
  DirTimes times{shown, {}};
  entry_times(entry, times.times);
  dir_times_.push_back(std::move(times));
}

void Extractor::special(archive_entry* entry, int parent, const std::string& name,
                        const std::string& shown) {
  mode_t type = archive_entry_filetype(entry);
  remove_existing(parent, name, false, shown);
  if (type == AE_IFLNK) {
    const char* target = archive_entry_symlink(entry);
    if (::symlinkat(target ? target : "", parent, name.c_str()) != 0)
      throw_errno("symlink " + shown);
    // No mode for symlinks; owner, xattrs and times on the link itself.
    if (::fchownat(parent, name.c_str(), static_cast<uid_t>(archive_entry_uid(entry)),
                   static_cast<gid_t>(archive_entry_gid(entry)), AT_SYMLINK_NOFOLLOW) != 0)
      throw_errno("chown " + shown);
  } else {
    dev_t dev = type == AE_IFIFO ? 0 : archive_entry_rdev(entry);
    if (::mknodat(parent, name.c_str(), type | 0600, dev) != 0) throw_errno("mknod " + shown);
    owner_and_mode(entry, -1, parent, name, shown);
  }
  xattrs(entry, -1, parent, name, shown);
  timespec times[2];
  entry_times(entry, times);
  if (::utimensat(parent, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    throw_errno("utimes " + shown);
}

void Extractor::extract(archive* a, archive_entry* entry) {
  const char* raw_name = archive_entry_pathname(entry);
  if (raw_name == nullptr) throw_error("layer entry without a name");
  auto parts = clean_name(raw_name);
  const std::string shown = display_name(parts);
  mode_t type = archive_entry_filetype(entry);
  const char* hardlink = archive_entry_hardlink(entry);

  if (parts.empty()) {  // "./": the layer root itself
    if (type == AE_IFDIR && hardlink == nullptr) {
      UniqueFd self = open_at_or_throw(root_, ".", O_RDONLY | O_DIRECTORY);
      owner_and_mode(entry, self.get(), -1, ".", shown);
      xattrs(entry, self.get(), -1, {}, shown);
      DirTimes times{shown, {}};
      entry_times(entry, times.times);
      dir_times_.push_back(std::move(times));
    }
    return;
  }
  const std::string& name = parts.back();
  if (name.starts_with(kWhiteoutPrefix)) {
    int parent = parent_of(parts);
    if (name == kOpaqueMarker) {
      if (::setxattr(proc_fd(parent).c_str(), kOpaqueXattr, "y", 1, 0) != 0)
        throw_errno("set opaque on " + shown);
    } else if (name.starts_with(std::string(kWhiteoutPrefix) + std::string(kWhiteoutPrefix))) {
      log::debug("layer entry " + shown + ": ignoring aufs metadata");
    } else {
      whiteout(parent, std::string_view(name).substr(kWhiteoutPrefix.size()), shown);
    }
    return;
  }

  int parent = parent_of(parts);
  if (hardlink != nullptr) {
    auto target = clean_name(hardlink);
    if (target.empty()) throw_error("entry " + shown + ": hard link to the layer root");
    UniqueFd target_parent = with_context("entry " + shown + ": hard link target",
                                          [&] { return existing_parent(target); });
    remove_existing(parent, name, false, shown);
    // Flags 0: a link to a symlink links the symlink itself, never what it points to.
    if (::linkat(target_parent.get(), target.back().c_str(), parent, name.c_str(), 0) != 0)
      throw_errno("hard link " + shown + " to " + display_name(target));
    return;
  }

  switch (type) {
    case AE_IFREG:
      regular(a, entry, parent, name, shown);
      return;
    case AE_IFDIR:
      listed_dirs_.insert(join(parts, parts.size()));
      implied_.erase(join(parts, parts.size()));
      directory(entry, parent, name, shown);
      return;
    case AE_IFLNK:
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO:
      special(entry, parent, name, shown);
      return;
    default:
      throw_error("entry " + shown + ": unsupported file type " + std::to_string(type));
  }
}

void Extractor::finish() {
  cached_fd_.reset();
  // Directory times last: creating their children changed them.
  for (const auto& dir : dir_times_) {
    std::string path = dir.path == "/" ? "." : dir.path.substr(1);
    UniqueFd fd(openat2_no_symlinks(root_, path, O_PATH | O_DIRECTORY));
    if (!fd) continue;  // replaced or whited out later in the layer
    if (::utimensat(AT_FDCWD, proc_fd(fd.get()).c_str(), dir.times, 0) != 0)
      throw_errno("utimes " + dir.path);
  }
}

// The directory a container sees at path through lowers (nearest first), as overlayfs merges
// them: a whiteout or non-directory on the way hides everything below it, an opaque directory
// hides the layers below it. Returns an O_PATH fd, or nothing.
UniqueFd find_lower_dir(const std::vector<std::string>& lowers, const std::string& path) {
  auto parts = clean_name(path);
  for (const auto& lower : lowers) {
    UniqueFd dir(::open(lower.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir) continue;
    bool opaque = false;
    size_t depth = 0;
    for (; depth < parts.size(); ++depth) {
      UniqueFd next(::openat(dir.get(), parts[depth].c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
      if (!next) break;
      struct stat st {};
      if (::fstat(next.get(), &st) != 0 || !S_ISDIR(st.st_mode)) return {};
      char value = 0;
      if (::getxattr(proc_fd(next.get()).c_str(), kOpaqueXattr, &value, 1) == 1 && value == 'y')
        opaque = true;
      dir = std::move(next);
    }
    if (depth == parts.size()) return dir;
    if (opaque) return {};
  }
  return {};
}

}  // namespace

UnpackResult unpack_layer(int blob_fd, const std::string& dir, const UnpackOptions& options) {
  UniqueFd root = open_or_throw(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  RawStream raw;
  raw.fd = blob_fd;
  raw.options = &options;
  ArchivePtr outer = new_archive();
  support_compressions(outer.get());
  archive_read_support_format_raw(outer.get());
  if (archive_read_open(outer.get(), &raw, nullptr, read_raw, nullptr) != ARCHIVE_OK)
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
  raw.drain();
  return {raw.hasher.digest(), raw.size, stream.hasher.digest(), extractor.implied_dirs()};
}

void copy_implied_dirs(const std::string& dir, const std::vector<std::string>& implied,
                       const std::vector<std::string>& lowers) {
  if (implied.empty()) return;
  UniqueFd root = open_or_throw(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW);
  for (const auto& path : implied) {
    UniqueFd ours(openat2_no_symlinks(root.get(), path, O_PATH | O_DIRECTORY));
    if (!ours) continue;  // replaced later in the layer
    UniqueFd lower = find_lower_dir(lowers, path);
    if (!lower) continue;
    struct stat st {};
    if (::fstat(lower.get(), &st) != 0) throw_errno("stat lower /" + path);
    std::string shown = "/" + path;
    if (::fchownat(ours.get(), "", st.st_uid, st.st_gid, AT_EMPTY_PATH) != 0)
      throw_errno("chown " + shown);
    if (::fchmodat(AT_FDCWD, proc_fd(ours.get()).c_str(), st.st_mode & 07777, 0) != 0)
      throw_errno("chmod " + shown);
    // The lower's opaqueness is its own: this layer only adds to the directory.
    copy_xattrs_at(lower.get(), ".", ours.get(), ".", "trusted.overlay.");
    timespec times[2] = {st.st_atim, st.st_mtim};
    if (::utimensat(AT_FDCWD, proc_fd(ours.get()).c_str(), times, 0) != 0)
      throw_errno("utimes " + shown);
  }
}

}  // namespace barge::image

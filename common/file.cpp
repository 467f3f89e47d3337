#include "common/file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>  // renameat2
#include <string>

#include "common/error.hpp"

namespace barge {
namespace {

std::string read_all(int fd, const std::string& name) {
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("read " + name);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void remove_tree_at(int parent, const std::string& name, const std::string& display) {
  if (::unlinkat(parent, name.c_str(), 0) == 0 || errno == ENOENT) return;
  if (errno != EISDIR && errno != EPERM) throw_errno("remove " + display);
  int dfd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) {
    if (errno == ENOENT) return;
    throw_errno("open " + display);
  }
  DIR* dir = ::fdopendir(dfd);
  if (dir == nullptr) {
    ::close(dfd);
    throw_errno("opendir " + display);
  }
  while (dirent* entry = ::readdir(dir)) {
    std::string child = entry->d_name;
    if (child == "." || child == "..") continue;
    std::string child_display = display;
    child_display.append("/").append(child);
    remove_tree_at(::dirfd(dir), child, child_display);
  }
  ::closedir(dir);
  if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    throw_errno("remove " + display);
}

// Owner before mode (chown clears set-id bits), times last.
void copy_attributes(int fd, const struct stat& st, const std::string& display) {
  if (::fchown(fd, st.st_uid, st.st_gid) != 0) throw_errno("chown " + display);
  if (::fchmod(fd, st.st_mode & 07777) != 0) throw_errno("chmod " + display);
  const timespec times[2] = {st.st_atim, st.st_mtim};
  if (::futimens(fd, times) != 0) throw_errno("set times of " + display);
}

void copy_entry(int from_dir, int to_dir, const char* name, const std::string& display);

void copy_contents(int from_dir, int to_dir, const std::string& display) {
  // fdopendir takes over its fd, so it gets a duplicate.
  int dup = ::openat(from_dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dup < 0) throw_errno("open " + display);
  DIR* dir = ::fdopendir(dup);
  if (dir == nullptr) {
    ::close(dup);
    throw_errno("opendir " + display);
  }
  try {
    while (dirent* entry = ::readdir(dir)) {
      std::string_view child = entry->d_name;
      if (child == "." || child == "..") continue;
      copy_entry(from_dir, to_dir, entry->d_name, display + "/" + std::string(child));
    }
  } catch (...) {
    ::closedir(dir);
    throw;
  }
  ::closedir(dir);
}

void copy_entry(int from_dir, int to_dir, const char* name, const std::string& display) {
  struct stat st {};
  if (::fstatat(from_dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) throw_errno("stat " + display);
  if (S_ISDIR(st.st_mode)) {
    if (::mkdirat(to_dir, name, 0700) != 0) throw_errno("mkdir " + display);
    UniqueFd from = open_at_or_throw(from_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    UniqueFd to = open_at_or_throw(to_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    copy_contents(from.get(), to.get(), display);
    copy_attributes(to.get(), st, display);
  } else if (S_ISREG(st.st_mode)) {
    UniqueFd from = open_at_or_throw(from_dir, name, O_RDONLY | O_NOFOLLOW);
    UniqueFd to = open_at_or_throw(to_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    copy_file_data(from.get(), to.get(), display);
    copy_attributes(to.get(), st, display);
  } else if (S_ISLNK(st.st_mode)) {
    std::string target(PATH_MAX, '\0');
    ssize_t n = ::readlinkat(from_dir, name, target.data(), target.size());
    if (n < 0) throw_errno("readlink " + display);
    target.resize(static_cast<size_t>(n));
    if (::symlinkat(target.c_str(), to_dir, name) != 0) throw_errno("symlink " + display);
    copy_attributes_at(to_dir, name, st, display);
  } else {
    if (::mknodat(to_dir, name, st.st_mode, st.st_rdev) != 0) throw_errno("mknod " + display);
    copy_attributes_at(to_dir, name, st, display);
  }
}

}  // namespace

void write_all(int fd, std::string_view content, const std::string& name) {
  while (!content.empty()) {
    ssize_t n = ::write(fd, content.data(), content.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("write " + name);
    }
    content.remove_prefix(static_cast<size_t>(n));
  }
}

void copy_file_data(int from, int to, const std::string& display) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(from, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("read " + display);
    }
    if (n == 0) return;
    write_all(to, std::string_view(buf, static_cast<size_t>(n)), display);
  }
}

void copy_attributes_at(int dir, const char* name, const struct stat& st,
                        const std::string& display) {
  if (::fchownat(dir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0)
    throw_errno("chown " + display);
  if (!S_ISLNK(st.st_mode) && ::fchmodat(dir, name, st.st_mode & 07777, 0) != 0)
    throw_errno("chmod " + display);
  const timespec times[2] = {st.st_atim, st.st_mtim};
  if (::utimensat(dir, name, times, AT_SYMLINK_NOFOLLOW) != 0)
    throw_errno("set times of " + display);
}

UniqueFd open_or_throw(const std::string& path, int flags, mode_t mode) {
  return open_at_or_throw(AT_FDCWD, path, flags, mode);
}

UniqueFd open_at_or_throw(int dirfd, const std::string& name, int flags, mode_t mode) {
  int fd = ::openat(dirfd, name.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) throw_errno("open " + name);
  return UniqueFd(fd);
}

std::string read_file(const std::string& path) {
  return read_file_at(AT_FDCWD, path);
}

std::string read_file_at(int dirfd, const std::string& name) {
  UniqueFd fd = open_at_or_throw(dirfd, name, O_RDONLY);
  return read_all(fd.get(), name);
}

void write_file(const std::string& path, std::string_view content) {
  UniqueFd fd = open_or_throw(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  write_all(fd.get(), content, path);
}

void write_file_atomic_at(int dirfd, const std::string& name, std::string_view content) {
  std::string tmp = "." + name + ".tmp." + std::to_string(::getpid());
  {
    UniqueFd fd = open_at_or_throw(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    write_all(fd.get(), content, name);
  }
  if (::renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) != 0) {
    int err = errno;
    ::unlinkat(dirfd, tmp.c_str(), 0);
    throw_errno("rename " + name, err);
  }
}

void write_file_atomic(const std::string& path, std::string_view content) {
  auto slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  UniqueFd dfd = open_or_throw(dir, O_RDONLY | O_DIRECTORY);
  write_file_atomic_at(dfd.get(), name, content);
}

void replace_file_volatile(const std::string& path, std::string_view content) {
  auto slash = path.rfind('/');
  std::string tmp = slash == std::string::npos
                        ? "." + path + ".tmp"
                        : path.substr(0, slash + 1) + "." + path.substr(slash + 1) + ".tmp";
  {
    UniqueFd fd = open_or_throw(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    write_all(fd.get(), content, path);
  }
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_EXCHANGE) == 0) {
    ::unlink(tmp.c_str());  // the previous content now
    return;
  }
  // ENOENT: nothing to exchange with yet; EINVAL: a filesystem without exchange.
  if ((errno != ENOENT && errno != EINVAL) || ::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw_errno("replace " + path, err);
  }
}

bool path_exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

void make_dirs(const std::string& path, mode_t mode) {
  if (path.empty()) return;
  std::string partial;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    partial = path.substr(0, pos);
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), mode) != 0 && errno != EEXIST) throw_errno("mkdir " + partial);
  }
}

void remove_tree(const std::string& path) {
  remove_tree_at(AT_FDCWD, path, path);
}

void copy_directory_contents(int from_dir, int to_dir) {
  copy_contents(from_dir, to_dir, ".");
}

void copy_xattrs_at(int from_dir, const std::string& from_name, int to_dir,
                    const std::string& to_name, std::string_view skip_prefix) {
  auto at = [](int dir, const std::string& name) {
    return "/proc/self/fd/" + std::to_string(dir) + "/" + name;
  };
  const std::string from = at(from_dir, from_name);
  const std::string to = at(to_dir, to_name);
  std::string names(1024, '\0');
  ssize_t n = 0;
  while ((n = ::llistxattr(from.c_str(), names.data(), names.size())) < 0 && errno == ERANGE)
    names.resize(names.size() * 4);
  if (n < 0) {
    if (errno == ENOTSUP) return;
    throw_errno("list xattrs of " + from_name);
  }
  names.resize(static_cast<size_t>(n));
  std::string value(4096, '\0');
  for (size_t pos = 0; pos < names.size();) {
    const std::string name = names.c_str() + pos;
    pos += name.size() + 1;
    if (!skip_prefix.empty() && std::string_view(name).starts_with(skip_prefix)) continue;
    ssize_t size = 0;
    while ((size = ::lgetxattr(from.c_str(), name.c_str(), value.data(), value.size())) < 0 &&
           errno == ERANGE)
      value.resize(value.size() * 4);
    if (size < 0) {
      if (errno == ENODATA) continue;
      throw_errno("get xattr " + name + " of " + from_name);
    }
    if (::lsetxattr(to.c_str(), name.c_str(), value.data(), static_cast<size_t>(size), 0) != 0 &&
        errno != ENOTSUP && errno != EPERM)
      throw_errno("set xattr " + name + " on " + to_name);
  }
}

}  // namespace barge

// Resolving paths inside an untrusted rootfs. Every lookup either goes through
// openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) or, where the kernel lacks it, through a walk
// that opens one component at a time with O_NOFOLLOW and expands symlinks itself, treating "/"
// as rootfd and never letting ".." climb above it. Either way the result is an fd, so what a
// later mount lands on cannot change under us.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <deque>

#include "common/error.hpp"
#include "runtime/rootfs_internal.hpp"

namespace barge::rootfs {
namespace {

std::atomic<bool> g_manual_walk_forced{false};

constexpr int kMaxSymlinks = 40;  // the kernel's own limit (MAXSYMLINKS)
constexpr uint64_t kResolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

// Returns the fd, or -1 with errno set.
int openat2_in_root(int rootfd, const std::string& path, int flags, mode_t mode) {
  std::string relative = path;
  while (!relative.empty() && relative.front() == '/') relative.erase(0, 1);
  if (relative.empty()) relative = ".";
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = kResolve;
  for (int attempt = 0;; ++attempt) {
    long fd = ::syscall(SYS_openat2, rootfd, relative.c_str(), &how, sizeof how);
    // EAGAIN: a concurrent rename made the kernel give up on a safe ".." walk; retry a little.
    if (fd < 0 && errno == EAGAIN && attempt < 32) continue;
    return static_cast<int>(fd);
  }
}

bool openat2_usable() {
  return !g_manual_walk_forced.load(std::memory_order_relaxed);
}

enum class Create { nothing, directories, directories_and_file };

std::string readlink_fd(int fd, const std::string& display) {
  std::string target(256, '\0');
  for (;;) {
    ssize_t n = ::readlinkat(fd, "", target.data(), target.size());
    if (n < 0) throw_errno("readlink " + display);
    if (static_cast<size_t>(n) < target.size()) {
      target.resize(static_cast<size_t>(n));
      return target;
    }
    target.resize(target.size() * 2);
  }
}

// Creates name in dirfd (a directory, or an empty file for the final component of a bind-mount
// target). Losing a race to someone else creating it is fine: the caller looks again.
void create_component(int dirfd, const std::string& name, bool as_file,
                      const std::string& display) {
  if (as_file) {
    UniqueFd fd(
        ::openat(dirfd, name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd && errno != EEXIST) throw_errno("create " + display);
  } else if (::mkdirat(dirfd, name.c_str(), 0755) < 0 && errno != EEXIST) {
    throw_errno("mkdir " + display);
  }
}

// The manual walk. Holds an O_PATH fd for every resolved directory so ".." is a pop, and an
// absolute symlink target restarts from rootfd.
UniqueFd walk_in_root(int rootfd, const std::string& path, int flags, mode_t mode, Create create) {
  auto components = detail::split_path(path);
  std::deque<std::string> todo(components.begin(), components.end());
  std::vector<UniqueFd> stack;
  std::string walked;  // for messages only
  auto current = [&] { return stack.empty() ? rootfd : stack.back().get(); };
  int symlinks = 0;
  int creations = 0;

  while (!todo.empty()) {
    std::string name = std::move(todo.front());
    todo.pop_front();
    if (name == "..") {
      if (!stack.empty()) stack.pop_back();
      continue;
    }
    const bool last = todo.empty();
    const std::string display = walked + "/" + name;
    UniqueFd next(::openat(current(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!next) {
      if (errno != ENOENT) throw_errno("open " + display);
      if (last && (flags & O_CREAT) && create == Create::nothing) {
        UniqueFd created(::openat(current(), name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode));
        if (!created) throw_errno("open " + display);
        return created;
      }
      if (create == Create::nothing) throw_errno("open " + display, ENOENT);
      if (++creations > 2 * kMaxSymlinks + 256) throw_errno("create " + display, ELOOP);
      create_component(current(), name, last && create == Create::directories_and_file, display);
      todo.push_front(name);  // look again: what is there now may be a symlink
      continue;
    }
    struct stat st {};
    if (::fstat(next.get(), &st) < 0) throw_errno("stat " + display);
    if (S_ISLNK(st.st_mode) && !(last && (flags & O_NOFOLLOW))) {
      if (++symlinks > kMaxSymlinks) throw_errno("open " + display, ELOOP);
      std::string target = readlink_fd(next.get(), display);
      if (!target.empty() && target.front() == '/') {
        stack.clear();
        walked.clear();
      }
      auto parts = detail::split_path(target);
      todo.insert(todo.begin(), parts.begin(), parts.end());
      continue;
    }
    if (last) {
      if ((flags & O_DIRECTORY) && !S_ISDIR(st.st_mode)) throw_errno("open " + display, ENOTDIR);
      if (flags & O_PATH) return next;
      // Reopen for real by name; O_NOFOLLOW refuses a symlink swapped in since the fstat.
      UniqueFd reopened(
          ::openat(current(), name.c_str(), (flags & ~O_CREAT) | O_NOFOLLOW | O_CLOEXEC, mode));
      if (!reopened) throw_errno("open " + display);
      return reopened;
    }
    if (!S_ISDIR(st.st_mode)) throw_errno("open " + display, ENOTDIR);
    stack.push_back(std::move(next));
    walked = display;
  }
  // The path named the root itself.
  UniqueFd self(::openat(current(), ".", (flags & ~(O_CREAT | O_NOFOLLOW)) | O_CLOEXEC));
  if (!self) throw_errno("open /");
  return self;
}

}  // namespace

void force_manual_path_walk_for_testing(bool forced) {
  g_manual_walk_forced.store(forced, std::memory_order_relaxed);
}

UniqueFd open_in_root(int rootfd, const std::string& path, int flags, mode_t mode) {
  if (openat2_usable()) {
    int fd = openat2_in_root(rootfd, path, flags, mode);
    if (fd >= 0) return UniqueFd(fd);
    if (errno != ENOSYS) throw_errno("open " + path + " in rootfs");
  }
  return with_context("open " + path + " in rootfs",
                      [&] { return walk_in_root(rootfd, path, flags, mode, Create::nothing); });
}

UniqueFd open_in_root_if_exists(int rootfd, const std::string& path, int flags) {
  auto missing = [](int err) { return err == ENOENT || err == ENOTDIR; };
  if (openat2_usable()) {
    int fd = openat2_in_root(rootfd, path, flags, 0);
    if (fd >= 0) return UniqueFd(fd);
    if (missing(errno)) return UniqueFd();
  }
  try {
    return open_in_root(rootfd, path, flags);
  } catch (const Error& e) {
    if (missing(e.code())) return UniqueFd();
    throw;
  }
}

UniqueFd mkdir_all_in_root(int rootfd, const std::string& path, bool make_file) {
  if (openat2_usable()) {
    int fd = openat2_in_root(rootfd, path, O_PATH, 0);
    if (fd >= 0) return UniqueFd(fd);
    if (errno != ENOENT && errno != ENOSYS) throw_errno("open " + path + " in rootfs");
  }
  // Creating is component by component anyway; the walk keeps every step inside the root.
  return with_context("create " + path + " in rootfs", [&] {
    return walk_in_root(rootfd, path, O_PATH, 0,
                        make_file ? Create::directories_and_file : Create::directories);
  });
}

namespace detail {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(pos, end - pos);
    if (!part.empty() && part != ".") parts.emplace_back(part);
    pos = end + 1;
  }
  return parts;
}

std::pair<std::string, std::string> split_parent(std::string_view path) {
  auto parts = split_path(path);
  if (parts.empty()) return {"/", ""};
  std::string name = std::move(parts.back());
  parts.pop_back();
  std::string parent;
  for (const auto& part : parts) parent += "/" + part;
  return {parent.empty() ? "/" : parent, name};
}

std::string fd_path(int fd) {
  return "/proc/self/fd/" + std::to_string(fd);
}

}  // namespace detail
}  // namespace barge::rootfs

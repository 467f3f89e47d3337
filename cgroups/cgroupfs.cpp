#include "cgroups/cgroupfs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <memory>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace barge::cgroups::fs {
namespace {

int open_file(const std::string& path, int flags) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

struct DirCloser {
  void operator()(DIR* dir) const { ::closedir(dir); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

DirPtr open_dir(const std::string& dir) {
  DirPtr handle(::opendir(dir.c_str()));
  if (!handle && errno != ENOENT) throw_errno("open " + dir);
  return handle;
}

void parse_pids(std::string_view text, std::vector<pid_t>& out) {
  while (!text.empty()) {
    auto eol = text.find('\n');
    std::string_view line = trim(text.substr(0, eol));
    pid_t pid = 0;
    if (!line.empty() &&
        std::from_chars(line.data(), line.data() + line.size(), pid).ec == std::errc())
      out.push_back(pid);
    if (eol == std::string_view::npos) break;
    text.remove_prefix(eol + 1);
  }
}

void collect_procs(const std::string& dir, std::vector<pid_t>& out) {
  auto procs = try_read(dir + "/cgroup.procs");
  if (!procs) return;
  parse_pids(*procs, out);
  for (const auto& child : subdirs(dir)) collect_procs(dir + "/" + child, out);
}

}  // namespace

int try_write(const std::string& path, std::string_view value) {
  UniqueFd fd(open_file(path, O_WRONLY));
  if (!fd) return errno;
  ssize_t n;
  do {
    n = ::write(fd.get(), value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  return n < 0 ? errno : 0;
}

void write(const std::string& path, std::string_view value) {
  if (int err = try_write(path, value)) throw_errno("write " + path, err);
}

std::optional<std::string> try_read(const std::string& path) {
  UniqueFd fd(open_file(path, O_RDONLY));
  if (!fd) {
    if (errno == ENOENT) return std::nullopt;
    throw_errno("open " + path);
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      // A cgroup removed under us reads as ENODEV.
      if (errno == ENODEV) return std::nullopt;
      throw_errno("read " + path);
    }
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

std::string read(const std::string& path) {
  auto content = try_read(path);
  if (!content) throw_errno("open " + path, ENOENT);
  return std::move(*content);
}

std::string_view trim(std::string_view text) {
  auto first = text.find_first_not_of(" \t\n");
  if (first == std::string_view::npos) return {};
  auto last = text.find_last_not_of(" \t\n");
  return text.substr(first, last - first + 1);
}

void make_dirs(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) return;
  if (errno != ENOENT) throw_errno("mkdir " + dir);
  auto slash = dir.rfind('/');
  if (slash == 0 || slash == std::string::npos) throw_errno("mkdir " + dir, ENOENT);
  make_dirs(dir.substr(0, slash));
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) throw_errno("mkdir " + dir);
}

std::vector<std::string> subdirs(const std::string& dir) {
  std::vector<std::string> names;
  DirPtr handle = open_dir(dir);
  if (!handle) return names;
  while (dirent* entry = ::readdir(handle.get())) {
    std::string_view name = entry->d_name;
    if (entry->d_type == DT_DIR && name != "." && name != "..") names.emplace_back(name);
  }
  return names;
}

std::vector<pid_t> procs_recursive(const std::string& dir) {
  std::vector<pid_t> pids;
  collect_procs(dir, pids);
  return pids;
}

int remove_tree(const std::string& dir, std::string& failed_dir) {
  // Most cgroups have no children: try the rmdir before listing the directory.
  if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return 0;
  int err = errno;
  std::vector<std::string> children = err == EBUSY ? subdirs(dir) : std::vector<std::string>{};
  if (children.empty()) {
    failed_dir = dir;
    return err;
  }
  for (const auto& child : children)
    if (int child_err = remove_tree(dir + "/" + child, failed_dir)) return child_err;
  if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return 0;
  failed_dir = dir;
  return errno;
}

}  // namespace barge::cgroups::fs

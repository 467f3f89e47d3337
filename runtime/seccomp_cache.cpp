#include "runtime/seccomp_cache.hpp"

#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <seccomp.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <charconv>
#include <cstring>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "image/digest.hpp"

namespace barge::seccomp::cache {
namespace {

constexpr std::string_view kMagic = "barge-seccomp-cache 1\n";
constexpr size_t kMaxFileSize = 1 << 20;

// The NT_GNU_BUILD_ID note of the main program, read from its mapped program headers.
std::string own_build_id() {
  std::string id;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* out) -> int {
        for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& phdr = info->dlpi_phdr[i];
          if (phdr.p_type != PT_NOTE) continue;
          // The note's load address: an integer by the ELF ABI.
          const auto* note = reinterpret_cast<const char*>(  // NOLINT(performance-no-int-to-ptr)
              info->dlpi_addr + phdr.p_vaddr);
          const char* end = note + phdr.p_memsz;
          while (note + sizeof(ElfW(Nhdr)) <= end) {
            const auto* header = reinterpret_cast<const ElfW(Nhdr)*>(note);
            const char* name = note + sizeof(ElfW(Nhdr));
            const char* desc = name + ((header->n_namesz + 3) & ~3U);
            if (header->n_type == NT_GNU_BUILD_ID && header->n_namesz == 4 &&
                std::memcmp(name, "GNU", 4) == 0 && desc + header->n_descsz <= end) {
              static_cast<std::string*>(out)->assign(desc, header->n_descsz);
              return 1;
            }
            note = desc + ((header->n_descsz + 3) & ~3U);
          }
        }
        return 1;  // the first object is the main program; libraries do not matter
      },
      &id);
  return id;
}

void append_field(std::string& out, std::string_view field) {
  out += std::to_string(field.size());
  out += ':';
  out += field;
}

void append_number(std::string& out, uint64_t value) {
  append_field(out, std::to_string(value));
}

std::string key_material(const spec::Seccomp& config, const std::string& build_id) {
  std::string out;
  append_field(out, kMagic);
  append_field(out, build_id);
  const scmp_version* version = seccomp_version();
  append_number(out, version->major);
  append_number(out, version->minor);
  append_number(out, version->micro);
  utsname uts{};
  ::uname(&uts);
  append_field(out, uts.release);
  append_field(out, uts.version);
  append_field(out, uts.machine);

  append_field(out, config.default_action);
  append_field(out, config.default_errno_ret ? std::to_string(*config.default_errno_ret) : "-");
  append_number(out, config.architectures.size());
  for (const auto& arch : config.architectures) append_field(out, arch);
  append_number(out, config.flags.size());
  for (const auto& flag : config.flags) append_field(out, flag);
  append_number(out, config.syscalls.size());
  for (const auto& rule : config.syscalls) {
    append_number(out, rule.names.size());
    for (const auto& name : rule.names) append_field(out, name);
    append_field(out, rule.action);
    append_field(out, rule.errno_ret ? std::to_string(*rule.errno_ret) : "-");
    append_number(out, rule.args.size());
    for (const auto& arg : rule.args) {
      append_number(out, arg.index);
      append_number(out, arg.value);
      append_number(out, arg.value_two);
      append_field(out, arg.op);
    }
  }
  return out;
}

// Reads "<decimal>\n" at the front of data.
std::optional<size_t> take_count(std::string_view& data) {
  size_t value = 0;
  auto [end, ec] = std::from_chars(data.data(), data.data() + data.size(), value);
  if (ec != std::errc() || end == data.data() + data.size() || *end != '\n') return std::nullopt;
  data.remove_prefix(static_cast<size_t>(end - data.data()) + 1);
  return value;
}

// Entries in dirfd (temporary files, which start with '.', not counted).
size_t count_entries(int dirfd) {
  size_t n = 0;
  int fd = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (DIR* d = fd >= 0 ? ::fdopendir(fd) : nullptr) {
    while (const dirent* entry = ::readdir(d))
      if (entry->d_name[0] != '.') ++n;
    ::closedir(d);
  } else if (fd >= 0) {
    ::close(fd);
  }
  return n;
}

// A program from the cache ends up in containers' filters: only files that nobody but us could
// have written count (owned by our euid, not group- or world-writable, in such a directory).
bool trusted(const struct stat& st) {
  return st.st_uid == ::geteuid() && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

UniqueFd open_trusted_dir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !trusted(st)) return UniqueFd();
  return fd;
}

}  // namespace

std::string key(const spec::Seccomp& config) {
  static const std::string build_id = own_build_id();
  if (build_id.empty()) return {};
  return image::digest_hex(image::sha256_of(key_material(config, build_id)));
}

std::string encode(const Entry& entry) {
  std::string out(kMagic);
  out += std::to_string(entry.warnings.size()) + "\n";
  for (const auto& warning : entry.warnings) out += std::to_string(warning.size()) + "\n" + warning;
  out += std::to_string(entry.program.size()) + "\n";
  out.append(reinterpret_cast<const char*>(entry.program.data()),
             entry.program.size() * sizeof(sock_filter));
  return out;
}

std::optional<Entry> decode(std::string_view data) {
  if (!data.starts_with(kMagic)) return std::nullopt;
  data.remove_prefix(kMagic.size());
  Entry entry;
  auto warnings = take_count(data);
  if (!warnings || *warnings > data.size()) return std::nullopt;
  for (size_t i = 0; i < *warnings; ++i) {
    auto size = take_count(data);
    if (!size || *size > data.size()) return std::nullopt;
    entry.warnings.emplace_back(data.substr(0, *size));
    data.remove_prefix(*size);
  }
  auto instructions = take_count(data);
  if (!instructions || *instructions == 0 || *instructions > BPF_MAXINSNS ||
      data.size() != *instructions * sizeof(sock_filter))
    return std::nullopt;
  entry.program.resize(*instructions);
  std::memcpy(entry.program.data(), data.data(), data.size());
  return entry;
}

std::optional<Entry> read(const std::string& dir, const std::string& key) {
  UniqueFd dirfd = open_trusted_dir(dir);
  if (!dirfd) return std::nullopt;
  UniqueFd fd(::openat(dirfd.get(), key.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || !trusted(st) ||
      static_cast<size_t>(st.st_size) > kMaxFileSize)
    return std::nullopt;
  std::string data(static_cast<size_t>(st.st_size), '\0');
  if (::pread(fd.get(), data.data(), data.size(), 0) != st.st_size) return std::nullopt;
  auto entry = decode(data);
  if (!entry) log::debug("seccomp cache: ignoring malformed " + dir + "/" + key);
  return entry;
}

void write(const std::string& dir, const std::string& key, const Entry& entry) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    log::debug("seccomp cache: mkdir " + dir + ": " + std::strerror(errno));
    return;
  }
  UniqueFd dirfd = open_trusted_dir(dir);
  if (!dirfd) {
    log::debug("seccomp cache: " + dir + " is not ours alone; not used");
    return;
  }
  if (count_entries(dirfd.get()) >= kMaxEntries) return;
  try {
    write_file_atomic_at(dirfd.get(), key, encode(entry));
  } catch (const std::exception& e) {
    log::debug(std::string("seccomp cache: ") + e.what());
  }
}

}  // namespace barge::seccomp::cache

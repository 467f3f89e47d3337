// Pure parsing for the rootfs code: spec mount options and /proc/self/mountinfo.
#include <sys/mount.h>

#include <algorithm>
#include <array>
#include <charconv>

#include "common/error.hpp"
#include "common/file.hpp"
#include "runtime/rootfs_internal.hpp"

namespace barge::rootfs::detail {
namespace {

struct FlagOption {
  std::string_view name;
  bool clear;  // "rw", "suid", ... undo what an earlier option in the list set
  unsigned long flag;
};

// The mount(8) names runc and crun accept.
constexpr std::array kFlagOptions{
    FlagOption{"defaults", false, 0},
    FlagOption{"ro", false, MS_RDONLY},
    FlagOption{"rw", true, MS_RDONLY},
    FlagOption{"suid", true, MS_NOSUID},
    FlagOption{"nosuid", false, MS_NOSUID},
    FlagOption{"dev", true, MS_NODEV},
    FlagOption{"nodev", false, MS_NODEV},
    FlagOption{"exec", true, MS_NOEXEC},
    FlagOption{"noexec", false, MS_NOEXEC},
    FlagOption{"sync", false, MS_SYNCHRONOUS},
    FlagOption{"async", true, MS_SYNCHRONOUS},
    FlagOption{"dirsync", false, MS_DIRSYNC},
    FlagOption{"remount", false, MS_REMOUNT},
    FlagOption{"mand", false, MS_MANDLOCK},
    FlagOption{"nomand", true, MS_MANDLOCK},
    FlagOption{"atime", true, MS_NOATIME},
    FlagOption{"noatime", false, MS_NOATIME},
    FlagOption{"diratime", true, MS_NODIRATIME},
    FlagOption{"nodiratime", false, MS_NODIRATIME},
    FlagOption{"relatime", false, MS_RELATIME},
    FlagOption{"norelatime", true, MS_RELATIME},
    FlagOption{"strictatime", false, MS_STRICTATIME},
    FlagOption{"nostrictatime", true, MS_STRICTATIME},
    FlagOption{"lazytime", false, MS_LAZYTIME},
    FlagOption{"nolazytime", true, MS_LAZYTIME},
    FlagOption{"iversion", false, MS_I_VERSION},
    FlagOption{"noiversion", true, MS_I_VERSION},
    FlagOption{"silent", false, MS_SILENT},
    FlagOption{"loud", true, MS_SILENT},
    FlagOption{"bind", false, MS_BIND},
    FlagOption{"rbind", false, MS_BIND | MS_REC},
};

struct PropagationOption {
  std::string_view name;
  unsigned long flags;
};

constexpr std::array kPropagationOptions{
    PropagationOption{"private", MS_PRIVATE},
    PropagationOption{"rprivate", MS_PRIVATE | MS_REC},
    PropagationOption{"shared", MS_SHARED},
    PropagationOption{"rshared", MS_SHARED | MS_REC},
    PropagationOption{"slave", MS_SLAVE},
    PropagationOption{"rslave", MS_SLAVE | MS_REC},
    PropagationOption{"unbindable", MS_UNBINDABLE},
    PropagationOption{"runbindable", MS_UNBINDABLE | MS_REC},
};

constexpr std::string_view kCopyUpOption = "tmpcopyup";

// runc's recursive options, applied with mount_setattr(AT_RECURSIVE) to the whole subtree.
struct RecursiveOption {
  std::string_view name;
  bool clear;
  uint64_t attr;
};

constexpr std::array kRecursiveOptions{
    RecursiveOption{"rro", false, MOUNT_ATTR_RDONLY},
    RecursiveOption{"rrw", true, MOUNT_ATTR_RDONLY},
    RecursiveOption{"rnosuid", false, MOUNT_ATTR_NOSUID},
    RecursiveOption{"rsuid", true, MOUNT_ATTR_NOSUID},
    RecursiveOption{"rnodev", false, MOUNT_ATTR_NODEV},
    RecursiveOption{"rdev", true, MOUNT_ATTR_NODEV},
    RecursiveOption{"rnoexec", false, MOUNT_ATTR_NOEXEC},
    RecursiveOption{"rexec", true, MOUNT_ATTR_NOEXEC},
    RecursiveOption{"rnodiratime", false, MOUNT_ATTR_NODIRATIME},
    RecursiveOption{"rdiratime", true, MOUNT_ATTR_NODIRATIME},
    RecursiveOption{"rnosymfollow", false, MOUNT_ATTR_NOSYMFOLLOW},
    RecursiveOption{"rsymfollow", true, MOUNT_ATTR_NOSYMFOLLOW},
};

// The atime mode is one value in the kernel, not independent bits.
struct RecursiveAtimeOption {
  std::string_view name;
  uint64_t mode;
};

constexpr std::array kRecursiveAtimeOptions{
    RecursiveAtimeOption{"rrelatime", MOUNT_ATTR_RELATIME},
    RecursiveAtimeOption{"rnorelatime", MOUNT_ATTR_STRICTATIME},
    RecursiveAtimeOption{"rnoatime", MOUNT_ATTR_NOATIME},
    RecursiveAtimeOption{"ratime", MOUNT_ATTR_RELATIME},
    RecursiveAtimeOption{"rstrictatime", MOUNT_ATTR_STRICTATIME},
    RecursiveAtimeOption{"rnostrictatime", MOUNT_ATTR_RELATIME},
};

template <typename Table>
void append_names(const Table& table, std::vector<std::string>& names) {
  for (const auto& entry : table) names.emplace_back(entry.name);
}

template <typename Table>
auto find_option(const Table& table, std::string_view name) -> const typename Table::value_type* {
  for (const auto& entry : table)
    if (entry.name == name) return &entry;
  return nullptr;
}

bool apply_recursive_option(MountOptions& out, std::string_view name) {
  if (const auto* rec = find_option(kRecursiveOptions, name)) {
    if (rec->clear) {
      out.recursive_set &= ~rec->attr;
      out.recursive_clear |= rec->attr;
    } else {
      out.recursive_set |= rec->attr;
      out.recursive_clear &= ~rec->attr;
    }
    return true;
  }
  if (const auto* atime = find_option(kRecursiveAtimeOptions, name)) {
    out.recursive_set = (out.recursive_set & ~uint64_t{MOUNT_ATTR__ATIME}) | atime->mode;
    out.recursive_clear |= MOUNT_ATTR__ATIME;
    return true;
  }
  return false;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_octal(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size()) {
      int value = 0;
      auto [ptr, ec] = std::from_chars(field.data() + i + 1, field.data() + i + 4, value, 8);
      if (ec == std::errc() && ptr == field.data() + i + 4) {
        out.push_back(static_cast<char>(value));
        i += 3;
        continue;
      }
    }
    out.push_back(field[i]);
  }
  return out;
}

void split_fields(std::string_view line, std::vector<std::string_view>& fields) {
  fields.clear();
  size_t pos = 0;
  while (pos < line.size()) {
    size_t end = line.find(' ', pos);
    if (end == std::string_view::npos) end = line.size();
    if (end > pos) fields.push_back(line.substr(pos, end - pos));
    pos = end + 1;
  }
}

int to_int(std::string_view text) {
  int value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

}  // namespace

bool MountOptions::is_bind() const {
  return (flags & MS_BIND) != 0;
}
bool MountOptions::is_recursive_bind() const {
  return is_bind() && (flags & MS_REC) != 0;
}

MountOptions parse_mount_options(std::span<const std::string> options) {
  MountOptions out;
  for (const std::string& option : options) {
    if (const auto* flag = find_option(kFlagOptions, option)) {
      if (flag->clear)
        out.flags &= ~flag->flag;
      else
        out.flags |= flag->flag;
    } else if (const auto* propagation = find_option(kPropagationOptions, option)) {
      out.propagation.push_back(propagation->flags);
    } else if (apply_recursive_option(out, option)) {
    } else if (option == kCopyUpOption) {
      out.copy_up = true;
    } else if (option == "idmap" || option == "ridmap") {
      throw_error("option \"" + option + "\": idmapped mounts are not supported");
    } else {
      if (!out.data.empty()) out.data += ',';
      out.data += option;
    }
  }
  return out;
}

std::optional<unsigned long> parse_propagation(std::string_view name) {
  if (const auto* propagation = find_option(kPropagationOptions, name)) return propagation->flags;
  return std::nullopt;
}

uint64_t mount_attrs_from_flags(unsigned long flags) {
  uint64_t attrs = 0;
  if (flags & MS_RDONLY) attrs |= MOUNT_ATTR_RDONLY;
  if (flags & MS_NOSUID) attrs |= MOUNT_ATTR_NOSUID;
  if (flags & MS_NODEV) attrs |= MOUNT_ATTR_NODEV;
  if (flags & MS_NOEXEC) attrs |= MOUNT_ATTR_NOEXEC;
  if (flags & MS_NODIRATIME) attrs |= MOUNT_ATTR_NODIRATIME;
  if (flags & MS_NOATIME)
    attrs |= MOUNT_ATTR_NOATIME;
  else if (flags & MS_STRICTATIME)
    attrs |= MOUNT_ATTR_STRICTATIME;
  return attrs;
}

bool is_bind_mount(const spec::Mount& mount) {
  if (mount.type == "bind") return true;
  for (const std::string& option : mount.options)
    if (option == "bind" || option == "rbind") return true;
  return false;
}

std::vector<MountInfo> parse_mountinfo(std::string_view text,
                                       std::span<const std::string_view> fs_types) {
  std::vector<MountInfo> mounts;
  std::vector<std::string_view> fields;
  fields.reserve(16);
  while (!text.empty()) {
    size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    split_fields(line, fields);
    // id parent major:minor root mount_point options [optional...] - type source super_options
    size_t dash = 6;
    while (dash < fields.size() && fields[dash] != "-") ++dash;
    if (fields.size() < 6 || dash + 2 >= fields.size()) continue;
    if (!fs_types.empty() &&
        std::find(fs_types.begin(), fs_types.end(), fields[dash + 1]) == fs_types.end())
      continue;
    MountInfo info;
    info.id = to_int(fields[0]);
    info.parent = to_int(fields[1]);
    info.root = unescape_octal(fields[3]);
    info.mount_point = unescape_octal(fields[4]);
    info.mount_options = std::string(fields[5]);
    for (size_t i = 6; i < dash; ++i) {
      if (!info.optional_fields.empty()) info.optional_fields += ' ';
      info.optional_fields += fields[i];
    }
    info.fs_type = std::string(fields[dash + 1]);
    info.source = unescape_octal(fields[dash + 2]);
    if (dash + 3 < fields.size()) info.super_options = std::string(fields[dash + 3]);
    mounts.push_back(std::move(info));
  }
  return mounts;
}

std::vector<MountInfo> read_mountinfo(std::span<const std::string_view> fs_types) {
  return parse_mountinfo(read_file("/proc/self/mountinfo"), fs_types);
}

std::vector<std::string> known_mount_options() {
  std::vector<std::string> names;
  append_names(kFlagOptions, names);
  append_names(kPropagationOptions, names);
  append_names(kRecursiveOptions, names);
  append_names(kRecursiveAtimeOptions, names);
  names.emplace_back(kCopyUpOption);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace barge::rootfs::detail

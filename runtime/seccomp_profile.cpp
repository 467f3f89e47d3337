// The seccomp profile `barge spec` writes. Its source is the data file
// runtime/seccomp-default.json (compiled into the binary, see CMakeLists.txt), in the shape of
// the Docker/containerd default profile: deny by default (EPERM), allow the syscalls an ordinary
// program without CAP_SYS_ADMIN uses (no mount, unshare, setns, bpf, kexec_load, init_module,
// keyctl, ...), "archMap" naming the seccomp architectures of each machine, and rules that only
// apply to some machines marked with "includes"/"excludes" {"arches": [...]}. This file picks the
// native machine's part and writes it as runtime-spec linux.seccomp. Syscalls newer than the list
// get ENOSYS from the prologue compile() adds, so libc falls back to older ones.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <string_view>

#include "runtime/seccomp.hpp"

namespace barge::seccomp {

extern const char kDefaultProfileData[];

namespace {

using ojson = nlohmann::ordered_json;

// The machine names the data file's "archMap", "includes" and "excludes" use (uname -m style).
constexpr std::string_view native_machine() {
#if defined(__x86_64__)
  return "x86_64";
#elif defined(__i386__)
  return "x86";
#elif defined(__aarch64__)
  return "aarch64";
#elif defined(__arm__)
  return "arm";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__s390__)
  return "s390";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64le";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#else
  return "other";
#endif
}

bool names_machine(const ojson& rule, const char* key, std::string_view machine) {
  if (!rule.contains(key)) return false;
  const ojson& arches = rule[key].value("arches", ojson::array());
  return std::any_of(arches.begin(), arches.end(),
                     [&](const ojson& arch) { return arch.get<std::string>() == machine; });
}

bool applies_to(const ojson& rule, std::string_view machine) {
  if (rule.contains("includes") && !names_machine(rule, "includes", machine)) return false;
  return !names_machine(rule, "excludes", machine);
}

}  // namespace

std::string default_profile_json() {
  const ojson data = ojson::parse(kDefaultProfileData);
  constexpr std::string_view machine = native_machine();
  ojson syscalls = ojson::array();
  for (ojson rule : data.at("syscalls")) {
    if (!applies_to(rule, machine)) continue;
    rule.erase("includes");
    rule.erase("excludes");
    syscalls.push_back(std::move(rule));
  }
  ojson profile = {{"defaultAction", data.at("defaultAction")},
                   {"defaultErrnoRet", data.at("defaultErrnoRet")},
                   {"architectures", data.at("archMap").value(machine, ojson::array())},
                   {"syscalls", std::move(syscalls)}};
  return profile.dump();
}

}  // namespace barge::seccomp

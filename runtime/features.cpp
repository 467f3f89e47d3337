#include "runtime/features.hpp"

#include <seccomp.h>
#include <sys/capability.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "runtime/lsm.hpp"
#include "runtime/rootfs_internal.hpp"
#include "runtime/spec.hpp"

namespace barge::runtime {
namespace {

nlohmann::ordered_json known_capabilities() {
  nlohmann::ordered_json caps = nlohmann::ordered_json::array();
  for (cap_value_t cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    char* name = cap_to_name(cap);
    if (name == nullptr) continue;
    std::string upper = name;
    cap_free(name);
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (upper.rfind("CAP_", 0) == 0) caps.push_back(upper);
  }
  return caps;
}

// The architectures a filter built on this host can include (libseccomp refuses to mix
// endiannesses, so big-endian ones drop out on x86): probed, not assumed.
nlohmann::ordered_json seccomp_architectures() {
  static constexpr const char* kArchs[] = {
      "SCMP_ARCH_X86",     "SCMP_ARCH_X86_64",   "SCMP_ARCH_X32",         "SCMP_ARCH_ARM",
      "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS",     "SCMP_ARCH_MIPS64",      "SCMP_ARCH_MIPS64N32",
      "SCMP_ARCH_MIPSEL",  "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
      "SCMP_ARCH_PPC64",   "SCMP_ARCH_PPC64LE",  "SCMP_ARCH_S390",        "SCMP_ARCH_S390X",
      "SCMP_ARCH_RISCV64"};
  nlohmann::ordered_json archs = nlohmann::ordered_json::array();
  scmp_filter_ctx probe = seccomp_init(SCMP_ACT_ALLOW);
  if (probe == nullptr) return archs;
  for (const char* arch : kArchs) {
    std::string lower = std::string(arch).substr(10);
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    uint32_t token = seccomp_arch_resolve_name(lower.c_str());
    if (token == 0) continue;
    int rc = seccomp_arch_add(probe, token);
    if (rc == 0 || rc == -EEXIST) archs.push_back(arch);
  }
  seccomp_release(probe);
  return archs;
}

}  // namespace

std::string features_json() {
  const scmp_version* version = seccomp_version();
  std::string seccomp_version = std::to_string(version->major) + "." +
                                std::to_string(version->minor) + "." +
                                std::to_string(version->micro);
  nlohmann::ordered_json features = {
      {"ociVersionMin", "1.0.0"},
      {"ociVersionMax", spec::kRuntimeSpecVersion},
      {"hooks",
       {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}},
      {"mountOptions", rootfs::detail::known_mount_options()},
      {"linux",
       {{"namespaces", {"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}},
        {"capabilities", known_capabilities()},
        {"cgroup", {{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}}},
        {"seccomp",
         {{"enabled", true},
          {"actions",
           {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
            "SCMP_ACT_TRAP"}},
          {"operators",
           {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
            "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"}},
          {"archs", seccomp_architectures()}}},
        {"apparmor", {{"enabled", lsm::apparmor_enabled()}}},
        {"selinux", {{"enabled", lsm::selinux_enabled()}}},
        {"intelRdt", {{"enabled", false}}},
        {"mountExtensions", {{"idmap", {{"enabled", true}}}}}}},
      {"annotations",
       {{"io.github.seccomp.libseccomp.version", seccomp_version},
        {"org.opencontainers.runtime.barge.version", BARGE_VERSION}}}};
  return features.dump(4);
}

}  // namespace barge::runtime

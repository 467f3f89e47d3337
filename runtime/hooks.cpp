#include "runtime/hooks.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/log.hpp"
#include "common/syscalls.hpp"
#include "runtime/process_setup.hpp"

namespace barge::runtime {
namespace {

constexpr size_t kMaxCapturedOutput = 4096;

[[noreturn]] void exec_hook(const spec::Hook& hook, int stdin_fd, int output_fd) {
  ::setpgid(0, 0);  // its own group, so a timeout kills what the hook started too
  ::dup2(stdin_fd, STDIN_FILENO);
  ::dup2(output_fd, STDOUT_FILENO);
  ::dup2(output_fd, STDERR_FILENO);
  std::vector<std::string> args =
      hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args;
  std::vector<std::string> env = hook.env;
  auto argv = as_argv(args);
  auto envp = as_argv(env);
  ::execve(hook.path.c_str(), argv.data(), envp.data());
  ::_exit(127);
}

// Non-blocking: a hook's leftover children may hold the pipe open long after it exited.
std::string read_output(int fd) {
  ::fcntl(fd, F_SETFL, O_NONBLOCK);
  std::string out;
  char buf[1024];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && out.size() < kMaxCapturedOutput)
    out.append(buf, static_cast<size_t>(n));
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// Returns false on timeout (the hook is killed).
bool wait_for_hook(pid_t pid, std::optional<int> timeout_seconds, int& status) {
  UniqueFd pidfd(sys::pidfd_open(pid));
  if (pidfd && timeout_seconds) {
    pollfd pfd{pidfd.get(), POLLIN, 0};
    int n;
    do {
      n = ::poll(&pfd, 1, *timeout_seconds * 1000);
    } while (n < 0 && errno == EINTR);
    if (n == 0) {
      ::kill(-pid, SIGKILL);
      sys::pidfd_send_signal(pidfd.get(), SIGKILL);
      ::waitpid(pid, &status, 0);
      return false;
    }
  }
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw_errno("wait for hook");
  }
  return true;
}

void run_hook(const spec::Hook& hook, const std::string& state_json) {
  int input[2];
  int output[2];
  // A socket for stdin so a hook that ignores its input cannot SIGPIPE us (MSG_NOSIGNAL).
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, input) != 0) throw_errno("socketpair");
  UniqueFd input_ours(input[0]), input_theirs(input[1]);
  if (::pipe2(output, O_CLOEXEC) != 0) throw_errno("pipe");
  UniqueFd output_ours(output[0]), output_theirs(output[1]);
  pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) exec_hook(hook, input_theirs.get(), output_theirs.get());
  input_theirs.reset();
  output_theirs.reset();
  (void)::send(input_ours.get(), state_json.data(), state_json.size(), MSG_NOSIGNAL);
  input_ours.reset();
  int status = 0;
  bool finished = wait_for_hook(pid, hook.timeout, status);
  std::string output_text = read_output(output_ours.get());
  if (!finished) throw Error("timed out after " + std::to_string(*hook.timeout) + "s");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && output_text.empty())
    throw Error("cannot execute " + hook.path);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  std::string why = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                      : "killed by signal " + std::to_string(WTERMSIG(status));
  throw Error(why + (output_text.empty() ? "" : ": " + output_text));
}

std::string hook_label(std::string_view phase, size_t index, const spec::Hook& hook) {
  return "hooks." + std::string(phase) + "[" + std::to_string(index) + "] (" + hook.path + ")";
}

nlohmann::json hook_list_to_json(const std::vector<spec::Hook>& hooks) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& hook : hooks) {
    nlohmann::json j = {{"path", hook.path}, {"args", hook.args}, {"env", hook.env}};
    if (hook.timeout) j["timeout"] = *hook.timeout;
    list.push_back(j);
  }
  return list;
}

std::vector<spec::Hook> hook_list_from_json(const nlohmann::json& list) {
  std::vector<spec::Hook> hooks;
  for (const auto& j : list) {
    spec::Hook hook;
    hook.path = j.at("path").get<std::string>();
    hook.args = j.value("args", std::vector<std::string>{});
    hook.env = j.value("env", std::vector<std::string>{});
    if (j.contains("timeout")) hook.timeout = j["timeout"].get<int>();
    hooks.push_back(hook);
  }
  return hooks;
}

}  // namespace

void run_hooks(const std::vector<spec::Hook>& hooks, std::string_view phase,
               const std::string& state_json) {
  for (size_t i = 0; i < hooks.size(); ++i)
    with_context(hook_label(phase, i, hooks[i]), [&] { run_hook(hooks[i], state_json); });
}

void run_hooks_warning_only(const std::vector<spec::Hook>& hooks, std::string_view phase,
                            const std::string& state_json) {
  for (size_t i = 0; i < hooks.size(); ++i) {
    try {
      with_context(hook_label(phase, i, hooks[i]), [&] { run_hook(hooks[i], state_json); });
    } catch (const Error& e) {
      log::warn(e.what());
    }
  }
}

std::string hooks_to_json(const spec::Hooks& hooks) {
  nlohmann::json j = {{"poststart", hook_list_to_json(hooks.poststart)},
                      {"poststop", hook_list_to_json(hooks.poststop)}};
  return j.dump();
}

spec::Hooks hooks_from_json(const std::string& text) {
  try {
    auto j = nlohmann::json::parse(text);
    spec::Hooks hooks;
    hooks.poststart = hook_list_from_json(j.value("poststart", nlohmann::json::array()));
    hooks.poststop = hook_list_from_json(j.value("poststop", nlohmann::json::array()));
    return hooks;
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("hooks.json: ") + e.what());
  }
}

}  // namespace barge::runtime

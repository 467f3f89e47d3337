#include "cli/commands.hpp"
#include "runtime/exec.hpp"

namespace barge::cli {

void add_exec_command(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("exec", "run a new process inside a running container");
  auto options = std::make_shared<runtime::ExecOptions>();
  auto id = std::make_shared<std::string>();
  cmd->add_option("-p,--process", options->process_file, "process.json (runtime-spec process)");
  cmd->add_flag("-d,--detach", options->detach, "do not wait for the process");
  cmd->add_option("--pid-file", options->pid_file, "file to write the process pid to");
  cmd->add_option("--console-socket", options->console_socket,
                  "unix socket that receives the pty master");
  cmd->add_flag("-t,--tty", options->tty, "allocate a pseudo-TTY");
  cmd->add_option("-e,--env", options->env, "set an environment variable (KEY=VALUE)");
  cmd->add_option("--cwd", options->cwd, "working directory inside the container");
  cmd->add_option("-u,--user", options->user, "uid[:gid]");
  cmd->add_option("-g,--additional-gids", options->additional_gids, "additional gids");
  cmd->add_option("-c,--cap", options->capabilities, "add a capability (CAP_...)");
  cmd->add_flag("--no-new-privs", options->no_new_privs, "set no_new_privs");
  cmd->add_option("--preserve-fds", options->preserve_fds, "pass N extra fds (3 .. 3+N-1)");
  cmd->add_option("--process-label", options->process_label, "SELinux label of the process");
  cmd->add_option("--apparmor", options->apparmor_profile, "AppArmor profile of the process");
  cmd->add_option("id", *id, "container id")->required();
  // Everything after the id belongs to the command, flags included (exec ID sh -c ...).
  cmd->prefix_command();
  cmd->footer("Usage: barge exec [OPTIONS] ID COMMAND [ARGS...]");
  cmd->callback([&ctx, cmd, options, id] {
    options->args = cmd->remaining();
    // CLI11 keeps unknown flags in remaining() instead of failing; no command starts with '-'.
    if (!options->args.empty() && options->args.front().starts_with('-')) {
      throw CLI::ExtrasError(cmd->get_name(), {options->args.front()});
    }
    ctx.starts_container_process = true;
    ctx.action = [&ctx, options, id] { return runtime::exec(ctx.global, *id, *options); };
  });
}

}  // namespace barge::cli

#include <iostream>

#include "cli/commands.hpp"

namespace barge::cli {
namespace {

void add_create_flags(CLI::App* cmd, runtime::CreateOptions& options) {
  cmd->add_option("-b,--bundle", options.bundle, "path to the bundle directory")
      ->capture_default_str();
  cmd->add_option("--pid-file", options.pid_file, "file to write the container init pid to");
  cmd->add_option("--console-socket", options.console_socket,
                  "unix socket that receives the pty master (process.terminal)");
  cmd->add_flag("--no-pivot", options.no_pivot,
                "move the rootfs with MS_MOVE instead of pivot_root");
  cmd->add_flag("--no-new-keyring", options.no_new_keyring, "do not create a session keyring");
  cmd->add_option("--preserve-fds", options.preserve_fds,
                  "pass N extra fds (3 .. 3+N-1) into the container");
}

void add_create(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("create", "create a container (the process waits for start)");
  auto options = std::make_shared<runtime::CreateOptions>();
  auto id = std::make_shared<std::string>();
  add_create_flags(cmd, *options);
  cmd->add_option("id", *id, "container id")->required();
  cmd->callback([&ctx, options, id] {
    ctx.starts_container_process = true;
    ctx.action = [&ctx, options, id] {
      runtime::create(ctx.global, *id, *options);
      return 0;
    };
  });
}

void add_run(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("run", "create and start a container, wait for it, delete it");
  auto options = std::make_shared<runtime::CreateOptions>();
  auto id = std::make_shared<std::string>();
  auto detach = std::make_shared<bool>(false);
  add_create_flags(cmd, *options);
  cmd->add_flag("-d,--detach", *detach, "return after start instead of waiting");
  cmd->add_option("id", *id, "container id")->required();
  cmd->callback([&ctx, options, id, detach] {
    ctx.starts_container_process = true;
    ctx.action = [&ctx, options, id, detach] {
      return runtime::run(ctx.global, *id, *options, *detach);
    };
  });
}

void add_start(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("start", "run the user process of a created container");
  auto id = std::make_shared<std::string>();
  cmd->add_option("id", *id, "container id")->required();
  cmd->callback([&ctx, id] {
    ctx.action = [&ctx, id] {
      runtime::start(ctx.global, *id);
      return 0;
    };
  });
}

void add_kill(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("kill", "send a signal (default TERM) to the container");
  auto id = std::make_shared<std::string>();
  auto signal = std::make_shared<std::string>("TERM");
  auto all = std::make_shared<bool>(false);
  cmd->add_flag("-a,--all", *all, "signal every process in the container's cgroup");
  cmd->add_option("id", *id, "container id")->required();
  cmd->add_option("signal", *signal, "signal name or number")->capture_default_str();
  cmd->callback([&ctx, id, signal, all] {
    ctx.action = [&ctx, id, signal, all] {
      runtime::kill(ctx.global, *id, runtime::parse_signal(*signal), *all);
      return 0;
    };
  });
}

void add_delete(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("delete", "delete a container and everything it holds");
  auto id = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  cmd->add_flag("-f,--force", *force, "kill a running container first (SIGKILL)");
  cmd->add_option("id", *id, "container id")->required();
  cmd->callback([&ctx, id, force] {
    ctx.action = [&ctx, id, force] {
      runtime::remove(ctx.global, *id, *force);
      return 0;
    };
  });
}

}  // namespace

void add_lifecycle_commands(CLI::App& app, Context& context) {
  add_create(app, context);
  add_start(app, context);
  add_run(app, context);
  add_kill(app, context);
  add_delete(app, context);
}

}  // namespace barge::cli

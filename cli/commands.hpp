// Registration of barge's subcommands on the CLI11 app. Parsing and printing only: every
// action calls into libbarge.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "runtime/container.hpp"

namespace barge::cli {

// A subcommand's action returns the process exit code.
using Action = std::function<int()>;

struct Context {
  runtime::GlobalOptions global;
  bool systemd_cgroup = false;
  Action action;  // set by the subcommand that was parsed
  // Set by the commands that put a process into a container (create, run, exec and their
  // `container` twins): only they pay for the CVE-2019-5736 protection (main.cpp).
  bool starts_container_process = false;
};

void add_lifecycle_commands(CLI::App& app, Context& context);
void add_info_commands(CLI::App& app, Context& context);
void add_image_commands(CLI::App&, Context&);
void add_cgroup_commands(CLI::App& app, Context& context);
void add_exec_command(CLI::App& app, Context& context);
void add_container_commands(CLI::App& app, Context& context);

}  // namespace barge::cli

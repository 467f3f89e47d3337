#include <seccomp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string_view>

#include "cli/commands.hpp"
#include "common/error.hpp"
#include "common/log.hpp"
#include "runtime/exe_protection.hpp"
#include "runtime/spec.hpp"

namespace {

std::string version_text() {
  const scmp_version* seccomp = seccomp_version();
  return std::string("barge version ") + BARGE_VERSION +
         "\nspec: " + barge::spec::kRuntimeSpecVersion +
         "\nlibseccomp: " + std::to_string(seccomp->major) + "." + std::to_string(seccomp->minor) +
         "." + std::to_string(seccomp->micro);
}

// runc's error contract: the message goes to the log (JSON for containerd) and to stderr.
int report_failure(const std::string& message) {
  barge::log::error(message);
  if (!barge::log::logs_to_stderr()) std::cerr << message << "\n";
  return 1;
}

// Building every subcommand's options costs more than the rest of a short command (state, kill,
// start, delete) together, and containerd runs several per container: register only the group
// that defines the command on the line, all of them when there is none (help, unknown words).
using AddCommands = void (*)(CLI::App&, barge::cli::Context&);
struct CommandGroup {
  std::string_view names;  // space-separated, with a space at both ends
  AddCommands add;
};
constexpr CommandGroup kCommandGroups[] = {
    {" create start run kill delete ", barge::cli::add_lifecycle_commands},
    {" features state list spec ", barge::cli::add_info_commands},
    {" pause resume ps events update ", barge::cli::add_cgroup_commands},
    {" exec ", barge::cli::add_exec_command},
    {" image ", barge::cli::add_image_commands},
    {" container network ", barge::cli::add_container_commands},
};

// The first word that is not a global option or its value, as CLI11 will see it.
std::string_view command_word(int argc, char** argv) {
  constexpr std::string_view kOptionsWithValue[] = {"--root", "--log", "--log-format", "--rootless",
                                                    "--criu"};
  for (int i = 1; i < argc; ++i) {
    std::string_view word = argv[i];
    if (!word.starts_with('-')) return word;
    if (std::ranges::find(kOptionsWithValue, word) != std::end(kOptionsWithValue)) ++i;
  }
  return {};
}

void add_commands(CLI::App& app, barge::cli::Context& context, std::string_view command) {
  for (const auto& group : kCommandGroups) {
    if (!command.empty() &&
        group.names.find(" " + std::string(command) + " ") != std::string_view::npos) {
      group.add(app, context);
      return;
    }
  }
  for (const auto& group : kCommandGroups) group.add(app, context);
}

bool parse_only_requested() {
  const char* value = std::getenv("BARGE_PARSE_ONLY");
  return value && std::string_view(value) == "1";
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{"barge: an OCI container runtime (runc-compatible command line)", "barge"};
  app.require_subcommand(1);
  app.set_version_flag("-v,--version", version_text());
  barge::cli::Context context;
  barge::log::Options log_options;
  std::string log_format = "text";
  std::string rootless;
  std::string criu;
  app.add_option("--root", context.global.root, "root directory for container state")
      ->capture_default_str();
  app.add_option("--log", log_options.file, "log file (default: stderr)");
  app.add_option("--log-format", log_format, "log format: text or json")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--debug", log_options.debug, "enable debug logging");
  app.add_flag("--systemd-cgroup", context.systemd_cgroup, "use the systemd cgroup driver");
  app.add_option("--rootless", rootless, "ignored: rootless mode is detected (runc compat)");
  app.add_option("--criu", criu, "ignored: checkpointing is not supported (runc compat)");
  add_commands(app, context, command_word(argc, argv));

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11 only says "A subcommand is required" when the first word names no command.
    if (app.get_subcommands().empty() && !app.remaining().empty()) {
      std::cerr << "barge: unknown command \"" << app.remaining().front()
                << "\" (see barge --help)\n";
      return 1;
    }
    app.exit(e);
    return 1;
  }
  // Hidden test hook: the client argv fixtures (tests/data/client-argv) check that every command
  // line containerd and podman pass is accepted, without running anything.
  if (parse_only_requested()) return 0;
  log_options.format = log_format == "json" ? barge::log::Format::json : barge::log::Format::text;
  barge::log::configure(log_options);
  try {
    if (context.systemd_cgroup) {
      throw barge::Error("--systemd-cgroup: the systemd cgroup driver is not supported yet");
    }
    // Before anything is created: the re-exec starts this command over from the unwritable
    // binary. barge_unprotected (tests only, see CMakeLists.txt) is built without it to show
    // that the escape tests catch an unprotected runtime.
#ifndef BARGE_UNPROTECTED_FOR_TESTS
    if (context.starts_container_process) barge::runtime::run_from_unwritable_binary(argv);
#endif
    return context.action ? context.action() : 0;
  } catch (const barge::Error& e) {
    return report_failure(e.what());
  } catch (const std::exception& e) {
    return report_failure(std::string("internal error: ") + e.what());
  }
}

int main(int argc, char** argv) {
  try {
    return run_cli(argc, argv);
  } catch (...) {
    return report_failure("internal error: unexpected exception");
  }
}

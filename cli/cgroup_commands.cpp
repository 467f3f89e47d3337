// pause, resume, ps, update, events: runc's flags and output formats.
#include <charconv>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cgroups/resources_json.hpp"
#include "cli/commands.hpp"
#include "common/error.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "runtime/cgroup_ops.hpp"

namespace barge::cli {
namespace {

void add_id_command(CLI::App& app, Context& ctx, const char* name, const char* description,
                    void (*operation)(const runtime::GlobalOptions&, const std::string&)) {
  auto* cmd = app.add_subcommand(name, description);
  auto id = std::make_shared<std::string>();
  cmd->add_option("id", *id, "container id")->required();
  cmd->callback([&ctx, id, operation] {
    ctx.action = [&ctx, id, operation] {
      operation(ctx.global, *id);
      return 0;
    };
  });
}

void add_ps(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("ps", "list the processes running inside a container");
  auto id = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("table");
  cmd->add_option("-f,--format", *format, "table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  cmd->add_option("id", *id, "container id")->required();
  // Everything after the id goes to ps(1), options included (runc: `ps ID -o pid,comm`).
  cmd->prefix_command();
  cmd->callback([&ctx, cmd, id, format] {
    auto ps_args = std::make_shared<std::vector<std::string>>(cmd->remaining());
    ctx.action = [&ctx, id, format, ps_args] {
      if (*format == "json") {
        if (!ps_args->empty()) throw Error("ps: arguments for ps(1) need --format table");
        std::cout << nlohmann::json(runtime::container_pids(ctx.global, *id)).dump() << "\n";
      } else {
        std::cout << runtime::ps_table(ctx.global, *id, *ps_args);
      }
      return 0;
    };
  });
}

// Go's time.ParseDuration for what --interval realistically gets: "5s", "100ms", "1.5s", "1m".
std::chrono::milliseconds parse_interval(const std::string& text) {
  static const std::pair<const char*, double> kUnits[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
  size_t end = 0;
  double value = 0;
  try {
    value = std::stod(text, &end);
  } catch (const std::exception&) {
    throw Error("--interval: invalid duration \"" + text + "\"");
  }
  std::string unit = text.substr(end);
  for (auto [name, factor] : kUnits) {
    if (unit != name) continue;
    auto ms = std::chrono::milliseconds(std::llround(value * factor));
    if (ms.count() <= 0) throw Error("--interval: duration must be positive: \"" + text + "\"");
    return ms;
  }
  throw Error("--interval: invalid duration \"" + text + "\" (use e.g. 5s or 500ms)");
}

void add_events(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "events", "display container events: OOM notifications and cpu, memory, I/O statistics");
  auto id = std::make_shared<std::string>();
  auto stats = std::make_shared<bool>(false);
  auto interval = std::make_shared<std::string>("5s");
  cmd->add_flag("--stats", *stats, "display the container's stats then exit");
  cmd->add_option("--interval", *interval, "stats collection interval")->capture_default_str();
  cmd->add_option("id", *id, "container id")->required();
  cmd->callback([&ctx, id, stats, interval] {
    ctx.action = [&ctx, id, stats, interval] {
      if (*stats) {
        std::cout << runtime::stats_event_json(ctx.global, *id) << "\n";
        return 0;
      }
      runtime::stream_events(ctx.global, *id, parse_interval(*interval),
                             [](const std::string& line) { std::cout << line << std::endl; });
      return 0;
    };
  });
}

// runc's update flags, kept as text until the action so sizes are parsed with runc's rules.
struct UpdateFlags {
  std::string resources_file;
  std::map<std::string, std::string> values;  // flag name → text, only the flags given
};

template <typename T>
T parse_number(const std::string& flag, const std::string& text) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size())
    throw Error("--" + flag + ": invalid value \"" + text + "\"");
  return value;
}

spec::Resources resources_from_flags(const std::map<std::string, std::string>& values) {
  spec::Resources r;
  auto memory = [&]() -> spec::MemoryResources& {
    return r.memory ? *r.memory : r.memory.emplace();
  };
  auto cpu = [&]() -> spec::CpuResources& { return r.cpu ? *r.cpu : r.cpu.emplace(); };
  for (const auto& [flag, text] : values) {
    auto size = [&, &f = flag, &t = text] { return cgroups::parse_memory_size(t, "--" + f); };
    if (flag == "memory") memory().limit = size();
    if (flag == "memory-reservation") memory().reservation = size();
    if (flag == "memory-swap") memory().swap = size();
    if (flag == "kernel-memory" || flag == "kernel-memory-tcp")
      log::warn("--" + flag + " is ignored: kernel memory limits are deprecated by the kernel");
    if (flag == "cpu-share") cpu().shares = parse_number<uint64_t>(flag, text);
    if (flag == "cpu-quota") cpu().quota = parse_number<int64_t>(flag, text);
    if (flag == "cpu-period") cpu().period = parse_number<uint64_t>(flag, text);
    if (flag == "cpu-rt-period") cpu().realtime_period = parse_number<uint64_t>(flag, text);
    if (flag == "cpu-rt-runtime") cpu().realtime_runtime = parse_number<int64_t>(flag, text);
    if (flag == "cpuset-cpus") cpu().cpus = text;
    if (flag == "cpuset-mems") cpu().mems = text;
    if (flag == "pids-limit") r.pids_limit = parse_number<int64_t>(flag, text);
    if (flag == "blkio-weight") {
      auto weight = parse_number<uint16_t>(flag, text);
      if (weight != 0 && (weight < 10 || weight > 1000))
        throw Error("--blkio-weight: " + text + " is out of range 10-1000");
      r.block_io.emplace().weight = weight;
    }
  }
  return r;
}

spec::Resources resources_from_file(const std::string& file) {
  if (file == "-") {
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    return cgroups::parse_resources_json(text, "stdin");
  }
  return cgroups::parse_resources_json(read_file(file), file);
}

void add_update(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("update", "update container resource constraints");
  auto id = std::make_shared<std::string>();
  auto flags = std::make_shared<UpdateFlags>();
  cmd->add_option("-r,--resources", flags->resources_file,
                  "file with the linux.resources JSON to apply ('-': stdin); other flags are "
                  "then ignored");
  static const std::pair<const char*, const char*> kFlags[] = {
      {"memory", "memory limit (bytes, or with a k/m/g suffix)"},
      {"memory-swap", "total memory + swap limit; -1 for unlimited swap"},
      {"memory-reservation", "memory soft limit"},
      {"kernel-memory", "ignored (kernel memory limits are deprecated)"},
      {"kernel-memory-tcp", "ignored (kernel memory limits are deprecated)"},
      {"cpu-share", "CPU shares (relative weight)"},
      {"cpu-quota", "CFS quota in microseconds per period"},
      {"cpu-period", "CFS period in microseconds"},
      {"cpu-rt-period", "realtime period in microseconds"},
      {"cpu-rt-runtime", "realtime runtime in microseconds"},
      {"cpuset-cpus", "CPUs to use"},
      {"cpuset-mems", "memory nodes to use"},
      {"pids-limit", "maximum number of pids"},
      {"blkio-weight", "block I/O weight, 10-1000"}};
  for (auto [name, help] : kFlags) {
    std::string names = "--" + std::string(name);
    if (std::string_view(name) == "cpu-share") names += ",--cpu-shares";
    cmd->add_option_function<std::string>(
        names, [flags, flag = std::string(name)](const std::string& v) { flags->values[flag] = v; },
        help);
  }
  cmd->add_option("id", *id, "container id")->required();
  cmd->callback([&ctx, id, flags] {
    ctx.action = [&ctx, id, flags] {
      spec::Resources changes = flags->resources_file.empty()
                                    ? resources_from_flags(flags->values)
                                    : resources_from_file(flags->resources_file);
      runtime::update(ctx.global, *id, changes);
      return 0;
    };
  });
}

}  // namespace

void add_cgroup_commands(CLI::App& app, Context& context) {
  add_id_command(app, context, "pause", "suspend every process in the container (freezer)",
                 runtime::pause);
  add_id_command(app, context, "resume", "resume a paused container", runtime::resume);
  add_ps(app, context);
  add_events(app, context);
  add_update(app, context);
}

}  // namespace barge::cli

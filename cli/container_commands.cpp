// `barge container ...` and `barge network ...`: containers from images with networking, in the
// shape Docker and podman users know. Parsing and printing only; the logic is in engine/ and
// network/.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/table.hpp"
#include "common/error.hpp"
#include "common/file.hpp"
#include "engine/container.hpp"

namespace barge::cli {
namespace {

using Json = nlohmann::json;

struct Shared {
  engine::Paths paths;
  network::Config net = network::Config::from_environment();
};
using SharedPtr = std::shared_ptr<Shared>;

// --root comes from the global options, parsed before any action runs.
engine::Paths paths_of(const Context& ctx, const Shared& shared) {
  engine::Paths paths = shared.paths;
  paths.root = ctx.global.root;
  return paths;
}

void add_network_flags(CLI::App* cmd, network::Config& net) {
  cmd->add_option("--bridge", net.bridge,
                  "bridge of the default network (env BARGE_NETWORK_BRIDGE)")
      ->capture_default_str();
  cmd->add_option("--subnet", net.subnet,
                  "its IPv4 subnet (env BARGE_NETWORK_SUBNET; default: a free private one)");
  cmd->add_option("--chain-prefix", net.chain_prefix,
                  "prefix of barge's iptables chains (env BARGE_NETWORK_CHAIN_PREFIX)")
      ->capture_default_str();
  cmd->add_option("--network-state", net.state_dir,
                  "directory of the address and port state (env BARGE_NETWORK_STATE)")
      ->capture_default_str();
}

std::string ports_text(const std::vector<network::PortMapping>& ports) {
  std::string text;
  for (const auto& p : ports) text += (text.empty() ? "" : ", ") + network::describe(p);
  return text;
}

Json info_json(const engine::ContainerInfo& info) {
  Json ports = network::ports_to_json(info.ports);
  Json out = {{"id", info.id},           {"image", info.image},    {"status", info.status},
              {"created", info.created}, {"pid", info.pid},        {"network", info.network},
              {"ports", ports},          {"command", info.command}};
  out["address"] = info.address ? network::to_string(*info.address) : "";
  return out;
}

void add_run(CLI::App& parent, Context& ctx, const SharedPtr& shared) {
  auto* cmd = parent.add_subcommand("run", "run a container from an image");
  auto options = std::make_shared<engine::RunOptions>();
  cmd->add_flag("-d,--detach", options->detach, "run in the background, print the id");
  cmd->add_flag("--rm", options->remove, "remove the container when it exits");
  cmd->add_option("--name", options->name, "container name (its id)");
  // One value per flag: "-p 80 IMAGE" must not take the image as a second port.
  cmd->add_option("-e,--env", options->env, "set an environment variable (KEY=VALUE or KEY)")
      ->allow_extra_args(false);
  cmd->add_option("-p,--publish", options->publish,
                  "publish [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp] (ranges allowed)")
      ->allow_extra_args(false);
  cmd->add_flag("-P,--publish-all", options->publish_all,
                "publish the image's exposed ports on dynamic host ports");
  cmd->add_option("--network,--net", options->network, "bridge, none, host or container:ID")
      ->capture_default_str();
  cmd->add_option("--hostname", options->hostname, "hostname (default: the id)");
  cmd->add_option("-v,--volume", options->volumes, "bind mount HOST_PATH:CONTAINER_PATH[:ro]")
      ->allow_extra_args(false);
  cmd->add_option("--cgroup-parent", options->cgroup_parent,
                  "cgroup the container's cgroup goes under (default /barge)");
  cmd->add_option("--entrypoint", options->entrypoint,
                  "replace the image's Entrypoint (\"\" for none)");
  cmd->add_option("image", options->image, "image reference")->required();
  // Everything after the image is the command, flags included (run IMAGE sh -c ...).
  cmd->prefix_command();
  cmd->footer("Usage: barge container run [OPTIONS] IMAGE [COMMAND [ARGS...]]");
  cmd->callback([&ctx, cmd, shared, options] {
    options->command = cmd->remaining();
    ctx.starts_container_process = true;
    ctx.action = [&ctx, shared, options] {
      options->net = shared->net;
      auto result = engine::run(paths_of(ctx, *shared), *options);
      if (options->detach) std::cout << result.id << "\n";
      return result.exit_code;
    };
  });
}

void add_ls(CLI::App& parent, Context& ctx, const SharedPtr& shared) {
  auto* cmd = parent.add_subcommand("ls", "list containers");
  cmd->alias("list")->alias("ps");
  auto format = std::make_shared<std::string>("table");
  cmd->add_option("-f,--format", *format, "table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  cmd->callback([&ctx, shared, format] {
    ctx.action = [&ctx, shared, format] {
      auto infos = engine::list(paths_of(ctx, *shared));
      if (*format == "json") {
        Json out = Json::array();
        for (const auto& info : infos) out.push_back(info_json(info));
        std::cout << out.dump() << "\n";
        return 0;
      }
      std::vector<std::vector<std::string>> rows = {
          {"ID", "IMAGE", "STATUS", "ADDRESS", "PORTS", "CREATED"}};
      for (const auto& info : infos)
        rows.push_back({info.id, info.image, info.status,
                        info.address ? network::to_string(*info.address) : "-",
                        ports_text(info.ports), info.created});
      print_columns(rows);
      return 0;
    };
  });
}

void add_port(CLI::App& parent, Context& ctx, const SharedPtr& shared) {
  auto* cmd = parent.add_subcommand("port", "print a container's published ports");
  auto id = std::make_shared<std::string>();
  cmd->add_option("id", *id, "container id")->required();
  cmd->callback([&ctx, shared, id] {
    ctx.action = [&ctx, shared, id] {
      for (const auto& p : engine::inspect(paths_of(ctx, *shared), *id).ports)
        std::cout << p.container_port << "/" << network::protocol_name(p.protocol) << " -> "
                  << network::to_string(p.host_ip) << ":" << p.host_port << "\n";
      return 0;
    };
  });
}

void add_inspect(CLI::App& parent, Context& ctx, const SharedPtr& shared) {
  auto* cmd = parent.add_subcommand("inspect", "print a container's details as JSON");
  auto id = std::make_shared<std::string>();
  cmd->add_option("id", *id, "container id")->required();
  cmd->callback([&ctx, shared, id] {
    ctx.action = [&ctx, shared, id] {
      std::cout << info_json(engine::inspect(paths_of(ctx, *shared), *id)).dump(2) << "\n";
      return 0;
    };
  });
}

void add_logs(CLI::App& parent, Context& ctx, const SharedPtr& shared) {
  auto* cmd = parent.add_subcommand("logs", "print the output of a detached container");
  auto id = std::make_shared<std::string>();
  cmd->add_option("id", *id, "container id")->required();
  cmd->callback([&ctx, shared, id] {
    ctx.action = [&ctx, shared, id] {
      std::string path = engine::log_path(paths_of(ctx, *shared), *id);
      if (path_exists(path)) std::cout << read_file(path) << std::flush;
      return 0;
    };
  });
}

void add_exec(CLI::App& parent, Context& ctx, const SharedPtr& shared) {
  auto* cmd = parent.add_subcommand("exec", "run a command in a running container");
  auto id = std::make_shared<std::string>();
  auto env = std::make_shared<std::vector<std::string>>();
  auto detach = std::make_shared<bool>(false);
  auto args = std::make_shared<std::vector<std::string>>();
  cmd->add_flag("-d,--detach", *detach, "do not wait for the command");
  cmd->add_option("-e,--env", *env, "set an environment variable (KEY=VALUE)")
      ->allow_extra_args(false);
  cmd->add_option("id", *id, "container id")->required();
  cmd->prefix_command();
  cmd->footer("Usage: barge container exec [OPTIONS] ID COMMAND [ARGS...]");
  cmd->callback([&ctx, cmd, shared, id, env, detach, args] {
    *args = cmd->remaining();
    ctx.starts_container_process = true;
    ctx.action = [&ctx, shared, id, env, detach, args] {
      if (args->empty()) throw barge::Error("container exec: a command is required");
      return engine::exec(paths_of(ctx, *shared), *id, *args, *env, *detach);
    };
  });
}

void add_stop(CLI::App& parent, Context& ctx, const SharedPtr& shared) {
  auto* cmd = parent.add_subcommand("stop", "stop containers: their stop signal, then KILL");
  auto ids = std::make_shared<std::vector<std::string>>();
  auto timeout = std::make_shared<int>(10);
  cmd->add_option("-t,--time", *timeout, "seconds to wait before KILL")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("id", *ids, "container ids")->required();
  cmd->callback([&ctx, shared, ids, timeout] {
    ctx.action = [&ctx, shared, ids, timeout] {
      for (const auto& id : *ids) engine::stop(paths_of(ctx, *shared), id, *timeout);
      return 0;
    };
  });
}

void add_rm(CLI::App& parent, Context& ctx, const SharedPtr& shared) {
  auto* cmd = parent.add_subcommand("rm", "remove containers (with their network and rootfs)");
  auto ids = std::make_shared<std::vector<std::string>>();
  auto force = std::make_shared<bool>(false);
  cmd->add_flag("-f,--force", *force, "kill running containers first");
  cmd->add_option("id", *ids, "container ids")->required();
  cmd->callback([&ctx, shared, ids, force] {
    ctx.action = [&ctx, shared, ids, force] {
      for (const auto& id : *ids) engine::remove(paths_of(ctx, *shared), id, *force);
      return 0;
    };
  });
}

void add_network_subcommands(CLI::App& parent, Context& ctx, const SharedPtr& shared) {
  auto* inspect = parent.add_subcommand("inspect", "print the network's state as JSON");
  inspect->callback([&ctx, shared] {
    ctx.action = [shared] {
      auto record = network::inspect(shared->net);
      std::cout << (record ? network::to_json(*record) : "null\n");
      return 0;
    };
  });
  auto* prune = parent.add_subcommand(
      "prune", "release what crashed runs left: endpoints, veths and chains nobody owns");
  prune->callback([&ctx, shared] {
    ctx.action = [&ctx, shared] {
      int containers = engine::reconcile(paths_of(ctx, *shared));
      auto report = network::prune(shared->net);
      std::cout << "removed " << containers << " half-created containers, " << report.endpoints
                << " stale endpoints, " << report.links << " veths, " << report.chains
                << " chains\n";
      return 0;
    };
  });
  auto* rm = parent.add_subcommand("rm", "remove the bridge, its iptables chains and its state");
  rm->callback([&ctx, shared] {
    ctx.action = [shared] {
      network::destroy(shared->net);
      return 0;
    };
  });
}

}  // namespace

void add_container_commands(CLI::App& app, Context& context) {
  auto shared = std::make_shared<Shared>();
  auto* cmd = app.add_subcommand("container", "run and manage containers from images");
  cmd->require_subcommand(1);
  cmd->add_option("--storage", shared->paths.storage, "image store directory")
      ->capture_default_str();
  cmd->add_option("--data", shared->paths.data, "directory of the containers' bundles and logs")
      ->capture_default_str();
  add_network_flags(cmd, shared->net);
  add_run(*cmd, context, shared);
  add_ls(*cmd, context, shared);
  add_port(*cmd, context, shared);
  add_inspect(*cmd, context, shared);
  add_logs(*cmd, context, shared);
  add_exec(*cmd, context, shared);
  add_stop(*cmd, context, shared);
  add_rm(*cmd, context, shared);

  auto* net = app.add_subcommand("network", "the default bridge network: inspect, prune, rm");
  net->require_subcommand(1);
  net->add_option("--data", shared->paths.data, "directory of the containers (for prune)")
      ->capture_default_str();
  add_network_flags(net, shared->net);
  add_network_subcommands(*net, context, shared);
}

}  // namespace barge::cli

#include <pwd.h>
#include <sys/stat.h>

#include <cstdio>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/table.hpp"
#include "common/error.hpp"
#include "common/file.hpp"
#include "runtime/features.hpp"
#include "runtime/spec.hpp"

namespace barge::cli {
namespace {

std::string owner_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  if (passwd* pw = ::getpwuid(st.st_uid)) return pw->pw_name;
  return "#" + std::to_string(st.st_uid);
}

void print_table(const std::vector<runtime::ContainerInfo>& infos, const std::string& root) {
  std::vector<std::vector<std::string>> rows = {
      {"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"}};
  for (const auto& info : infos) {
    bool alive = info.status != runtime::Status::stopped;
    rows.push_back({info.state.id, std::to_string(alive ? info.state.pid : 0),
                    runtime::status_name(info.status), info.state.bundle, info.state.created,
                    owner_of(root + "/" + info.state.id)});
  }
  print_columns(rows);
}

void print_json(const std::vector<runtime::ContainerInfo>& infos, const std::string& root) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& info : infos) {
    bool alive = info.status != runtime::Status::stopped;
    nlohmann::ordered_json entry = {
        {"ociVersion", info.state.oci_version}, {"id", info.state.id},
        {"pid", alive ? info.state.pid : 0},    {"status", runtime::status_name(info.status)},
        {"bundle", info.state.bundle},          {"rootfs", info.state.rootfs},
        {"created", info.state.created},        {"owner", owner_of(root + "/" + info.state.id)}};
    if (!info.state.annotations.empty()) entry["annotations"] = info.state.annotations;
    out.push_back(entry);
  }
  std::cout << out.dump() << "\n";
}

void add_state(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("state", "print the OCI state of a container as JSON");
  auto id = std::make_shared<std::string>();
  cmd->add_option("id", *id, "container id")->required();
  cmd->callback([&ctx, id] {
    ctx.action = [&ctx, id] {
      std::cout << runtime::state_json(ctx.global, *id) << "\n";
      return 0;
    };
  });
}

void add_list(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("list", "list containers");
  auto format = std::make_shared<std::string>("table");
  auto quiet = std::make_shared<bool>(false);
  cmd->add_option("-f,--format", *format, "table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  cmd->add_flag("-q,--quiet", *quiet, "print only container ids");
  cmd->callback([&ctx, format, quiet] {
    ctx.action = [&ctx, format, quiet] {
      auto infos = runtime::list(ctx.global);
      if (*quiet) {
        for (const auto& info : infos) std::cout << info.state.id << "\n";
      } else if (*format == "json") {
        print_json(infos, ctx.global.root);
      } else {
        print_table(infos, ctx.global.root);
      }
      return 0;
    };
  });
}

void add_spec(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("spec", "write a default config.json into the bundle");
  auto bundle = std::make_shared<std::string>(".");
  auto rootless = std::make_shared<bool>(false);
  cmd->add_option("-b,--bundle", *bundle, "bundle directory")->capture_default_str();
  cmd->add_flag("--rootless", *rootless, "a config for an unprivileged user");
  cmd->callback([&ctx, bundle, rootless] {
    ctx.action = [bundle, rootless] {
      std::string path = *bundle + "/config.json";
      if (path_exists(path)) throw Error("File " + path + " exists. Remove it first");
      write_file(path, spec::default_config_json(*rootless));
      return 0;
    };
  });
}

void add_features(CLI::App& app, Context& ctx) {
  auto* cmd =
      app.add_subcommand("features", "print what this runtime supports (runtime-spec features.md)");
  cmd->callback([&ctx] {
    ctx.action = [] {
      std::cout << runtime::features_json() << "\n";
      return 0;
    };
  });
}

}  // namespace

void add_info_commands(CLI::App& app, Context& context) {
  add_features(app, context);
  add_state(app, context);
  add_list(app, context);
  add_spec(app, context);
}

}  // namespace barge::cli

// `barge image ...`: the image store's command line. Logic lives in image/.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/table.hpp"
#include "image/image.hpp"

namespace barge::cli {
namespace {

struct ImageOptions {
  std::string storage = image::kDefaultStorage;
};
using Shared = std::shared_ptr<ImageOptions>;

std::string short_id(const std::string& digest) {
  return digest.substr(7, 12);
}

void print_table(const std::vector<image::ImageRecord>& records) {
  std::vector<std::vector<std::string>> rows = {{"NAME", "ID", "PLATFORM", "LAYERS", "IMPORTED"}};
  for (const auto& r : records) {
    std::vector<std::string> names = r.names.empty() ? std::vector<std::string>{"<none>"} : r.names;
    for (const auto& name : names)
      rows.push_back(
          {name, short_id(r.digest), r.platform, std::to_string(r.layers.size()), r.imported});
  }
  print_columns(rows);
}

nlohmann::json record_json(const image::ImageRecord& r) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : r.layers)
    layers.push_back({{"digest", l.digest}, {"diffID", l.diff_id}, {"size", l.size}});
  return {{"id", r.digest},         {"names", r.names}, {"config", r.config},
          {"platform", r.platform}, {"layers", layers}, {"imported", r.imported}};
}

void add_import(CLI::App& parent, Context& ctx, const Shared& opts) {
  auto* cmd = parent.add_subcommand("import",
                                    "import an OCI image layout (dir or tar) or a docker "
                                    "save archive");
  auto path = std::make_shared<std::string>();
  auto options = std::make_shared<image::ImportOptions>();
  cmd->add_option("path", *path, "FILE or DIR")->required();
  cmd->add_option("--name", options->name, "name:tag for the imported image");
  cmd->add_option("--platform", options->platform, "os/arch[/variant] to pick from an index")
      ->capture_default_str();
  cmd->callback([&ctx, opts, path, options] {
    ctx.action = [opts, path, options] {
      for (const auto& r : image::import_image(opts->storage, *path, *options)) {
        std::cout << r.digest;
        for (const auto& name : r.names) std::cout << " " << name;
        std::cout << "\n";
      }
      return 0;
    };
  });
}

void add_list(CLI::App& parent, Context& ctx, const Shared& opts) {
  auto* cmd = parent.add_subcommand("list", "list images");
  cmd->alias("ls");
  auto format = std::make_shared<std::string>("table");
  cmd->add_option("-f,--format", *format, "table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  cmd->callback([&ctx, opts, format] {
    ctx.action = [opts, format] {
      auto records = image::list_images(opts->storage);
      if (*format == "json") {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& r : records) out.push_back(record_json(r));
        std::cout << out.dump() << "\n";
      } else {
        print_table(records);
      }
      return 0;
    };
  });
}

void add_ref_command(CLI::App& parent, Context& ctx, const Shared& opts, const char* name,
                     const char* help,
                     const std::function<void(const std::string&, const std::string&)>& run) {
  auto* cmd = parent.add_subcommand(name, help);
  auto ref = std::make_shared<std::string>();
  cmd->add_option("ref", *ref, "image reference")->required();
  cmd->callback([&ctx, opts, ref, run] {
    ctx.action = [opts, ref, run] {
      run(opts->storage, *ref);
      return 0;
    };
  });
}

void add_ref_dir_command(CLI::App& parent, Context& ctx, const Shared& opts, const char* name,
                         const char* help,
                         void (*run)(const std::string&, const std::string&, const std::string&)) {
  auto* cmd = parent.add_subcommand(name, help);
  auto ref = std::make_shared<std::string>();
  auto dir = std::make_shared<std::string>();
  cmd->add_option("ref", *ref, "image reference")->required();
  cmd->add_option("dir", *dir, "directory")->required();
  cmd->callback([&ctx, opts, ref, dir, run] {
    ctx.action = [opts, ref, dir, run] {
      run(opts->storage, *ref, *dir);
      return 0;
    };
  });
}

}  // namespace

void add_image_commands(CLI::App& app, Context& context) {
  auto* cmd = app.add_subcommand("image", "manage images: import, list, bundle, mount");
  cmd->require_subcommand(1);
  auto opts = std::make_shared<ImageOptions>();
  cmd->add_option("--storage", opts->storage, "image store directory")->capture_default_str();
  add_import(*cmd, context, opts);
  add_list(*cmd, context, opts);
  add_ref_command(*cmd, context, opts, "inspect", "print an image's record, manifest and config",
                  [](const std::string& storage, const std::string& ref) {
                    std::cout << image::inspect_image(storage, ref).dump(2) << "\n";
                  });
  add_ref_command(*cmd, context, opts, "rm", "remove an image name (and the image when unnamed)",
                  [](const std::string& storage, const std::string& ref) {
                    image::remove_image(storage, ref);
                  });
  auto* prune = cmd->add_subcommand("prune", "remove unnamed images and unused blobs and layers");
  prune->callback([&context, opts] {
    context.action = [opts] {
      auto report = image::prune(opts->storage);
      std::cout << "removed " << report.images << " images, " << report.blobs << " blobs ("
                << report.bytes << " bytes), " << report.layers << " layers\n";
      return 0;
    };
  });
  add_ref_dir_command(*cmd, context, opts, "bundle",
                      "write DIR/config.json from the image and mount its rootfs at DIR/rootfs",
                      &image::make_bundle);
  add_ref_dir_command(*cmd, context, opts, "mount", "mount the image's rootfs at DIR",
                      &image::mount_image);
  auto* unmount = cmd->add_subcommand("unmount",
                                      "unmount DIR (a mount or a bundle) and drop its "
                                      "writable layer");
  unmount->alias("umount");
  auto dir = std::make_shared<std::string>();
  unmount->add_option("dir", *dir, "mount point or bundle directory")->required();
  unmount->callback([&context, opts, dir] {
    context.action = [opts, dir] {
      image::unmount_image(opts->storage, *dir);
      return 0;
    };
  });
}

}  // namespace barge::cli

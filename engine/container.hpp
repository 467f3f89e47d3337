// `barge container ...`: containers run from images, the way Docker, podman and nerdctl users
// know them, on top of the runc-compatible runtime (runtime/), the image store (image/) and the
// network (network/).
//
// A container is DATA/<id>/, which is also its bundle:
//   container.json   what it was run with: image, command, network mode and settings, ports
//   creating         present until `run` has started it: the pid of the barge process creating it
//   config.json      the image's bundle config with the run's changes (image::make_bundle)
//   rootfs/          the image's overlay (a private writable layer)
//   hosts hostname resolv.conf   bind-mounted over the container's /etc files
//   container.log    stdout and stderr of a detached container
// The runtime state lives as for any container in ROOT/<id>/ (the same id).
//
// `run` claims DATA/<id> by renaming a prepared directory (holding the creating marker) into
// place, so a run killed at any point leaves either nothing or a marker naming a dead process; the
// next `run` (and `rm`) removes such leftovers completely: runtime state, network endpoint,
// overlay mount, directory.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "image/image.hpp"
#include "network/network.hpp"

namespace barge::engine {

struct Paths {
  std::string root = "/run/barge";  // runtime state (the global --root)
  std::string storage = image::kDefaultStorage;
  std::string data = "/run/barge-containers";
};

struct RunOptions {
  std::string image;
  std::vector<std::string> command;       // replaces the image's Cmd (its Entrypoint stays)
  std::optional<std::string> entrypoint;  // replaces the image's Entrypoint ("" = none)
  std::string name;                       // the container id; generated when empty
  bool detach = false;
  bool remove = false;  // --rm: remove the container once it exits
  std::vector<std::string> env;
  std::vector<std::string> publish;  // -p specs
  bool publish_all = false;          // -P: the image's ExposedPorts on dynamic host ports
  std::string network = "bridge";    // bridge, none, host, container:ID
  std::string hostname;              // default: the id (at most 63 characters)
  std::vector<std::string> volumes;  // HOST_PATH:CONTAINER_PATH[:ro] bind mounts
  std::string cgroup_parent;         // linux.cgroupsPath = PARENT/<id> (default /barge/<id>)
  network::Config net;
};

struct RunResult {
  std::string id;
  int exit_code = 0;  // foreground runs: the process's (128+signal when killed)
};

struct ContainerInfo {
  std::string id;
  std::string image;
  std::string status;  // creating, created, running, paused, stopped
  std::string created;
  pid_t pid = 0;
  std::string network;  // the mode
  std::optional<network::Ipv4> address;
  std::vector<network::PortMapping> ports;
  std::vector<std::string> command;
};

RunResult run(const Paths& paths, const RunOptions& options);
std::vector<ContainerInfo> list(const Paths& paths);
ContainerInfo inspect(const Paths& paths, const std::string& id);
std::string log_path(const Paths& paths, const std::string& id);
// Foreground exec returns the process's exit code, detached 0.
int exec(const Paths& paths, const std::string& id, const std::vector<std::string>& args,
         const std::vector<std::string>& env, bool detach);
// The image's stop signal (default TERM), then KILL after timeout_seconds; frees the ports.
void stop(const Paths& paths, const std::string& id, int timeout_seconds);
// A running container needs force (it is killed).
void remove(const Paths& paths, const std::string& id, bool force);
// Removes what runs killed midway left; returns how many containers.
int reconcile(const Paths& paths);

}  // namespace barge::engine

// Fixture of the networking tests: `barge container` runs of a busybox image on a test-only
// network (bridge bt<pid><n>, chain prefix BT<pid><n>, a free 10.214.X.0/24, state, data and
// --root under the test's temp dir), kernel inspection (ip -j, iptables-save, netns), and a
// teardown that checks nothing was left (links, chains, IPAM entries, mounts, dirs) and then
// removes whatever a failing test left, the bridge and the base chains included.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/harness.hpp"

namespace barge::test {

class NetworkTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  void SetUp() override;
  void TearDown() override;

  // `barge --root R container --storage S --data D <network flags> args...`
  ProcResult container(const std::vector<std::string>& args, const ProcOptions& options = {});
  // `barge network <network flags> args...`
  ProcResult network(const std::vector<std::string>& args);
  // `container run -d --cgroup-parent /barge-test run_args...`; asserts success, returns the id.
  std::string run_detached(const std::vector<std::string>& run_args);
  // A detached busybox httpd answering "hello from NAME" on container port 80.
  std::string run_httpd(const std::string& name, const std::vector<std::string>& extra = {});
  Json inspect(const std::string& id);
  pid_t pid_of(const std::string& id);
  // HTTP GET with busybox wget bounded by `timeout` (its own -T crashes), retried while the
  // server may still be starting; in the given network namespace path when not empty. "" on
  // failure.
  std::string http_get(const std::string& url, const std::string& netns = "");
  // The same as a shell command, to run inside a container.
  static std::string http_get_command(const std::string& url, const std::string& wget = "wget");
  // One UDP datagram to address:port from the host, the answer or "" after a bounded wait.
  std::string udp_exchange(const std::string& address, uint16_t port, const std::string& payload);
  // `sh -c command` inside a network namespace path.
  ProcResult in_netns(const std::string& netns, const std::string& command);

  // Kernel and on-disk views of the test network.
  Json links_on_bridge();
  std::vector<std::string> container_chains();  // PREFIX-<8 hex> in iptables-save
  Json ipam_state();
  // Everything the removed containers may have left: veths on the bridge, container chains,
  // IPAM endpoints, data dirs, runtime state, mounts under the test dir. Empty when clean.
  std::vector<std::string> container_leftovers();

  std::string dir_, root_, data_, state_;
  std::string bridge_, prefix_, subnet_, gateway_;
  int third_octet_ = 0;  // X of 10.214.X.0/24 (tests reuse it for their own 10.215.X.0/30)
  static std::string store_;
};

std::string run_shell(const std::string& command, ProcResult* result = nullptr);

// A process of the test's own running in the background (stdio on /dev/null), SIGKILLed by pid
// when this goes out of scope.
class Background {
 public:
  explicit Background(const std::vector<std::string>& argv);
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  ~Background();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

}  // namespace barge::test

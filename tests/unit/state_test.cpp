#include "runtime/state.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/file.hpp"
#include "runtime/container.hpp"

using namespace barge::runtime;

namespace {

std::string temp_root() {
  char tmpl[] = "/tmp/barge-state-test-XXXXXX";
  return ::mkdtemp(tmpl);
}

ContainerState sample_state() {
  ContainerState s;
  s.id = "abc";
  s.oci_version = "1.2.0";
  s.pid = ::getpid();
  s.pid_start_time = process_start_time(::getpid()).value();
  s.bundle = "/b";
  s.rootfs = "/b/rootfs";
  s.created = "2026-01-01T00:00:00.000000000Z";
  s.cgroup_path = "";
  s.annotations = {{"k", "v"}};
  return s;
}

}  // namespace

TEST(State, FileRoundTrip) {
  ContainerState s = sample_state();
  ContainerState back = from_state_file_json(to_state_file_json(s));
  EXPECT_EQ(back.id, s.id);
  EXPECT_EQ(back.pid, s.pid);
  EXPECT_EQ(back.pid_start_time, s.pid_start_time);
  EXPECT_EQ(back.annotations, s.annotations);
}

TEST(State, OciJsonHasRuncFields) {
  auto j = nlohmann::json::parse(to_oci_state_json(sample_state(), Status::running));
  for (const char* key :
       {"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner", "annotations"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["status"], "running");
  EXPECT_EQ(nlohmann::json::parse(to_oci_state_json(sample_state(), Status::stopped))["pid"], 0);
}

TEST(State, CorruptStateFileIsAnError) {
  EXPECT_THROW(from_state_file_json("{"), barge::Error);
}

TEST(State, StartTimeOfMissingProcessIsEmpty) {
  EXPECT_TRUE(process_start_time(::getpid()).has_value());
  EXPECT_FALSE(process_start_time(0).has_value());
  EXPECT_FALSE(process_start_time(999999999).has_value());
}

TEST(State, ClaimIsExclusiveAndStatusFollowsProcess) {
  std::string root = temp_root();
  {
    StateDir dir = StateDir::claim(root, "c1");
    EXPECT_FALSE(dir.has_state());
    try {
      StateDir::claim(root, "c1");
      FAIL() << "second claim succeeded";
    } catch (const barge::Error& e) {
      EXPECT_NE(std::string(e.what()).find("container with id exists: c1"), std::string::npos);
    }
    ContainerState s = sample_state();
    dir.save(s);
    EXPECT_EQ(dir.status(s), Status::running);
    s.pid_start_time += 1;  // the pid now belongs to "another" process: reuse guard
    EXPECT_EQ(dir.status(s), Status::stopped);
    dir.remove();
  }
  EXPECT_THROW(StateDir::open(root, "c1"), barge::Error);
  barge::remove_tree(root);
}

TEST(State, RejectsBadIds) {
  for (const char* id : {"", ".", "..", "a/b", "a b", "x\n"})
    EXPECT_THROW(validate_id(id), barge::Error) << id;
  EXPECT_NO_THROW(validate_id("abc-DEF_1.2+3"));
}

TEST(Signals, NamesAndNumbers) {
  EXPECT_EQ(parse_signal("KILL"), SIGKILL);
  EXPECT_EQ(parse_signal("SIGKILL"), SIGKILL);
  EXPECT_EQ(parse_signal("sigterm"), SIGTERM);
  EXPECT_EQ(parse_signal("9"), 9);
  EXPECT_EQ(parse_signal("USR1"), SIGUSR1);
  EXPECT_EQ(parse_signal("RTMIN+1"), SIGRTMIN + 1);
  EXPECT_THROW(parse_signal("FOO"), barge::Error);
  EXPECT_THROW(parse_signal("0"), barge::Error);
  EXPECT_THROW(parse_signal("999"), barge::Error);
}

// A barge killed in the middle of create leaves a preliminary record (pid 0); state reports
// "creating" and delete still finds and removes everything the create had made.
#include <signal.h>

#include <fstream>

#include "tests/integration/harness.hpp"

namespace barge::test {
namespace {

class Recovery : public RuntimeTest {};

TEST_F(Recovery, DeleteAfterACrashedCreateRemovesCgroupStateAndProcess) {
  if (!testing_barge()) GTEST_SKIP() << "barge's state file format";
  std::string id = create_container({"sleep", "60"});
  auto st = state(id);
  ASSERT_TRUE(st);
  int pid = (*st)["pid"].get<int>();
  ASSERT_TRUE(process_alive(pid));
  ASSERT_FALSE(cgroup_dirs(cgroup_rel(id)).empty());

  // What a create killed between writing its first record and finishing looks like.
  std::string state_file = root() + "/" + id + "/state.json";
  Json record = Json::parse(slurp(state_file));
  record["pid"] = 0;
  record["pidStartTime"] = 0;
  std::ofstream(state_file, std::ios::trunc) << record.dump();

  auto creating = state(id);
  ASSERT_TRUE(creating);
  EXPECT_EQ((*creating)["status"], "creating");
  ProcResult started = runtime({"start", id});
  EXPECT_NE(started.status, 0) << started.describe();

  ProcResult deleted = runtime({"delete", id});
  ASSERT_EQ(deleted.status, 0) << deleted.describe();
  for (int i = 0; i < 100 && process_alive(pid); ++i) usleep(20000);
  EXPECT_FALSE(process_alive(pid)) << "the orphaned init survived delete";
  EXPECT_NO_LEFTOVERS(id);
}

}  // namespace
}  // namespace barge::test

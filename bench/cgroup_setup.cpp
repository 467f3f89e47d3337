// Cost of a container's cgroup alone, through barge's library: create (mkdir in every hierarchy,
// controller enabling) + apply linux.resources (memory, cpu, pids), then destroy. Prints medians in
// microseconds. Built on demand by bench/cgroups (target bench_cgroup_setup).
//
//   bench_cgroup_setup [N]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cgroups/cgroup.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double micros(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

barge::spec::Resources typical_resources() {
  barge::spec::Resources resources;
  resources.memory.emplace();
  resources.memory->limit = 256LL << 20;
  resources.cpu.emplace();
  resources.cpu->shares = 512;
  resources.cpu->quota = 50000;
  resources.cpu->period = 100000;
  resources.pids_limit = 128;
  return resources;
}

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 200;
  auto resources = typical_resources();
  std::vector<double> setup, teardown;
  for (int i = 0; i < n; ++i) {
    std::string path = "/barge-bench/cg-" + std::to_string(::getpid()) + "-" + std::to_string(i);
    auto t0 = Clock::now();
    auto cgroup = barge::cgroups::Cgroup::create(path);
    cgroup.apply_resources(resources);
    auto t1 = Clock::now();
    cgroup.destroy();
    auto t2 = Clock::now();
    setup.push_back(micros(t1 - t0));
    teardown.push_back(micros(t2 - t1));
  }
  std::printf("layout %s, %d cgroups\n",
              std::string(barge::cgroups::layout_name(barge::cgroups::host_layout())).c_str(), n);
  std::printf("cgroup setup (create + resources): median %.0f us\n", median(setup));
  std::printf("cgroup teardown (destroy):         median %.0f us\n", median(teardown));
  return 0;
}

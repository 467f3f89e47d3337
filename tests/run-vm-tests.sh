#!/usr/bin/env bash
# Runs the tests that need a pure cgroup v2 host (and AppArmor) inside the team's throw-away QEMU
# guest (../shared/vm/run-in-vm.sh: Debian 12 kernel, every v2 controller enabled, AppArmor on).
#
#   tests/run-vm-tests.sh BUILD_DIR
#
# The VM tool is looked up at $BARGE_VM_TOOL, then ../shared/vm/run-in-vm.sh next to the repo,
# then /work/shared/vm/run-in-vm.sh. Without it, or when the guest cannot boot (exit 125), the
# suite is reported as SKIPPED in capitals, never as passed; test failures in the guest fail.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)

tool=""
for candidate in "${BARGE_VM_TOOL:-}" "$repo/../shared/vm/run-in-vm.sh" /work/shared/vm/run-in-vm.sh; do
  if [[ -n $candidate && -x $candidate ]]; then tool=$candidate; break; fi
done
if [[ -z $tool ]]; then
  echo "VM TESTS SKIPPED: no run-in-vm.sh (set BARGE_VM_TOOL); cgroup v2 and AppArmor unproven here"
  exit 0
fi

# The guest sees the host's root read-only with fresh tmpfs on /tmp and /run, plus one read-write
# share: share the directory holding both the sources (tests/*.sh) and the build, so a checkout under
# /tmp (as a CI clone may be) is visible too.
share=$build
until [[ $share == / || $repo == "$share" || $repo == "$share"/* ]]; do share=$(dirname "$share"); done
if [[ $share == / ]]; then
  echo "vm: $repo and $build have no common parent below /; put the build dir inside the checkout" >&2
  exit 1
fi

filter='CgroupHost*:CgroupV2*:CgroupOps*:Devices*:ProcessAttributes.AppArmor*:Lifecycle.Run*'
echo "vm: $tool -- integration_tests --gtest_filter='$filter'"
set +e
(cd "$build" && "$tool" --share "$share" --timeout 1500 --env BARGE_LEAK_CYCLES=20 -- \
  "$build/tests/integration_tests" --gtest_filter="$filter" --gtest_brief=1)
status=$?
set -e
if ((status == 125)); then
  echo "VM TESTS SKIPPED: the guest could not boot on this machine (run-in-vm.sh exit 125)"
  exit 0
fi
exit $status

#!/usr/bin/env bash
# barge quick start for a fresh Debian 12 machine, as root. Only Debian packages are downloaded.
#
#   ./scripts/quickstart.sh demo   install packages, build (Release, -Werror), run a busybox container
#   ./scripts/quickstart.sh test   install packages, build, run every test (ctest: unit + integration),
#                                  then an ASan/UBSan build running the unit tests (ctest -L unit),
#                                  then the libFuzzer targets for 60 s (clang, tests/fuzz/run.sh)
#
# Idempotent: apt is skipped when every package is present; builds are incremental.
# Environment: BUILD_DIR (default build), ASAN_BUILD_DIR (default build-asan), FUZZ_BUILD_DIR
# (default build-fuzz), FUZZ_SECONDS (default 60), JOBS (default nproc).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$repo/build}
asan_build=${ASAN_BUILD_DIR:-$repo/build-asan}
fuzz_build=${FUZZ_BUILD_DIR:-$repo/build-fuzz}
fuzz_seconds=${FUZZ_SECONDS:-60}
jobs=${JOBS:-$(nproc)}

packages=(
  build-essential cmake ninja-build pkg-config          # toolchain
  libcli11-dev nlohmann-json3-dev libseccomp-dev libcap-dev  # barge's libraries
  libgtest-dev libgmock-dev                             # tests
  busybox-static file                                   # tests/make-rootfs.sh
  runc crun jq hyperfine util-linux                     # oracle runtime, benchmarks
  libarchive-dev nettle-dev zlib1g-dev libzstd-dev liblzma-dev libbz2-dev  # images: static libarchive + nettle, codecs
  zstd python3 umoci iproute2                           # image test builders, oracle, netns tests
  containerd podman conmon catatonit golang-github-containers-common  # client proof suites (issue 7)
  clang libclang-rt-14-dev                              # libFuzzer target over the config parser
  libmnl-dev iptables                                   # network/: netlink (veth, addresses, routes), port publishing
  apparmor                                              # apparmor_parser: the AppArmor test in the VM
)

say() { printf '\n==> %s\n' "$*"; }

need_root() {
  [[ $(id -u) == 0 ]] || { echo "quickstart: run as root (containers need it)" >&2; exit 1; }
}

install_packages() {
  local missing=() p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    say "packages: all ${#packages[@]} present"
    return
  fi
  say "packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build_release() {
  say "build: $build (Release, -DBARGE_WERROR=ON)"
  # Release at -O2: GCC 12 reports false -Wrestrict errors on std::string concatenation at -O3
  # (GCC bug 105329), which -Werror turns into build failures.
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBARGE_WERROR=ON \
    -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" >/dev/null
  ninja -C "$build" -j "$jobs"
}

demo() {
  local tmp barge=$build/barge id="demo-$$"
  tmp=$(mktemp -d /tmp/barge-demo.XXXXXX)
  # shellcheck disable=SC2064  # expand now: the paths are fixed
  trap "'$barge' --root '$tmp/state' delete --force '$id' >/dev/null 2>&1 || true; rm -rf '$tmp'" EXIT
  say "demo: busybox bundle in $tmp/bundle"
  mkdir -p "$tmp/bundle" "$tmp/state"
  sh "$repo/tests/make-rootfs.sh" "$tmp/bundle/rootfs"
  "$barge" spec --bundle "$tmp/bundle"
  jq '.process.terminal = false
      | .hostname = "barge-demo"
      | .process.args = ["sh", "-c",
          "echo hello from barge; echo \"hostname: $(hostname)\"; echo \"my pid: $$\"; echo \"user: $(id)\"; echo \"processes: $(ls -d /proc/[0-9]* | wc -l)\""]' \
    "$tmp/bundle/config.json" >"$tmp/config.json"
  mv "$tmp/config.json" "$tmp/bundle/config.json"
  say "demo: $barge run $id"
  "$barge" --root "$tmp/state" run --bundle "$tmp/bundle" "$id"
}

run_tests() {
  say "tests: ctest (unit + integration) in $build"
  ctest --test-dir "$build" --output-on-failure -j "$jobs"
  say "tests in the cgroup v2 guest (VM): cgroups, devices, AppArmor"
  "$repo/tests/run-vm-tests.sh" "$build"
  say "sanitizers: $asan_build (-DBARGE_SANITIZE=ON), unit tests"
  cmake -S "$repo" -B "$asan_build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBARGE_SANITIZE=ON \
    -DBARGE_WERROR=ON >/dev/null
  ninja -C "$asan_build" -j "$jobs" unit_tests
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$asan_build" --output-on-failure -L unit -j "$jobs"
  say "fuzzing: $fuzz_build (clang, libFuzzer + ASan/UBSan), ${fuzz_seconds}s"
  "$repo/tests/fuzz/run.sh" "$fuzz_build" "$fuzz_seconds"
  say "all tests passed"
}

main() {
  local mode=${1:-}
  case $mode in
    demo|test) ;;
    *) echo "usage: $0 demo|test" >&2; exit 2 ;;
  esac
  need_root
  install_packages
  build_release
  if [[ $mode == demo ]]; then demo; else run_tests; fi
}

main "$@"

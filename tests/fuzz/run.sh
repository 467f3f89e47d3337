#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in BUILD_DIR and fuzzes them for SECONDS in total
# (split evenly between the targets). Exits non-zero on a crash, a sanitizer report, a leak, a
# timeout or an out-of-memory, and prints the reproducer.
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]     default targets: spec_fuzzer resources_fuzzer
#
# Each run starts from a temporary copy of the checked-in seed corpus plus tests/fuzz/regressions,
# so the checked-in corpus never grows. Reproducers are kept in BUILD_DIR/fuzz-artifacts/; a new
# crash belongs in tests/fuzz/regressions/ (tests/unit/fuzz_regressions_test.cpp replays it).
set -euo pipefail

usage() {
  echo "usage: $0 BUILD_DIR SECONDS [TARGET...]" >&2
  exit 2
}
(($# >= 2)) || usage
[[ $2 =~ ^[0-9]+$ ]] || usage

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(mkdir -p "$1" && cd "$1" && pwd)
seconds=$2
shift 2
targets=("$@")
((${#targets[@]} > 0)) || targets=(spec_fuzzer resources_fuzzer)

configure_and_build() {
  local launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++ -DBARGE_FUZZ=ON -DBARGE_TESTS=OFF -DBARGE_WERROR=ON \
    "${launcher[@]}" >/dev/null
  ninja -C "$build" "${targets[@]}"
}

# A quarter of the available memory, between 512 MB and libFuzzer's default of 2 GB.
rss_limit_mb() {
  local available_kb
  available_kb=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
  local mb=$((available_kb / 1024 / 4))
  ((mb < 512)) && mb=512
  ((mb > 2048)) && mb=2048
  echo "$mb"
}

# fuzz TARGET SECONDS: returns libFuzzer's status.
fuzz() {
  local target=$1 budget=$2 corpus_name=${1%_fuzzer}
  local binary=$build/tests/fuzz/$target artifacts=$build/fuzz-artifacts/$target
  local work
  work=$(mktemp -d "/tmp/barge-fuzz-$corpus_name.XXXXXX")
  mkdir -p "$artifacts" "$work/corpus"
  cp "$repo/tests/fuzz/corpus/$corpus_name"/* "$work/corpus/"
  cp "$repo/tests/fuzz/regressions"/* "$work/corpus/" 2>/dev/null || true
  local dict=() status=0
  [[ -f $repo/tests/fuzz/$corpus_name.dict ]] && dict=(-dict="$repo/tests/fuzz/$corpus_name.dict")
  echo "==> fuzz: $target for ${budget}s (corpus copy in $work)"
  local before
  before=$(find "$artifacts" -type f | sort)
  (cd "$work" && LSAN_OPTIONS="suppressions=$repo/tests/fuzz/lsan.supp:print_suppressions=0" \
    "$binary" "${dict[@]}" -max_total_time="$budget" -rss_limit_mb="$(rss_limit_mb)" \
    -timeout=10 -max_len=65536 -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "$work/corpus") >"$work/fuzz.log" 2>&1 || status=$?
  if ((status != 0)); then
    tail -n 60 "$work/fuzz.log" >&2
    local found
    found=$(comm -13 <(echo "$before") <(find "$artifacts" -type f | sort) || true)
    echo "FUZZ FAILURE in $target (status $status). Reproducer(s):" >&2
    for f in $found; do echo "  $binary $f" >&2; done
    echo "full log: $work/fuzz.log" >&2
    return "$status"
  fi
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
    "$work/fuzz.log" || true
  rm -rf "$work"
}

configure_and_build
per_target=$((seconds / ${#targets[@]}))
((per_target > 0)) || per_target=1
failed=0
for target in "${targets[@]}"; do
  fuzz "$target" "$per_target" || failed=1
done
exit "$failed"

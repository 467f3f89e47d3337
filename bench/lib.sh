# Helpers shared by bench/exec and bench/ctr (sourced, not run): timing, summaries, runtime lookup,
# the busybox bundle, crun's private mount namespace and the result table.

bench_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ms() {  # ms T0 T1: elapsed milliseconds between two $EPOCHREALTIME values
  local a=${1/./} b=${2/./}
  local us=$((10#$b - 10#$a))
  printf '%d.%03d' $((us / 1000)) $((us % 1000))
}

summarize() {  # summarize FILE -> "median p90"
  sort -n "$1" | awk '{v[NR] = $1} END {
    if (NR == 0) { print "- -"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    i = int(0.9 * NR + 0.999); if (i < 1) i = 1; if (i > NR) i = NR
    printf "%.2f %.2f\n", m, v[i] }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "-") printf "%.2f", a / b; else printf "-" }'; }

# find_barge [PATH]: PATH, else the first built barge of the usual build dirs.
find_barge() {
  local candidate
  for candidate in "${1:-}" "$bench_repo/build/barge" "$bench_repo/build-release/barge"; do
    [[ -n $candidate && -x $candidate ]] && { echo "$candidate"; return; }
  done
}

bin_of() {  # bin_of NAME: barge -> $barge, anything else from PATH
  case $1 in
    barge) echo "${barge:-/nonexistent/barge}" ;;
    *) command -v "$1" || echo "/nonexistent/$1" ;;
  esac
}

# busybox_bundle DIR ARGS_JSON: DIR/rootfs from make-rootfs.sh and DIR/config.template from
# `runc spec` with terminal off, the given process args and cgroupsPath "@CGROUP@".
busybox_bundle() {
  mkdir -p "$1"
  sh "$bench_repo/tests/make-rootfs.sh" "$1/rootfs"
  (cd "$1" && runc spec)
  jq --argjson args "$2" \
    '.process.terminal = false | .process.args = $args | .linux.cgroupsPath = "@CGROUP@"' \
    "$1/config.json" >"$1/config.template"
  rm "$1/config.json"
}

# in_runtime_ns NAME CMD...: crun 1.8 refuses hybrid cgroup hosts while cgroup2 is mounted, so its
# commands run in a private mount namespace with /sys/fs/cgroup/unified unmounted.
in_runtime_ns() {
  local name=$1
  shift
  if [[ $name == crun ]]; then
    unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' sh "$@"
  else
    "$@"
  fi
}

# report OUTDIR "PHASES" NAMES...: one row per phase from OUTDIR/NAME.PHASE (one ms value a line),
# median / p90 per runtime and the barge/runc and barge/crun ratios of the medians.
report() {
  local out=$1 phases=$2 name phase m p
  shift 2
  local names=("$@")
  printf '\n%-8s' "phase"
  for name in "${names[@]}"; do printf '  %-20s' "$name med/p90 ms"; done
  [[ " ${names[*]} " == *" barge "* && " ${names[*]} " == *" runc "* ]] && printf '  %-11s' "barge/runc"
  [[ " ${names[*]} " == *" barge "* && " ${names[*]} " == *" crun "* ]] && printf '  %-11s' "barge/crun"
  printf '\n'
  for phase in $phases; do
    printf '%-8s' "$phase"
    declare -A med=()
    for name in "${names[@]}"; do
      read -r m p < <(summarize "$out/$name.$phase")
      med[$name]=$m
      printf '  %-20s' "$m / $p"
    done
    [[ -n ${med[barge]:-} && -n ${med[runc]:-} ]] && printf '  %-11s' "$(ratio "${med[barge]}" "${med[runc]}")"
    [[ -n ${med[barge]:-} && -n ${med[crun]:-} ]] && printf '  %-11s' "$(ratio "${med[barge]}" "${med[crun]}")"
    printf '\n'
    unset med
  done
  for name in "${names[@]}"; do
    if [[ -s $out/$name.fail ]]; then
      echo "warning: $name had $(wc -l <"$out/$name.fail") failed calls:"
      grep -v '^$' "$out/$name.err" 2>/dev/null | head -3 | sed 's/^/  /'
    fi
  done
}

#!/usr/bin/env bash
# The cost of the trust chain (issue: trust chain): no-op and cold `executor build
# //images:static` with two binaries side by side, interleaved run by run, so both see the
# same machine state. Not a test: it prints figures.
#
#   BASE=/path/to/old/executor bash bench/trust.sh     # compare with an older build
#   RUNS=9 BASE=... bash bench/trust.sh
#
# Figures: median wall time (ms) of RUNS runs each, after one warm-up run; the ratio NEW/BASE.
#   1. no-op: everything cached, executor-out/ kept;
#   2. cold: a new empty cache directory and no executor-out/ (the last one is moved aside),
#      as on a machine that never built: nothing is deleted while the figures are taken;
#   3. cold-rm: the same after `rm -rf` of the cache and executor-out/. On ext4 each new
#      inode then costs a scan past the inodes deleted in the last 30 s (the allocator's
#      `recently_deleted`), so this figure grows with the number of files a build writes
#      and with the deletions before it; it is kept to compare with earlier figures.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-15}
cargo build --release --quiet -p executor --bin executor
NEW=${NEW:-$PWD/target/release/executor}
BASE=${BASE:?set BASE to the executor binary to compare with (e.g. built from an older commit)}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "runs per figure: $RUNS (median), interleaved"

runs=0
mkdir -p "$WORK/trash"
for which in base new; do
  mkdir -p "$WORK/$which"
  cp -a WORKSPACE BUILD executor.lock rules images third_party "$WORK/$which/"
done

# run WHICH MODE: one build; prints its wall time in microseconds. Not in a subshell (the
# cold runs count themselves): callers redirect its output.
run() {
  local which=$1 mode=$2 exe
  if [ "$which" = base ]; then exe=$BASE; else exe=$NEW; fi
  local cache="$WORK/cache-$which"
  case $mode in
    cold)
      runs=$((runs + 1))
      cache="$WORK/trash/cache-$which-$runs"
      if [ -d "$WORK/$which/executor-out" ]; then mv "$WORK/$which/executor-out" "$WORK/trash/out-$which-$runs"; fi
      ;;
    cold-rm) rm -rf "$WORK/$which/executor-out" "$cache" ;;
  esac
  local t0 t1
  t0=$(date +%s%N)
  (cd "$WORK/$which" && EXECUTOR_CACHE_DIR="$cache" "$exe" build //images:static >/dev/null 2>&1)
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000 ))
}

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'; }

for mode in noop cold cold-rm; do
  run base "$mode" >/dev/null; run new "$mode" >/dev/null
  : >"$WORK/base.$mode"; : >"$WORK/new.$mode"
  for _ in $(seq "$RUNS"); do
    run base "$mode" >>"$WORK/base.$mode"
    run new "$mode" >>"$WORK/new.$mode"
  done
  b=$(median <"$WORK/base.$mode"); n=$(median <"$WORK/new.$mode")
  echo "$mode build of //images:static: base ${b} ms, new ${n} ms, ratio $(awk -v n="$n" -v b="$b" 'BEGIN {printf "%.2f", n/b}')"
done

#!/usr/bin/env bash
# File-system work of a cold build (issue: one engine, item "fewer files"): two binaries side
# by side on `executor build //images:static`, against the bare `tar | gzip | sha256sum`
# pipeline over the same eight layer trees. Not a test: it prints figures.
#
#   BASE=/path/to/old/executor bash bench/files.sh
#   RUNS=7 BASE=... bash bench/files.sh
#
# Figures:
#   1. system calls of one cold build (`strace -f -c`): openat, mkdir(at), rename(at/at2),
#      unlink(at), link(at), copy_file_range, write;
#   2. bytes the cache and executor-out/ hold after it (`du`, hard links counted once);
#   3. cold wall time, median of RUNS runs each, interleaved with the pipeline (run as root,
#      so the unpacked trees keep their owners), and each binary's ratio to the pipeline.
#      Cold: a new empty cache and no executor-out/ (the last ones moved aside, nothing
#      deleted while the figures are taken; see bench/trust.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
cargo build --release --quiet -p executor --bin executor
NEW=${NEW:-$PWD/target/release/executor}
BASE=${BASE:?set BASE to the executor binary to compare with (e.g. built from an older commit)}
command -v strace >/dev/null || { echo "error: strace is missing (apt-get install strace)" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(df -T "$WORK" | awk 'NR==2 {print $2}') in $WORK"
mkdir -p "$WORK/trash"
for which in base new; do
  mkdir -p "$WORK/$which"
  cp -a WORKSPACE BUILD executor.lock rules images third_party "$WORK/$which/"
done
exe() { if [ "$1" = base ]; then echo "$BASE"; else echo "$NEW"; fi; }

echo "1. system calls of one cold build (strace -f -c):"
for which in base new; do
  (cd "$WORK/$which" && EXECUTOR_CACHE_DIR="$WORK/strace-cache-$which" strace -f -c -o "$WORK/strace-$which" \
    -e trace=openat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,link,linkat,copy_file_range,write \
    "$(exe $which)" build //images:static >/dev/null 2>&1)
  # Columns: % time, seconds, usecs/call, calls, [errors,] syscall.
  counts=$(awk '$1 ~ /^[0-9.]+$/ && $NF ~ /^[a-z_0-9]+$/ && NF >= 5 {print $NF"="$4}' "$WORK/strace-$which" | sort | tr '\n' ' ')
  echo "   $which: $counts"
  echo "2. $which: cache + executor-out/ hold $(du -scb "$WORK/strace-cache-$which" "$WORK/$which/executor-out" | tail -1 | cut -f1) bytes (hard links once)"
done

# The eight layers of the new build, unpacked as root so modes and owners survive.
i=0
for layer in $(find "$WORK/new/executor-out" -name '*.tar.gz' | sort); do
  mkdir -p "$WORK/tree-$i"; tar --numeric-owner -xzpf "$layer" -C "$WORK/tree-$i"; i=$((i + 1))
done

runs=0
cold() {
  local which=$1
  runs=$((runs + 1))
  if [ -d "$WORK/$which/executor-out" ]; then mv "$WORK/$which/executor-out" "$WORK/trash/out-$which-$runs"; fi
  local t0 t1
  t0=$(date +%s%N)
  (cd "$WORK/$which" && EXECUTOR_CACHE_DIR="$WORK/trash/cache-$which-$runs" "$(exe "$which")" build //images:static >/dev/null 2>&1)
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000 ))
}
pipeline() {
  local t0 t1
  t0=$(date +%s%N)
  for d in "$WORK"/tree-*; do tar -C "$d" -cf - . | gzip -n -6 | sha256sum >/dev/null; done
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000 ))
}
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'; }
: >"$WORK/t.base"; : >"$WORK/t.new"; : >"$WORK/t.pipe"
for _ in $(seq "$RUNS"); do
  cold base >>"$WORK/t.base"; cold new >>"$WORK/t.new"; pipeline >>"$WORK/t.pipe"
done
b=$(median <"$WORK/t.base"); n=$(median <"$WORK/t.new"); p=$(median <"$WORK/t.pipe")
echo "3. cold wall time (median of $RUNS, interleaved): base ${b} ms, new ${n} ms, pipeline ${p} ms; base/pipeline $(awk -v x="$b" -v y="$p" 'BEGIN {printf "%.2f", x/y}'), new/pipeline $(awk -v x="$n" -v y="$p" 'BEGIN {printf "%.2f", x/y}'), new/base $(awk -v x="$n" -v y="$b" 'BEGIN {printf "%.2f", x/y}')"

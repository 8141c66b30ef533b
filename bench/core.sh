#!/usr/bin/env bash
# Benchmarks of the executor core (issue: executor core). Not a test: it prints figures.
#
#   bash bench/core.sh            # release build, 20 runs each
#   RUNS=5 bash bench/core.sh     # fewer runs
#
# Figures (median wall time of RUNS runs, after one warm-up run):
#   1. no-op `executor build //images:static` and `//...` of this repository, fully cached;
#   2. no-op build of examples/text_files;
#   3. a generated monorepo of 1,000 packages x 10 targets: `executor query //...` and a
#      no-op `executor build //...`.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
cargo build --release --quiet -p executor
EXE=$PWD/target/release/executor
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export EXECUTOR_CACHE_DIR=$WORK/cache

# median_ms CMD...: runs CMD once to warm up, then RUNS times; prints the median in ms.
median_ms() {
  "$@" >/dev/null 2>&1
  local times=()
  for _ in $(seq "$RUNS"); do
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "runs per figure: $RUNS (median)"

# 1. This repository: the flagship image (41 actions: 24 package fetches, 8 layers,
#    8 images, 1 index) and everything else.
mkdir -p "$WORK/self" && cp -a WORKSPACE BUILD README.md ARCHITECTURE.md executor.lock rules images third_party "$WORK/self/"
(cd "$WORK/self" && "$EXE" build //... >/dev/null 2>&1)
echo "no-op build, this repository, //images:static: $(cd "$WORK/self" && median_ms "$EXE" build //images:static) ms"
echo "no-op build, this repository, //...: $(cd "$WORK/self" && median_ms "$EXE" build //...) ms"

# 2. An example workspace (it loads rules from the repository through local_repository).
mkdir -p "$WORK/repo/examples"
cp -a WORKSPACE BUILD rules README.md ARCHITECTURE.md executor.lock images third_party "$WORK/repo/"
cp -r examples/text_files "$WORK/repo/examples/"
(cd "$WORK/repo/examples/text_files" && "$EXE" build //... >/dev/null 2>&1)
echo "no-op build, examples/text_files (//...): $(cd "$WORK/repo/examples/text_files" && median_ms "$EXE" build //...) ms"

# 3. A generated monorepo: 1,000 packages x 10 targets (5 write_file, 5 filegroup over
#    them and over a source file), with a macro loaded from a .bzl file.
MONO=$WORK/mono
mkdir -p "$MONO/rules"
touch "$MONO/WORKSPACE" "$MONO/rules/BUILD"
cat > "$MONO/rules/defs.bzl" <<'BZL'
def pair(name, text):
    native.write_file(name = name + "_txt", out = name + ".txt", content = text)
    native.filegroup(name = name, srcs = [":" + name + "_txt", "src.txt"])
BZL
for i in $(seq 0 999); do
  d="$MONO/pkg$((i / 100))/p$i"
  mkdir -p "$d"
  echo "source $i" > "$d/src.txt"
  {
    echo 'load("//rules:defs.bzl", "pair")'
    for j in 0 1 2 3 4; do echo "pair(name = \"t$j\", text = \"package $i target $j\")"; done
  } > "$d/BUILD"
done
(cd "$MONO" && "$EXE" build //... >/dev/null 2>&1)
echo "monorepo 1,000 packages x 10 targets: query //...: $(cd "$MONO" && median_ms "$EXE" query //...) ms"
echo "monorepo 1,000 packages x 10 targets: no-op build //...: $(cd "$MONO" && median_ms "$EXE" build //...) ms"

#!/usr/bin/env bash
# Benchmarks of the release side (issue: push and the remote cache). Not a test: it prints
# figures.
#
#   bash bench/release.sh          # release build, 5 runs each
#   RUNS=9 bash bench/release.sh   # more runs
#
# Figures (median wall time of RUNS runs; setup between runs is not timed):
#   1. `executor push //images:static` to a loopback docker-registry
#      (../shared/tools/registry_up.sh): the first push into an empty registry (a fresh
#      registry per run; the local cache is warm, so this times the push, not the build),
#      and the same push repeated at once (nothing left to upload). Targets: <= 2 s, <= 0.5 s.
#   2. `executor build --remote-cache URL //images:static` served entirely from a remote
#      cache (nginx, ../shared/tools/http_cache_up.sh, filled once), with a fresh workspace
#      copy and an empty local cache per run, vs a no-op local build. Target: <= 3x the no-op
#      build. For scale: the same new workspace built from a warm local cache (the floor:
#      hashing sources and writing executor-out/, nothing downloaded), and a cold local
#      build (empty cache, no remote).
# Needs docker-registry and curl (install_tools.sh core) and nginx.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
cargo build --release --quiet -p executor
EXE=$PWD/target/release/executor
TOOLS=$PWD/../shared/tools
for bin in docker-registry nginx curl python3; do
  command -v "$bin" >/dev/null || { echo "error: $bin is missing (see the header of $0)" >&2; exit 1; }
done
WORK=$(mktemp -d)
REGISTRY_STATE=$WORK/registry
CACHE_STATE=$WORK/http-cache
cleanup() {
  [ -n "${REGISTRY_PORT:-}" ] && bash "$TOOLS/registry_down.sh" "$REGISTRY_PORT" "$REGISTRY_STATE" >/dev/null
  [ -n "${CACHE_PORT:-}" ] && bash "$TOOLS/http_cache_down.sh" "$CACHE_PORT" "$CACHE_STATE" >/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
# No credentials from this machine's own auth files. Passed to `executor push` only:
# docker-registry reads every REGISTRY_* variable as a configuration override.
echo '{"auths": {}}' > "$WORK/no-auth.json"
unset XDG_CACHE_HOME

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# copy_workspace DIR: what //images:static needs, without executor-out/.
copy_workspace() {
  mkdir -p "$1"
  cp -a WORKSPACE BUILD README.md ARCHITECTURE.md executor.lock rules images third_party "$1/"
}

# ms CMD...: runs CMD once (its output discarded, failure fatal); prints its wall time in ms.
ms() {
  local t0 t1
  t0=$(date +%s%N)
  "$@" >"$WORK/last.out" 2>"$WORK/last.err" || { cat "$WORK/last.err" >&2; exit 1; }
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}

# median N...: the median of the arguments.
median() {
  printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.0f", m}'
}

# row NAME MEDIAN_MS TARGET_MS: a table row; TARGET_MS empty for no target.
row() {
  local verdict=""
  if [ -n "$3" ]; then
    if [ "$2" -le "$3" ]; then verdict="ok"; else verdict="MISSED"; fi
    printf '%-58s %8s ms   <= %5s ms  %s\n' "$1" "$2" "$3" "$verdict"
  else
    printf '%-58s %8s ms\n' "$1" "$2"
  fi
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "runs per figure: $RUNS (median)"

# A warm workspace: every later build in it is a no-op.
WS=$WORK/ws
copy_workspace "$WS"
export EXECUTOR_CACHE_DIR=$WORK/cache
(cd "$WS" && "$EXE" build //images:static >/dev/null 2>&1)

# 1. Push: a fresh registry per run, then the same push again.
first=() again=()
for _ in $(seq "$RUNS"); do
  REGISTRY_PORT=$(free_port)
  rm -rf "$REGISTRY_STATE"
  # Its first probes find nothing listening yet (curl says so on stderr): quiet unless it fails.
  bash "$TOOLS/registry_up.sh" "$REGISTRY_PORT" "$REGISTRY_STATE" >/dev/null 2>"$WORK/up.err" || { cat "$WORK/up.err" >&2; exit 1; }
  repo=127.0.0.1:$REGISTRY_PORT/bench/static
  first+=("$(cd "$WS" && ms env REGISTRY_AUTH_FILE="$WORK/no-auth.json" "$EXE" push //images:static --repository "$repo" --tag v1)")
  grep -q " blobs uploaded" "$WORK/last.err" || { cat "$WORK/last.err" >&2; exit 1; }
  again+=("$(cd "$WS" && ms env REGISTRY_AUTH_FILE="$WORK/no-auth.json" "$EXE" push //images:static --repository "$repo" --tag v1)")
  grep -q "(tags: v1): 0 blobs uploaded" "$WORK/last.err" || { echo "the repeated push uploaded:" >&2; cat "$WORK/last.err" >&2; }
  bash "$TOOLS/registry_down.sh" "$REGISTRY_PORT" "$REGISTRY_STATE" --purge >/dev/null
  REGISTRY_PORT=
done

# 2. The remote cache: filled once from its own workspace and cache.
CACHE_PORT=$(free_port)
bash "$TOOLS/http_cache_up.sh" "$CACHE_PORT" "$CACHE_STATE" >/dev/null
URL=http://127.0.0.1:$CACHE_PORT
copy_workspace "$WORK/fill"
(cd "$WORK/fill" && EXECUTOR_CACHE_DIR=$WORK/fill-cache "$EXE" build --remote-cache "$URL" //images:static >/dev/null 2>&1)
remote=() fresh=() cold=() noop=()
for i in $(seq "$RUNS"); do
  copy_workspace "$WORK/remote-$i"
  remote+=("$(cd "$WORK/remote-$i" && EXECUTOR_CACHE_DIR=$WORK/remote-cache-$i ms "$EXE" build --remote-cache "$URL" //images:static)")
  grep -q " 0 actions run, " "$WORK/last.err" || { echo "actions ran locally:" >&2; cat "$WORK/last.err" >&2; }
  # The floor under the remote figure: the same new workspace from a warm local cache
  # (hashing sources, writing executor-out/), without downloading anything.
  copy_workspace "$WORK/fresh-$i"
  fresh+=("$(cd "$WORK/fresh-$i" && ms "$EXE" build //images:static)")
  copy_workspace "$WORK/cold-$i"
  cold+=("$(cd "$WORK/cold-$i" && EXECUTOR_CACHE_DIR=$WORK/cold-cache-$i ms "$EXE" build //images:static)")
  rm -rf "$WORK/remote-$i" "$WORK/remote-cache-$i" "$WORK/fresh-$i" "$WORK/cold-$i" "$WORK/cold-cache-$i"
  noop+=("$(cd "$WS" && ms "$EXE" build //images:static)")
done

noop_ms=$(median "${noop[@]}")
echo
printf '%-58s %11s   %s\n' "figure" "median" "target"
row "push //images:static, first (empty registry, warm cache)" "$(median "${first[@]}")" 2000
row "push //images:static, repeated (nothing to upload)" "$(median "${again[@]}")" 500
row "build from the remote cache (new workspace, empty cache)" "$(median "${remote[@]}")" $((3 * noop_ms))
row "no-op local build" "$noop_ms" ""
row "new workspace, warm local cache (no remote), for scale" "$(median "${fresh[@]}")" ""
row "cold local build (empty cache, no remote), for scale" "$(median "${cold[@]}")" ""

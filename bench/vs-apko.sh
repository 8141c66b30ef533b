#!/usr/bin/env bash
# executor against apko on the same images, in one run (issue: real packages, item 15).
# Not a test: it prints figures.
#
#   bash bench/vs-apko.sh                   # release build, 5 runs of each measurement
#   RUNS=3 bash bench/vs-apko.sh            # fewer runs
#   IMAGES=static bash bench/vs-apko.sh     # one of the images (static, synthetic)
#   BENCH_TMPDIR=/big bash bench/vs-apko.sh # where the scratch (and the ~400 MB synthetic set) go
#
# Images, each built by both tools from the same signed file:// repository:
#   static     this repository's //images:static: 3 packages, 8 architectures, an index;
#              apko from the equivalent apko.yaml.
#   synthetic  one x86_64 image of 16 generated packages x 64 MiB of text (1 GiB installed,
#              ~0.4 GB of .apk; made once by executor/examples/image_bench.rs and reused).
# Measurements, each the median of RUNS runs, under /usr/bin/time:
#   cold  executor: `executor build` with an empty cache and no executor-out/ (the lockfile is
#         there, as in a checkout); apko: `apko build` with an empty --cache-dir.
#   warm  the same command again, nothing changed (executor: every action cached; apko has no
#         action cache and builds again from its package cache).
# Reported: wall time, CPU time (user + system), peak RSS, output bytes (executor: the OCI
# layout; apko: its image tarball), and executor / apko ratios.
# apko: .ci/install_apko.sh installs the pinned version when `apko` is not on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-5}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
BASE=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}
command -v apko >/dev/null || bash .ci/install_apko.sh
command -v /usr/bin/time >/dev/null || { echo "error: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 1; }
cargo build --release --quiet -p executor --bin executor --example image_bench
EXE=$TARGET/release/executor
SYNTH=$(BENCH_TMPDIR=$BASE "$TARGET/release/examples/image_bench" "$EXE" 1 0 | tail -1)
WORK=$(mktemp -d "$BASE/vs-apko.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "executor $("$EXE" version 2>/dev/null | head -1), apko $(apko version 2>/dev/null | awk '/GitVersion/ {print $2}'), runs: $RUNS (medians)"

KEY=$ROOT/third_party/keys/executor-test-key.rsa.pub

# The workspaces and apko configurations.
setup_static() {
  local ws=$WORK/static/executor; mkdir -p "$ws"
  cp -a "$ROOT"/{WORKSPACE,BUILD,executor.lock,rules,images,third_party} "$ws"/
  mkdir -p "$WORK/static/apko"
  cat > "$WORK/static/apko/apko.yaml" <<EOF
contents:
  keyring: [$KEY]
  repositories: [$ROOT/third_party/apk-repository]
  packages: [baselayout-data, ca-certificates-bundle, tzdata]
accounts:
  groups: [{groupname: nonroot, gid: 65532}]
  users: [{username: nonroot, uid: 65532, gid: 65532, homedir: /home/nonroot, shell: /sbin/nologin}]
  run-as: "65532"
archs: [x86, x86_64, aarch64, armhf, armv7, ppc64le, riscv64, s390x]
EOF
}
setup_synthetic() {
  local ws=$WORK/synthetic/executor; mkdir -p "$ws/keys"
  cp "$KEY" "$ws/keys/"; : > "$ws/keys/BUILD"
  echo "apk_repository(name = \"synth\", url = \"file://$SYNTH/repo\", keys = [\"//keys:executor-test-key.rsa.pub\"])" > "$ws/WORKSPACE"
  local names; names=$(for p in $(seq -w 0 15); do printf '"synth-%s", ' "$p"; done)
  cat > "$ws/BUILD" <<EOF
apk_fetch(name = "apks", repository = "synth", packages = [$names], arch = "x86_64")
layer(name = "layer", packages = ":apks")
oci_image(name = "image", layers = [":layer"], arch = "x86_64")
EOF
  (cd "$ws" && "$EXE" --cache-dir "$WORK/lock-cache" lock 2>"$WORK/out") || { cat "$WORK/out" >&2; exit 1; }
  mkdir -p "$WORK/synthetic/apko"
  cat > "$WORK/synthetic/apko/apko.yaml" <<EOF
contents:
  keyring: [$KEY]
  repositories: [$SYNTH/repo]
  packages: [$(for p in $(seq -w 0 15); do printf 'synth-%s, ' "$p"; done | sed 's/, $//')]
archs: [x86_64]
EOF
}

# measure FILE DIR CMD...: runs CMD in DIR under GNU time; appends "wall cpu rss_kib" to FILE.
# Wall time from bash's microsecond clock (GNU time's %e has 10 ms steps, too coarse for a
# no-op build); CPU time and peak RSS from GNU time.
measure() {
  local file=$1 dir=$2; shift 2
  local start=$EPOCHREALTIME
  if ! (cd "$dir" && /usr/bin/time -f "%U %S %M" -o "$WORK/time" "$@" >"$WORK/out" 2>&1); then
    echo "error: in $dir: $*" >&2; cat "$WORK/out" >&2; exit 1
  fi
  local end=$EPOCHREALTIME
  awk -v s="$start" -v e="$end" '{printf "%.4f %.2f %s\n", e - s, $1 + $2, $3}' "$WORK/time" >> "$file"
}

run_image() {
  local name=$1 target=$2 layout=$3 archs=$4
  local ex=$WORK/$name/executor ap=$WORK/$name/apko
  (cd "$ex" && "$EXE" --cache-dir "$WORK/warmup" build "$target" >/dev/null 2>&1) # page cache, both tools read the same files
  for _ in $(seq "$RUNS"); do
    rm -rf "$WORK/$name/cache" "$ex/executor-out"
    measure "$WORK/$name.executor.cold" "$ex" "$EXE" --cache-dir "$WORK/$name/cache" build "$target"
    measure "$WORK/$name.executor.warm" "$ex" "$EXE" --cache-dir "$WORK/$name/cache" build "$target"
    rm -rf "$ap/cache" "$ap/image.tar" "$ap"/sbom-*
    measure "$WORK/$name.apko.cold" "$ap" apko build apko.yaml bench:apko image.tar --arch "$archs" --cache-dir cache
    measure "$WORK/$name.apko.warm" "$ap" apko build apko.yaml bench:apko image.tar --arch "$archs" --cache-dir cache
  done
  du -sbL "$ex/executor-out/$layout" | awk '{print $1}' > "$WORK/$name.executor.bytes"
  stat -c %s "$ap/image.tar" > "$WORK/$name.apko.bytes"
}

IMAGES=${IMAGES:-static synthetic}
for image in $IMAGES; do
  case $image in
    static) setup_static
            run_image static //images:static images/static x86,x86_64,aarch64,armhf,armv7,ppc64le,riscv64,s390x ;;
    synthetic) setup_synthetic
               run_image synthetic //:image image x86_64 ;;
    *) echo "error: unknown image \`$image\` in IMAGES (static, synthetic)" >&2; exit 2 ;;
  esac
done

python3 - "$WORK" "$IMAGES" <<'EOF'
import statistics, sys, os
work, images = sys.argv[1], sys.argv[2].split()
def med(name, col):
    rows = [l.split() for l in open(os.path.join(work, name)) if l.strip()]
    return statistics.median(float(r[col]) for r in rows)
print(f"{'image':10} {'build':5} {'tool':8} {'wall s':>8} {'cpu s':>8} {'RSS MiB':>8} {'out MB':>8}")
for image in images:
    for kind in ["cold", "warm"]:
        for tool in ["executor", "apko"]:
            f = f"{image}.{tool}.{kind}"
            size = int(open(os.path.join(work, f"{image}.{tool}.bytes")).read()) / 1e6
            print(f"{image:10} {kind:5} {tool:8} {med(f,0):8.4f} {med(f,1):8.2f} {med(f,2)/1024:8.1f} {size:8.2f}")
print()
for image in images:
    for kind, goal in [("cold", 0.5), ("warm", 0.05)]:
        e, a = med(f"{image}.executor.{kind}", 0), med(f"{image}.apko.{kind}", 0)
        ec, ac = med(f"{image}.executor.{kind}", 1), med(f"{image}.apko.{kind}", 1)
        ok = "meets" if e / a <= goal else "MISSES"
        print(f"{image:10} {kind}: executor/apko wall {e/a:.3f} (goal <= {goal}: {ok}), cpu {ec/ac if ac else float('nan'):.3f}")
EOF

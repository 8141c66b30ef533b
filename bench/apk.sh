#!/usr/bin/env bash
# Benchmarks of the APK side (issue: APK repositories). Not a test: it prints figures.
#
#   bash bench/apk.sh                # release build, 5 runs (fetch) / 31 runs (index)
#   RUNS=3 bash bench/apk.sh         # fewer runs
#
# Figures (medians; see the examples' docs for the details):
#   1. executor/examples/apk_bench.rs: index read + verify, resolve of the static set,
#      fetch + verify of the fixture packages in process;
#   2. executor/examples/fetch_bench.rs: `executor build` of an `apk_fetch` of 8 x 32 MiB
#      signed packages from a loopback HTTP server, empty cache: MB/s of .apk bytes, and
#      the pieces (download, read back, verify, sha256) timed on their own.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release --quiet -p executor --bin executor --example apk_bench --example fetch_bench
echo "== apk_bench (index read, resolve, in-process fetch) =="
"$TARGET/release/examples/apk_bench" "${APK_BENCH_RUNS:-31}"
echo "== fetch_bench (executor build of an apk_fetch over loopback HTTP) =="
"$TARGET/release/examples/fetch_bench" "$TARGET/release/executor" "$RUNS"

#!/usr/bin/env bash
# Benchmarks of the image side (issue: images). Not a test: it prints figures.
#
#   bash bench/images.sh             # release build, 5 runs each
#   RUNS=3 bash bench/images.sh      # fewer runs
#   FIGURES=2 bash bench/images.sh   # only figure 2
#   BENCH_TMPDIR=/big bash bench/images.sh   # where the ~3 GB of scratch go
#
# Figures (median of RUNS runs; see executor/examples/image_bench.rs for the details):
#   1. cold `executor build //images:static` (8 archs, empty cache) vs a sequential shell
#      pipeline `tar | gzip -n -6 | sha256sum` over the same eight unpacked trees;
#   2. a 1 GiB synthetic package set into one layer: wall time, peak RSS (/usr/bin/time -v),
#      layer throughput vs `gzip -6` on one core x the number of cores.
# Run it as root, so that unpacked trees keep their owners.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release --quiet -p executor --bin executor --example image_bench
"$TARGET/release/examples/image_bench" "$TARGET/release/executor" "$RUNS" "${FIGURES:-12}"

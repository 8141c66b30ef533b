#!/usr/bin/env bash
# What layering by origin saves in a registry (issue #13, item 5). Not a test: it prints
# figures.
#
#   bash bench/layering.sh              # release build, 3 cold builds per mode, budget 6
#   RUNS=5 BUDGET=4 bash bench/layering.sh
#   BENCH_TMPDIR=/big bash bench/layering.sh
#
# 10 images with overlapping package sets (static ... node-dev) from one synthetic, signed,
# Wolfi-like repository (18 packages, 13 origins, ~75 MiB), each built as one layer and with
# `layering = {"strategy": "origin", "budget": BUDGET}`; each set pushed to its own empty
# docker-registry (../shared/tools/registry_up.sh), whose blob storage is measured. Then:
# bytes received by a shallow build of an app on a pulled base vs a full pull (skopeo copy).
# See executor/examples/layering_bench.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release --quiet -p executor --bin executor --example layering_bench
"$TARGET/release/examples/layering_bench" "$TARGET/release/executor" "${RUNS:-3}" "${BUDGET:-6}"

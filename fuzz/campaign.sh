#!/usr/bin/env bash
# The long campaign: every target in turn for SECONDS (default 600) under `nice -n 19`, one
# fuzzer at a time, growing fuzz/corpus/<target>/. Runs in libFuzzer's fork mode with one
# worker so that a crash, OOM or timeout is saved under fuzz/artifacts/<target>/ and
# fuzzing goes on. Logs go to fuzz/campaign/<target>.log and one summary line per target
# (executions, coverage, CPU seconds) to fuzz/campaign/summary.txt. Needs GNU time.
#
# Usage: nohup fuzz/campaign.sh [SECONDS] [TARGET...] >fuzz/campaign/campaign.log 2>&1 &
set -uo pipefail
source "$(dirname "$0")/common.sh"
seconds="${1:-600}"
shift || true
selected=("$@")
[[ ${#selected[@]} -eq 0 ]] && selected=("${TARGETS[@]}")

ensure_cargo_fuzz
choose_toolchain
build_targets || { echo "fuzz: build failed" >&2; exit 1; }
[[ -d "$fuzz_dir/corpus" ]] || "$fuzz_dir/seed.sh"

out="$fuzz_dir/campaign"
mkdir -p "$out"
export TMPDIR="$fuzz_dir/target/tmp/campaign-$$"
for t in "${selected[@]}"; do
    mkdir -p "$fuzz_dir/corpus/$t" "$fuzz_dir/artifacts/$t" "$TMPDIR"
    log="$out/$t.log"
    echo "fuzz: $t for ${seconds}s from $(date -u +%H:%M:%S)" >&2
    cpu="$out/$t.cpu"
    isolated /usr/bin/time -f '%U %S' -o "$cpu" nice -n 19 "$(target_bin "$t")" "$fuzz_dir/corpus/$t" \
        -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$fuzz_dir/artifacts/$t/" >"$log" 2>&1
    found="$(find "$fuzz_dir/artifacts/$t" -type f | wc -l)"
    # CPU seconds (user + system) of the fuzzer and its forked workers: under `nice` the wall
    # time overstates the work done while the machine is busy.
    secs="$(awk 'END {printf "%.0f", $1 + $2}' "$cpu" 2>/dev/null)"
    summarize "$t" "$log" "artifacts=$found cpu_s=${secs:-?}" | tee -a "$out/summary.txt"
    rm -rf "$TMPDIR"
done

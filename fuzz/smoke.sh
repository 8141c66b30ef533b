#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS (default 5) from its corpus (seeded by
# seed.sh when empty). Prints one line per target: executions, coverage (cov:) and features
# (ft:) from libFuzzer's final stats. Exits non-zero if any target crashed, ran out of
# memory or timed out; the input is saved under fuzz/artifacts/<target>/.
#
# Usage: fuzz/smoke.sh [SECONDS] [TARGET...]
set -uo pipefail
source "$(dirname "$0")/common.sh"
seconds="${1:-5}"
shift || true
selected=("$@")
[[ ${#selected[@]} -eq 0 ]] && selected=("${TARGETS[@]}")

ensure_cargo_fuzz
choose_toolchain
start=$(date +%s)
if ! build_targets; then
    echo "fuzz: build failed" >&2
    exit 1
fi
echo "fuzz: built in $(( $(date +%s) - start ))s" >&2
if [[ ! -d "$fuzz_dir/corpus" ]]; then
    if ! "$fuzz_dir/seed.sh" >&2; then
        echo "fuzz: seeding the corpus failed" >&2
        exit 1
    fi
fi

logs="$fuzz_dir/target/smoke-logs"
mkdir -p "$logs"
export TMPDIR="$fuzz_dir/target/tmp/smoke-$$"
failed=0
summary=()
for t in "${selected[@]}"; do
    mkdir -p "$fuzz_dir/corpus/$t" "$fuzz_dir/artifacts/$t" "$TMPDIR"
    log="$logs/$t.log"
    # A fresh corpus copy: a smoke run must not grow the committed-to seeds' directory.
    work="$TMPDIR/corpus-$t"
    mkdir -p "$work"
    isolated nice -n 19 "$(target_bin "$t")" "$work" "$fuzz_dir/corpus/$t" \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$fuzz_dir/artifacts/$t/" >"$log" 2>&1
    rc=$?
    status=ok
    if [[ $rc -ne 0 ]]; then
        status=CRASH
        failed=1
    fi
    summary+=("$(summarize "$t" "$log" "$status")")
    rm -rf "$work"
done
rm -rf "$TMPDIR"
printf '%s\n' "${summary[@]}"
if [[ $failed -ne 0 ]]; then
    echo "fuzz: a target failed; see its log and fuzz/artifacts/<target>/" >&2
    grep -h -A3 -E "panicked at|ERROR: libFuzzer|SUMMARY:" "$logs"/*.log | head -40 >&2
fi
exit $failed

# Sourced by smoke.sh and campaign.sh: chooses the toolchain and sanitizer, builds the
# targets, and runs one fuzzer. Not meant to be run by itself.
#
# Toolchain: nightly when rustup has it (cargo fuzz passes -Z flags); otherwise the default
# (stable) toolchain with RUSTC_BOOTSTRAP=1. Sanitizer: AddressSanitizer when the chosen
# toolchain ships its runtime, otherwise none (panics, OOM and timeouts are still caught).
# Override with FUZZ_TOOLCHAIN=nightly|stable and FUZZ_SANITIZER=address|none.

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TARGETS=(apk_index apk_index_text apk_package apk_pkginfo apk_gzip apk_tar apk_version
         lockfile apko_lock oci_layout registry_http registry_challenge docker_config starlark_load
         signing_key)
triple="x86_64-unknown-linux-gnu"

ensure_cargo_fuzz() {
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "cargo-fuzz is missing: installing it from crates.io" >&2
        cargo install cargo-fuzz --locked >&2
    fi
}

choose_toolchain() {
    local want="${FUZZ_TOOLCHAIN:-}"
    if [[ -z "$want" ]]; then
        if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then want=nightly; else want=stable; fi
    fi
    if [[ "$want" == nightly ]]; then
        CARGO=(cargo +nightly)
        unset RUSTC_BOOTSTRAP
    else
        CARGO=(cargo)
        export RUSTC_BOOTSTRAP=1
    fi
    local rustc=(rustc)
    [[ "$want" == nightly ]] && rustc=(rustc +nightly)
    local sysroot
    sysroot="$("${rustc[@]}" --print sysroot)"
    SANITIZER="${FUZZ_SANITIZER:-}"
    if [[ -z "$SANITIZER" ]]; then
        if ls "$sysroot/lib/rustlib/$triple/lib/" 2>/dev/null | grep -q asan; then SANITIZER=address; else SANITIZER=none; fi
    fi
    TOOLCHAIN="$want"
    echo "fuzz: toolchain $want ($("${rustc[@]}" -V)), sanitizer $SANITIZER" >&2
}

# Builds every target (release, debug assertions on: overflow is a finding too).
build_targets() {
    (cd "$fuzz_dir" && nice -n 19 "${CARGO[@]}" fuzz build -a --sanitizer "$SANITIZER" "$@")
}

target_bin() {
    echo "$fuzz_dir/target/$triple/release/$1"
}

# Runs a command in a network namespace with only loopback when possible, so that no input
# can make a target reach another host (registry_http and oci_layout use loopback).
isolated() {
    if [[ -z "${FUZZ_NO_NETNS:-}" ]] && command -v unshare >/dev/null 2>&1 \
        && unshare -n true 2>/dev/null; then
        unshare -n sh -c 'ip link set lo up 2>/dev/null || true; exec "$@"' sh "$@"
    else
        "$@"
    fi
}

# The summary of a libFuzzer log: executions, then the last cov: and ft: figures.
summarize() {
    local target="$1" log="$2" status="$3"
    local execs cov ft
    execs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')"
    if [[ -z "$execs" ]]; then
        # fork mode: sum of the workers' runs is not printed; take the last #N.
        execs="$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')"
    fi
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')"
    ft="$(grep -o 'ft: [0-9]*' "$log" | tail -1 | awk '{print $2}')"
    printf '%-20s %-7s execs: %-10s cov: %-6s ft: %-7s log: %s\n' "$target" "$status" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$log"
}

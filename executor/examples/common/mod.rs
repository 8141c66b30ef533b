//! Helpers the benchmark examples share (`#[path = "common/mod.rs"] mod common;`): the
//! machine line every figure is printed under, medians, a seeded generator, and running a
//! command that must succeed. Not an example itself (no `main.rs`).
#![allow(dead_code)] // each benchmark uses some of them

use std::process::{Command, Output, Stdio};

/// `machine: N cores, M GiB, arch, cpu`, printed above every set of figures.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<f64>().ok()))
        .map_or(String::new(), |kib| format!("{:.0} GiB", kib / 1048576.0));
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!("machine: {cores} cores, {mem}, {}, {cpu}", std::env::consts::ARCH)
}

/// The median of `values` (sorted in place).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// `(1.00, 2.00, ...)`: every run's figure, beside the median.
pub fn list(values: &[f64]) -> String {
    format!("({})", values.iter().map(|v| format!("{v:.2}")).collect::<Vec<_>>().join(", "))
}

/// The next value of a xorshift64 generator: reproducible pseudo-random content.
pub fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Runs `cmd`, panics with its output unless it succeeds.
pub fn check(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The `build succeeded: ...` line of a build.
pub fn summary_line(out: &Output) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    text.lines().find(|l| l.starts_with("build succeeded")).unwrap_or("").to_owned()
}

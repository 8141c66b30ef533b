//! Benchmarks of the image side (issue: images). Prints figures; not a test.
//!
//! ```sh
//! bash bench/images.sh                  # builds the release binary, then runs this
//! cargo run --release -p executor --example image_bench -- target/release/executor [RUNS] [FIGURES]
//! ```
//!
//! 1. **Cold multi-arch image**: `executor build //images:static` (8 archs, 8 layers, 8
//!    images, one index) in a copy of this repository's workspace with an empty cache and
//!    no `executor-out/`, against a shell pipeline that only does
//!    `tar -C tree -cf - . | gzip -n -6 | sha256sum` over the same eight trees (the built
//!    layers unpacked as root, so modes and owners are kept), one after the other.
//! 2. **A 1 GiB package set**: 16 signed x86_64 packages × 64 files × 1 MiB of pseudo-random
//!    words (compressible about 3:1, not trivially), a workspace with
//!    `apk_repository(url = "file://repo")`, `apk_fetch` and `layer`. After `executor lock`
//!    and a build of the `apk_fetch` target, `executor build //:layer` runs under
//!    `/usr/bin/time -v`, the `layer`'s `epoch` changed before each run so that the Layer
//!    action (and only it) runs again. Reported: wall time, peak RSS, and layer throughput
//!    (uncompressed layer bytes / wall time) next to `gzip -n -6` on the same tar on one
//!    core, times the number of cores.
//!
//! FIGURES picks figures: `12` (default), `1` or `2`; `0` only generates the synthetic set
//! (for `bench/vs-apko.sh`) and prints its directory. Each figure is the median of RUNS runs (default 5; the gzip baseline of figure 2 uses at
//! most 3 runs, each takes half a minute).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[path = "common/mod.rs"]
mod common;
use common::{check, list, machine, median, summary_line, xorshift};

use executor::apk::{PackageName, Version};
use executor_testkit::apk::{index_entry, write_index, write_package, PackageFile, PackageSpec, SigningKey};

/// Bumped when the synthetic set's generator changes (the reused workspace is named after it).
const SYNTHETIC_VERSION: u32 = 1;
/// Packages in the synthetic set.
const PACKAGES: usize = 16;
/// Files per package.
const FILES: usize = 64;
/// Bytes per file.
const FILE_SIZE: usize = 1 << 20;

fn main() {
    let mut args = std::env::args().skip(1);
    let exe = PathBuf::from(args.next().expect("usage: image_bench <executor binary> [RUNS] [FIGURES]"));
    let exe = std::fs::canonicalize(&exe).expect("the executor binary");
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    // Which figures to run: `12` (default), `1` or `2`.
    let figures = args.next().unwrap_or_else(|| "12".to_owned());
    let repo_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // BENCH_TMPDIR: where the ~3 GB of scratch go (default: the system's temp dir).
    let base = std::env::var_os("BENCH_TMPDIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let work = tempfile::Builder::new().prefix("image-bench-").tempdir_in(&base).expect("temp dir");
    println!("{}", machine());
    println!("runs per figure: {runs} (median)");

    if figures.contains('1') {
        static_image(&exe, &repo_root, work.path(), runs);
    }
    if figures.contains('2') {
        synthetic_layer(&exe, &repo_root, &base, work.path(), runs);
    }
    if figures == "0" {
        // For bench/vs-apko.sh: only make sure the synthetic set exists; its directory last.
        println!("{}", synthetic_repository(&repo_root, &base).display());
    }
}

/// The synthetic workspace (generated once into BENCH_TMPDIR, then reused).
fn synthetic_repository(repo_root: &Path, base: &Path) -> PathBuf {
    let ws = base.join(format!("image-bench-synthetic-v{SYNTHETIC_VERSION}"));
    if !ws.join("repo/x86_64/APKINDEX.tar.gz").exists() {
        let _ = std::fs::remove_dir_all(&ws);
        make_repository(repo_root, &ws);
    }
    ws
}

/// Figure 1: the cold multi-arch build against `tar | gzip | sha256sum` over its trees.
fn static_image(exe: &Path, repo_root: &Path, work: &Path, runs: usize) {
    let ws = work.join("static");
    std::fs::create_dir_all(&ws).expect("mkdir");
    for name in
        ["WORKSPACE", "BUILD", "executor.lock", "README.md", "ARCHITECTURE.md", "rules", "images", "third_party"]
    {
        if repo_root.join(name).exists() {
            check(Command::new("cp").arg("-r").arg(repo_root.join(name)).arg(&ws));
        }
    }
    let mut times = Vec::new();
    let mut actions = String::new();
    for run in 0..runs {
        let cache = work.join(format!("static-cache-{run}"));
        let _ = std::fs::remove_dir_all(ws.join("executor-out"));
        let start = Instant::now();
        let out = check(
            Command::new(exe).arg("--cache-dir").arg(&cache).arg("build").arg("//images:static").current_dir(&ws),
        );
        times.push(start.elapsed().as_secs_f64());
        actions = summary_line(&out);
        let _ = std::fs::remove_dir_all(&cache);
    }
    println!(
        "1. cold `executor build //images:static` (8 archs, empty cache): median {:.3} s {}",
        median(&mut times),
        list(&times)
    );
    println!("   {actions}");

    // The eight layers, unpacked as root so modes and owners survive.
    let mut layers = Vec::new();
    find_files(&ws.join("executor-out"), ".tar.gz", &mut layers);
    layers.sort();
    let mut trees = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let tree = work.join(format!("tree-{i}"));
        std::fs::create_dir_all(&tree).expect("mkdir");
        check(Command::new("tar").arg("--numeric-owner").arg("-xzpf").arg(layer).arg("-C").arg(&tree));
        trees.push(tree);
    }
    let bytes: u64 = trees.iter().map(|t| tar_size(t)).sum();
    let script = "for d in \"$@\"; do tar -C \"$d\" -cf - . | gzip -n -6 | sha256sum >/dev/null; done";
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        check(Command::new("sh").arg("-c").arg(script).arg("sh").args(&trees));
        times.push(start.elapsed().as_secs_f64());
    }
    println!(
        "   shell pipeline `tar -cf - . | gzip -n -6 | sha256sum` over the same {} trees ({:.1} MB of tar), sequential: median {:.3} s {}",
        trees.len(),
        bytes as f64 / 1e6,
        median(&mut times),
        list(&times)
    );
}

/// Figure 2: a 1 GiB package set into one layer: time, peak RSS, throughput vs gzip.
fn synthetic_layer(exe: &Path, repo_root: &Path, base: &Path, work: &Path, runs: usize) {
    // Writing the packages takes minutes (`write_package` compresses at gzip level 9), so
    // the workspace is kept in BENCH_TMPDIR and reused; the index is written last, so an
    // interrupted generation starts over.
    let start = Instant::now();
    let reused = base.join(format!("image-bench-synthetic-v{SYNTHETIC_VERSION}/repo/x86_64/APKINDEX.tar.gz")).exists();
    let ws = synthetic_repository(repo_root, base);
    let total: u64 = std::fs::read_dir(ws.join("repo/x86_64"))
        .expect("the repository")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".apk"))
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum();
    println!(
        "2. synthetic set: {PACKAGES} packages x {FILES} files x {} MiB = {:.2} GiB of content, .apk total {:.1} MB ({} in {:.1} s, `{}`)",
        FILE_SIZE >> 20,
        (PACKAGES * FILES * FILE_SIZE) as f64 / (1u64 << 30) as f64,
        total as f64 / 1e6,
        if reused { "reused" } else { "generated" },
        start.elapsed().as_secs_f64(),
        ws.display()
    );
    let cache = work.join("synth-cache");
    let _ = std::fs::remove_dir_all(ws.join("executor-out"));
    write_build(&ws, 0);
    check(Command::new(exe).arg("--cache-dir").arg(&cache).arg("lock").current_dir(&ws));
    check(Command::new(exe).arg("--cache-dir").arg(&cache).arg("build").arg("//:apks").current_dir(&ws));

    let (mut times, mut rss) = (Vec::new(), Vec::new());
    let mut actions = String::new();
    for run in 0..runs {
        // A new epoch is a new action key: the Layer action runs again, the fetches stay cached.
        write_build(&ws, run + 1);
        let out = check(
            Command::new("/usr/bin/time")
                .arg("-v")
                .arg(exe)
                .arg("--cache-dir")
                .arg(&cache)
                .arg("build")
                .arg("//:layer")
                .current_dir(&ws),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        times.push(time_v_field(&stderr, "Elapsed (wall clock) time").map(wall_seconds).expect("wall time"));
        rss.push(
            time_v_field(&stderr, "Maximum resident set size (kbytes)")
                .and_then(|v| v.parse::<f64>().ok())
                .expect("rss")
                / 1024.0,
        );
        actions = summary_line(&out);
    }
    let wall = median(&mut times);
    println!("   `executor build //:layer` (Layer action only): median {wall:.2} s {}", list(&times));
    println!("   {actions}");
    println!("   peak RSS: median {:.1} MiB {} (target: < 200 MiB)", median(&mut rss), list(&rss));

    let layer = ws.join("executor-out/layer.tar.gz");
    let tar = work.join("layer.tar");
    check(Command::new("sh").arg("-c").arg("gzip -dc \"$1\" > \"$2\"").arg("sh").arg(&layer).arg(&tar));
    let bytes = std::fs::metadata(&tar).expect("layer tar").len();
    let compressed = std::fs::metadata(&layer).expect("layer").len();
    let mut gzip = Vec::new();
    for _ in 0..runs.min(3) {
        let start = Instant::now();
        check(Command::new("sh").arg("-c").arg("gzip -n -6 -c \"$1\" > /dev/null").arg("sh").arg(&tar));
        gzip.push(start.elapsed().as_secs_f64());
    }
    let gzip_secs = median(&mut gzip);
    let _ = std::fs::remove_file(&tar);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let layer_rate = bytes as f64 / wall / 1e6;
    let gzip_rate = bytes as f64 / gzip_secs / 1e6;
    println!(
        "   layer: {:.1} MB uncompressed, {:.1} MB gzipped; throughput {layer_rate:.1} MB/s",
        bytes as f64 / 1e6,
        compressed as f64 / 1e6
    );
    println!(
        "   `gzip -n -6` on the same tar, one core: median {gzip_secs:.2} s = {gzip_rate:.1} MB/s {}; x {cores} cores = {:.1} MB/s",
        list(&gzip),
        gzip_rate * cores as f64
    );
    println!(
        "   layer throughput / (gzip -6 x cores): {:.0}% (target: >= 80%)",
        100.0 * layer_rate / (gzip_rate * cores as f64)
    );
}

/// Writes the signed repository `ws/repo/x86_64` and the workspace around it.
fn make_repository(repo_root: &Path, ws: &Path) {
    let key_path = repo_root.join("third_party/keys/executor-test-key.rsa");
    let key = SigningKey::read_file(&key_path).expect("test key");
    let dir = ws.join("repo/x86_64");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let words = words();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut entries: Vec<_> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..cores)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let p = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if p >= PACKAGES {
                            return done;
                        }
                        let name = format!("synth-{p:02}");
                        let mut files = vec![
                            PackageFile::dir("usr"),
                            PackageFile::dir("usr/share"),
                            PackageFile::dir(format!("usr/share/{name}")),
                        ];
                        let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (p as u64 + 1);
                        for f in 0..FILES {
                            files.push(PackageFile::file(
                                format!("usr/share/{name}/file-{f:03}.txt"),
                                text(&words, &mut rng, FILE_SIZE),
                            ));
                        }
                        let mut spec = PackageSpec::new(
                            PackageName::new(&name).expect("name"),
                            Version::parse("1.0-r0").expect("version"),
                            "x86_64",
                        );
                        spec.description = format!("{name}: 64 MiB of words (benchmark package)");
                        spec.license = "Apache-2.0".into();
                        spec.build_time = 1_700_000_000;
                        spec.files = files;
                        let bytes = write_package(&spec, Some(&key)).expect("package");
                        let file = format!("{name}-1.0-r0.apk");
                        std::fs::write(dir.join(&file), &bytes).expect("write apk");
                        done.push(index_entry(&bytes, &file).expect("index entry"));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("generator thread")).collect()
    });
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    // The workspace first, the index last: the index marks a complete generation.
    std::fs::create_dir_all(ws.join("keys")).expect("mkdir keys");
    std::fs::write(ws.join("keys/BUILD"), "").expect("keys/BUILD");
    std::fs::copy(key_path.with_extension("rsa.pub"), ws.join("keys/executor-test-key.rsa.pub")).expect("copy key");
    std::fs::write(
        ws.join("WORKSPACE"),
        "apk_repository(name = \"synth\", url = \"file://repo\", keys = [\"//keys:executor-test-key.rsa.pub\"])\n",
    )
    .expect("WORKSPACE");
    std::fs::write(dir.join("APKINDEX.tar.gz"), write_index(&entries, "synthetic", Some(&key)).expect("index"))
        .expect("write index");
}

/// The workspace's `BUILD`: the set as one `apk_fetch`, installed into one `layer`.
fn write_build(ws: &Path, epoch: usize) {
    let names: Vec<String> = (0..PACKAGES).map(|p| format!("\"synth-{p:02}\"")).collect();
    let build = format!(
        "apk_fetch(name = \"apks\", repository = \"synth\", packages = [{}], arch = \"x86_64\")\n\
         layer(name = \"layer\", packages = \":apks\", epoch = {})\n",
        names.join(", "),
        1_700_000_000 + epoch
    );
    std::fs::write(ws.join("BUILD"), build).expect("BUILD");
}

/// 4,096 pronounceable pseudo-words of 2 to 4 syllables.
fn words() -> Vec<String> {
    const SYLLABLES: [&str; 32] = [
        "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ber", "dan", "fel", "gor", "hin", "jat", "kem", "lun", "mor",
        "nis", "pel", "qua", "ros", "sim", "tor", "ul", "ven", "wix", "yor", "zan", "ash", "eth", "ing", "ost",
    ];
    let mut rng = 42u64;
    (0..4096)
        .map(|_| {
            let n = 2 + (xorshift(&mut rng) % 3) as usize;
            (0..n).map(|_| SYLLABLES[(xorshift(&mut rng) % 32) as usize]).collect()
        })
        .collect()
}

/// `size` bytes of words from `words`, eleven to a line.
fn text(words: &[String], rng: &mut u64, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 64);
    let mut column = 0;
    while out.len() < size {
        out.extend_from_slice(words[(xorshift(rng) % words.len() as u64) as usize].as_bytes());
        column += 1;
        out.push(if column % 11 == 0 { b'\n' } else { b' ' });
    }
    out.truncate(size);
    out
}

/// A `/usr/bin/time -v` field's value.
fn time_v_field<'a>(stderr: &'a str, field: &str) -> Option<&'a str> {
    stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix(field))
        .map(|rest| rest.rsplit(": ").next().unwrap_or(rest).trim())
}

/// `h:mm:ss` or `m:ss.cc` in seconds.
fn wall_seconds(text: &str) -> f64 {
    text.split(':').fold(0.0, |acc, part| acc * 60.0 + part.parse::<f64>().unwrap_or(0.0))
}

/// Size of the tar of `dir` (what the shell pipeline compresses).
fn tar_size(dir: &Path) -> u64 {
    let out = check(Command::new("sh").arg("-c").arg("tar -C \"$1\" -cf - . | wc -c").arg("sh").arg(dir));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
}

fn find_files(dir: &Path, suffix: &str, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            find_files(&path, suffix, found);
        } else if path.to_string_lossy().ends_with(suffix) {
            found.push(path);
        }
    }
}

//! Fetch + verify throughput of `apk_fetch` (issue: APK repositories: "fetch and verify .apk
//! files from a loopback HTTP server: at least 200 MB/s, with concurrent downloads").
//! Prints figures; not a test.
//!
//! ```sh
//! bash bench/apk.sh                      # builds the release binary, then runs this
//! cargo run --release -p executor --example fetch_bench -- target/release/executor [RUNS]
//! ```
//!
//! It writes 8 signed x86_64 packages of 32 MiB of pseudo-random (incompressible) bytes each,
//! so that each `.apk` is ~32 MiB, and a signed index; serves them from the loopback test
//! server (`executor_testkit::http`, one thread per connection); locks an
//! `apk_fetch` of all eight with one cache, then times `executor build //:apks` with an
//! empty cache and no `executor-out/` each run, so that every package is downloaded,
//! verified (size, sha256, Q1, signature, datahash), stored and copied out.
//! MB/s = total `.apk` bytes / build wall time (1 MB = 10^6 bytes).
//!
//! To show where the time goes it also times, in this process, the pieces on their own:
//! the download alone (`UrlFetcher::fetch_to_file`, which hashes with sha256 while writing)
//! with 1 and `cores` threads, reading the files back, `Package::verify` in memory, and one
//! sha256 pass in memory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[path = "common/mod.rs"]
mod common;
use common::{check, list, machine, median, summary_line, xorshift};

use executor::apk::{Keyring, Package, PackageName, PackagePin, SignaturePolicy, Version};
use executor::digest::Digest;
use executor::fetch::{FetchOptions, Fetcher, UrlFetcher};
use executor_testkit::apk::{index_entry, write_index, write_package, PackageFile, PackageSpec, SigningKey};
use executor_testkit::http::TestServer;

/// Packages served.
const PACKAGES: usize = 8;
/// Files per package.
const FILES: usize = 32;
/// Bytes per file.
const FILE_SIZE: usize = 1 << 20;

fn main() {
    let mut args = std::env::args().skip(1);
    let exe = PathBuf::from(args.next().expect("usage: fetch_bench <executor binary> [RUNS]"));
    let exe = std::fs::canonicalize(&exe).expect("the executor binary");
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let base = std::env::var_os("BENCH_TMPDIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let work = tempfile::Builder::new().prefix("fetch-bench-").tempdir_in(base).expect("temp dir");
    let work = work.path();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("{}", machine());
    println!("runs per figure: {runs} (median)");

    let key_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../third_party/keys/executor-test-key.rsa");
    let www = work.join("www");
    let start = Instant::now();
    let files = make_repository(&key_path, &www.join("x86_64"));
    let total: u64 = files.iter().map(|(_, bytes)| bytes.len() as u64).sum();
    println!(
        "{PACKAGES} packages x {} MiB of random bytes: {:.1} MB of .apk (generated in {:.1} s)",
        (FILES * FILE_SIZE) >> 20,
        total as f64 / 1e6,
        start.elapsed().as_secs_f64()
    );
    let server = TestServer::serve_dir(www);

    // The workspace.
    let ws = work.join("ws");
    std::fs::create_dir_all(ws.join("keys")).expect("mkdir");
    std::fs::write(ws.join("keys/BUILD"), "").expect("keys/BUILD");
    std::fs::copy(key_path.with_extension("rsa.pub"), ws.join("keys/executor-test-key.rsa.pub")).expect("copy key");
    std::fs::write(
        ws.join("WORKSPACE"),
        format!(
            "apk_repository(name = \"bench\", url = \"{}\", keys = [\"//keys:executor-test-key.rsa.pub\"])\n",
            server.url()
        ),
    )
    .expect("WORKSPACE");
    let names: Vec<String> = files.iter().map(|(name, _)| format!("\"{name}\"")).collect();
    std::fs::write(
        ws.join("BUILD"),
        format!(
            "apk_fetch(name = \"apks\", repository = \"bench\", packages = [{}], arch = \"x86_64\")\n",
            names.join(", ")
        ),
    )
    .expect("BUILD");
    check(Command::new(&exe).arg("--cache-dir").arg(work.join("lock-cache")).arg("lock").current_dir(&ws));

    for jobs in [None, Some(1)] {
        let mut times = Vec::new();
        let mut summary = String::new();
        for run in 0..runs {
            let cache = work.join(format!("cache-{run}"));
            let _ = std::fs::remove_dir_all(ws.join("executor-out"));
            let mut cmd = Command::new(&exe);
            cmd.arg("--cache-dir").arg(&cache).arg("build").arg("//:apks").current_dir(&ws);
            if let Some(jobs) = jobs {
                cmd.arg("-j").arg(jobs.to_string());
            }
            let start = Instant::now();
            let out = check(&mut cmd);
            times.push(start.elapsed().as_secs_f64());
            summary = summary_line(&out);
            let _ = std::fs::remove_dir_all(&cache);
        }
        let wall = median(&mut times);
        let how = jobs.map_or(format!("-j default ({cores})"), |j| format!("-j {j}"));
        println!(
            "`executor build //:apks`, empty cache, {how}: median {wall:.3} s {} = {:.0} MB/s (target: >= 200 MB/s)",
            list(&times),
            total as f64 / wall / 1e6
        );
        println!("   {summary}");
    }

    // The pieces.
    let fetcher = UrlFetcher::new(work.to_path_buf(), FetchOptions::default());
    let downloads = work.join("downloads");
    std::fs::create_dir_all(&downloads).expect("mkdir");
    for threads in [1, cores] {
        let mut times = Vec::new();
        for _ in 0..runs {
            let next = std::sync::atomic::AtomicUsize::new(0);
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((name, bytes)) = files.get(i) else { return };
                        let url = format!("{}/x86_64/{name}-1.0-r0.apk", server.url());
                        let got = fetcher
                            .fetch_to_file(&url, &downloads.join(format!("{name}.apk")), u64::MAX)
                            .expect("download");
                        assert_eq!(got.size, bytes.len() as u64);
                    });
                }
            });
            times.push(start.elapsed().as_secs_f64());
        }
        let t = median(&mut times);
        println!(
            "   piece: download + sha256 to disk (UrlFetcher), {threads} thread(s): median {t:.3} s = {:.0} MB/s",
            total as f64 / t / 1e6
        );
    }
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        for (name, _) in &files {
            std::hint::black_box(std::fs::read(downloads.join(format!("{name}.apk"))).expect("read back"));
        }
        times.push(start.elapsed().as_secs_f64());
    }
    let t = median(&mut times);
    println!(
        "   piece: read the files back (page cache), 1 thread: median {t:.3} s = {:.0} MB/s",
        total as f64 / t / 1e6
    );

    let mut keyring = Keyring::new();
    keyring.insert_file(&key_path.with_extension("rsa.pub")).expect("public key");
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        for (name, bytes) in &files {
            let package = Package::read(bytes, name).expect("package");
            let pin = PackagePin {
                name: package.info().name.clone(),
                version: package.info().version.clone(),
                identity: package.identity(),
                size: Some(bytes.len() as u64),
                sha256: Some(Digest::of(bytes).bytes()),
            };
            Package::verify(bytes, name, &pin, &keyring, SignaturePolicy::Required).expect("verify");
        }
        times.push(start.elapsed().as_secs_f64());
    }
    let t = median(&mut times);
    println!(
        "   piece: sha256 for the pin + Package::verify in memory (sha256, Q1, RSA, datahash), 1 thread: median {t:.3} s = {:.0} MB/s",
        total as f64 / t / 1e6
    );
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        for (_, bytes) in &files {
            std::hint::black_box(Digest::of(bytes));
        }
        times.push(start.elapsed().as_secs_f64());
    }
    let t = median(&mut times);
    println!("   piece: one sha256 pass in memory, 1 thread: median {t:.3} s = {:.0} MB/s", total as f64 / t / 1e6);
}

/// Writes the packages and the signed index into `dir`; returns (name, bytes) per package.
fn make_repository(key_path: &Path, dir: &Path) -> Vec<(String, Vec<u8>)> {
    let key = SigningKey::read_file(key_path).expect("test key");
    std::fs::create_dir_all(dir).expect("mkdir");
    let next = std::sync::atomic::AtomicUsize::new(0);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut packages: Vec<(String, Vec<u8>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..cores)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let p = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if p >= PACKAGES {
                            return done;
                        }
                        let name = format!("blob-{p:02}");
                        let mut rng = 0x2545_F491_4F6C_DD1Du64 ^ (p as u64 + 1);
                        let mut files = vec![
                            PackageFile::dir("usr"),
                            PackageFile::dir("usr/share"),
                            PackageFile::dir(format!("usr/share/{name}")),
                        ];
                        for f in 0..FILES {
                            let content: Vec<u8> =
                                (0..FILE_SIZE / 8).flat_map(|_| xorshift(&mut rng).to_le_bytes()).collect();
                            files.push(PackageFile::file(format!("usr/share/{name}/blob-{f:03}.bin"), content));
                        }
                        let mut spec = PackageSpec::new(
                            PackageName::new(&name).expect("name"),
                            Version::parse("1.0-r0").expect("version"),
                            "x86_64",
                        );
                        spec.description = format!("{name}: 32 MiB of random bytes (benchmark package)");
                        spec.license = "Apache-2.0".into();
                        spec.build_time = 1_700_000_000;
                        spec.files = files;
                        let bytes = write_package(&spec, Some(&key)).expect("package");
                        std::fs::write(dir.join(format!("{name}-1.0-r0.apk")), &bytes).expect("write apk");
                        done.push((name, bytes));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("generator thread")).collect()
    });
    packages.sort_by(|a, b| a.0.cmp(&b.0));
    let entries: Vec<_> = packages
        .iter()
        .map(|(name, bytes)| index_entry(bytes, &format!("{name}-1.0-r0.apk")).expect("index entry"))
        .collect();
    std::fs::write(dir.join("APKINDEX.tar.gz"), write_index(&entries, "fetch bench", Some(&key)).expect("index"))
        .expect("write index");
    packages
}

//! Benchmarks of the APK side (issue: APK repositories). Prints figures; not a test.
//!
//!   cargo run --release -p executor --example apk_bench [RUNS]
//!
//! 1. read and verify the real 5,004-package Alpine v3.17 index (656 KB): gunzip both
//!    members, SHA-1 + RSA-4096 signature check, parse every field;
//! 2. resolve the static set (alpine-baselayout-data, ca-certificates-bundle, tzdata) eight
//!    times, once per arch of an image (the fixtures hold one real Alpine arch, so the same
//!    index stands in for all eight);
//! 3. resolve a synthetic dependency chain `p0 -> p1 -> ... -> pN` of 10k, 20k and 200k
//!    links (a quadratic walk took 24 s for 20k; linear is milliseconds);
//! 4. fetch + verify: download the real fixture packages from a loopback HTTP server
//!    (python3's threaded http.server) with the executor's fetcher on every core, each
//!    verified with `Package::verify` (size, Q1, signature, datahash) — reported in MB/s
//!    over a package set made large by repetition.
//!
//! Each figure is the median of RUNS runs (default 31).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use executor::apk::{
    resolve, Dependency, Index, Keyring, Package, PackagePin, Providers, SignaturePolicy, TrustPolicy,
};
use executor::fetch::{FetchOptions, Fetcher, UrlFetcher};

fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    times[times.len() / 2]
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(31);
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/apk");
    let bytes = std::fs::read(fx.join("alpine-v3.17/aarch64/APKINDEX.tar.gz")).expect("fixture index");
    let mut keys = Keyring::new();
    keys.insert_file(&fx.join("alpine-keys/alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub")).expect("key");

    let read = median_ms(runs, || {
        let index = Index::read(&bytes, "alpine", &keys, TrustPolicy::RequireTrusted).expect("index");
        assert!(index.entries().len() > 5000);
    });
    println!("index read + verify (5,004 packages, 656 KB): median {read:.2} ms over {runs} runs");

    let index = Index::read(&bytes, "alpine", &keys, TrustPolicy::RequireTrusted).expect("index");
    let request: Vec<Dependency> = ["alpine-baselayout-data", "ca-certificates-bundle", "tzdata"]
        .iter()
        .map(|d| Dependency::parse(d).expect("atom"))
        .collect();
    let resolve_ms = median_ms(runs, || {
        for _arch in 0..8 {
            let r = resolve(index.entries(), &request).expect("resolves");
            assert_eq!(r.install_order.len(), 3);
        }
    });
    println!(
        "resolve the static set for 8 archs, indexing providers each time: median {resolve_ms:.3} ms over {runs} runs"
    );
    let providers: Vec<Providers> = (0..8).map(|_| Providers::new(index.entries())).collect();
    let resolve_ms = median_ms(runs, || {
        for p in &providers {
            let r = p.resolve(&request).expect("resolves");
            assert_eq!(r.install_order.len(), 3);
        }
    });
    println!("resolve the static set for 8 archs, providers indexed once per index (as `executor lock` does): median {resolve_ms:.3} ms over {runs} runs");

    for n in [10_000usize, 20_000, 200_000] {
        let text = executor_testkit::apk::chain_index(n);
        let parsed = executor::apk::index::parse_text(&text, "chain").expect("chain index");
        let request = [Dependency::parse("p0").expect("atom")];
        let ms = median_ms(runs.min(9), || {
            let r = resolve(&parsed.entries, &request).expect("resolves");
            assert_eq!(r.install_order.len(), n);
        });
        println!("resolve a {n}-link dependency chain: median {ms:.1} ms over {} runs", runs.min(9));
    }

    // Fetch + verify from loopback HTTP.
    let dir = tempdir();
    let packages: Vec<PathBuf> = ["x86_64", "aarch64"]
        .iter()
        .flat_map(|a| {
            ["pretend-baselayout", "replayout", "custom-ca-certs-1", "custom-ca-certs-2"]
                .map(|p| PathBuf::from(format!("melange-rsa256/{a}/{p}-1.0.0-r0.apk")))
        })
        .collect();
    let keys_m = {
        let mut k = Keyring::new();
        k.insert_file(&fx.join("melange-rsa256/melange.rsa.pub")).expect("key");
        k
    };
    let port = 18000 + (std::process::id() % 1000) as u16;
    let server = Server(
        Command::new("python3")
            .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "--directory"])
            .arg(&fx)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 http.server"),
    );
    std::thread::sleep(Duration::from_millis(500));
    let fetcher = UrlFetcher::new(dir.clone(), FetchOptions::default());
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let rounds = 200;
    let total_bytes: u64 =
        packages.iter().map(|p| std::fs::metadata(fx.join(p)).expect("size").len()).sum::<u64>() * rounds as u64;
    let ms = median_ms(5.min(runs), || {
        std::thread::scope(|s| {
            for t in 0..threads {
                let (fetcher, packages, dir, keys_m) = (&fetcher, &packages, &dir, &keys_m);
                s.spawn(move || {
                    for r in (t..rounds).step_by(threads) {
                        for (i, p) in packages.iter().enumerate() {
                            let url = format!("http://127.0.0.1:{port}/{}", p.display());
                            let dest = dir.join(format!("{t}-{r}-{i}.apk"));
                            fetcher.fetch_to_file(&url, &dest, u64::MAX).expect("fetch");
                            let bytes = std::fs::read(&dest).expect("read");
                            let probe = Package::read(&bytes, &url).expect("package");
                            let pin = PackagePin {
                                name: probe.info().name.clone(),
                                version: probe.info().version.clone(),
                                identity: probe.identity(),
                                size: Some(bytes.len() as u64),
                                sha256: None,
                            };
                            Package::verify(&bytes, &url, &pin, keys_m, SignaturePolicy::Required).expect("verify");
                            std::fs::remove_file(&dest).expect("rm");
                        }
                    }
                });
            }
        });
    });
    drop(server);
    println!(
        "fetch + verify {} small real packages ({} KB each on average) over loopback HTTP with {threads} threads: {:.0} MB/s (median of 5)",
        packages.len() * rounds,
        total_bytes / (packages.len() * rounds) as u64 / 1024,
        total_bytes as f64 / 1e6 / (ms / 1000.0)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("apk-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tempdir");
    dir
}

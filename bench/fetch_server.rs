//! Download throughput of `executor::fetch::UrlFetcher` from the loopback test server.
//! Not a test: it prints figures, so it is `#[ignore]`d. Wire it up as a test target of
//! the executor crate:
//!
//! ```toml
//! [[test]]
//! name = "fetch_throughput"
//! path = "../bench/fetch_server.rs"
//! ```
//!
//! and run `cargo test --release -p executor --test fetch_throughput -- --ignored --nocapture`.
//!
//! It serves one 64 MiB file and downloads it `ROUNDS` times per thread with 1, 2 and 4
//! threads, each download to its own file on disk, checking every digest; then the same
//! through `file://` as a ceiling, and sha256 alone in memory as the floor of the cost.

#[path = "../tests/integration/http_server.rs"]
mod http_server;

use std::path::Path;
use std::time::Instant;

use executor::digest::Digest;
use executor::fetch::{FetchOptions, Fetcher, UrlFetcher};
use http_server::TestServer;

/// Size of the served file.
const SIZE: usize = 64 << 20;
/// Downloads per thread per configuration.
const ROUNDS: usize = 4;

fn mb_per_s(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

/// Runs `threads` threads of `ROUNDS` downloads each; returns aggregate MB/s.
fn run(fetcher: &UrlFetcher, url: &str, dir: &Path, threads: usize, want: Digest) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for r in 0..ROUNDS {
                    let dest = dir.join(format!("out-{t}-{r}"));
                    let got = fetcher.fetch_to_file(url, &dest).expect("download");
                    assert_eq!((got.size, got.sha256), (SIZE as u64, want), "{url}");
                    std::fs::remove_file(&dest).expect("remove the download");
                }
            });
        }
    });
    mb_per_s(SIZE * ROUNDS * threads, start.elapsed().as_secs_f64())
}

#[test]
#[ignore = "benchmark: prints figures"]
fn fetch_throughput() {
    let dir = tempfile::tempdir().expect("temp dir");
    let www = dir.path().join("www");
    std::fs::create_dir(&www).expect("mkdir");
    // Not compressible and not constant, so no layer can shortcut the bytes.
    let data: Vec<u8> = (0..SIZE as u64).map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8).collect();
    std::fs::write(www.join("big.bin"), &data).expect("write the served file");

    let start = Instant::now();
    let want = Digest::of(&data);
    println!("sha256 alone, in memory: {:.0} MB/s", mb_per_s(SIZE, start.elapsed().as_secs_f64()));

    let server = TestServer::serve_dir(www);
    let fetcher = UrlFetcher::new(dir.path().to_path_buf(), FetchOptions::default());
    let http_url = format!("{}/big.bin", server.url());
    // Warm the page cache and the code paths once.
    fetcher.fetch_to_file(&http_url, &dir.path().join("warm-up")).expect("warm-up download");

    for (scheme, url) in [("http", http_url.as_str()), ("file", "file://www/big.bin")] {
        for threads in [1, 2, 4] {
            let rate = run(&fetcher, url, dir.path(), threads, want);
            println!("{scheme}: {threads} thread(s) x {ROUNDS} x 64 MiB: {rate:.0} MB/s aggregate");
        }
    }
}

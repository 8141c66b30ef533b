//! `executor lock` and `executor build` against the fixture repositories served over HTTP by
//! a loopback server, with the failures a real network has.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{fixtures, Workspace};
use executor_testkit::http::{refused_url, Fault, TestServer};

const TARGET: &str = "apk_fetch(\n    name = \"apks\",\n    repository = \"melange\",\n    packages = [\"replayout\"],\n    archs = [\"x86_64\", \"aarch64\"],\n)\n";

fn served(fx: &Path) -> TestServer {
    TestServer::serve_dir(fx.join("melange-rsa256"))
}

fn workspace(fx: &Path, url: &str) -> Workspace {
    Workspace::with_apk_repository("melange", url, &[fx.join("melange-rsa256/melange.rsa.pub")], "")
        .file("img/BUILD", TARGET)
}

/// Fast failure settings so that fault tests finish quickly.
const FAST: [&str; 4] = ["--fetch-timeout", "1", "--fetch-retries", "1"];

fn normalize(ws: &Workspace, server: &str, text: &str) -> String {
    ws.normalize(&text.replace(server, "http://[SERVER]"))
}

fn blobs(cache: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let Ok(shards) = fs::read_dir(cache.join("cas/sha256")) else { return out };
    for shard in shards.flatten() {
        for blob in fs::read_dir(shard.path()).into_iter().flatten().flatten() {
            out.push(fs::read(blob.path()).expect("read blob"));
        }
    }
    out
}

#[test]
fn lock_then_build_over_http() {
    let fx = fixtures();
    let server = served(&fx);
    let ws = workspace(&fx, &server.url());
    ws.run(&["lock"]).success();
    let requests = server.requests();
    assert_eq!(requests.iter().filter(|r| r.ends_with("APKINDEX.tar.gz")).count(), 2, "{requests:?}");
    assert_eq!(requests.iter().filter(|r| r.ends_with(".apk")).count(), 4, "{requests:?}");
    insta::assert_snapshot!("apk_http_lockfile", normalize(&ws, &server.url(), &ws.read("executor.lock")));

    // A build on another machine (empty cache) reads only the lockfile: no index is fetched,
    // every package exactly once.
    fs::remove_dir_all(ws.cache()).expect("empty cache");
    let before = server.requests().len();
    let run = ws.run(&["build", "//img:apks", "--locked"]).success();
    let during: Vec<String> = server.requests()[before..].to_vec();
    assert!(during.iter().all(|r| r.ends_with(".apk")), "the build fetched more than packages: {during:?}");
    assert_eq!(during.len(), 4, "{during:?}");
    insta::assert_snapshot!("apk_http_build", normalize(&ws, &server.url(), &run.stdout));

    // The indexes may vanish from the server: the build does not need them.
    server.set_fault("/x86_64/APKINDEX.tar.gz", Fault::NotFound);
    fs::remove_dir_all(ws.cache()).expect("empty cache");
    fs::remove_dir_all(ws.root().join("executor-out")).expect("clean outputs");
    ws.run(&["build", "//img:apks"]).success();
}

#[test]
fn transient_failures_are_retried() {
    let fx = fixtures();
    let server = served(&fx);
    let ws = workspace(&fx, &server.url());
    server.set_fault("/x86_64/APKINDEX.tar.gz", Fault::FailTimes(1, Box::new(Fault::ServerError)));
    server.set_fault("/aarch64/replayout-1.0.0-r0.apk", Fault::FailTimes(1, Box::new(Fault::Truncate)));
    ws.run(&["lock", "--fetch-retries", "2"]).success();
    let requests = server.requests();
    assert_eq!(requests.iter().filter(|r| *r == "/x86_64/APKINDEX.tar.gz").count(), 2, "{requests:?}");
}

/// Each case: a fault on one path during `lock` or `build`; the command must fail with exit
/// code 1, write no lockfile (for lock), and put no unverified byte in the store or outputs.
#[test]
fn network_failures_are_clear_errors() {
    let fx = fixtures();
    let cases: [(&str, &str, &str, Fault); 8] = [
        ("apk_http_index_404", "lock", "/x86_64/APKINDEX.tar.gz", Fault::NotFound),
        ("apk_http_index_500", "lock", "/aarch64/APKINDEX.tar.gz", Fault::ServerError),
        ("apk_http_index_not_gzip", "lock", "/x86_64/APKINDEX.tar.gz", Fault::WrongBody),
        ("apk_http_package_truncated", "lock", "/x86_64/replayout-1.0.0-r0.apk", Fault::Truncate),
        ("apk_http_package_stalls", "lock", "/x86_64/replayout-1.0.0-r0.apk", Fault::Stall),
        ("apk_http_package_corrupt_at_lock", "lock", "/aarch64/pretend-baselayout-1.0.0-r0.apk", Fault::WrongBody),
        ("apk_http_package_corrupt_at_build", "build", "/x86_64/replayout-1.0.0-r0.apk", Fault::WrongBody),
        ("apk_http_package_404_at_build", "build", "/aarch64/replayout-1.0.0-r0.apk", Fault::NotFound),
    ];
    for (name, step, path, fault) in cases {
        let server = served(&fx);
        let ws = workspace(&fx, &server.url());
        if step == "build" {
            ws.run(&["lock"]).success();
            fs::remove_dir_all(ws.cache()).expect("empty cache");
        }
        server.set_fault(path, fault);
        let started = Instant::now();
        let mut args = vec![step];
        if step == "build" {
            // One job: which actions ran before the failure is then fixed.
            args.extend(["//img:apks", "-j", "1"]);
        }
        args.extend(FAST);
        let run = ws.run(&args);
        assert_eq!(run.code, 1, "{name}: {}", run.stderr);
        assert!(started.elapsed() < Duration::from_secs(20), "{name}: took {:?}", started.elapsed());
        if step == "lock" {
            assert!(!ws.root().join("executor.lock").exists(), "{name}: a failed lock wrote a lockfile");
        }
        // Only verified bytes are stored: every blob is one of the fixture files or an
        // action-cache/tree record, never the server's wrong body.
        let good: Vec<Vec<u8>> = ["x86_64", "aarch64"]
            .iter()
            .flat_map(|a| {
                ["pretend-baselayout", "replayout"]
                    .map(|p| fs::read(fx.join(format!("melange-rsa256/{a}/{p}-1.0.0-r0.apk"))).expect("fixture"))
            })
            .collect();
        for blob in blobs(&ws.cache()) {
            assert!(good.contains(&blob), "{name}: an unverified blob of {} bytes reached the store", blob.len());
        }
        let stderr = run.stderr.lines().filter(|l| !l.starts_with('[')).collect::<Vec<_>>().join("\n");
        insta::assert_snapshot!(name, normalize(&ws, &server.url(), &stderr));
    }
}

#[test]
fn connection_refused() {
    let fx = fixtures();
    let url = refused_url();
    let ws = workspace(&fx, &url);
    let run = ws.run(&["lock", "--fetch-retries", "0"]).failure(1);
    let text = normalize(&ws, &url, &run.stderr);
    assert!(text.contains("http://[SERVER]/"), "{text}");
    assert!(text.contains("connection refused") || text.contains("Connection refused"), "{text}");
}

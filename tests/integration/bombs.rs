//! Decompression bombs and oversized members, through the real binary, with its peak memory
//! measured by GNU time: every one is refused before memory grows (peak RSS under 200 MiB).

use std::io::Write;
use std::path::Path;
use std::process::Command;

use executor::apk::{PackageName, Version};
use executor_testkit::apk::{index_entry, write_index, write_package, PackageFile, PackageSpec};
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::harness::{executor_bin, test_signing_key, tool, Workspace};

const PEAK_RSS_LIMIT_KIB: u64 = 200 * 1024;

/// One gzip member holding a tar with one entry `name` of `size` zero bytes (streamed: the
/// test itself never holds the inflated bytes).
fn bomb_member(name: &str, size: u64) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    let mut header = tar::Header::new_ustar();
    header.set_path(name).expect("path");
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    gz.write_all(header.as_bytes()).expect("header");
    let zeros = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        gz.write_all(&zeros[..n]).expect("zeros");
        left -= n as u64;
    }
    gz.write_all(&[0u8; 1024]).expect("end of archive");
    gz.finish().expect("gzip")
}

/// A workspace whose repository `test` (x86_64, signed by the test key) serves `index`.
fn workspace(index: &[u8], files: &[(&str, Vec<u8>)]) -> Workspace {
    let mut all: Vec<(String, Vec<u8>)> = vec![("APKINDEX.tar.gz".to_owned(), index.to_vec())];
    all.extend(files.iter().map(|(name, bytes)| ((*name).to_owned(), bytes.clone())));
    let ws = Workspace::with_test_repository(&all);
    ws.write(
        "img/BUILD",
        "apk_fetch(name = \"apks\", repository = \"test\", packages = [\"app\"], arch = \"x86_64\")\n",
    );
    ws
}

/// Runs `executor lock` under GNU time; returns (exit code, stderr without time's line, peak
/// RSS in KiB).
fn lock_measured(ws: &Workspace, time: &Path) -> (i32, String, u64) {
    let out = Command::new(time)
        .args(["-f", "PEAK_RSS_KIB=%M"])
        .arg(executor_bin())
        .arg("lock")
        .current_dir(ws.root())
        .env("EXECUTOR_CACHE_DIR", ws.cache())
        .output()
        .expect("run time");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let rss = stderr
        .lines()
        .find_map(|l| l.strip_prefix("PEAK_RSS_KIB="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no RSS figure in\n{stderr}"));
    let text: String = stderr.lines().filter(|l| !l.starts_with("PEAK_RSS_KIB=")).map(|l| format!("{l}\n")).collect();
    // GNU time reports the child's exit status as its own.
    (out.status.code().unwrap_or(-1), text, rss)
}

#[test]
#[ignore = "needs GNU time at /usr/bin/time (bash .ci/run installs it)"]
fn decompression_bombs_are_refused_with_bounded_memory() {
    let time = tool("time", "/usr/bin/time");
    let key = test_signing_key();
    // A real package and its index entry, to build lies around.
    let mut spec =
        PackageSpec::new(PackageName::new("app").expect("name"), Version::parse("1.0-r0").expect("v"), "x86_64");
    spec.files = vec![PackageFile::dir("etc"), PackageFile::file("etc/app", "x\n")];
    let good = write_package(&spec, Some(&key)).expect("package");
    let entry = index_entry(&good, "app-1.0-r0.apk").expect("entry");

    // 1. The index's signature member inflates to 512 MiB.
    let mut sig_bomb = bomb_member(".SIGN.RSA.executor-test-key.rsa.pub", 512 << 20);
    sig_bomb.extend(bomb_member("APKINDEX", 10));
    // 2. The index's content (unsigned index, one member) inflates to 512 MiB.
    let content_bomb = bomb_member("APKINDEX", 512 << 20);
    // 3. A signed index listing a package whose control member inflates to 512 MiB.
    let mut package_bomb = bomb_member(".SIGN.RSA.executor-test-key.rsa.pub", 512);
    package_bomb.extend(bomb_member(".PKGINFO", 512 << 20));
    package_bomb.extend(bomb_member("etc/app", 2));
    let mut lying = entry.clone();
    lying.size = Some(package_bomb.len() as u64);
    let signed_index = write_index(&[lying], "test", Some(&key)).expect("index");

    type Case<'a> = (&'a str, Vec<u8>, Vec<(&'a str, Vec<u8>)>, &'a str);
    let cases: [Case<'_>; 3] = [
        ("index signature member", sig_bomb, vec![], "inflates to more than 1048576 bytes"),
        ("index content", content_bomb, vec![], "inflates to more than 134217728 bytes"),
        (
            "package control member",
            signed_index,
            vec![("app-1.0-r0.apk", package_bomb)],
            "inflates to more than 16777216 bytes",
        ),
    ];
    for (what, index, files, refusal) in cases {
        let ws = workspace(&index, &files);
        let (code, stderr, rss) = lock_measured(&ws, &time);
        assert_eq!(code, 1, "{what}: {stderr}");
        assert!(stderr.contains(refusal), "{what}: {stderr}");
        assert!(rss < PEAK_RSS_LIMIT_KIB, "{what}: peak RSS {rss} KiB");
        eprintln!("{what}: refused, peak RSS {} MiB", rss / 1024);
    }
}

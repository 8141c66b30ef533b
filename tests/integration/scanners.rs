//! A real scanner reads the flagship image: Trivy (pinned and built by
//! `.ci/install_trivy.sh`) finds each installed package once, in the image and in its
//! unpacked root, where `/lib/apk/db/installed` (the path older Trivy versions read) leads
//! to the database too.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::harness::{executor_bin, to_run};

/// The `library` components of a CycloneDX document: (name, version), sorted.
fn libraries(cyclonedx: &[u8]) -> Vec<(String, String)> {
    let doc: serde_json::Value = serde_json::from_slice(cyclonedx).expect("CycloneDX JSON");
    let mut found: Vec<(String, String)> = doc["components"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|c| c["type"] == "library")
        .map(|c| (c["name"].as_str().unwrap_or("").to_owned(), c["version"].as_str().unwrap_or("").to_owned()))
        .collect();
    found.sort();
    found
}

fn trivy(args: &[&str], cache: &Path) -> Vec<(String, String)> {
    let out = Command::new("trivy")
        .args(args)
        .args(["--format", "cyclonedx", "--quiet", "--cache-dir"])
        .arg(cache)
        .output()
        .expect("run trivy");
    let run = to_run(out);
    assert_eq!(run.code, 0, "trivy {args:?}:\n{}", run.stderr);
    libraries(run.stdout.as_bytes())
}

#[test]
#[ignore = "needs trivy (bash .ci/install_trivy.sh; .ci/run installs it)"]
fn trivy_finds_every_package_of_the_static_image_once() {
    crate::harness::require(&["trivy"]);
    let temp = tempfile::tempdir().expect("tempdir");
    let ws = temp.path().join("ws");
    crate::images::copy_repository(&ws);
    let out = Command::new(executor_bin())
        .args(["build", "//images:static_x86_64", "//images:static_x86_64_tarball"])
        .current_dir(&ws)
        .env("EXECUTOR_CACHE_DIR", temp.path().join("cache"))
        .output()
        .expect("run executor");
    let run = to_run(out);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let expected: Vec<(String, String)> =
        [("baselayout-data", "1.0.0-r0"), ("ca-certificates-bundle", "20230311-r0"), ("tzdata", "2025b-r0")]
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
    let cache = temp.path().join("trivy-cache");

    let tarball = ws.join("executor-out/images/static_x86_64_tarball.tar");
    let image = trivy(&["image", "--input", tarball.to_str().expect("utf-8 path")], &cache);
    assert_eq!(image, expected, "trivy image");

    // The unpacked root: `/lib/apk` leads to the database, and no package counts twice.
    let layout = ws.join("executor-out/images/static_x86_64");
    let read_json =
        |p: &Path| -> serde_json::Value { serde_json::from_slice(&fs::read(p).expect("read")).expect("json") };
    let index = read_json(&layout.join("index.json"));
    let blob = |d: &serde_json::Value| {
        layout.join("blobs/sha256").join(d.as_str().expect("digest").trim_start_matches("sha256:"))
    };
    let manifest = read_json(&blob(&index["manifests"][0]["digest"]));
    let rootfs = temp.path().join("rootfs");
    fs::create_dir_all(&rootfs).expect("mkdir");
    let status =
        Command::new("tar").arg("-xzf").arg(blob(&manifest["layers"][0]["digest"])).arg("-C").arg(&rootfs).status();
    assert!(status.expect("tar").success());
    assert_eq!(
        fs::read(rootfs.join("lib/apk/db/installed")).expect("/lib/apk/db/installed"),
        fs::read(rootfs.join("usr/lib/apk/db/installed")).expect("/usr/lib/apk/db/installed")
    );
    let unpacked = trivy(&["rootfs", rootfs.to_str().expect("utf-8 path")], &cache);
    assert_eq!(unpacked, expected, "trivy rootfs");
}

/// The static image with its packages spread over layers by origin: the packages are in
/// three layers, the apk database in the top one, and Trivy still finds each package once.
#[test]
#[ignore = "needs trivy (bash .ci/install_trivy.sh; .ci/run installs it)"]
fn trivy_finds_every_package_of_a_layered_image_once() {
    crate::harness::require(&["trivy"]);
    let temp = tempfile::tempdir().expect("tempdir");
    let ws = temp.path().join("ws");
    crate::images::copy_repository_with_layered_static(&ws, &temp.path().join("cache"));
    let out = Command::new(executor_bin())
        .args(["build", "//layered:static_x86_64_tarball"])
        .current_dir(&ws)
        .env("EXECUTOR_CACHE_DIR", temp.path().join("cache"))
        .output()
        .expect("run executor");
    let run = to_run(out);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let meta: serde_json::Value = serde_json::from_slice(
        &fs::read(ws.join("executor-out/layered/static_x86_64_layer.layer.json")).expect("meta"),
    )
    .expect("json");
    assert_eq!(meta["parts"].as_array().map(Vec::len), Some(4), "{meta}");
    let tarball = ws.join("executor-out/layered/static_x86_64_tarball.tar");
    let found = trivy(&["image", "--input", tarball.to_str().expect("utf-8 path")], &temp.path().join("trivy-cache"));
    let expected: Vec<(String, String)> =
        [("baselayout-data", "1.0.0-r0"), ("ca-certificates-bundle", "20230311-r0"), ("tzdata", "2025b-r0")]
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
    assert_eq!(found, expected, "trivy image");
}

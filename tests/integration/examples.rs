//! Every `examples/*/` workspace builds, and builds the same outputs twice.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{executor_bin, normalize_progress, normalize_time, to_run};

#[test]
fn every_example_builds() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut names: Vec<String> = std::fs::read_dir(&examples)
        .expect("examples/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("WORKSPACE").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no examples found in {}", examples.display());
    for name in names {
        // A private copy and a fresh cache: tests never write into the source tree.
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = private_copy(temp.path(), &name);
        let cache = temp.path().join("cache");
        // An example may need generated inputs (a compiled binary): `prepare.sh` makes them.
        let prepared = dir.join("prepare.sh").is_file();
        if prepared {
            let status = Command::new("sh").arg(dir.join("prepare.sh")).status().expect("run prepare.sh");
            assert!(status.success(), "examples/{name}/prepare.sh failed");
        }
        let out = Command::new(executor_bin())
            .args(["build", "//..."])
            .current_dir(&dir)
            .env("EXECUTOR_CACHE_DIR", &cache)
            .output()
            .expect("run executor");
        let run = to_run(out);
        assert_eq!(run.code, 0, "example {name} failed:\n{}", run.stderr);
        // Prepared inputs (compiled binaries) vary with the compiler: no digest snapshot.
        if !prepared {
            insta::assert_snapshot!(
                format!("example_{name}"),
                format!("{}--- stderr\n{}", run.stdout, normalize_progress(&normalize_time(&run.stderr)))
            );
        }
    }
}

/// A copy of `examples/NAME` in `temp/repo/examples/NAME`, beside a copy of the repository
/// parts examples use (they load `@executor` from `../..`), without any outputs; its path.
fn private_copy(temp: &Path, name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let repo = temp.join("repo");
    std::fs::create_dir_all(repo.join("examples")).expect("mkdir");
    let example = format!("examples/{name}");
    for entry in
        ["WORKSPACE", "BUILD", "README.md", "ARCHITECTURE.md", "executor.lock", "rules", "images", "third_party"]
            .into_iter()
            .chain([example.as_str()])
    {
        let status = Command::new("cp").arg("-a").arg(root.join(entry)).arg(repo.join(entry)).status().expect("cp");
        assert!(status.success(), "copy {entry}");
    }
    let dir = repo.join(&example);
    let _ = std::fs::remove_dir_all(dir.join("executor-out"));
    dir
}

/// `examples/hello`: a static binary on the amd64 static image runs under runc as 65532.
#[test]
#[ignore = "needs runc, umoci, skopeo and a C compiler (bash .ci/run installs them)"]
fn hello_runs_under_runc_as_nonroot() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tool = root.join("../shared/tools/run_oci.sh");
    assert!(tool.is_file(), "missing {}", tool.display());
    crate::harness::require(&["runc", "umoci", "skopeo", "cc"]);
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = private_copy(temp.path(), "hello");
    let status = Command::new("sh").arg(dir.join("prepare.sh")).status().expect("prepare.sh");
    assert!(status.success(), "prepare.sh failed");
    let out = Command::new(executor_bin())
        .args(["build", "//:hello"])
        .current_dir(&dir)
        .env("EXECUTOR_CACHE_DIR", temp.path().join("cache"))
        .output()
        .expect("build");
    let run = to_run(out);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out =
        Command::new("bash").arg(&tool).arg(dir.join("executor-out/hello")).arg("latest").output().expect("run_oci.sh");
    let run = to_run(out);
    assert_eq!(run.code, 0, "run_oci.sh failed:\n{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "hello from executor's static base\nuid=65532 gid=65532\n", "{}", run.stderr);

    // The image's SBOM lists the base image's packages (its own layer has none).
    let sbom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("executor-out/hello.spdx.json")).expect("sbom")).expect("json");
    let names: Vec<&str> =
        sbom["packages"].as_array().expect("packages").iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["hello", "baselayout-data", "ca-certificates-bundle", "tzdata"]);

    // And the docker-archive for `docker load`.
    let out = Command::new(executor_bin())
        .args(["build", "//:hello_tarball"])
        .current_dir(&dir)
        .env("EXECUTOR_CACHE_DIR", temp.path().join("cache"))
        .output()
        .expect("build");
    let run = to_run(out);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("executor-out/hello_tarball.tar  sha256:"), "{}", run.stdout);
}

/// The digest of the manifest of the OCI layout `dir` (one image) and its layer digests.
fn image_and_layers(dir: &Path) -> (String, Vec<String>) {
    let read = |path: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
            .expect("json")
    };
    let index = read(dir.join("index.json"));
    let digest = index["manifests"][0]["digest"].as_str().expect("manifest digest").to_owned();
    let manifest = read(dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:")));
    let layers = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("layer digest").to_owned())
        .collect();
    (digest, layers)
}

/// A repository's image is the same image wherever it is built: `examples/hello` and a
/// workspace elsewhere on disk (which names the repository differently and declares an APK
/// repository of the same name as executor's, pointing elsewhere) get `//images:static_x86_64`
/// byte for byte, and the app image's base layer is the released image's layer.
#[test]
fn a_repositorys_image_is_the_same_in_every_workspace() {
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = private_copy(temp.path(), "hello");
    let repo = temp.path().join("repo");
    // The app layer's content does not matter here: no compiler needed.
    std::fs::create_dir_all(dir.join("bin")).expect("mkdir");
    std::fs::write(dir.join("bin/hello"), b"#!/bin/true\n").expect("write");
    let build = |cwd: &Path, targets: &[&str]| {
        let out = Command::new(executor_bin())
            .arg("build")
            .args(targets)
            .current_dir(cwd)
            .env("EXECUTOR_CACHE_DIR", temp.path().join("cache"))
            .output()
            .expect("run executor");
        let run = to_run(out);
        assert_eq!(run.code, 0, "build {targets:?} in {}:\n{}", cwd.display(), run.stderr);
    };
    build(&repo, &["//images:static_x86_64"]);
    let (home, home_layers) = image_and_layers(&repo.join("executor-out/images/static_x86_64"));

    build(&dir, &["@executor//images:static_x86_64", "//:hello"]);
    let (there, _) = image_and_layers(&dir.join("executor-out/@executor/images/static_x86_64"));
    assert_eq!(there, home, "@executor//images:static_x86_64 differs in examples/hello");
    let (app, app_layers) = image_and_layers(&dir.join("executor-out/hello"));
    assert_eq!(app_layers[..home_layers.len()], home_layers[..], "the app image's base layers");
    assert_eq!(app_layers.len(), home_layers.len() + 1);
    // The app image names its base, as ko does.
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("executor-out/hello/blobs/sha256").join(app.trim_start_matches("sha256:")))
            .expect("manifest"),
    )
    .expect("json");
    assert_eq!(manifest["annotations"]["org.opencontainers.image.base.digest"], home.as_str());
    assert_eq!(manifest["annotations"]["org.opencontainers.image.base.name"], "@executor//images:static_x86_64");

    let elsewhere = temp.path().join("elsewhere/deeper");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    std::fs::write(
        elsewhere.join("WORKSPACE"),
        format!(
            "local_repository(name = \"base\", path = \"{}\")\n\
             apk_repository(name = \"executor_test\", url = \"https://example.invalid/alpine\", allow_untrusted = True)\n",
            repo.display()
        ),
    )
    .expect("write");
    build(&elsewhere, &["@base//images:static_x86_64"]);
    let (third, _) = image_and_layers(&elsewhere.join("executor-out/@base/images/static_x86_64"));
    assert_eq!(third, home, "@base//images:static_x86_64 differs in a third workspace");
}

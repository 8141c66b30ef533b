//! Releases of `//images:static` beyond the push: the SBOM of every platform image, the
//! docker-archive tarballs, and the release check.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use executor::digest::Digest;
use executor::platform::Arch;

use crate::harness::{executor_bin, require, to_run, Run};

/// The eight archs of `//images:static`, as the target names spell them.
const ARCHS: [&str; 8] = ["x86_64", "aarch64", "armhf", "armv7", "ppc64le", "riscv64", "s390x", "x86"];

/// Runs `executor ARGS` in `ws` with the cache `cache`.
fn executor(ws: &Path, cache: &Path, args: &[&str]) -> Run {
    let out = Command::new(executor_bin())
        .args(args)
        .current_dir(ws)
        .env("EXECUTOR_CACHE_DIR", cache)
        .output()
        .expect("run executor");
    to_run(out)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).expect("json")
}

/// A fresh copy of the repository's workspace with `//images:static` built in it.
fn built_static() -> (tempfile::TempDir, std::path::PathBuf) {
    let temp = tempfile::tempdir().expect("tempdir");
    let ws = temp.path().join("ws");
    crate::images::copy_repository(&ws);
    let run = executor(&ws, &temp.path().join("cache"), &["build", "//images:static"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    (temp, ws)
}

#[test]
fn every_platform_image_has_a_valid_attached_sbom() {
    let (_temp, ws) = built_static();
    let out = ws.join("executor-out/images");
    // The lockfile's sha256 of each package, by (arch, name).
    let lock: toml::Value = toml::from_str(&fs::read_to_string(ws.join("executor.lock")).expect("lock")).expect("toml");
    let pinned: BTreeMap<(String, String), String> = lock["package"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().expect(k).to_owned();
            ((s("arch"), s("name")), s("sha256"))
        })
        .collect();
    let index_layout = out.join("static");
    let index_json = json(&index_layout.join("index.json"));
    let sboms = index_json["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == "latest.sbom")
        .expect("index.json names the SBOMs `latest.sbom`")
        .clone();
    assert_eq!(sboms["artifactType"], "application/spdx+json");
    let blob = |digest: &serde_json::Value| {
        let hex = digest.as_str().expect("digest").strip_prefix("sha256:").expect("sha256");
        fs::read(index_layout.join("blobs/sha256").join(hex)).expect("blob")
    };
    let sbom_index: serde_json::Value = serde_json::from_slice(&blob(&sboms["digest"])).expect("json");
    let attached = sbom_index["manifests"].as_array().expect("manifests");
    assert_eq!(attached.len(), ARCHS.len());

    for arch in ARCHS {
        let meta = json(&out.join(format!("static_{arch}.image.json")));
        let manifest = meta["digest"].as_str().expect("digest");
        let path = out.join(format!("static_{arch}.spdx.json"));
        let bytes = fs::read(&path).expect("the SBOM file");
        let doc: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");

        // The image and every installed package, with the lockfile's sha256.
        let packages = doc["packages"].as_array().expect("packages");
        let image = &packages[0];
        assert_eq!(image["primaryPackagePurpose"], "CONTAINER");
        assert_eq!(image["checksums"][0]["checksumValue"].as_str(), manifest.strip_prefix("sha256:"));
        let mut names = Vec::new();
        for p in &packages[1..] {
            let name = p["name"].as_str().expect("name");
            names.push(name.to_owned());
            let version = p["versionInfo"].as_str().expect("version");
            let purl = p["externalRefs"][0]["referenceLocator"].as_str().expect("purl");
            assert_eq!(purl, format!("pkg:apk/executor/{name}@{version}?arch=noarch"));
            let sha = &pinned[&(arch.to_owned(), name.to_owned())];
            assert_eq!(p["checksums"][0]["algorithm"], "SHA256");
            assert_eq!(Some(p["checksums"][0]["checksumValue"].as_str().expect("sha")), sha.strip_prefix("sha256:"));
            assert_ne!(p["licenseDeclared"], "NOASSERTION", "{name}");
        }
        assert_eq!(names, ["baselayout-data", "ca-certificates-bundle", "tzdata"], "{arch}");
        let relationships = doc["relationships"].as_array().expect("relationships");
        let contains = relationships.iter().filter(|r| r["relationshipType"] == "CONTAINS").count();
        assert_eq!(contains, 3, "{arch}");

        // Attached in both layouts as an artifact whose subject is the image manifest.
        let single = out.join(format!("static_{arch}"));
        for layout in [&single, &index_layout] {
            let index = json(&layout.join("index.json"));
            let list = index["manifests"]
                .as_array()
                .expect("manifests")
                .iter()
                .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == "latest.sbom")
                .cloned()
                .expect("latest.sbom");
            let read = |d: &serde_json::Value| {
                let hex = d.as_str().expect("digest").strip_prefix("sha256:").expect("sha256").to_owned();
                fs::read(layout.join("blobs/sha256").join(hex)).expect("blob")
            };
            let list: serde_json::Value = serde_json::from_slice(&read(&list["digest"])).expect("json");
            let artifact = list["manifests"]
                .as_array()
                .expect("manifests")
                .iter()
                .find(|d| {
                    let p = &d["platform"];
                    let variant = p["variant"].as_str().map(|v| format!("/{v}")).unwrap_or_default();
                    format!("{}/{}{variant}", p["os"].as_str().unwrap_or(""), p["architecture"].as_str().unwrap_or(""))
                        == Arch::parse(arch).expect("arch").oci_platform()
                })
                .cloned()
                .expect("this platform's SBOM");
            let artifact: serde_json::Value = serde_json::from_slice(&read(&artifact["digest"])).expect("json");
            assert_eq!(artifact["artifactType"], "application/spdx+json");
            assert_eq!(artifact["subject"]["digest"].as_str(), Some(manifest));
            assert_eq!(artifact["layers"][0]["digest"].as_str(), Some(Digest::of(&bytes).to_string().as_str()));
            assert_eq!(read(&artifact["layers"][0]["digest"]), bytes);
        }
    }
    // The whole amd64 document, pinned.
    let doc = json(&out.join("static_x86_64.spdx.json"));
    insta::assert_snapshot!("static_x86_64_spdx", serde_json::to_string_pretty(&doc).expect("pretty"));
}

/// Each platform's SBOM passes the SPDX validator of the `spdx-tools` package.
#[test]
#[ignore = "needs pyspdxtools (bash .ci/run installs spdx-tools)"]
fn every_sbom_passes_the_spdx_validator() {
    require(&["pyspdxtools"]);
    let (_temp, ws) = built_static();
    for arch in ARCHS {
        let path = ws.join(format!("executor-out/images/static_{arch}.spdx.json"));
        let out = Command::new("pyspdxtools").arg("-i").arg(&path).output().expect("pyspdxtools");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.trim().is_empty(), "pyspdxtools on {arch}:\n{text}");
    }
}

#[test]
#[ignore = "needs skopeo and podman (bash .ci/run installs them)"]
fn docker_archive_tarballs_load_into_podman_and_skopeo() {
    require(&["skopeo", "podman"]);
    let (temp, ws) = built_static();
    let cache = temp.path().join("cache");
    let run = executor(&ws, &cache, &["build", "//images:static_x86_64_tarball", "//images:static_aarch64_tarball"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = ws.join("executor-out/images");
    let tarball = out.join("static_x86_64_tarball.tar");
    let meta = json(&out.join("static_x86_64.image.json"));
    let config = meta["config"].as_str().expect("config").to_owned();

    // The archive: the config blob byte for byte, the layer uncompressed, the repo tag.
    let mut archive = tar::Archive::new(fs::File::open(&tarball).expect("tarball"));
    let mut entries = BTreeMap::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let name = entry.path().expect("path").display().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).expect("read");
        entries.insert(name, bytes);
    }
    let hex = config.strip_prefix("sha256:").expect("sha256");
    let config_bytes = &entries[&format!("{hex}.json")];
    assert_eq!(Digest::of(config_bytes).to_string(), config);
    let manifest: serde_json::Value = serde_json::from_slice(&entries["manifest.json"]).expect("manifest.json");
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!(["executor/static:latest"]));
    let diff_id = serde_json::from_slice::<serde_json::Value>(config_bytes).expect("config")["rootfs"]["diff_ids"][0]
        .as_str()
        .expect("diff_id")
        .to_owned();
    let layer = &entries[&format!("{}.tar", diff_id.strip_prefix("sha256:").expect("sha256"))];
    assert_eq!(Digest::of(layer).to_string(), diff_id);

    // Reproducible: a second workspace and cache give the same bytes.
    let (temp2, ws2) = built_static();
    let again = executor(&ws2, &temp2.path().join("cache"), &["build", "//images:static_x86_64_tarball"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        fs::read(ws2.join("executor-out/images/static_x86_64_tarball.tar")).expect("tarball"),
        fs::read(&tarball).expect("tarball")
    );

    // skopeo reads it back as the same image.
    {
        let copy = temp.path().join("skopeo-copy");
        let status = Command::new("skopeo")
            .arg("copy")
            .arg(format!("docker-archive:{}", tarball.display()))
            .arg(format!("oci:{}:copied", copy.display()))
            .status()
            .expect("skopeo");
        assert!(status.success());
        let index = json(&copy.join("index.json"));
        let manifest_hex = index["manifests"][0]["digest"].as_str().expect("digest")["sha256:".len()..].to_owned();
        let copied = json(&copy.join("blobs/sha256").join(manifest_hex));
        // skopeo rewrites the config as it converts to OCI; the filesystem and settings stay.
        let config_hex = copied["config"]["digest"].as_str().expect("digest")["sha256:".len()..].to_owned();
        let copied_config = json(&copy.join("blobs/sha256").join(config_hex));
        assert_eq!(copied_config["rootfs"]["diff_ids"], serde_json::json!([diff_id]));
        assert_eq!(copied_config["architecture"], "amd64");
        assert_eq!(copied_config["config"]["User"], "65532");
    }

    // podman loads it, in a private store: the image ID is the config digest.
    {
        let store = temp.path().join("podman");
        let podman = |args: &[&str]| {
            let out = Command::new("podman")
                .arg("--root")
                .arg(store.join("root"))
                .arg("--runroot")
                .arg(store.join("run"))
                .args(["--storage-driver", "vfs"])
                .args(args)
                .output()
                .expect("podman");
            let run = to_run(out);
            assert_eq!(run.code, 0, "podman {args:?}: {}", run.stderr);
            run.stdout
        };
        let loaded = podman(&["load", "-i", tarball.to_str().expect("utf-8")]);
        assert!(loaded.contains("Loaded image: localhost/executor/static:latest"), "{loaded}");
        let inspected = podman(&[
            "inspect",
            "executor/static:latest",
            "--format",
            "{{.Id}} {{.Os}}/{{.Architecture}} {{.Config.User}}",
        ]);
        assert_eq!(inspected.trim(), format!("{hex} linux/amd64 65532"));
    }
}

#[test]
fn oci_load_errors() {
    let temp = tempfile::tempdir().expect("tempdir");
    let ws = temp.path().join("ws");
    crate::images::copy_repository(&ws);
    let cases = [
        ("no_platform", "oci_load(name = \"t\", image = \"//images:static\")"),
        ("wrong_platform", "oci_load(name = \"t\", image = \"//images:static_x86_64\", platform = \"linux/arm64\")"),
        ("bad_tag", "oci_load(name = \"t\", image = \"//images:static_x86_64\", repo_tags = [\"Executor/Static\"])"),
        ("not_an_image", "oci_load(name = \"t\", image = \"//images:static_apks\")"),
    ];
    let mut report = String::new();
    for (name, rule) in cases {
        fs::create_dir_all(ws.join(name)).expect("mkdir");
        fs::write(ws.join(name).join("BUILD"), format!("{rule}\n")).expect("BUILD");
        let run = executor(&ws, &temp.path().join("cache"), &["build", &format!("//{name}:t")]);
        assert_eq!(run.code, 1, "{name}: {}", run.stderr);
        assert!(!ws.join("executor-out").join(name).join("t.tar").exists(), "{name}");
        let text = run.stderr.replace(&ws.display().to_string(), "[WS]");
        report.push_str(&format!("== {name}\n{}\n", crate::harness::normalize_time(&text)));
    }
    insta::assert_snapshot!("oci_load_errors", report);
}

#[test]
fn verify_rebuilds_in_an_empty_cache_and_compares_digests() {
    let (temp, ws) = built_static();
    let index = json(&ws.join("executor-out/images/static.index.json"));
    let digest = index["digest"].as_str().expect("digest").to_owned();

    // A verifier's checkout: no executor-out, no cache of its own.
    let checkout = temp.path().join("checkout");
    crate::images::copy_repository(&checkout);
    let cache = temp.path().join("verifier-cache");
    let ok = executor(&checkout, &cache, &["verify", "//images:static", "--digest", &digest]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(ok.stdout, format!("verified //images:static: {digest}\n"));
    // Everything is rebuilt (nothing of the workspace's own build is reused).
    for action in ["Layer //images:static_s390x_layer", "OciImage //images:static_x86_64", "OciIndex //images:static"] {
        assert!(ok.stderr.contains(action), "{action} did not run: {}", ok.stderr);
    }
    // Nothing is left behind: not in the workspace, not in the user's cache.
    assert!(!checkout.join("executor-out").exists());
    assert!(!cache.exists());
    // `HOST/REPO@sha256:...` (what `push` prints) works too.
    let pushed = format!("registry.example.com/base/static@{digest}");
    assert_eq!(executor(&checkout, &cache, &["verify", "//images:static", "--digest", &pushed]).code, 0);

    // A release that was not built from these sources.
    let wrong = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let failed = executor(&checkout, &cache, &["verify", "//images:static", "--digest", wrong]);
    assert_eq!(failed.code, 1);
    assert!(failed.stdout.is_empty(), "{}", failed.stdout);
    let error = failed.stderr.lines().skip_while(|l| !l.starts_with("error:")).collect::<Vec<_>>().join("\n");
    insta::assert_snapshot!("verify_mismatch", error);

    // Sources that changed since the release: the same check fails.
    let build = checkout.join("images/BUILD");
    let text = fs::read_to_string(&build).expect("BUILD").replace("executor static", "executor static (edited)");
    fs::write(&build, text).expect("BUILD");
    let edited = executor(&checkout, &cache, &["verify", "//images:static", "--digest", &digest]);
    assert_eq!(edited.code, 1, "{}", edited.stderr);
    assert!(edited.stderr.contains("release check failed: `//images:static` rebuilt from executor.lock"));

    // A stale lockfile is refused before anything is built, as with `build --locked`.
    let text = fs::read_to_string(&build).expect("BUILD").replace("\"tzdata\",", "");
    fs::write(&build, text).expect("BUILD");
    let stale = executor(&checkout, &cache, &["verify", "//images:static", "--digest", &digest]);
    assert_eq!(stale.code, 1, "{}", stale.stderr);
    assert!(stale.stderr.contains("executor lock"), "{}", stale.stderr);

    // A digest that is not one is a usage error.
    let usage = executor(&checkout, &cache, &["verify", "//images:static", "--digest", "sha256:abc"]);
    assert_eq!(usage.code, 2);
    assert_eq!(usage.stderr, "error: --digest: `sha256:abc` is not `sha256:` and 64 lowercase hex digits\n");
}

//! `executor push --sign` and `executor keygen`, checked by cosign itself (pinned and
//! installed by .ci/install_cosign.sh) against a real registry: both signature formats, for
//! the index and each platform manifest, with keys made by cosign and by executor; the SLSA
//! provenance and SBOM attestations (`cosign verify-attestation`); repeatable byte for byte;
//! refusing a wrong password before anything is built.

use std::path::Path;

use base64::Engine as _;
use std::process::Command;

use crate::harness::{executor_bin, require, to_run, Run};
use crate::push::Registry;

fn executor(ws: &Path, cache: &Path, args: &[&str], password: &str) -> Run {
    let out = Command::new(executor_bin())
        .args(args)
        .current_dir(ws)
        .env("EXECUTOR_CACHE_DIR", cache)
        .env("COSIGN_PASSWORD", password)
        .output()
        .expect("run executor");
    to_run(out)
}

/// `cosign verify` of `image` with `public_key`; `legacy` reads the `.sig` tag instead of the
/// bundle. Its stdout (the verified payloads) on success.
fn cosign_verify(image: &str, public_key: &Path, legacy: bool) -> Run {
    let mut cmd = Command::new("cosign");
    cmd.args(["verify", "--key"]).arg(public_key).args([
        "--insecure-ignore-tlog=true",
        "--allow-insecure-registry",
        "--allow-http-registry",
    ]);
    if legacy {
        cmd.arg("--new-bundle-format=false");
    }
    to_run(cmd.arg(image).output().expect("run cosign"))
}

#[test]
#[ignore = "needs cosign, docker-registry, skopeo, @sigstore/verify and securesystemslib (.ci/run installs them)"]
fn cosign_verifies_what_executor_signs() {
    require(&["cosign", "node", "python3"]);
    let have_peers =
        Command::new("python3").args(["-c", "import securesystemslib"]).status().is_ok_and(|s| s.success())
            && Path::new("/opt/peers/node/node_modules/@sigstore/verify").is_dir();
    assert!(have_peers, "needs @sigstore/verify and securesystemslib: ../shared/tools/install_peers.sh node and py");
    let registry = Registry::start();
    let temp = tempfile::tempdir().expect("tempdir");
    let ws = temp.path().join("ws");
    crate::images::copy_repository(&ws);
    let cache = temp.path().join("cache");
    let keys = temp.path().join("keys");
    std::fs::create_dir_all(&keys).expect("mkdir");

    // A key pair made by cosign.
    let out = Command::new("cosign")
        .args(["generate-key-pair", "--output-key-prefix", "cosign"])
        .current_dir(&keys)
        .env("COSIGN_PASSWORD", "correct horse")
        .output()
        .expect("cosign generate-key-pair");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A wrong password fails before anything is built or pushed.
    let repo = format!("127.0.0.1:{}/signed/static", registry.port);
    let key = keys.join("cosign.key");
    let key = key.to_str().expect("utf-8 path");
    let run = executor(&ws, &cache, &["push", "//images:static", "--repository", &repo, "--sign", key], "wrong");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("wrong password (the key did not decrypt)"), "{}", run.stderr);
    assert!(!ws.join("executor-out").exists(), "nothing was built");

    let run =
        executor(&ws, &cache, &["push", "//images:static", "--repository", &repo, "--sign", key], "correct horse");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let image = run.stdout.trim().to_owned();
    assert!(run.stderr.contains("signed 9 manifests"), "{}", run.stderr);

    // cosign verifies the index and a platform manifest, in both formats.
    let index = read_json(&ws.join("executor-out/images/static/index.json"));
    let digest = index["manifests"][0]["digest"].as_str().expect("digest").to_owned();
    let inner =
        read_json(&ws.join("executor-out/images/static/blobs/sha256").join(digest.trim_start_matches("sha256:")));
    let platform = inner["manifests"][0]["digest"].as_str().expect("platform digest");
    let platform_image = format!("{repo}@{platform}");
    for target in [image.as_str(), platform_image.as_str()] {
        for legacy in [false, true] {
            let run = cosign_verify(target, &keys.join("cosign.pub"), legacy);
            assert_eq!(run.code, 0, "cosign verify {target} (legacy: {legacy}):\n{}\n{}", run.stdout, run.stderr);
        }
    }

    // cosign verifies the attestations of a platform manifest, in both formats, and the
    // provenance names exactly the lockfile's pins for that platform.
    for (kind, predicate) in
        [("slsaprovenance1", "https://slsa.dev/provenance/v1"), ("spdxjson", "https://spdx.dev/Document")]
    {
        for legacy in [false, true] {
            let out = Command::new("cosign")
                .args(["verify-attestation", "--key"])
                .arg(keys.join("cosign.pub"))
                .args([
                    "--insecure-ignore-tlog=true",
                    "--type",
                    kind,
                    "--allow-insecure-registry",
                    "--allow-http-registry",
                ])
                .arg(format!("--new-bundle-format={}", !legacy))
                .arg(&platform_image)
                .output()
                .expect("cosign verify-attestation");
            let run = to_run(out);
            assert_eq!(run.code, 0, "cosign verify-attestation --type {kind} (legacy: {legacy}):\n{}", run.stderr);
            let envelope: serde_json::Value =
                serde_json::from_str(run.stdout.lines().next().expect("an attestation")).expect("json");
            let payload = base64::engine::general_purpose::STANDARD
                .decode(envelope["payload"].as_str().expect("payload"))
                .expect("base64");
            let statement: serde_json::Value = serde_json::from_slice(&payload).expect("statement");
            assert_eq!(statement["predicateType"], predicate);
            assert_eq!(statement["subject"][0]["digest"]["sha256"], platform.trim_start_matches("sha256:"));
            if kind == "slsaprovenance1" {
                let lock = std::fs::read_to_string(ws.join("executor.lock")).expect("lockfile");
                let params = &statement["predicate"]["buildDefinition"]["externalParameters"];
                assert_eq!(params["target"], "//images:static");
                let lock_digest = executor::digest::Digest::of(lock.as_bytes()).hex();
                assert_eq!(params["lockfile"]["digest"]["sha256"], lock_digest.as_str());
                let platform_name = params["platform"].as_str().expect("platform");
                let apk_arch = executor::platform::Arch::ALL
                    .into_iter()
                    .find(|a| a.oci_platform() == platform_name)
                    .expect("a known platform")
                    .apk();
                let packages: Vec<&serde_json::Value> = statement["predicate"]["buildDefinition"]
                    ["resolvedDependencies"]
                    .as_array()
                    .expect("dependencies")
                    .iter()
                    .filter(|d| d["uri"].as_str().is_some_and(|u| !u.is_empty()))
                    .collect();
                assert_eq!(packages.len(), 3, "{packages:#?}");
                for package in packages {
                    let uri = package["uri"].as_str().expect("uri");
                    assert!(uri.contains(&format!("/{apk_arch}/")), "{uri} is not the {apk_arch} pin");
                    let line = format!("url = \"{uri}\"");
                    assert!(lock.contains(&line), "{line} is not in the lockfile");
                    let sha = format!("sha256 = \"sha256:{}\"", package["digest"]["sha256"].as_str().expect("sha256"));
                    assert!(lock.contains(&sha), "{sha} is not in the lockfile");
                }
            }
        }
    }

    // The bundles of the platform manifest (signature, provenance, SBOM), checked by
    // @sigstore/verify (npm) and their DSSE envelopes by securesystemslib (PyPI), offline,
    // with ../shared/tools/peers.
    let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools/peers");
    let get = |path: &str| -> Vec<u8> {
        let url = format!("http://127.0.0.1:{}/v2/signed/static{path}", registry.port);
        let mut resp = ureq::get(&url)
            .header("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json")
            .call()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        resp.body_mut().read_to_vec().expect("body")
    };
    let referrers: serde_json::Value =
        serde_json::from_slice(&get(&format!("/manifests/{}", platform.replacen("sha256:", "sha256-", 1))))
            .expect("json");
    let mut predicates = Vec::new();
    for referrer in referrers["manifests"].as_array().expect("manifests") {
        if referrer["artifactType"] != "application/vnd.dev.sigstore.bundle.v0.3+json" {
            continue;
        }
        let manifest: serde_json::Value =
            serde_json::from_slice(&get(&format!("/manifests/{}", referrer["digest"].as_str().expect("digest"))))
                .expect("json");
        predicates
            .push(manifest["annotations"]["dev.sigstore.bundle.predicateType"].as_str().expect("type").to_owned());
        let bundle = keys.join("bundle.json");
        std::fs::write(&bundle, get(&format!("/blobs/{}", manifest["layers"][0]["digest"].as_str().expect("layer"))))
            .expect("write bundle");
        let out = Command::new("node")
            .arg(peers.join("verify_bundle.mjs"))
            .arg(&bundle)
            .arg(keys.join("cosign.pub"))
            .env("NODE_PATH", "/opt/peers/node/node_modules")
            .output()
            .expect("node");
        let run = to_run(out);
        assert!(run.code == 0 && run.stdout.starts_with("VERIFIED"), "@sigstore/verify:\n{}{}", run.stdout, run.stderr);
        let out = Command::new("python3")
            .arg(peers.join("verify_dsse.py"))
            .arg(&bundle)
            .arg(keys.join("cosign.pub"))
            .output();
        let run = to_run(out.expect("python3"));
        assert!(run.code == 0 && run.stdout.starts_with("VERIFIED"), "securesystemslib:\n{}{}", run.stdout, run.stderr);
    }
    predicates.sort();
    assert_eq!(
        predicates,
        ["https://sigstore.dev/cosign/sign/v1", "https://slsa.dev/provenance/v1", "https://spdx.dev/Document"]
    );

    // `executor verify --key` checks them too, against the real registry.
    let cosign_pub = keys.join("cosign.pub");
    let release = format!("{repo}:latest");
    let run = executor(
        &ws,
        &cache,
        &["verify", "//images:static", "--digest", &release, "--key", cosign_pub.to_str().expect("utf-8")],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("(9 with a Sigstore bundle, 9 with a `.sig` signature)"), "{}", run.stderr);

    // A second push finds every signature in place.
    let run =
        executor(&ws, &cache, &["push", "//images:static", "--repository", &repo, "--sign", key], "correct horse");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr.matches("): 0 blobs and manifests put").count(), 2, "{}", run.stderr);

    // A key pair made by executor: cosign verifies executor's signatures with it, and
    // another key verifies nothing.
    let run = executor(&keys, &cache, &["keygen", "--output-prefix", "ours"], "another");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let ours = keys.join("ours.key");
    let ours = ours.to_str().expect("utf-8 path");
    let other = format!("127.0.0.1:{}/signed/other", registry.port);
    let run = executor(&ws, &cache, &["push", "//images:static", "--repository", &other, "--sign", ours], "another");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let signed = run.stdout.trim().to_owned();
    for legacy in [false, true] {
        let run = cosign_verify(&signed, &keys.join("ours.pub"), legacy);
        assert_eq!(run.code, 0, "cosign verify with executor's key:\n{}", run.stderr);
        let run = cosign_verify(&signed, &keys.join("cosign.pub"), legacy);
        assert_ne!(run.code, 0, "another key must verify nothing:\n{}", run.stdout);
    }
    // cosign accepts executor's private key, and adds its signature to the `.sig` manifest
    // executor wrote; a push by executor keeps it.
    let out = Command::new("cosign")
        .args(["sign", "--key", ours, "--tlog-upload=false", "--use-signing-config=false", "--new-bundle-format=false"])
        .args(["--allow-insecure-registry", "--allow-http-registry", "-y", &image])
        .env("COSIGN_PASSWORD", "another")
        .output()
        .expect("cosign sign");
    assert!(out.status.success(), "cosign sign with executor's key: {}", String::from_utf8_lossy(&out.stderr));
    let run =
        executor(&ws, &cache, &["push", "//images:static", "--repository", &repo, "--sign", key], "correct horse");
    assert_eq!(run.code, 0, "{}", run.stderr);
    for public in ["ours.pub", "cosign.pub"] {
        let run = cosign_verify(&image, &keys.join(public), true);
        assert_eq!(run.code, 0, "{public}: {}", run.stderr);
    }
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json")
}

/// `verify --key` against a real registry whose storage is tampered with underneath: an
/// attestation moved from another platform image (with the referrers dropped), a signature
/// moved from another manifest, the index's signature payloads altered in place; and a
/// release without signatures.
#[test]
#[ignore = "needs docker-registry and skopeo (.ci/run installs them)"]
fn verify_refuses_forgeries_on_a_real_registry() {
    let registry = Registry::start();
    let temp = tempfile::tempdir().expect("tempdir");
    let ws = temp.path().join("ws");
    crate::images::copy_repository(&ws);
    let cache = temp.path().join("cache");
    let keys = temp.path().join("keys");
    std::fs::create_dir_all(&keys).expect("mkdir");
    let run = executor(&keys, &cache, &["keygen", "--output-prefix", "release"], "pw");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let key = keys.join("release.key");
    let public = keys.join("release.pub");
    let repo = format!("127.0.0.1:{}/forged/static", registry.port);
    let run = executor(
        &ws,
        &cache,
        &["push", "//images:static", "--repository", &repo, "--sign", key.to_str().expect("utf-8")],
        "pw",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let index = run.stdout.trim().rsplit_once('@').expect("a digest").1.to_owned();
    let release = format!("{repo}:latest");
    let verify = || {
        executor(
            &ws,
            &cache,
            &["verify", "//images:static", "--digest", &release, "--key", public.to_str().expect("utf-8")],
            "",
        )
    };
    let run = verify();
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Another key verifies nothing.
    let run = executor(&keys, &cache, &["keygen", "--output-prefix", "other"], "pw");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let other = keys.join("other.pub");
    let run = executor(
        &ws,
        &cache,
        &["verify", "//images:static", "--digest", &release, "--key", other.to_str().expect("utf-8")],
        "",
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("9 of 9 manifests") && run.stderr.contains("a signature by another key"),
        "{}",
        run.stderr
    );

    let storage = registry.state.path().join("storage/docker/registry/v2");
    let tags = storage.join("repositories/forged/static/_manifests/tags");
    let mut att: Vec<String> = std::fs::read_dir(&tags)
        .expect("tags")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|t| t.ends_with(".att"))
        .collect();
    att.sort();
    assert_eq!(att.len(), 8);
    // 1. One platform image's `.att` tag names another's attestations; its referrers are gone.
    let link = |tag: &str| tags.join(tag).join("current/link");
    std::fs::copy(link(&att[1]), link(&att[0])).expect("move the tag");
    std::fs::remove_dir_all(tags.join(att[0].trim_end_matches(".att"))).expect("drop the referrers");
    let run = verify();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let moved = att[0].trim_end_matches(".att").replacen("sha256-", "sha256:", 1);
    assert!(
        run.stderr.contains(&format!(
            "{moved}: its `https://slsa.dev/provenance/v1` attestation, signed by the key, differs"
        )),
        "{}",
        run.stderr
    );

    // 2. A platform manifest's `.sig` tag names another manifest's signatures (made for
    //    another digest), its bundles dropped with the referrers above: no valid signature.
    let moved_sig = format!("{}.sig", att[0].trim_end_matches(".att"));
    std::fs::copy(link(&format!("{}.sig", att[1].trim_end_matches(".att"))), link(&moved_sig)).expect("move the .sig");
    let run = verify();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("signature check failed: 1 of 9 manifests"), "{}", run.stderr);
    assert!(run.stderr.contains("a signature by the key for another image"), "{}", run.stderr);

    // 3. The index's signature payloads (simple-signing layer and bundle) altered in place.
    let blob_data = |digest: &str| {
        let hex = digest.trim_start_matches("sha256:");
        storage.join("blobs/sha256").join(&hex[..2]).join(hex).join("data")
    };
    let manifest_of = |tag: &str| -> serde_json::Value {
        let digest = std::fs::read_to_string(link(tag)).expect("link");
        serde_json::from_slice(&std::fs::read(blob_data(digest.trim())).expect("manifest")).expect("json")
    };
    let index_tag = index.replacen("sha256:", "sha256-", 1);
    let mut altered =
        vec![manifest_of(&format!("{index_tag}.sig"))["layers"][0]["digest"].as_str().expect("layer").to_owned()];
    for referrer in manifest_of(&index_tag)["manifests"].as_array().expect("referrers") {
        let bundle_manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(blob_data(referrer["digest"].as_str().expect("digest"))).expect("bundle manifest"),
        )
        .expect("json");
        altered.push(bundle_manifest["layers"][0]["digest"].as_str().expect("layer").to_owned());
    }
    for digest in &altered {
        let path = blob_data(digest);
        let mut bytes = std::fs::read(&path).expect("blob");
        // Same length, one byte changed: what a registry serving altered bytes would send.
        let at = bytes.iter().position(|b| *b == b'A').unwrap_or(0);
        bytes[at] = if bytes[at] == b'B' { b'C' } else { b'B' };
        std::fs::write(&path, bytes).expect("alter");
    }
    let run = verify();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(&format!("{index}: ")) && run.stderr.contains("was served altered"), "{}", run.stderr);

    // 4. No signature at all: the release pushed again, unsigned, to another repository.
    let unsigned = format!("127.0.0.1:{}/unsigned/static", registry.port);
    let run = executor(&ws, &cache, &["push", "//images:static", "--repository", &unsigned], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let release = format!("{unsigned}:latest");
    let run = executor(
        &ws,
        &cache,
        &["verify", "//images:static", "--digest", &release, "--key", public.to_str().expect("utf-8")],
        "",
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("9 of 9 manifests") && run.stderr.contains("no Sigstore bundle among its referrers"),
        "{}",
        run.stderr
    );
}

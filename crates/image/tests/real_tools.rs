//! Images checked by the real tools: SBOM documents from hand-made and real packages
//! checked by the SPDX validator (`pyspdxtools`, from `pip install spdx-tools`), SBOMs
//! attached to real image layouts checked by `validate_oci.sh` (oci-image-tool, skopeo,
//! umoci), and `docker save` archives read by skopeo and podman.
//!
//! A test that needs a program is `#[ignore = "needs ..."]` and fails if it is missing
//! (`cargo test -- --include-ignored`, README's test command).
//! `SBOM_KEEP=/tmp/prefix` keeps copies of the documents and layouts checked, to look at.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use executor_apk::{Package, VerifiedPackage};
use executor_base::digest::Digest;
use executor_base::platform::Arch;
use executor_image::install::{InstalledSummary, Installer};
use executor_image::layer::{LayerOptions, LayerWriter};
use executor_image::oci::{
    image_config, image_index, image_manifest, read_layout_image, write_image_layout, write_layout, BlobSource,
    ImageSettings, IndexEntry, JsonBlob, LayerInfo,
};
use executor_image::sbom::{attach_sbom, sbom_artifact_manifest, spdx_document, SbomError, SbomInput, SbomPackage};

/// The in-tree repository (relative to the crate).
const REPO: &str = "../../third_party/apk-repository";
/// Real packages from public repositories.
const FIXTURES: &str = "../../../shared/fixtures/apk";
const EPOCH: u64 = 1_700_000_000;

/// The crate directory (`crates/image/`).
fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fails the test unless `tool` runs. Tests that call it (directly or through
/// [`validate_layout`] and [`pyspdxtools`]) are `#[ignore = "needs ..."]`: plain `cargo test`
/// lists them as ignored, `--include-ignored` (README's test command) runs them.
fn require_tool(tool: &str, args: &[&str]) {
    let ok = Command::new(tool).args(args).output().is_ok_and(|o| o.status.success());
    assert!(ok, "`{tool}` is missing: install it with `bash .ci/run` (see README.md, Tests)");
}

/// The `.apk` files directly in `dir`, sorted.
fn apks(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "apk"))
        .map(|p| (p.file_name().expect("name").to_string_lossy().into_owned(), fs::read(&p).expect("read")))
        .collect();
    out.sort();
    out
}

/// Installs each package on its own (fixture packages may conflict with each other) and
/// returns its summary, with the `.apk` sha256 set.
fn summaries_one_by_one(arch: Arch, files: &[(String, Vec<u8>)], repository: &str) -> Vec<SbomPackage> {
    files
        .iter()
        .map(|(name, bytes)| {
            let package = Package::read(bytes, name).unwrap_or_else(|e| panic!("{name}: {e}"));
            // Some fixtures sit in another arch's directory (hello-wolfi is aarch64).
            let arch = package.info().arch.as_deref().and_then(|a| Arch::parse(a).ok()).unwrap_or(arch);
            let mut installer = Installer::new(arch);
            installer
                .install(&VerifiedPackage::assume_verified(package), repository)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let (_, summaries) = installer.finish().expect("finish");
            let mut p = SbomPackage::from(&summaries[0]);
            p.sha256 = Some(Digest::of(bytes));
            p
        })
        .collect()
}

/// A real image: `files` installed together into one gzip layer, config, manifest; written
/// as a single-image layout tagged `tag` in `dir`. Returns the manifest and the summaries.
fn real_image(
    arch: Arch,
    files: &[(String, Vec<u8>)],
    repository: &str,
) -> (JsonBlob, JsonBlob, Vec<u8>, LayerInfo, Vec<InstalledSummary>) {
    let mut installer = Installer::new(arch);
    for (name, bytes) in files {
        let package = Package::read(bytes, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        installer
            .install(&VerifiedPackage::assume_verified(package), repository)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let (tree, summaries) = installer.finish().expect("finish");
    let mut layer = Vec::new();
    let options = LayerOptions { epoch: EPOCH, ..LayerOptions::default() };
    let digests = LayerWriter::new(&mut layer, options).expect("writer").write_tree(tree).expect("layer");
    let info = LayerInfo {
        diff_id: digests.diff_id,
        digest: digests.digest,
        size: digests.size,
        created_by: format!("executor apk: {} packages", summaries.len()),
        comment: None,
    };
    let mut settings = ImageSettings::new(arch);
    settings.created = EPOCH;
    let config = image_config(None, &settings, std::slice::from_ref(&info)).expect("config");
    let manifest =
        image_manifest(config.digest, config.size(), &[info.descriptor()], &BTreeMap::new()).expect("manifest");
    (config, manifest, layer, info, summaries)
}

fn write_real_layout(dir: &Path, arch: Arch, tag: &str) -> (JsonBlob, Vec<InstalledSummary>) {
    let files = apks(&crate_dir().join(REPO).join(arch.apk()));
    let (config, manifest, layer, info, summaries) = real_image(arch, &files, "https://example.com/executor/main");
    let blobs = [(config.digest, BlobSource::Bytes(&config.bytes)), (info.digest, BlobSource::Bytes(&layer))];
    write_image_layout(dir, &manifest, arch, blobs, tag).expect("layout");
    (manifest, summaries)
}

fn input(arch: Arch, manifest: Digest, packages: Vec<SbomPackage>) -> SbomInput {
    SbomInput {
        image_name: "executor/static".to_owned(),
        arch,
        manifest_digest: manifest,
        epoch: EPOCH,
        distro_namespace: "executor".to_owned(),
        packages,
        base: None,
    }
}

/// Runs `pyspdxtools -i` on `doc`: it must find the document valid.
fn pyspdxtools(doc: &JsonBlob, dir: &Path, name: &str) {
    require_tool("pyspdxtools", &["--help"]);
    let path = dir.join(format!("{name}.spdx.json"));
    fs::write(&path, &doc.bytes).expect("write");
    if let Ok(keep) = std::env::var("SBOM_KEEP") {
        let _ = fs::write(format!("{keep}-{name}.spdx.json"), &doc.bytes);
    }
    let out = Command::new("pyspdxtools").arg("-i").arg(&path).output().expect("runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // It prints nothing and exits 0 for a valid document.
    assert!(out.status.success() && text.trim().is_empty(), "pyspdxtools on {name}:\n{text}");
}

fn hand_package(name: &str, license: Option<&str>) -> SbomPackage {
    SbomPackage {
        name: name.to_owned(),
        version: "1.2.3-r0".to_owned(),
        arch: "x86_64".to_owned(),
        identity: Some("Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned()),
        sha256: None,
        license: license.map(str::to_owned),
        origin: Some(name.to_owned()),
        description: Some(format!("the {name} package")),
        url: Some("https://example.com/".to_owned()),
        commit: None,
        maintainer: Some("Jane Doe <jane@example.com>".to_owned()),
        build_date: Some(EPOCH),
        repository: "file:///repo".to_owned(),
        depends: Vec::new(),
        provides: Vec::new(),
        os_release: false,
    }
}

fn json(doc: &JsonBlob) -> Value {
    serde_json::from_slice(&doc.bytes).expect("json")
}

#[test]
fn hand_made_document_fields() {
    hand_made_document();
}

/// An app's document on a pulled base: the base named by digest, the image its descendant.
fn pulled_base_document() -> JsonBlob {
    let mut app_input = input(Arch::Aarch64, Digest::from_bytes([0x22; 32]), vec![hand_package("hello", Some("MIT"))]);
    app_input.base = Some(executor_image::sbom::SbomBase {
        repository: "cgr.dev/chainguard/static".to_owned(),
        digest: Digest::from_bytes([0x33; 32]),
    });
    let doc = spdx_document(&app_input).expect("sbom");
    let v = json(&doc);
    let base =
        v["packages"].as_array().expect("packages").iter().find(|p| p["SPDXID"] == "SPDXRef-BaseImage").expect("base");
    assert_eq!(base["name"], "cgr.dev/chainguard/static");
    assert_eq!(base["versionInfo"], format!("sha256:{}", "33".repeat(32)));
    assert_eq!(
        base["externalRefs"][0]["referenceLocator"],
        format!("pkg:oci/static@sha256%3A{}?arch=arm64&repository_url=cgr.dev%2Fchainguard%2Fstatic", "33".repeat(32))
    );
    let descends = v["relationships"]
        .as_array()
        .expect("relationships")
        .iter()
        .any(|r| r["relationshipType"] == "DESCENDANT_OF" && r["relatedSpdxElement"] == "SPDXRef-BaseImage");
    assert!(descends, "{v}");
    doc
}

#[test]
fn pulled_base_document_fields() {
    pulled_base_document();
}

/// A document of hand-made packages, its fields checked.
fn hand_made_document() -> JsonBlob {
    let mut musl = hand_package("musl", Some("MIT"));
    musl.provides = vec!["so:libc.musl-x86_64.so.1=1".to_owned()];
    musl.sha256 = Some(Digest::from_bytes([0xab; 32]));
    musl.repository = "https://dl-cdn.alpinelinux.org/alpine/v3.20/main/".to_owned();
    let mut busybox = hand_package("busybox", Some("gpl-2.0-only"));
    busybox.depends = vec!["so:libc.musl-x86_64.so.1".to_owned(), "!busybox-extras".to_owned(), "nothere".to_owned()];
    busybox.origin = Some("busybox-src".to_owned());
    busybox.commit = Some("abc123".to_owned());
    let mut base = hand_package("alpine-baselayout-data", Some("GPL-2.0"));
    base.os_release = true;
    base.maintainer = None;
    let custom = hand_package("libstdc++", Some("custom"));
    let custom2 = hand_package("libstdc--", Some("custom:x"));
    let manifest = Digest::from_bytes([0x11; 32]);
    let doc = spdx_document(&input(Arch::X86_64, manifest, vec![busybox, musl, base, custom, custom2])).expect("sbom");
    let v = json(&doc);
    let hex = "11".repeat(32);
    assert_eq!(v["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    assert_eq!(v["documentNamespace"], format!("https://executor.invalid/spdx/executor-static/x86_64/{hex}"));
    let packages = v["packages"].as_array().expect("packages");
    let ids: Vec<&str> = packages.iter().map(|p| p["SPDXID"].as_str().expect("id")).collect();
    assert_eq!(
        ids,
        [
            "SPDXRef-Image-static",
            "SPDXRef-Package-apk-alpine-baselayout-data-1.2.3-r0",
            "SPDXRef-Package-apk-busybox-1.2.3-r0",
            // `libstdc++` and `libstdc--` sanitize alike: both get a hash suffix.
            ids[3],
            ids[4],
            "SPDXRef-Package-apk-musl-1.2.3-r0",
        ]
    );
    assert!(ids[3].starts_with("SPDXRef-Package-apk-libstdc-1.2.3-r0-") && ids[3] != ids[4]);
    let image = &packages[0];
    assert_eq!(image["primaryPackagePurpose"], "CONTAINER");
    assert_eq!(image["checksums"][0]["checksumValue"], hex);
    assert_eq!(
        image["externalRefs"][0]["referenceLocator"],
        format!("pkg:oci/static@sha256%3A{hex}?arch=amd64&repository_url=executor%2Fstatic")
    );
    let by_name = |n: &str| packages.iter().find(|p| p["name"] == n).expect(n);
    let musl = by_name("musl");
    assert_eq!(musl["checksums"][0]["algorithm"], "SHA256");
    assert_eq!(musl["downloadLocation"], "https://dl-cdn.alpinelinux.org/alpine/v3.20/main/x86_64/musl-1.2.3-r0.apk");
    assert_eq!(musl["supplier"], "Person: Jane Doe (jane@example.com)");
    assert_eq!(musl["primaryPackagePurpose"], "LIBRARY");
    let busybox = by_name("busybox");
    assert_eq!(busybox["licenseDeclared"], "GPL-2.0-only");
    assert_eq!(busybox["downloadLocation"], "NOASSERTION");
    assert!(busybox.get("checksums").is_none(), "no sha256, and Q1 is not a file checksum");
    assert!(busybox["comment"].as_str().expect("comment").contains("Q1AAAA"));
    assert_eq!(
        busybox["externalRefs"][0]["referenceLocator"],
        "pkg:apk/executor/busybox@1.2.3-r0?arch=x86_64&upstream=busybox-src"
    );
    assert_eq!(busybox["sourceInfo"], "built from origin `busybox-src` at commit abc123");
    let base = by_name("alpine-baselayout-data");
    assert_eq!(base["primaryPackagePurpose"], "OPERATING-SYSTEM");
    assert_eq!(base["licenseDeclared"], "GPL-2.0-only");
    assert_eq!(base["supplier"], "NOASSERTION");
    assert_eq!(
        by_name("libstdc++")["externalRefs"][0]["referenceLocator"],
        "pkg:apk/executor/libstdc%2B%2B@1.2.3-r0?arch=x86_64"
    );
    assert_eq!(by_name("libstdc++")["licenseDeclared"], "LicenseRef-custom");
    assert_eq!(by_name("libstdc--")["licenseDeclared"], "LicenseRef-custom-x");
    let extracted: Vec<&str> = v["hasExtractedLicensingInfos"]
        .as_array()
        .expect("extracted")
        .iter()
        .map(|l| l["licenseId"].as_str().expect("id"))
        .collect();
    assert_eq!(extracted, ["LicenseRef-custom", "LicenseRef-custom-x"]);

    let relationships: Vec<String> = v["relationships"]
        .as_array()
        .expect("relationships")
        .iter()
        .map(|r| {
            format!("{} {} {}", r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"]).replace('"', "")
        })
        .collect();
    assert_eq!(relationships[0], "SPDXRef-DOCUMENT DESCRIBES SPDXRef-Image-static");
    assert_eq!(relationships.iter().filter(|r| r.contains(" CONTAINS ")).count(), 5);
    let depends: Vec<&String> = relationships.iter().filter(|r| r.contains(" DEPENDS_ON ")).collect();
    assert_eq!(depends, ["SPDXRef-Package-apk-busybox-1.2.3-r0 DEPENDS_ON SPDXRef-Package-apk-musl-1.2.3-r0"]);

    doc
}

#[test]
fn license_refs_that_sanitize_alike_get_distinct_ids_whatever_the_order() {
    license_ref_collisions();
}

/// Two license texts that sanitize alike, in two orders; the document, checked.
fn license_ref_collisions() -> JsonBlob {
    let a = hand_package("a", Some("Public Domain"));
    let b = hand_package("b", Some("Public-Domain"));
    let manifest = Digest::from_bytes([0x22; 32]);
    let one = spdx_document(&input(Arch::Aarch64, manifest, vec![a.clone(), b.clone()])).expect("sbom");
    let two = spdx_document(&input(Arch::Aarch64, manifest, vec![b, a.clone(), a])).expect("sbom");
    assert_eq!(one, two, "order and duplicates of the input do not matter");
    let v = json(&one);
    let ids: Vec<&str> = v["hasExtractedLicensingInfos"]
        .as_array()
        .expect("extracted")
        .iter()
        .map(|l| l["licenseId"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|id| id.starts_with("LicenseRef-Public-Domain-")), "{ids:?}");
    one
}

/// Every license and exception of the table in one document, checked to map through.
fn license_table_document() -> JsonBlob {
    let mut packages = Vec::new();
    for (i, id) in executor_image::sbom::LICENSES.iter().enumerate() {
        packages.push(hand_package(&format!("l{i}"), Some(id)));
    }
    for (i, exception) in executor_image::sbom::EXCEPTIONS.iter().enumerate() {
        packages.push(hand_package(&format!("e{i}"), Some(&format!("GPL-2.0-or-later WITH {exception}"))));
    }
    let doc = spdx_document(&input(Arch::X86_64, Digest::of(b"m"), packages)).expect("sbom");
    assert!(!doc.text().contains("LicenseRef-"), "every table entry maps through");
    doc
}

#[test]
fn every_license_table_entry_maps_through() {
    license_table_document();
}

#[test]
fn invalid_inputs_are_refused_with_their_name() {
    let mut bad = input(Arch::X86_64, Digest::of(b"m"), Vec::new());
    bad.image_name = "bad name".to_owned();
    assert_eq!(
        spdx_document(&bad).expect_err("invalid").to_string(),
        "invalid image name `bad name` for an SBOM: use letters, digits, `.`, `_`, `-` and `/`"
    );
    let mut bad = input(Arch::X86_64, Digest::of(b"m"), Vec::new());
    bad.distro_namespace = "Alpine Linux".to_owned();
    assert_eq!(
        spdx_document(&bad).expect_err("invalid").to_string(),
        "invalid distro namespace `Alpine Linux` for an SBOM: use lowercase letters, digits, `.` and `-`, like `wolfi`"
    );
}

/// Every real package we have, each summarized by the installer: the in-tree repository
/// and the public fixtures (Alpine, Wolfi, melange).
#[test]
fn real_packages_make_documents() {
    real_package_documents();
}

/// Documents of every real package (x86_64, and the aarch64 Alpine one), checked.
fn real_package_documents() -> Vec<(&'static str, JsonBlob)> {
    let root = crate_dir();
    let fixtures = root.join(FIXTURES);
    let mut packages = Vec::new();
    for (dir, arch, repo) in [
        (root.join(REPO).join("x86_64"), Arch::X86_64, "https://example.com/executor/main"),
        (fixtures.join("melange-rsa256/x86_64"), Arch::X86_64, "https://packages.example.com/melange"),
        (fixtures.join("wolfi/x86_64"), Arch::X86_64, "https://packages.wolfi.dev/os"),
        (fixtures.join("unsigned"), Arch::X86_64, "file:///local/repo"),
    ] {
        packages.extend(summaries_one_by_one(arch, &apks(&dir), repo));
    }
    // The real Alpine package is aarch64 only.
    let alpine = summaries_one_by_one(
        Arch::Aarch64,
        &apks(&fixtures.join("alpine-packages/aarch64")),
        "https://dl-cdn.alpinelinux.org/alpine/v3.16/main",
    );
    assert!(packages.len() >= 9, "{} packages", packages.len());

    let doc = spdx_document(&input(Arch::X86_64, Digest::of(b"manifest"), packages.clone())).expect("sbom");
    let v = json(&doc);
    assert_eq!(v["packages"].as_array().expect("packages").len(), packages.len() + 1);
    let x86_64 = doc;

    let mut wolfi = input(Arch::Aarch64, Digest::of(b"manifest2"), alpine);
    wolfi.distro_namespace = "alpine".to_owned();
    wolfi.image_name = "ghcr.io/acme/static".to_owned();
    let doc = spdx_document(&wolfi).expect("sbom");
    let text = doc.text();
    assert!(text.contains("pkg:apk/alpine/alpine-baselayout@3.2.0-r23?arch=aarch64"), "{text}");
    vec![("real-x86_64", x86_64), ("real-alpine-aarch64", doc)]
}

/// The SPDX validator accepts every document the tests above make.
#[test]
#[ignore = "needs pyspdxtools (bash .ci/run installs spdx-tools)"]
fn the_spdx_validator_accepts_every_document() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut docs = vec![
        ("hand-made", hand_made_document()),
        ("collisions", license_ref_collisions()),
        ("license-table", license_table_document()),
        ("pulled-base", pulled_base_document()),
    ];
    docs.extend(real_package_documents());
    for (name, doc) in &docs {
        pyspdxtools(doc, dir.path(), name);
    }
}

/// The SBOM of a real image, attached to its layout: the image still validates with
/// oci-image-tool, skopeo and umoci; the artifact resolves by its tag; attaching again
/// changes nothing.
#[test]
#[ignore = "needs pyspdxtools, skopeo, umoci, oci-image-tool and jq (bash .ci/run installs them)"]
fn sbom_attached_to_a_real_layout() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("layout");
    let (manifest, summaries) = write_real_layout(&dir, Arch::X86_64, "latest");
    assert_eq!(summaries.len(), 3);
    let packages = summaries.iter().map(SbomPackage::from).collect();
    let sbom = spdx_document(&input(Arch::X86_64, manifest.digest, packages)).expect("sbom");
    pyspdxtools(&sbom, tmp.path(), "layout");

    let attached = attach_sbom(&dir, "latest", Arch::X86_64, &sbom, EPOCH).expect("attach");
    assert_eq!(attached.ref_name, "latest.sbom");
    assert_eq!(attached.subject, manifest.digest);
    let artifact = json(&attached.manifest);
    assert_eq!(artifact["artifactType"], "application/spdx+json");
    assert_eq!(artifact["config"]["mediaType"], "application/vnd.oci.empty.v1+json");
    assert_eq!(artifact["config"]["size"], 2);
    assert_eq!(artifact["layers"][0]["digest"], sbom.digest.to_string());
    assert_eq!(artifact["subject"]["digest"], manifest.digest.to_string());
    assert_eq!(artifact["subject"]["size"], manifest.size());
    assert_eq!(artifact["annotations"]["org.opencontainers.image.created"], "2023-11-14T22:13:20Z");
    let empty = dir.join("blobs/sha256").join(Digest::of(b"{}").hex());
    assert_eq!(fs::read(&empty).expect("empty blob"), b"{}");

    let index_before = fs::read(dir.join("index.json")).expect("index");
    let again = attach_sbom(&dir, "latest", Arch::X86_64, &sbom, EPOCH).expect("attach again");
    assert_eq!(again, attached);
    assert_eq!(fs::read(dir.join("index.json")).expect("index"), index_before, "idempotent");
    let index = json(&JsonBlob { digest: Digest::of(&index_before), bytes: index_before });
    assert_eq!(index["manifests"].as_array().expect("manifests").len(), 2);

    // The image is still readable by name.
    let image = read_layout_image(&dir, Some("latest"), Arch::X86_64).expect("image");
    assert_eq!(image.manifest_digest, manifest.digest);

    // The SBOM's tag cannot be taken by an image, and vice versa.
    let err = attach_sbom(&dir, "latest.sbom", Arch::X86_64, &sbom, EPOCH).expect_err("not an image");
    assert!(matches!(err, SbomError::Oci(_)), "{err}");

    validate_layout(&dir, "latest");
    require_tool("skopeo", &["--version"]);
    {
        let out = Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:latest.sbom", dir.display()))
            .output()
            .expect("skopeo");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, attached.index.bytes);
    }
}

/// A two-arch layout: each arch gets its SBOM; the index tag still validates.
#[test]
#[ignore = "needs skopeo, umoci, oci-image-tool and jq (bash .ci/run installs them)"]
fn sboms_attached_to_a_multi_arch_layout() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("layout");
    let mut blobs: Vec<(Digest, Vec<u8>)> = Vec::new();
    let mut entries = Vec::new();
    let mut images = Vec::new();
    for arch in [Arch::X86_64, Arch::Aarch64] {
        let files = apks(&crate_dir().join(REPO).join(arch.apk()));
        let (config, manifest, layer, info, summaries) = real_image(arch, &files, "https://example.com/executor/main");
        entries.push(IndexEntry { arch, digest: manifest.digest, size: manifest.size() });
        blobs.push((config.digest, config.bytes));
        blobs.push((info.digest, layer));
        blobs.push((manifest.digest, manifest.bytes.clone()));
        images.push((arch, manifest, summaries));
    }
    let index = image_index(&entries, EPOCH, &BTreeMap::new()).expect("index");
    write_layout(&dir, &index, blobs.iter().map(|(d, b)| (*d, BlobSource::Bytes(b))), "v1").expect("layout");
    for (arch, manifest, summaries) in &images {
        let sbom = spdx_document(&input(*arch, manifest.digest, summaries.iter().map(SbomPackage::from).collect()))
            .expect("sbom");
        let attached = attach_sbom(&dir, "v1", *arch, &sbom, EPOCH).expect("attach");
        assert_eq!(attached.subject, manifest.digest);
    }
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).expect("index")).expect("json");
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["v1", "v1.sbom"]);
    // The SBOM index lists both platforms, in `Arch` order, whatever the attach order.
    let sbom_index: Value = serde_json::from_slice(
        &fs::read(
            dir.join("blobs/sha256")
                .join(index["manifests"][1]["digest"].as_str().expect("digest").trim_start_matches("sha256:")),
        )
        .expect("sbom index"),
    )
    .expect("json");
    let platforms: Vec<&str> = sbom_index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().expect("arch"))
        .collect();
    assert_eq!(platforms, ["amd64", "arm64"]);
    assert_eq!(sbom_index["artifactType"], "application/spdx+json");
    validate_layout(&dir, "v1");
}

#[test]
#[ignore = "needs skopeo, umoci, oci-image-tool and jq (bash .ci/run installs them)"]
fn artifact_manifest_golden() {
    let sbom = JsonBlob {
        bytes: b"{\"spdxVersion\":\"SPDX-2.3\"}".to_vec(),
        digest: Digest::of(b"{\"spdxVersion\":\"SPDX-2.3\"}"),
    };
    let subject = Digest::from_bytes([0x33; 32]);
    let m = sbom_artifact_manifest(&sbom, subject, 1234, 0).expect("manifest");
    assert_eq!(
        m.text(),
        format!(
            concat!(
                r#"{{"annotations":{{"org.opencontainers.image.created":"1970-01-01T00:00:00Z"}},"#,
                r#""artifactType":"application/spdx+json","#,
                r#""config":{{"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","#,
                r#""mediaType":"application/vnd.oci.empty.v1+json","size":2}},"#,
                r#""layers":[{{"annotations":{{"org.opencontainers.image.title":"sbom.spdx.json"}},"#,
                r#""digest":"{sbom}","mediaType":"application/spdx+json","size":26}}],"#,
                r#""mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2,"#,
                r#""subject":{{"digest":"sha256:{subject}","mediaType":"application/vnd.oci.image.manifest.v1+json","size":1234}}}}"#
            ),
            sbom = sbom.digest,
            subject = "33".repeat(32)
        )
    );
}

/// Runs the shared validator on the image tag of `dir`.
fn validate_layout(dir: &Path, tag: &str) {
    let script = crate_dir().join("../../../shared/tools/validate_oci.sh");
    assert!(script.exists(), "missing {}", script.display());
    for tool in ["umoci", "skopeo", "oci-image-tool", "jq"] {
        require_tool(tool, &["--version"]);
    }
    if let Ok(keep) = std::env::var("SBOM_KEEP") {
        let _ = Command::new("cp").arg("-r").arg(dir).arg(format!("{keep}-{tag}")).status();
    }
    let out = Command::new("bash").arg(&script).arg(dir).arg(tag).output().expect("runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "validate_oci.sh {tag}:\n{text}");
    eprintln!("{}", text.lines().last().unwrap_or_default());
}

/// A real image (the in-tree repository installed into one layer), with an SBOM
/// attached, exported twice: same bytes; the tarball lists as expected; skopeo reads it
/// and copies it to an OCI layout with the same diff_ids; podman loads it into a private
/// store.
#[test]
#[ignore = "needs skopeo and podman (bash .ci/run installs them)"]
fn real_image_round_trips_through_skopeo() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = tmp.path().join("layout");
    let (manifest, summaries) = write_real_layout(&layout, Arch::X86_64, "latest");
    let packages = summaries.iter().map(executor_image::sbom::SbomPackage::from).collect();
    let input = executor_image::sbom::SbomInput {
        image_name: "static".to_owned(),
        arch: Arch::X86_64,
        manifest_digest: manifest.digest,
        epoch: 0,
        distro_namespace: "executor".to_owned(),
        packages,
        base: None,
    };
    let sbom = executor_image::sbom::spdx_document(&input).expect("sbom");
    executor_image::sbom::attach_sbom(&layout, "latest", Arch::X86_64, &sbom, 0).expect("attach");

    let tags = vec!["executor/static:latest".to_owned()];
    let a = tmp.path().join("a.tar");
    let b = tmp.path().join("b.tar");
    let written =
        executor_image::docker_archive::write_docker_archive(&layout, Some("latest"), Arch::X86_64, &tags, &[], &a)
            .expect("archive");
    executor_image::docker_archive::write_docker_archive(&layout, Some("latest"), Arch::X86_64, &tags, &[], &b)
        .expect("archive");
    let bytes = fs::read(&a).expect("read");
    assert_eq!(bytes, fs::read(&b).expect("read"), "deterministic");
    assert_eq!(written.diff_ids.len(), 1);

    let mut listing = Vec::new();
    let mut archive = tar::Archive::new(&bytes[..]);
    for entry in archive.entries().expect("entries") {
        let entry = entry.expect("entry");
        let h = entry.header();
        listing.push(format!(
            "{:o} {}:{} {} {}",
            h.mode().expect("mode"),
            h.uid().expect("uid"),
            h.gid().expect("gid"),
            h.mtime().expect("mtime"),
            entry.path().expect("path").display()
        ));
    }
    let (config, diff_id) = (written.config.hex(), written.diff_ids[0].hex());
    let mut want = vec![
        format!("644 0:0 0 {config}.json"),
        format!("644 0:0 0 {diff_id}.tar"),
        "644 0:0 0 manifest.json".to_owned(),
    ];
    want.sort();
    assert_eq!(listing, want);
    let mut archive = tar::Archive::new(&bytes[..]);
    let manifest_json = archive
        .entries()
        .expect("entries")
        .map(|e| e.expect("entry"))
        .find(|e| e.path().expect("path").to_str() == Some("manifest.json"))
        .map(|mut e| {
            let mut s = String::new();
            e.read_to_string(&mut s).expect("read");
            s
        })
        .expect("manifest.json");
    assert_eq!(
        manifest_json,
        format!(r#"[{{"Config":"{config}.json","Layers":["{diff_id}.tar"],"RepoTags":["executor/static:latest"]}}]"#)
    );

    require_tool("skopeo", &["--version"]);
    {
        let source = format!("docker-archive:{}", a.display());
        let out = Command::new("skopeo").args(["inspect", &source]).output().expect("skopeo");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let inspect: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(inspect["Architecture"], "amd64");
        assert_eq!(inspect["Os"], "linux");
        assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(1));
        let dest = format!("oci:{}:copied", tmp.path().join("out").display());
        let out = Command::new("skopeo").args(["copy", "--quiet", &source, &dest]).output().expect("skopeo");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let copied = read_layout_image(&tmp.path().join("out"), Some("copied"), Arch::X86_64).expect("copied");
        // skopeo re-encodes the config when converting to OCI: compare what matters.
        let diff_ids: Vec<String> = written.diff_ids.iter().map(ToString::to_string).collect();
        assert_eq!(copied.config.rootfs().diff_ids(), &diff_ids);
        assert_eq!(copied.config.architecture().to_string(), "amd64");
        eprintln!("skopeo: docker-archive inspected (amd64, 1 layer) and copied to an OCI layout");
    }
    // podman loads it into a private store (never the machine's own).
    require_tool("podman", &["--version"]);
    let store = tmp.path().join("podman");
    let podman = |args: &[&str]| {
        Command::new("podman")
            .arg("--root")
            .arg(store.join("root"))
            .arg("--runroot")
            .arg(store.join("run"))
            .args(args)
            .output()
            .expect("podman")
    };
    let out = podman(&["load", "-i", a.to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "podman load: {}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("executor/static:latest"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let bad = vec!["Executor/Static".to_owned()];
    let err =
        executor_image::docker_archive::write_docker_archive(&layout, Some("latest"), Arch::X86_64, &bad, &[], &a)
            .expect_err("bad tag");
    assert_eq!(
        err.to_string(),
        "invalid repo tag `Executor/Static`: expected `name:tag` like `example.com/team/app:1.0` (lowercase name)"
    );
    assert_eq!(fs::read(&a).expect("read"), bytes, "a failed export leaves the old file");
}

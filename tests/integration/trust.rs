//! The trust chain under attack: a lockfile that names bytes other than the pinned package's
//! (already in the store, or another signed package), and what `build` and `lock --check` do.

use std::fs;
use std::path::Path;

use executor::apk::{Package, PackageName, Version};
use executor::digest::Digest;
use executor_testkit::apk::{write_package_unchecked, PackageFile, PackageSpec};

use crate::harness::{fixtures, Workspace};

const BUILD: &str = r#"apk_fetch(name = "apks", repository = "melange", packages = ["pretend-baselayout"], arch = "x86_64")
layer(name = "layer", packages = ":apks")
layer(name = "planted", files = {"/planted": "evil.apk"})
"#;

fn melange(fx: &Path) -> Workspace {
    let url = format!("file://{}", fx.join("melange-rsa256").display());
    Workspace::with_apk_repository("melange", &url, &[fx.join("melange-rsa256/melange.rsa.pub")], "")
        .file("img/BUILD", BUILD)
}

/// Replaces fields of the lockfile's `[[package]]` entry for `arch`/`name`.
fn edit_pin(lock: &str, arch: &str, name: &str, fields: &[(&str, String)]) -> String {
    let blocks: Vec<&str> = lock.split("\n[[package]]\n").collect();
    let mut out = vec![blocks[0].to_owned()];
    let mut edited = false;
    for block in &blocks[1..] {
        let is_it = block.contains(&format!("arch = \"{arch}\"\nname = \"{name}\"\n"));
        if !is_it {
            out.push((*block).to_owned());
            continue;
        }
        edited = true;
        let lines: Vec<String> = block
            .lines()
            .map(|line| {
                for (key, value) in fields {
                    if line.starts_with(&format!("{key} = ")) {
                        return format!("{key} = {value}");
                    }
                }
                line.to_owned()
            })
            .collect();
        out.push(lines.join("\n") + if block.ends_with('\n') { "\n" } else { "" });
    }
    assert!(edited, "no pin for {name} ({arch}) in\n{lock}");
    out.join("\n[[package]]\n")
}

/// The figures a lockfile pins for a package file.
fn pin_fields(bytes: &[u8], url: &str) -> Vec<(&'static str, String)> {
    let package = Package::read(bytes, "pin").expect("package reads");
    vec![
        ("url", format!("\"{url}\"")),
        ("size", bytes.len().to_string()),
        ("sha256", format!("\"{}\"", Digest::of(bytes))),
        ("identity", format!("\"{}\"", package.identity())),
        ("datahash", format!("\"{}\"", hex::encode(package.info().datahash.expect("datahash")))),
    ]
}

#[test]
fn unsigned_bytes_already_in_the_store_are_not_installed_when_a_lock_entry_names_them() {
    let fx = fixtures();
    let ws = melange(&fx);
    // An attacker's package: the pinned name and version, unsigned, with a file of theirs.
    let mut spec = PackageSpec::new(
        PackageName::new("pretend-baselayout").expect("name"),
        Version::parse("1.0.0-r0").expect("version"),
        "x86_64",
    );
    spec.files = vec![PackageFile::dir("etc"), PackageFile::file("etc/evil", "owned\n")];
    let evil = write_package_unchecked(&spec, None).expect("write");
    fs::write(ws.root().join("img/evil.apk"), &evil).expect("write evil.apk");
    ws.run(&["lock"]).success();
    // The attacker's bytes reach the store as an ordinary source file of another target.
    ws.run(&["build", "//img:planted"]).success();
    // The lockfile is edited to name them (same URL: the real file is still served there).
    let lock = ws.read("executor.lock");
    let fields: Vec<(&str, String)> = pin_fields(&evil, "").into_iter().filter(|(k, _)| *k != "url").collect();
    ws.write("executor.lock", &edit_pin(&lock, "x86_64", "pretend-baselayout", &fields));
    let run = ws.run(&["build", "//img:layer"]).failure(1);
    insta::assert_snapshot!("trust_planted_bytes_build", ws.normalize_fixtures(&run.normalized(&ws), &fx));
    assert!(!ws.root().join("executor-out/img/layer.tar.gz").exists());
    // `lock --check` looks at the bytes too.
    let run = ws.run(&["lock", "--check"]).failure(1);
    insta::assert_snapshot!("trust_planted_bytes_check", ws.normalize_fixtures(&run.normalized(&ws), &fx));
}

#[test]
fn a_lock_entry_pointing_at_another_signed_package_is_refused() {
    let fx = fixtures();
    let ws = melange(&fx);
    ws.write("img/evil.apk", "unused here");
    ws.run(&["lock"]).success();
    ws.run(&["build", "//img:layer"]).success();
    // Swap in another valid, signed package of the same repository: its URL, size, sha256,
    // identity and datahash, under pretend-baselayout's name and version.
    let other = fx.join("melange-rsa256/x86_64/custom-ca-certs-1-1.0.0-r0.apk");
    let bytes = fs::read(&other).expect("fixture");
    let url = format!("file://{}", other.display());
    let lock = ws.read("executor.lock");
    ws.write("executor.lock", &edit_pin(&lock, "x86_64", "pretend-baselayout", &pin_fields(&bytes, &url)));
    // Warm cache (the other package's bytes are fetched into the store by the check) and cold.
    let run = ws.run(&["lock", "--check"]).failure(1);
    insta::assert_snapshot!("trust_swapped_pin_check", ws.normalize_fixtures(&run.normalized(&ws), &fx));
    let run = ws.run(&["build", "//img:layer"]).failure(1);
    insta::assert_snapshot!("trust_swapped_pin_build", ws.normalize_fixtures(&run.normalized(&ws), &fx));
    fs::remove_dir_all(ws.cache()).expect("empty the cache");
    let run = ws.run(&["build", "//img:layer"]).failure(1);
    insta::assert_snapshot!("trust_swapped_pin_build_cold", ws.normalize_fixtures(&run.normalized(&ws), &fx));
}

const IMAGE_BUILD: &str = r#"apk_fetch(name = "apks", repository = "melange", packages = ["pretend-baselayout"], arch = "x86_64")
layer(name = "layer", packages = ":apks")
oci_image(name = "image", layers = [":layer"])
oci_index(name = "index", images = [":image"], annotations = {"n": "1"})
"#;

/// The store path of blob `digest` (`sha256:<hex>`), made writable so a test can damage it.
fn store_blob(ws: &Workspace, digest: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    let path = ws.cache().join("cas/sha256").join(&hex[..2]).join(hex);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod blob");
    path
}

/// The config digest of the image layout `executor-out/img/image`.
fn config_digest(ws: &Workspace) -> String {
    let layout = ws.root().join("executor-out/img/image");
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index.json")).expect("json");
    let manifest = index["manifests"][0]["digest"].as_str().expect("manifest digest");
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(layout.join("blobs/sha256").join(manifest.strip_prefix("sha256:").expect("sha256")))
            .expect("manifest"),
    )
    .expect("json");
    manifest["config"]["digest"].as_str().expect("config digest").to_owned()
}

fn flip_first_byte(path: &Path) {
    let mut bytes = fs::read(path).expect("read");
    bytes[0] ^= 0xff;
    fs::write(path, bytes).expect("write");
}

#[test]
fn a_corrupt_blob_in_the_store_is_evicted_and_made_again_in_the_same_build() {
    let fx = fixtures();
    let ws = melange(&fx).file("img/BUILD", IMAGE_BUILD);
    ws.run(&["lock"]).success();
    let first = ws.run(&["build", "//img:index"]).success();
    // One flipped byte in the image config blob; `executor-out/` kept. A change downstream
    // makes the index action read the image layout from the store.
    let config = config_digest(&ws);
    flip_first_byte(&store_blob(&ws, &config));
    ws.write("img/BUILD", &IMAGE_BUILD.replace("\"n\": \"1\"", "\"n\": \"2\""));
    let run = ws.run(&["build", "//img:index"]).success();
    assert!(!run.stderr.contains("corrupt"), "{}", run.stderr);
    // The config blob is whole again, and the build went on as if nothing happened.
    let bytes = fs::read(store_blob(&ws, &config)).expect("config blob");
    assert_eq!(Digest::of(&bytes).to_string(), config);
    ws.write("img/BUILD", IMAGE_BUILD);
    let again = ws.run(&["build", "//img:index"]).success();
    assert_eq!(again.stdout, first.stdout);
}

#[test]
fn clean_verify_drops_corrupt_blobs_and_the_results_naming_them() {
    let fx = fixtures();
    let ws = melange(&fx).file("img/BUILD", IMAGE_BUILD);
    ws.run(&["lock"]).success();
    let first = ws.run(&["build", "//img:index"]).success();
    flip_first_byte(&store_blob(&ws, &config_digest(&ws)));
    let cache = ws.cache();
    let run = ws.run(&["clean", "--verify", "--cache-dir", cache.to_str().expect("utf-8")]).success();
    let line = run.stderr.trim_end().replace(cache.to_str().expect("utf-8"), "[CACHE]");
    let (counts, removed) = line.split_once(": ").expect("a summary line");
    assert!(counts.starts_with("checked ") && counts.ends_with(" action results in [CACHE]"), "{line}");
    // The image's and the index's results both name the config (both layouts hold it).
    assert_eq!(removed, "removed 1 corrupt blobs and 2 action results");
    // The image action runs again; the outputs are the same.
    fs::remove_dir_all(ws.root().join("executor-out")).expect("remove executor-out");
    let run = ws.run(&["build", "//img:index"]).success();
    assert!(run.stderr.contains("OciImage //img:image"), "{}", run.stderr);
    assert_eq!(run.stdout, first.stdout);
    let run = ws.run(&["clean", "--verify", "--cache-dir", cache.to_str().expect("utf-8")]).success();
    assert!(run.stderr.ends_with("removed 0 corrupt blobs and 0 action results\n"), "{}", run.stderr);
}

#[test]
fn temporaries_left_by_a_killed_build_are_removed_at_the_next_start() {
    let fx = fixtures();
    let ws = melange(&fx).file("img/BUILD", IMAGE_BUILD);
    ws.run(&["lock"]).success();
    ws.run(&["build", "//img:index"]).success();
    // What `kill -9` in the middle of a build leaves: the in-progress mark, temporaries in
    // executor-out/ and in the cache, named after a process that no longer runs.
    let dead = 4_000_000; // above Linux's pid_max
    let out = ws.root().join("executor-out");
    fs::write(out.join(".executor/in-progress"), b"").expect("mark");
    fs::write(out.join(format!("img/.image.tmp-{dead}")), b"half").expect("tmp file");
    fs::create_dir_all(out.join(format!("img/.index.tmp-{dead}/blobs"))).expect("tmp dir");
    fs::create_dir_all(ws.cache().join(format!("tmp/{dead}-7-action/out-0"))).expect("cache tmp");
    fs::write(ws.cache().join(format!("tmp/{dead}-8-apk")), b"half").expect("cache tmp file");
    ws.run(&["build", "//img:index"]).success();
    assert!(!out.join(format!("img/.image.tmp-{dead}")).exists());
    assert!(!out.join(format!("img/.index.tmp-{dead}")).exists());
    assert!(!out.join(".executor/in-progress").exists());
    assert_eq!(fs::read_dir(ws.cache().join("tmp")).expect("tmp").count(), 0);
}

#[test]
fn lock_refuses_a_package_whose_control_data_disagrees_with_its_index_entry() {
    use executor::apk::Dependency;
    use executor_testkit::apk::{index_entry, write_index, write_package};
    let key = crate::harness::test_signing_key();
    let spec = |name: &str, depends: &[&str]| {
        let mut spec = PackageSpec::new(
            PackageName::new(name).expect("name"),
            Version::parse("1.0-r0").expect("version"),
            "x86_64",
        );
        spec.depends = depends.iter().map(|d| Dependency::parse(d).expect("atom")).collect();
        spec.files = vec![PackageFile::dir("etc"), PackageFile::file(format!("etc/{name}"), "x\n")];
        spec
    };
    let mut files = Vec::new();
    let mut entries = Vec::new();
    for spec in [spec("app", &["libcrypto"]), spec("libcrypto", &[])] {
        let bytes = write_package(&spec, Some(&key)).expect("package");
        let name = spec.file_name();
        entries.push(index_entry(&bytes, &name).expect("entry"));
        files.push((name, bytes));
    }
    // The index (signed by the repository's key) drops `app`'s dependency.
    entries[0].depends.clear();
    files.push(("APKINDEX.tar.gz".to_owned(), write_index(&entries, "test", Some(&key)).expect("index")));
    let ws = Workspace::with_test_repository(&files);
    ws.write(
        "img/BUILD",
        "apk_fetch(name = \"apks\", repository = \"test\", packages = [\"app\"], arch = \"x86_64\")\n",
    );
    let run = ws.run(&["lock"]).failure(1);
    insta::assert_snapshot!("trust_index_disagrees_with_package", ws.normalize(&run.normalized(&ws)));
    assert!(!ws.root().join("executor.lock").exists());
}

#[test]
fn symlinks_cannot_redirect_reads_or_writes() {
    use std::os::unix::fs::symlink;
    let outside = tempfile::tempdir().expect("tempdir");
    fs::write(outside.path().join("secret"), "secret\n").expect("write");
    fs::write(outside.path().join("defs.bzl"), "X = 1\n").expect("write");
    let ws = Workspace::new().file("p/BUILD", "filegroup(name = \"f\", srcs = [\"secret\"])\n");
    // A source file that is a link out of the workspace.
    symlink(outside.path().join("secret"), ws.root().join("p/secret")).expect("symlink");
    let run = ws.run(&["build", "//p:f"]).failure(1);
    let text = run.normalized(&ws).replace(&outside.path().display().to_string(), "[OUTSIDE]");
    insta::assert_snapshot!("trust_source_symlink_outside", text);
    // A `.bzl` that is a link out of the workspace.
    fs::remove_file(ws.root().join("p/secret")).expect("rm");
    symlink(outside.path().join("defs.bzl"), ws.root().join("p/defs.bzl")).expect("symlink");
    ws.write("p/BUILD", "load(\":defs.bzl\", \"X\")\nwrite_file(name = \"w\", out = \"w.txt\", content = \"x\")\n");
    let run = ws.run(&["build", "//p:w"]).failure(1);
    let text = run.normalized(&ws).replace(&outside.path().display().to_string(), "[OUTSIDE]");
    insta::assert_snapshot!("trust_bzl_symlink_outside", text);
    fs::remove_file(ws.root().join("p/defs.bzl")).expect("rm");
    // A link inside the workspace is fine.
    fs::write(ws.root().join("p/real.bzl"), "X = 1\n").expect("write");
    symlink("real.bzl", ws.root().join("p/defs.bzl")).expect("symlink");
    ws.run(&["build", "//p:w"]).success();

    // A directory of executor-out/ replaced by a link: the output goes into a real directory,
    // nothing is written through the link.
    let out = ws.root().join("executor-out");
    fs::remove_dir_all(out.join("p")).expect("rm");
    symlink(outside.path(), out.join("p")).expect("symlink");
    ws.write("p/BUILD", "load(\":defs.bzl\", \"X\")\nwrite_file(name = \"w\", out = \"w.txt\", content = \"y\")\n");
    ws.run(&["build", "//p:w"]).success();
    assert!(!outside.path().join("w.txt").exists(), "an output was written through the link");
    assert!(fs::symlink_metadata(out.join("p")).expect("p").is_dir());
    assert_eq!(fs::read_to_string(out.join("p/w.txt")).expect("w.txt"), "y");
    // executor-out itself a link: refused.
    fs::remove_dir_all(&out).expect("rm");
    symlink(outside.path(), &out).expect("symlink");
    let run = ws.run(&["build", "//p:w"]).failure(1);
    let text = run.normalized(&ws).replace(&outside.path().display().to_string(), "[OUTSIDE]");
    insta::assert_snapshot!("trust_out_dir_symlink", text);
    assert!(!outside.path().join(".executor").exists() && !outside.path().join("p").exists());
    fs::remove_file(&out).expect("rm link");

    // `executor-out/.executor/` is reserved: no target may write the workspace lock.
    ws.write("BUILD", "write_file(name = \"lock\", out = \".executor/lock\", content = \"x\")\n");
    let run = ws.run(&["build", "//:lock"]).failure(1);
    insta::assert_snapshot!("trust_reserved_output", run.normalized(&ws));
}

#[test]
fn a_key_file_that_links_out_of_the_workspace_is_refused() {
    let fx = fixtures();
    let ws = melange(&fx);
    ws.write("img/evil.apk", "unused here");
    let key = ws.root().join("keys/melange.rsa.pub");
    fs::remove_file(&key).expect("rm key");
    std::os::unix::fs::symlink(fx.join("melange-rsa256/melange.rsa.pub"), &key).expect("symlink");
    let run = ws.run(&["lock"]).failure(1);
    insta::assert_snapshot!("trust_key_symlink_outside", ws.normalize_fixtures(&run.normalized(&ws), &fx));
}

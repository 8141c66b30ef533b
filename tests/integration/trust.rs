//! The trust chain under attack: a lockfile that names bytes other than the pinned package's
//! (already in the store, or another signed package), and what `build` and `lock --check` do.

use std::fs;
use std::path::Path;

use executor::apk::write::{write_package_unchecked, PackageFile, PackageSpec};
use executor::apk::{Package, PackageName, Version};
use executor::digest::Digest;

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
    let Some(fx) = fixtures() else { return };
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
    let Some(fx) = fixtures() else { return };
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

//! Bad input for layers and images: hostile package paths, file conflicts, unknown
//! platforms, accounts that do not exist, missing files. Each is a clear error, exit code 1,
//! and no output written.

use executor::apk::{PackageName, Version};
use executor_testkit::apk::{
    index_entry, write_index, write_package, write_package_unchecked, PackageFile, PackageSpec,
};

use crate::harness::{test_signing_key, Workspace};

fn spec(name: &str, files: Vec<PackageFile>) -> PackageSpec {
    let mut spec =
        PackageSpec::new(PackageName::new(name).expect("name"), Version::parse("1.0-r0").expect("version"), "x86_64");
    spec.description = format!("{name} (test package)");
    spec.license = "Apache-2.0".into();
    spec.build_time = 1_700_000_000;
    spec.files = files;
    spec
}

/// A signed x86_64 repository in `<ws>/repo` with the given packages (`unchecked` ones may
/// be hostile), and a workspace that declares it.
fn repository(packages: Vec<(PackageSpec, bool)>) -> Workspace {
    let key = test_signing_key();
    let mut files = Vec::new();
    let mut entries = Vec::new();
    for (spec, unchecked) in packages {
        let bytes =
            if unchecked { write_package_unchecked(&spec, Some(&key)) } else { write_package(&spec, Some(&key)) }
                .expect("package");
        let name = format!("{}-{}.apk", spec.name, spec.version);
        entries.push(index_entry(&bytes, &name).expect("entry"));
        files.push((name, bytes));
    }
    files.push(("APKINDEX.tar.gz".to_owned(), write_index(&entries, "test", Some(&key)).expect("index")));
    Workspace::with_test_repository(&files)
}

fn image_build(packages: &str, extra_layer: &str, image: &str) -> String {
    format!(
        "apk_fetch(name = \"apks\", repository = \"test\", packages = [{packages}], arch = \"x86_64\")\n\
         layer(name = \"layer\", packages = \":apks\"{extra_layer})\n\
         oci_image(name = \"image\", layers = [\":layer\"]{image})\n"
    )
}

/// Locks, builds `//img:image`, and checks the failure: exit code 1, none of `unwritten`
/// in `executor-out/`.
fn build_fails(ws: &Workspace, name: &str, unwritten: &[&str]) {
    ws.run(&["lock"]).success();
    let run = ws.run(&["build", "//img:image", "-j", "1"]);
    assert_eq!(run.code, 1, "{name}: {}", run.stderr);
    for output in unwritten {
        assert!(!ws.root().join("executor-out").join(output).exists(), "{name}: {output} was written");
    }
    let stderr: String = run.stderr.lines().filter(|l| !l.starts_with('[')).map(|l| format!("{l}\n")).collect();
    insta::assert_snapshot!(name, ws.normalize(&stderr));
}

#[test]
fn hostile_package_paths_are_refused() {
    let cases: [(&str, PackageFile); 3] = [
        ("layer_hostile_dotdot", PackageFile::file("../escape", "x")),
        ("layer_hostile_absolute", PackageFile::file("/etc/passwd", "root::0:0::/:/bin/sh\n")),
        ("layer_hostile_symlink", PackageFile::symlink("etc/escape", "../../../../outside")),
    ];
    for (name, file) in cases {
        let ws = repository(vec![(spec("evil", vec![PackageFile::dir("etc"), file]), true)]);
        ws.write("img/BUILD", &image_build("\"evil\"", "", ""));
        build_fails(&ws, name, &LAYER_AND_IMAGE);
    }
}

const LAYER_AND_IMAGE: [&str; 4] = ["img/layer.tar.gz", "img/layer.layer.json", "img/image", "img/image.image.json"];

#[test]
fn conflicting_files_are_refused_unless_replaced() {
    let a = spec("first", vec![PackageFile::dir("etc"), PackageFile::file("etc/app.conf", "first\n")]);
    let b = spec("second", vec![PackageFile::dir("etc"), PackageFile::file("etc/app.conf", "second\n")]);
    let ws = repository(vec![(a.clone(), false), (b.clone(), false)]);
    ws.write("img/BUILD", &image_build("\"first\", \"second\"", "", ""));
    build_fails(&ws, "layer_file_conflict", &LAYER_AND_IMAGE);

    // With `replaces`, the later package wins; identical content is never a conflict.
    let mut b = b;
    b.replaces = vec![executor::apk::Dependency::parse("first").expect("atom")];
    let c = spec("third", vec![PackageFile::dir("etc"), PackageFile::file("etc/app.conf", "second\n")]);
    let ws = repository(vec![(a, false), (b, false), (c, false)]);
    ws.write("img/BUILD", &image_build("\"first\", \"second\", \"third\"", "", ""));
    ws.run(&["lock"]).success();
    ws.run(&["build", "//img:image"]).success();
}

#[test]
fn image_errors() {
    let ok = spec(
        "base",
        vec![PackageFile::dir("etc"), PackageFile::file("etc/passwd", "root:x:0:0:root:/root:/sbin/nologin\n")],
    );
    let cases: [(&str, String); 3] = [
        ("image_unknown_user", image_build("\"base\"", "", ", user = \"ghost\"")),
        ("image_missing_file_source", image_build("\"base\"", ", files = {\"/usr/bin/app\": \"missing-app\"}", "")),
        ("image_unknown_platform", image_build("\"base\"", "", ", arch = \"mips\"")),
    ];
    for (name, build) in cases {
        let ws = repository(vec![(ok.clone(), false)]);
        ws.write("img/BUILD", &build);
        if name == "image_unknown_user" {
            // The layer is fine; the image is refused.
            build_fails(&ws, name, &["img/image", "img/image.image.json"]);
        } else {
            // Caught while loading or analyzing: before anything runs.
            let run = ws.run(&["build", "//img:image"]);
            assert_eq!(run.code, 1, "{name}: {}", run.stderr);
            assert!(!ws.root().join("executor-out/img").exists(), "{name}: outputs were written");
            insta::assert_snapshot!(name, ws.normalize(&run.stderr));
        }
    }
}

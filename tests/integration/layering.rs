//! `distroless_image(layering = {"strategy": "origin", "budget": N})`: packages spread over
//! layers by origin. The layered image unpacks (with umoci) to the same root file system as
//! the single-layer one, and images sharing packages share those layers' blobs.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::harness::{require, test_signing_key, Workspace};
use executor::apk::{PackageName, Version};
use executor_testkit::apk::{index_entry, write_index, write_package, PackageFile, PackageSpec};

/// Packages of several origins (`foo` makes two), with directories they share, a special
/// mode, a symlink and a hard link.
fn repository() -> Vec<(String, Vec<u8>)> {
    let key = test_signing_key();
    let words = |seed: u64, len: usize| -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b"abcdefghij klmnop\n"[(x % 18) as usize]
            })
            .collect()
    };
    let spec = |name: &str, origin: &str, files: Vec<PackageFile>| {
        let mut s =
            PackageSpec::new(PackageName::new(name).expect("name"), Version::parse("1.0-r0").expect("v"), "x86_64");
        s.origin = Some(origin.to_owned());
        s.build_time = 1_700_000_000;
        s.license = "MIT".into();
        s.files = files;
        s
    };
    let mut tmp = PackageFile::dir("tmp");
    tmp.mode = 0o1777;
    let specs = vec![
        spec("base", "base", vec![PackageFile::dir("etc"), PackageFile::file("etc/os-release", "ID=test\n"), tmp]),
        spec(
            "libfoo",
            "foo",
            vec![
                PackageFile::dir("usr"),
                PackageFile::dir("usr/lib"),
                PackageFile::file("usr/lib/libfoo.so.1", words(1, 300_000)),
                PackageFile::symlink("usr/lib/libfoo.so", "libfoo.so.1"),
            ],
        ),
        spec(
            "foo-tools",
            "foo",
            vec![
                PackageFile::dir("usr"),
                PackageFile::dir("usr/bin"),
                PackageFile::file("usr/bin/foo", words(2, 50_000)),
            ],
        ),
        spec(
            "bar",
            "bar",
            vec![
                PackageFile::dir("usr"),
                PackageFile::dir("usr/share"),
                PackageFile::dir("usr/share/bar"),
                PackageFile::file("usr/share/bar/data", words(3, 200_000)),
                PackageFile::hard_link("usr/share/bar/data.link", "usr/share/bar/data"),
            ],
        ),
        spec("baz", "baz", vec![PackageFile::dir("etc"), PackageFile::file("etc/baz.conf", words(4, 10_000))]),
        spec(
            "qux",
            "qux",
            vec![
                PackageFile::dir("usr"),
                PackageFile::dir("usr/share"),
                PackageFile::file("usr/share/qux", words(5, 5_000)),
            ],
        ),
    ];
    let mut files = Vec::new();
    let mut entries = Vec::new();
    for s in &specs {
        let bytes = write_package(s, Some(&key)).expect("package");
        let file = format!("{}-1.0-r0.apk", s.name.as_str());
        entries.push(index_entry(&bytes, &file).expect("entry"));
        files.push((file, bytes));
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    files.push(("APKINDEX.tar.gz".into(), write_index(&entries, "layering", Some(&key)).expect("index")));
    files
}

/// `distroless_image`s of executor's own rules over the repository above.
fn workspace() -> Workspace {
    let ws = Workspace::with_test_repository(&repository());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("root");
    let mut workspace = ws.read("WORKSPACE");
    workspace.push_str(&format!("local_repository(name = \"executor\", path = \"{}\")\n", root.display()));
    ws.write("WORKSPACE", &workspace);
    ws.write(
        "BUILD",
        r#"load("@executor//rules:defs.bzl", "distroless_image")

[distroless_image(
    name = name,
    repository = "test",
    packages = packages,
    archs = ["x86_64"],
    users = ["nonroot:65532:65532:/home/nonroot:/sbin/nologin"],
    groups = ["nonroot:65532"],
    layering = layering,
) for name, packages, layering in [
    ("a", ["base", "libfoo", "foo-tools", "bar", "baz"], {"strategy": "origin", "budget": 3}),
    ("a_single", ["base", "libfoo", "foo-tools", "bar", "baz"], None),
    ("b", ["base", "libfoo", "foo-tools", "bar", "qux"], {"strategy": "origin", "budget": 3}),
]]
"#,
    );
    ws
}

/// The layers (digests) of the image layout `dir`.
fn layers(dir: &Path) -> Vec<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index")).expect("json");
    let digest = index["manifests"][0]["digest"].as_str().expect("digest");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("blobs/sha256").join(&digest["sha256:".len()..])).expect("manifest"),
    )
    .expect("json");
    manifest["layers"].as_array().expect("layers").iter().map(|l| l["digest"].as_str().expect("d").to_owned()).collect()
}

#[test]
fn layering_by_origin_groups_packages_and_shares_layers() {
    let ws = workspace();
    ws.run(&["lock"]).success();
    ws.run(&["build", "//:a_x86_64", "//:a_single_x86_64", "//:b_x86_64"]).success();
    let out = ws.root().join("executor-out");
    let (a, single, b) =
        (layers(&out.join("a_x86_64")), layers(&out.join("a_single_x86_64")), layers(&out.join("b_x86_64")));
    assert_eq!(single.len(), 1);
    // Origins by size: foo (350 kB), bar (200 kB), then base and baz share the third; the
    // accounts, the apk database and every directory are on top.
    assert_eq!(a.len(), 4, "{a:?}");
    assert_eq!(b.len(), 4, "{b:?}");
    assert_eq!(a[..2], b[..2], "the foo and bar layers are the same blobs");
    assert_ne!(a[2], b[2]);
    let meta: serde_json::Value =
        serde_json::from_str(&ws.read("executor-out/a_x86_64_layer.layer.json")).expect("json");
    let created: Vec<&str> =
        meta["parts"].as_array().expect("parts").iter().map(|p| p["created_by"].as_str().expect("c")).collect();
    assert_eq!(
        created,
        [
            "executor layer: apk packages foo-tools, libfoo",
            "executor layer: apk packages bar",
            "executor layer: apk packages base, baz",
            "executor layer: accounts, files, directories and the apk database",
        ]
    );
    // Each package layer carries its packages' records of the apk database (the top
    // layer's whole one replaces them in the image).
    let installed = |digest: &str| -> String {
        let blob = out.join("a_x86_64/blobs/sha256").join(&digest["sha256:".len()..]);
        let tar = Command::new("tar").arg("-xzOf").arg(&blob).arg("usr/lib/apk/db/installed").output().expect("tar");
        assert!(tar.status.success(), "{}", String::from_utf8_lossy(&tar.stderr));
        let text = String::from_utf8(tar.stdout).expect("utf-8");
        let names: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("P:")).collect();
        names.join(",")
    };
    assert_eq!(installed(&a[0]), "libfoo,foo-tools");
    assert_eq!(installed(&a[1]), "bar");
    assert_eq!(installed(&a[2]), "base,baz");
    assert_eq!(installed(&a[3]), "base,libfoo,foo-tools,bar,baz");

    // A bad budget is refused where it is written.
    ws.write(
        "BUILD",
        &ws.read("BUILD").replace("\"budget\": 3}),\n    (\"a_single\"", "\"budget\": 0}),\n    (\"a_single\""),
    );
    let bad = ws.run(&["build", "//:a_x86_64"]).failure(1);
    assert!(
        bad.stderr.contains("attribute `layering_budget` of rule `layer` must be 1 to 127, not 0"),
        "{}",
        bad.stderr
    );
}

/// Every entry below `root`: kind, mode, owner, mtime, and content or link target.
/// One entry of [`rootfs`]: kind, mode, uid, gid, mtime, content.
type Unpacked = (String, u32, u32, u32, i64, Vec<u8>);

fn rootfs(root: &Path) -> BTreeMap<String, Unpacked> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("meta");
            let rel = path.strip_prefix(root).expect("prefix").display().to_string();
            let (kind, content) = if meta.is_dir() {
                stack.push(path.clone());
                ("dir", Vec::new())
            } else if meta.file_type().is_symlink() {
                ("symlink", std::fs::read_link(&path).expect("link").display().to_string().into_bytes())
            } else {
                ("file", std::fs::read(&path).expect("read"))
            };
            out.insert(rel, (kind.to_owned(), meta.mode() & 0o7777, meta.uid(), meta.gid(), meta.mtime(), content));
        }
    }
    out
}

/// The layered image's root file system, unpacked by umoci layer by layer, is the
/// single-layer image's, entry for entry (kinds, modes, owners, mtimes, bytes).
#[test]
#[ignore = "needs umoci (bash .ci/run installs it)"]
fn a_layered_image_unpacks_to_the_same_root_file_system() {
    require(&["umoci"]);
    let ws = workspace();
    ws.run(&["lock"]).success();
    ws.run(&["build", "//:a_x86_64", "//:a_single_x86_64"]).success();
    let temp = tempfile::tempdir().expect("tempdir");
    let unpack = |name: &str| {
        // umoci unpacks into a fresh directory from a writable copy of the layout.
        let layout = temp.path().join(format!("{name}-layout"));
        let status = Command::new("cp")
            .arg("-r")
            .arg(ws.root().join("executor-out").join(name))
            .arg(&layout)
            .status()
            .expect("cp");
        assert!(status.success());
        let _ = Command::new("chmod").args(["-R", "u+w"]).arg(&layout).status();
        let bundle = temp.path().join(format!("{name}-bundle"));
        let out = Command::new("umoci")
            .args(["unpack", "--image", &format!("{}:latest", layout.display())])
            .arg(&bundle)
            .output()
            .expect("umoci");
        assert!(out.status.success(), "umoci unpack {name}: {}", String::from_utf8_lossy(&out.stderr));
        rootfs(&bundle.join("rootfs"))
    };
    let layered = unpack("a_x86_64");
    let single = unpack("a_single_x86_64");
    assert!(layered.contains_key("usr/share/bar/data.link") && layered.contains_key("tmp"), "{:?}", layered.keys());
    assert_eq!(layered.keys().collect::<Vec<_>>(), single.keys().collect::<Vec<_>>());
    for (path, entry) in &single {
        assert_eq!(&layered[path], entry, "{path}");
    }
}

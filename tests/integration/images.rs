//! `//images:static`: the flagship image for eight architectures, its snapshots, its
//! reproducibility, and what real tools say about it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{executor_bin, to_run, tree_contents, Run};

/// The repository root.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("repository root")
}

/// Copies what `//images:static` needs into `dest` (a fresh workspace).
pub fn copy_repository(dest: &Path) {
    let root = repo_root();
    for entry in
        ["WORKSPACE", "BUILD", "README.md", "ARCHITECTURE.md", "executor.lock", "rules", "images", "third_party"]
    {
        copy_path(&root.join(entry), &dest.join(entry));
    }
}

/// [`copy_repository`] and a package `//layered` with `//layered:static`: the static image
/// for amd64 with its packages spread over layers by origin (budget 3: three package layers
/// and the top one), locked with the cache `cache`.
pub fn copy_repository_with_layered_static(dest: &Path, cache: &Path) {
    copy_repository(dest);
    fs::create_dir_all(dest.join("layered")).expect("mkdir");
    fs::write(
        dest.join("layered/BUILD"),
        r#"load("//rules:defs.bzl", "distroless_image")

distroless_image(
    name = "static",
    repository = "executor_test",
    packages = ["baselayout-data", "ca-certificates-bundle", "tzdata"],
    archs = ["x86_64"],
    users = ["nonroot:65532:65532:/home/nonroot:/sbin/nologin"],
    groups = ["nonroot:65532"],
    user = "65532",
    layering = {"strategy": "origin", "budget": 3},
    repo_tags = ["executor/static-layered:latest"],
)
"#,
    )
    .expect("layered/BUILD");
    let lock = crate::harness::to_run(
        std::process::Command::new(crate::harness::executor_bin())
            .arg("lock")
            .current_dir(dest)
            .env("EXECUTOR_CACHE_DIR", cache)
            .output()
            .expect("lock"),
    );
    assert_eq!(lock.code, 0, "{}", lock.stderr);
}

fn copy_path(from: &Path, to: &Path) {
    let meta = fs::symlink_metadata(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
    if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(from).expect("readlink"), to).expect("symlink");
    } else if meta.is_dir() {
        fs::create_dir_all(to).expect("mkdir");
        for e in fs::read_dir(from).expect("read_dir").flatten() {
            if e.file_name() == "executor-out" {
                continue;
            }
            copy_path(&e.path(), &to.join(e.file_name()));
        }
    } else {
        fs::copy(from, to).expect("copy");
    }
}

/// Builds `//images:static` in `ws` with `cache`, under the given TZ and umask.
fn build_static(ws: &Path, cache: &Path, tz: &str, umask: &str) -> Run {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" build //images:static"))
        .arg(executor_bin())
        .current_dir(ws)
        .env("EXECUTOR_CACHE_DIR", cache)
        .env("TZ", tz)
        .output()
        .expect("run executor");
    to_run(out).success()
}

fn pretty(bytes: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(bytes).expect("json");
    serde_json::to_string_pretty(&value).expect("pretty")
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    fs::read(layout.join("blobs/sha256").join(hex)).expect("blob")
}

#[test]
fn static_image_is_pinned_by_snapshots_and_reproducible() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let (ws_a, ws_b) = (a.path().join("first/workspace"), b.path().join("second"));
    copy_repository(&ws_a);
    copy_repository(&ws_b);
    // Different source mtimes in the second copy: they must not reach any output.
    let touch =
        Command::new("find").arg(&ws_b).args(["-exec", "touch", "-d", "2001-02-03 04:05:06", "{}", "+"]).status();
    assert!(touch.map(|s| s.success()).unwrap_or(false), "touch failed");

    let run_a = build_static(&ws_a, &a.path().join("cache"), "UTC", "022");
    let run_b = build_static(&ws_b, &b.path().join("cache-elsewhere"), "Asia/Kathmandu", "077");
    assert_eq!(run_a.stdout, run_b.stdout);
    let layout_a = ws_a.join("executor-out/images/static");
    let layout_b = ws_b.join("executor-out/images/static");
    assert_eq!(tree_contents(&layout_a), tree_contents(&layout_b), "the two layouts differ");

    // The index and, for every platform, manifest, config and layer listing.
    let index_json: serde_json::Value =
        serde_json::from_slice(&fs::read(layout_a.join("index.json")).expect("index.json")).expect("json");
    let index_digest = index_json["manifests"][0]["digest"].as_str().expect("index digest").to_owned();
    insta::assert_snapshot!("static_build_output", run_a.stdout);
    insta::assert_snapshot!(
        "static_layout_index_json",
        pretty(&fs::read(layout_a.join("index.json")).expect("index.json"))
    );
    let index = blob(&layout_a, &index_digest);
    insta::assert_snapshot!("static_image_index", pretty(&index));
    let index: serde_json::Value = serde_json::from_slice(&index).expect("json");
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 8);
    for m in manifests {
        let platform = &m["platform"];
        let name = match platform["variant"].as_str() {
            Some(v) => format!("{}_{v}", platform["architecture"].as_str().expect("arch")),
            None => platform["architecture"].as_str().expect("arch").to_owned(),
        };
        let manifest_bytes = blob(&layout_a, m["digest"].as_str().expect("digest"));
        let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes).expect("json");
        let config = blob(&layout_a, manifest["config"]["digest"].as_str().expect("config"));
        let layers = manifest["layers"].as_array().expect("layers");
        assert_eq!(layers.len(), 1, "{name}");
        let layer = blob(&layout_a, layers[0]["digest"].as_str().expect("layer"));
        let listing = executor::layer::list_layer(&layer[..]).expect("listing");
        insta::assert_snapshot!(format!("static_{name}_manifest"), pretty(&manifest_bytes));
        insta::assert_snapshot!(format!("static_{name}_config"), pretty(&config));
        insta::assert_snapshot!(format!("static_{name}_layer"), listing);
    }
}

/// Real tools accept `//images:static`: oci-image-tool, skopeo per platform, umoci unpack.
#[test]
#[ignore = "needs skopeo, umoci, oci-image-tool and jq (bash .ci/run installs them)"]
fn static_image_passes_the_real_tools() {
    let validate = crate::harness::shared_tools(&["validate_oci.sh"], &["skopeo", "umoci", "oci-image-tool", "jq"]);
    let temp = tempfile::tempdir().expect("tempdir");
    let ws = temp.path().join("ws");
    copy_repository(&ws);
    build_static(&ws, &temp.path().join("cache"), "UTC", "022");
    let layout = ws.join("executor-out/images/static");
    let out = Command::new("bash")
        .arg(validate.join("validate_oci.sh"))
        .arg(&layout)
        .arg("latest")
        .output()
        .expect("validate_oci.sh");
    let run = to_run(out);
    assert_eq!(run.code, 0, "validate_oci.sh failed:\n{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("VALID") && run.stdout.contains("(8 platform(s))"), "{}", run.stdout);
}

#[test]
fn committed_lockfile_is_up_to_date() {
    let temp = tempfile::tempdir().expect("tempdir");
    let ws = temp.path().join("ws");
    copy_repository(&ws);
    let out = Command::new(executor_bin()).args(["lock", "--check"]).current_dir(&ws).output().expect("run");
    to_run(out).success();
    // Locking again against the in-tree indexes changes no byte.
    let out = Command::new(executor_bin())
        .args(["lock"])
        .current_dir(&ws)
        .env("EXECUTOR_CACHE_DIR", temp.path().join("cache"))
        .output()
        .expect("run");
    let run = to_run(out).success();
    assert!(run.stderr.ends_with("executor.lock unchanged\n"), "{}", run.stderr);
}

/// Only the changed arch's layer and image, and the index, are rebuilt.
#[test]
fn changing_one_arch_rebuilds_only_that_arch() {
    let temp = tempfile::tempdir().expect("tempdir");
    let ws = temp.path().join("ws");
    copy_repository(&ws);
    let cache = temp.path().join("cache");
    build_static(&ws, &cache, "UTC", "022");
    // A change that reaches one arch only: an extra file in the s390x layer.
    fs::write(ws.join("images/note.txt"), "s390x only\n").expect("note");
    let rules = fs::read_to_string(ws.join("rules/private/images.bzl")).expect("bzl");
    let patched = rules.replace(
        "            layering_budget = layering_budget,\n        )\n        image =",
        "            layering_budget = layering_budget,\n        ) if arch != \"s390x\" else native.layer(\n            name = layer,\n            packages = \":\" + name + \"_apks\",\n            arch = arch,\n            users = users,\n            groups = groups,\n            files = {\"/etc/note\": \"note.txt\"},\n        )\n        image =",
    );
    assert_ne!(patched, rules, "the macro changed shape; update this test");
    fs::write(ws.join("rules/private/images.bzl"), patched).expect("bzl");
    let run = build_static(&ws, &cache, "UTC", "022");
    let ran: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(ran.len(), 3, "{}", run.stderr);
    assert!(ran[0].contains("Layer //images:static_s390x_layer"), "{ran:?}");
    assert!(ran[1].contains("OciImage //images:static_s390x"), "{ran:?}");
    assert!(ran[2].contains("OciIndex //images:static"), "{ran:?}");
}

/// An image from the real melange-built repository (both archs) is accepted by the real tools.
#[test]
#[ignore = "needs skopeo, umoci, oci-image-tool and jq (bash .ci/run installs them)"]
fn image_from_the_melange_repository_validates() {
    let validate = crate::harness::shared_tools(&["validate_oci.sh"], &["skopeo", "umoci", "oci-image-tool", "jq"]);
    let fx = crate::harness::fixtures();
    let url = format!("file://{}", fx.join("melange-rsa256").display());
    let ws = crate::harness::Workspace::with_apk_repository("melange", &url, &[fx.join("melange-rsa256/melange.rsa.pub")], "")
        .file(
            "img/BUILD",
            r#"
[layer(name = "layer_" + a, packages = ":apks", arch = a, users = ["nonroot:65532:65532:/home/nonroot:/sbin/nologin"]) for a in ["x86_64", "aarch64"]]

[oci_image(name = "image_" + a, layers = [":layer_" + a], user = "nonroot") for a in ["x86_64", "aarch64"]]

apk_fetch(name = "apks", repository = "melange", packages = ["replayout", "custom-ca-certs-1", "custom-ca-certs-2"], archs = ["x86_64", "aarch64"])

oci_index(name = "melange", images = [":image_x86_64", ":image_aarch64"], tag = "v1")
"#,
        );
    ws.run(&["lock"]).success();
    let run = ws.run(&["build", "//img:melange"]).success();
    assert!(run.stdout.contains("(OCI image index, tag `v1`)"), "{}", run.stdout);
    let layer = fs::read(ws.root().join("executor-out/img/layer_aarch64.tar.gz")).expect("layer");
    let listing = executor::layer::list_layer(&layer[..]).expect("listing");
    assert!(listing.contains(" usr/lib/apk/db/installed "), "{listing}");
    assert!(listing.contains(" home/nonroot/ "), "{listing}");
    let out = Command::new("bash")
        .arg(validate.join("validate_oci.sh"))
        .arg(ws.root().join("executor-out/img/melange"))
        .arg("v1")
        .output()
        .expect("validate");
    let run = to_run(out);
    assert_eq!(run.code, 0, "validate_oci.sh failed:\n{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("(2 platform(s))"), "{}", run.stdout);
}

/// `layer(files = …)` keeps the source file's executable bit, as Docker's `COPY` does: a 0755
/// binary lands 0755 without `modes`, `modes` still wins, and a `chmod` of the source is a
/// change that rebuilds the layer. Generated inputs keep `is_executable` the same way.
#[test]
fn layer_files_keep_the_executable_bit() {
    use std::os::unix::fs::PermissionsExt;
    let ws = crate::harness::Workspace::new()
        .file("app/hello.sh", "#!/bin/sh\necho hello\n")
        .file("app/notes.txt", "notes\n")
        .file(
            "app/BUILD",
            r##"write_file(name = "gen", out = "gen.sh", content = "#!/bin/sh\n", is_executable = True)

layer(
    name = "layer",
    files = {
        "/usr/bin/hello": "hello.sh",
        "/usr/bin/forced": "hello.sh",
        "/usr/bin/gen": ":gen",
        "/etc/notes": "notes.txt",
    },
    modes = {"/usr/bin/forced": "0700"},
)
"##,
        );
    let chmod =
        |mode| fs::set_permissions(ws.root().join("app/hello.sh"), fs::Permissions::from_mode(mode)).expect("chmod");
    let modes = |ws: &crate::harness::Workspace| {
        let layer = fs::read(ws.root().join("executor-out/app/layer.tar.gz")).expect("layer");
        let listing = executor::layer::list_layer(&layer[..]).expect("listing");
        let mode_of = |path: &str| {
            listing
                .lines()
                .find(|l| l.split(' ').nth(4) == Some(path))
                .and_then(|l| l.get(1..5))
                .unwrap_or_else(|| panic!("no `{path}` in\n{listing}"))
                .to_owned()
        };
        ["usr/bin/hello", "usr/bin/forced", "usr/bin/gen", "etc/notes"].map(mode_of)
    };
    chmod(0o755);
    ws.run(&["build", "//app:layer"]).success();
    assert_eq!(modes(&ws), ["0755", "0700", "0755", "0644"]);
    // Only the mode of the source changes: the layer is built again.
    chmod(0o644);
    let run = ws.run(&["build", "//app:layer"]).success();
    assert!(run.stderr.contains("1 action run"), "{}", run.stderr);
    assert_eq!(modes(&ws), ["0644", "0700", "0755", "0644"]);
}

/// `layer(base = …, users = …)` on top of an image extends the base's `/etc/passwd` and
/// `/etc/group` instead of hiding them in the union file system; without `base` the layer's
/// files hold only its own accounts.
#[test]
fn accounts_on_top_of_a_base_keep_the_base_accounts() {
    let ws = crate::harness::Workspace::new().file(
        "app/BUILD",
        r#"layer(
    name = "base_layer",
    arch = "x86_64",
    users = ["nonroot:65532:65532:/home/nonroot:/sbin/nologin"],
    groups = ["nonroot:65532"],
)

oci_image(name = "base", layers = [":base_layer"], sbom = False)

layer(name = "merged", base = ":base", users = ["app:1000:1000:/home/app:/sbin/nologin"], groups = ["app:1000"])

layer(name = "alone", arch = "x86_64", users = ["app:1000:1000:/home/app:/sbin/nologin"])

oci_image(name = "app", base = ":base", layers = [":merged"], user = "nonroot", sbom = False)
"#,
    );
    ws.run(&["build", "//app:app", "//app:alone"]).success();
    let read = |layer: &str, path: &str| {
        let file = ws.root().join(format!("executor-out/app/{layer}.tar.gz"));
        let found = executor::layer::read_layered_file(&[file], path, 1 << 20).expect("read").expect(path);
        String::from_utf8(found.bytes).expect("utf-8")
    };
    let passwd = read("merged", "etc/passwd");
    assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");
    assert!(passwd.contains("app:x:1000:1000:"), "{passwd}");
    let group = read("merged", "etc/group");
    assert!(group.contains("nonroot:x:65532:") && group.contains("app:x:1000:"), "{group}");
    let alone = read("alone", "etc/passwd");
    assert!(!alone.contains("nonroot"), "{alone}");
    // An image whose upper layer would hide the base's accounts is refused, saying what to do.
    ws.write(
        "app/BUILD",
        &format!(
            "{}\noci_image(name = \"hiding\", base = \":base\", layers = [\":alone\"], sbom = False)\n",
            ws.read("app/BUILD")
        ),
    );
    let run = ws.run(&["build", "//app:hiding"]).failure(1);
    assert!(
        run.stderr.contains(
            "layer 1 of `layers` has an `/etc/passwd` without `nonroot`, which the base or the layers below it have"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("fix: set `base` on that layer"), "{}", run.stderr);
    // A base that is not an image is refused at analysis.
    ws.write(
        "app/BUILD",
        "layer(name = \"l\", users = [\"a:1:1:/h:/s\"], base = \":l2\")\nlayer(name = \"l2\", arch = \"x86_64\")\n",
    );
    let run = ws.run(&["build", "//app:l"]).failure(1);
    assert!(run.stderr.contains("attribute `base`: `//app:l2` is not an `oci_image` target"), "{}", run.stderr);
}

/// `--platforms` builds only those platforms of `//images:static`: its index holds two
/// images, and nothing is fetched or built for the six others.
#[test]
fn platforms_build_only_those_slices() {
    let temp = tempfile::tempdir().expect("tempdir");
    let ws = temp.path().join("ws");
    copy_repository(&ws);
    let out = Command::new(executor_bin())
        .args(["build", "//images:static", "--platforms", "linux/amd64,aarch64"])
        .current_dir(&ws)
        .env("EXECUTOR_CACHE_DIR", temp.path().join("cache"))
        .output()
        .expect("run executor");
    let run = to_run(out).success();
    let ran: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with('[')).collect();
    assert!(ran.iter().all(|l| l.contains("/11] ")), "{}", run.stderr);
    for other in ["x86_layer", "armhf", "armv7", "ppc64le", "riscv64", "s390x"] {
        assert!(!run.stderr.contains(other), "{other} was built:\n{}", run.stderr);
    }
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(ws.join("executor-out/images/static/index.json")).expect("index.json"))
            .expect("json");
    let digest = index["manifests"][0]["digest"].as_str().expect("digest");
    let inner: serde_json::Value = serde_json::from_slice(
        &fs::read(ws.join("executor-out/images/static/blobs/sha256").join(digest.trim_start_matches("sha256:")))
            .expect("index blob"),
    )
    .expect("json");
    let platforms: Vec<&str> = inner["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .filter_map(|m| m["platform"]["architecture"].as_str())
        .collect();
    assert_eq!(platforms, ["amd64", "arm64"]);

    let out = Command::new(executor_bin())
        .args(["build", "//images:static", "--platforms", "linux/mips"])
        .current_dir(&ws)
        .env("EXECUTOR_CACHE_DIR", temp.path().join("cache"))
        .output()
        .expect("run executor");
    let run = to_run(out);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--platforms: unknown architecture `linux/mips`"), "{}", run.stderr);
}

/// `--stamp` annotates with the workspace status command's revision and source and
/// `SOURCE_DATE_EPOCH`; it re-runs only the image action, and an unstamped build afterwards
/// is the unstamped image again, from the cache.
#[test]
fn stamping_annotates_without_touching_unstamped_builds() {
    let temp = tempfile::tempdir().expect("tempdir");
    let ws = temp.path().join("ws");
    copy_repository(&ws);
    fs::write(
        ws.join("status.sh"),
        "#!/bin/sh\necho STABLE_GIT_COMMIT 0123abc\necho STABLE_SOURCE_URL https://example.invalid/src\n",
    )
    .expect("status.sh");
    let mut perms = fs::metadata(ws.join("status.sh")).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    fs::set_permissions(ws.join("status.sh"), perms).expect("chmod");
    let build = |extra: &[&str]| {
        let out = Command::new(executor_bin())
            .args(["build", "//images:static_x86_64"])
            .args(extra)
            .current_dir(&ws)
            .env("EXECUTOR_CACHE_DIR", temp.path().join("cache"))
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .expect("run executor");
        to_run(out)
    };
    let manifest = || -> serde_json::Value {
        let layout = ws.join("executor-out/images/static_x86_64");
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index.json")).expect("json");
        let digest = index["manifests"][0]["digest"].as_str().expect("digest").trim_start_matches("sha256:").to_owned();
        serde_json::from_slice(&fs::read(layout.join("blobs/sha256").join(digest)).expect("manifest")).expect("json")
    };
    let plain = build(&[]).success();
    let unstamped = manifest();
    let run = build(&["--stamp", "--workspace-status-command", "status.sh"]).success();
    assert!(run.stderr.contains("1 action run"), "only the image action re-runs:\n{}", run.stderr);
    let stamped = manifest();
    assert_eq!(stamped["annotations"]["org.opencontainers.image.revision"], "0123abc");
    assert_eq!(stamped["annotations"]["org.opencontainers.image.source"], "https://example.invalid/src");
    assert_eq!(stamped["annotations"]["org.opencontainers.image.created"], "2023-11-14T22:13:20Z");
    assert_ne!(stamped, unstamped);
    let again = build(&[]).success();
    assert!(again.stderr.contains("0 actions run"), "{}", again.stderr);
    assert_eq!(manifest(), unstamped);
    assert_eq!(again.stdout, plain.stdout);

    let run = build(&["--stamp", "--workspace-status-command", "missing.sh"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--workspace-status-command `missing.sh`: cannot run it"), "{}", run.stderr);
}

/// `layer(tars = [...])`: a prebuilt tarball's directories, files (modes and owners kept),
/// symlinks and hard links (as copies) land in the layer, with mtime 0 as `files` get; a
/// hostile path or a device is refused, naming the tarball and the entry.
#[test]
fn a_tarball_becomes_layer_contents() {
    use std::io::Write as _;
    let entry = |builder: &mut tar::Builder<Vec<u8>>,
                 path: &str,
                 kind: tar::EntryType,
                 mode: u32,
                 uid: u64,
                 data: &[u8],
                 link: Option<&str>| {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(uid);
        header.set_gid(uid);
        header.set_size(data.len() as u64);
        header.set_mtime(1_700_000_000);
        if let Some(link) = link {
            header.set_link_name(link).expect("link name");
        }
        header.set_path(path).expect("path");
        header.set_cksum();
        builder.append(&header, data).expect("append");
    };
    let mut builder = tar::Builder::new(Vec::new());
    entry(&mut builder, "./", tar::EntryType::Directory, 0o755, 0, b"", None);
    entry(&mut builder, "./opt/app/", tar::EntryType::Directory, 0o750, 1000, b"", None);
    entry(&mut builder, "./opt/app/run", tar::EntryType::Regular, 0o755, 1000, b"#!/bin/true\n", None);
    entry(&mut builder, "./opt/app/again", tar::EntryType::Link, 0o755, 1000, b"", Some("./opt/app/run"));
    entry(&mut builder, "./opt/app/latest", tar::EntryType::Symlink, 0o777, 0, b"", Some("run"));
    let tarball = builder.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tarball).expect("gzip");
    let ws = crate::harness::Workspace::new()
        .file("app/BUILD", "layer(name = \"layer\", tars = [\"app.tar.gz\"], epoch = 1)\n");
    fs::write(ws.root().join("app/app.tar.gz"), gz.finish().expect("gzip")).expect("write");
    ws.run(&["build", "//app:layer"]).success();
    let layer = fs::read(ws.root().join("executor-out/app/layer.tar.gz")).expect("layer");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer.as_slice()));
    let mut listing = Vec::new();
    for e in archive.entries().expect("entries") {
        let e = e.expect("entry");
        let h = e.header();
        listing.push(format!(
            "{} {:?} {:o} {}:{} {}",
            e.path().expect("path").display(),
            h.entry_type(),
            h.mode().expect("mode") & 0o7777,
            h.uid().expect("uid"),
            h.gid().expect("gid"),
            h.mtime().expect("mtime"),
        ));
    }
    assert_eq!(
        listing,
        [
            "opt/ Directory 755 0:0 0",
            "opt/app/ Directory 750 1000:1000 0",
            "opt/app/again Regular 755 1000:1000 0",
            "opt/app/latest Symlink 777 0:0 0",
            "opt/app/run Regular 755 1000:1000 0",
        ],
        "{listing:#?}"
    );

    // A path out of the root, then a device: refused with the tarball and the entry named.
    for (path, kind, why) in [
        ("../etc/passwd", tar::EntryType::Regular, "`/../etc/passwd`"),
        ("dev/sda", tar::EntryType::Block, "`/dev/sda` is a block device entry"),
    ] {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(0);
        // `set_path` refuses `..`; hostile tarballs write the name field directly.
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        builder.append(&header, &b""[..]).expect("append");
        fs::write(ws.root().join("app/app.tar.gz"), builder.into_inner().expect("tar")).expect("write");
        let run = ws.run(&["build", "//app:layer"]).failure(1);
        assert!(
            run.stderr.contains("layer tarball `//app:app.tar.gz`: ") && run.stderr.contains(why),
            "{why}:\n{}",
            run.stderr
        );
    }
}

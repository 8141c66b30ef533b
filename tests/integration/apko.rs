//! apko side by side: the same images built by apko (the peer users know) and by executor,
//! compared where users and scanners look: the root file tree (path, type, mode, owner, size,
//! sha256, link target), the installed database field by field, the image config and the
//! SBOM's package list.
//!
//! Every difference found must be listed in `docs/apko-differences.md` (its block of expected
//! differences), and every line listed there must still be found: the document and the two
//! tools cannot drift apart unnoticed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};

use crate::harness::{fixtures, test_signing_key, to_run, Workspace};

/// One image built by both tools.
struct Case {
    name: &'static str,
    /// The repository root (`<root>/<arch>/APKINDEX.tar.gz`).
    repository: PathBuf,
    keys: Vec<PathBuf>,
    packages: Vec<&'static str>,
    archs: Vec<&'static str>,
    /// `(name, uid, gid, home)` accounts, each with its own group.
    users: Vec<(&'static str, u32, u32, &'static str)>,
    entrypoint: &'static str,
    user: &'static str,
    workdir: &'static str,
}

/// A file tree entry as compared: type, mode, owner, size, sha256 or link target.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    kind: String,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    /// sha256 of a file's content, a symlink's or hard link's target, a device's numbers.
    what: String,
}

/// One built image, as compared.
struct Built {
    tree: BTreeMap<String, Node>,
    /// Per package name, its record's fields (`a:` and `M:` modes as numbers).
    db: BTreeMap<String, BTreeMap<char, Vec<String>>>,
    config: serde_json::Value,
    sbom: BTreeSet<(String, String)>,
}

#[test]
#[ignore = "needs apko (bash .ci/install_apko.sh; .ci/run installs it)"]
fn apko_and_executor_build_the_same_images_up_to_the_documented_differences() {
    crate::harness::require(&["apko"]);
    let fx = fixtures();
    let temp = tempfile::tempdir().expect("tempdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cases = [
        Case {
            name: "melange-rsa256",
            repository: fx.join("melange-rsa256"),
            keys: vec![fx.join("melange-rsa256/melange.rsa.pub")],
            packages: vec!["replayout", "custom-ca-certs-1"],
            archs: vec!["x86_64", "aarch64"],
            users: vec![],
            entrypoint: "/bin/true",
            user: "0",
            workdir: "/srv",
        },
        Case {
            name: "wolfi-hello",
            repository: wolfi_hello_repository(temp.path()),
            keys: vec![fx.join("wolfi/keys/wolfi-signing.rsa.pub"), temp.path().join("executor-test-key.rsa.pub")],
            packages: vec!["hello-wolfi"],
            archs: vec!["aarch64"],
            users: vec![("nonroot", 65532, 65532, "/home/nonroot")],
            entrypoint: "/usr/bin/hello",
            user: "65532",
            workdir: "/",
        },
        Case {
            name: "static",
            repository: root.join("third_party/apk-repository"),
            keys: vec![root.join("third_party/keys/executor-test-key.rsa.pub")],
            packages: vec!["baselayout-data", "ca-certificates-bundle", "tzdata"],
            archs: vec!["x86_64", "aarch64"],
            users: vec![("nonroot", 65532, 65532, "/home/nonroot")],
            entrypoint: "/usr/bin/true",
            user: "65532",
            workdir: "/",
        },
    ];
    let mut found = BTreeSet::new();
    for case in &cases {
        let dir = temp.path().join(case.name);
        let ours = build_with_executor(case);
        let theirs = build_with_apko(case, &dir.join("apko"));
        for arch in &case.archs {
            found.extend(compare(&ours[*arch], &theirs[*arch]));
        }
    }
    let documented = documented_differences(&root.join("docs/apko-differences.md"));
    let unexplained: Vec<&String> = found.difference(&documented).collect();
    let gone: Vec<&String> = documented.difference(&found).collect();
    assert!(
        unexplained.is_empty() && gone.is_empty(),
        "apko and executor differ where docs/apko-differences.md does not say:\n{}\n\n\
         docs/apko-differences.md lists differences no longer found (remove them):\n{}",
        unexplained.iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n"),
        gone.iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n"),
    );
}

/// A repository for the real Wolfi `hello-wolfi` package (aarch64, signed by Wolfi's key),
/// with a stand-in package providing the C library it depends on, indexed and signed with the
/// test key (whose public half is written beside it).
fn wolfi_hello_repository(temp: &Path) -> PathBuf {
    use executor_testkit::apk::{index_entry, write_index, write_package, PackageFile, PackageSpec};
    let fx = fixtures();
    let key = test_signing_key();
    fs::write(temp.join("executor-test-key.rsa.pub"), key.public_key_pem()).expect("write key");
    let repo = temp.join("wolfi-repo");
    let arch_dir = repo.join("aarch64");
    fs::create_dir_all(&arch_dir).expect("mkdir");
    let hello = fs::read(fx.join("wolfi/x86_64/hello-wolfi-2.12-r1.apk")).expect("hello-wolfi");
    fs::write(arch_dir.join("hello-wolfi-2.12-r1.apk"), &hello).expect("write");
    let mut libc = PackageSpec::new(
        executor_apk::PackageName::new("libc-stub").expect("name"),
        executor_apk::Version::parse("1.0-r0").expect("version"),
        "aarch64",
    );
    libc.license = "MIT".into();
    libc.description = "stands in for glibc".into();
    libc.build_time = 1_700_000_000;
    libc.provides = ["so:libc.so.6=6", "so:ld-linux-aarch64.so.1=1"]
        .iter()
        .map(|p| executor_apk::Provide::parse(p).expect("provide"))
        .collect();
    libc.files = vec![PackageFile::file("usr/lib/libc.so.6", b"stub\n".to_vec())];
    let libc = write_package(&libc, Some(&key)).expect("write libc-stub");
    fs::write(arch_dir.join("libc-stub-1.0-r0.apk"), &libc).expect("write");
    let entries = vec![index_entry(&hello, "hello-wolfi").expect("entry"), index_entry(&libc, "libc").expect("entry")];
    let index = write_index(&entries, "wolfi-hello", Some(&key)).expect("index");
    fs::write(arch_dir.join("APKINDEX.tar.gz"), index).expect("write index");
    repo
}

/// Locks and builds the case with executor; the images per arch.
fn build_with_executor(case: &Case) -> BTreeMap<String, Built> {
    let ws = Workspace::new();
    let mut keys = Vec::new();
    for key in &case.keys {
        let name = key.file_name().and_then(|n| n.to_str()).expect("key name");
        ws.write(&format!("keys/{name}"), &fs::read_to_string(key).expect("read key"));
        keys.push(format!("\"//keys:{name}\""));
    }
    ws.write(
        "WORKSPACE",
        &format!(
            "apk_repository(name = \"r\", url = \"file://{}\", keys = [{}])\n",
            case.repository.display(),
            keys.join(", ")
        ),
    );
    let quoted = |items: &[&str]| items.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(", ");
    let users: Vec<String> =
        case.users.iter().map(|(n, u, g, h)| format!("\"{n}:{u}:{g}:{h}:/sbin/nologin\"")).collect();
    let groups: Vec<String> = case.users.iter().map(|(n, _, g, _)| format!("\"{n}:{g}\"")).collect();
    let mut build = format!(
        "apk_fetch(name = \"apks\", repository = \"r\", packages = [{}], archs = [{}])\n",
        quoted(&case.packages),
        quoted(&case.archs)
    );
    for arch in &case.archs {
        build.push_str(&format!(
            "layer(name = \"layer_{arch}\", packages = \":apks\", arch = \"{arch}\", users = [{}], groups = [{}])\n\
             oci_image(name = \"image_{arch}\", layers = [\":layer_{arch}\"], arch = \"{arch}\", \
             entrypoint = [\"{}\"], env = {{\"FOO\": \"bar\"}}, user = \"{}\", workdir = \"{}\")\n",
            users.join(", "),
            groups.join(", "),
            case.entrypoint,
            case.user,
            case.workdir,
        ));
    }
    ws.write("BUILD", &build);
    let run = ws.run(&["lock"]);
    assert_eq!(run.code, 0, "{}: executor lock:\n{}", case.name, run.stderr);
    let run = ws.run(&["build", "//..."]);
    assert_eq!(run.code, 0, "{}: executor build:\n{}", case.name, run.stderr);
    let mut images = BTreeMap::new();
    for arch in &case.archs {
        let layout = ws.root().join(format!("executor-out/image_{arch}"));
        let index = read_json(&layout.join("index.json"));
        let manifest = read_json(&blob(&layout, index["manifests"][0]["digest"].as_str().expect("digest")));
        let config = read_json(&blob(&layout, manifest["config"]["digest"].as_str().expect("config")));
        let layers = manifest["layers"].as_array().expect("layers");
        assert_eq!(layers.len(), 1, "{}: one layer", case.name);
        let layer = fs::read(blob(&layout, layers[0]["digest"].as_str().expect("layer"))).expect("layer");
        let sbom = read_json(&ws.root().join(format!("executor-out/image_{arch}.spdx.json")));
        images.insert((*arch).to_owned(), built(&layer, config, &sbom));
    }
    images
}

/// Builds the case with apko; the images per arch.
fn build_with_apko(case: &Case, dir: &Path) -> BTreeMap<String, Built> {
    fs::create_dir_all(dir).expect("mkdir");
    let list = |items: Vec<String>| format!("[{}]", items.join(", "));
    let mut accounts = format!("accounts:\n  run-as: \"{}\"\n", case.user);
    if !case.users.is_empty() {
        accounts.push_str("  users:\n");
        for (name, uid, gid, home) in &case.users {
            accounts.push_str(&format!(
                "    - username: {name}\n      uid: {uid}\n      gid: {gid}\n      homedir: {home}\n      shell: /sbin/nologin\n"
            ));
        }
        accounts.push_str("  groups:\n");
        for (name, _, gid, _) in &case.users {
            accounts.push_str(&format!("    - groupname: {name}\n      gid: {gid}\n"));
        }
    }
    let config = format!(
        "contents:\n  keyring: {}\n  repositories: [{}]\n  packages: {}\n\
         entrypoint:\n  command: {}\nenvironment:\n  FOO: bar\nwork-dir: {}\n{accounts}archs: {}\n",
        list(case.keys.iter().map(|k| k.display().to_string()).collect()),
        case.repository.display(),
        list(case.packages.iter().map(|p| (*p).to_owned()).collect()),
        case.entrypoint,
        case.workdir,
        list(case.archs.iter().map(|a| (*a).to_owned()).collect()),
    );
    fs::write(dir.join("apko.yaml"), config).expect("write apko.yaml");
    let out = Command::new("apko")
        .args(["build", "apko.yaml", "test:apko", "image.tar", "--arch", &case.archs.join(",")])
        .args(["--cache-dir", "cache", "--sbom-path", "."])
        .current_dir(dir)
        .env("HOME", dir)
        .output()
        .expect("run apko");
    let run = to_run(out);
    assert_eq!(run.code, 0, "{}: apko build:\n{}", case.name, run.stderr);
    let image = dir.join("image");
    fs::create_dir_all(&image).expect("mkdir");
    let status = Command::new("tar").arg("-xf").arg(dir.join("image.tar")).arg("-C").arg(&image).status();
    assert!(status.expect("tar").success());
    let manifest = read_json(&image.join("manifest.json"));
    let mut images = BTreeMap::new();
    for entry in manifest.as_array().expect("manifest.json") {
        let tag = entry["RepoTags"][0].as_str().expect("tag");
        let arch = match tag.rsplit('-').next() {
            Some("amd64") => "x86_64",
            Some("arm64") => "aarch64",
            other => panic!("unexpected apko tag {tag} ({other:?})"),
        };
        let config = read_json(&image.join(entry["Config"].as_str().expect("config")));
        let layers = entry["Layers"].as_array().expect("layers");
        assert_eq!(layers.len(), 1);
        let layer = fs::read(image.join(layers[0].as_str().expect("layer"))).expect("layer");
        let sbom = read_json(&dir.join(format!("sbom-{arch}.spdx.json")));
        images.insert(arch.to_owned(), built(&layer, config, &sbom));
    }
    images
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
}

/// Reads a gzip layer, its installed database, its config and its SBOM's packages.
fn built(layer: &[u8], config: serde_json::Value, sbom: &serde_json::Value) -> Built {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    let mut tree = BTreeMap::new();
    let mut db_text = String::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let path = entry.path().expect("path").to_string_lossy().trim_end_matches('/').to_owned();
        let header = entry.header().clone();
        let (kind, what) = match header.entry_type() {
            tar::EntryType::Regular => {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).expect("read");
                if path == "usr/lib/apk/db/installed" {
                    db_text = String::from_utf8(bytes.clone()).expect("utf-8");
                }
                ("file", hex::encode(Sha256::digest(&bytes)))
            }
            tar::EntryType::Directory => ("directory", String::new()),
            tar::EntryType::Symlink => {
                ("symlink", entry.link_name().expect("link").expect("target").to_string_lossy().into_owned())
            }
            tar::EntryType::Link => {
                ("hard link", entry.link_name().expect("link").expect("target").to_string_lossy().into_owned())
            }
            tar::EntryType::Char => {
                ("character device", format!("{:?}", (header.device_major(), header.device_minor())))
            }
            other => ("other", format!("{other:?}")),
        };
        let node = Node {
            kind: kind.to_owned(),
            mode: header.mode().expect("mode") & 0o7777,
            uid: header.uid().expect("uid"),
            gid: header.gid().expect("gid"),
            size: header.size().expect("size"),
            what,
        };
        tree.insert(path, node);
    }
    let sbom = sbom["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| !matches!(p["primaryPackagePurpose"].as_str(), Some("CONTAINER" | "OPERATING_SYSTEM")))
        .filter_map(|p| Some((p["name"].as_str()?.to_owned(), p["versionInfo"].as_str().unwrap_or("").to_owned())))
        .collect();
    Built { tree, db: parse_db(&db_text), config, sbom }
}

/// The installed database per package: each field's values in order; `a:` and `M:` as
/// `uid:gid:mode(octal, no padding)[:xattrs]` so that `0640` and `640` compare equal.
fn parse_db(text: &str) -> BTreeMap<String, BTreeMap<char, Vec<String>>> {
    let mut db = BTreeMap::new();
    for record in text.split("\n\n").filter(|r| !r.trim().is_empty()) {
        let mut fields: BTreeMap<char, Vec<String>> = BTreeMap::new();
        for line in record.lines() {
            let mut chars = line.chars();
            let (Some(key), Some(':')) = (chars.next(), chars.next()) else { continue };
            let mut value = chars.as_str().to_owned();
            if key == 'a' || key == 'M' {
                let mut parts: Vec<String> = value.split(':').map(str::to_owned).collect();
                if let Some(mode) = parts.get_mut(2) {
                    *mode = format!("{:o}", u32::from_str_radix(mode, 8).expect("octal mode"));
                }
                value = parts.join(":");
            }
            fields.entry(key).or_default().push(value);
        }
        let name = fields.get(&'P').and_then(|p| p.first()).cloned().expect("P: in every record");
        db.insert(name, fields);
    }
    db
}

/// The differences between executor's image and apko's, one line each, without the case or
/// arch (the same difference in several images is one line).
fn compare(ours: &Built, theirs: &Built) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let describe = |n: &Node| format!("{} {:o} {}:{}", n.kind, n.mode, n.uid, n.gid);
    for path in ours.tree.keys().chain(theirs.tree.keys()).collect::<BTreeSet<_>>() {
        match (ours.tree.get(path), theirs.tree.get(path)) {
            (Some(a), None) => {
                out.insert(format!("tree /{path}: only executor has it ({})", describe(a)));
            }
            (None, Some(b)) => {
                out.insert(format!("tree /{path}: only apko has it ({})", describe(b)));
            }
            (Some(a), Some(b)) if a != b => {
                let mut what = Vec::new();
                if a.kind != b.kind {
                    what.push(format!("type executor={} apko={}", a.kind, b.kind));
                }
                if a.mode != b.mode {
                    what.push(format!("mode executor={:o} apko={:o}", a.mode, b.mode));
                }
                if (a.uid, a.gid) != (b.uid, b.gid) {
                    what.push(format!("owner executor={}:{} apko={}:{}", a.uid, a.gid, b.uid, b.gid));
                }
                if a.size != b.size || a.what != b.what {
                    what.push("content".to_owned());
                }
                out.insert(format!("tree /{path}: {}", what.join(", ")));
            }
            _ => {}
        }
    }
    for name in ours.db.keys().chain(theirs.db.keys()).collect::<BTreeSet<_>>() {
        let (Some(a), Some(b)) = (ours.db.get(name), theirs.db.get(name)) else {
            out.insert(format!(
                "installed db: package {name} only in {}",
                if ours.db.contains_key(name) { "executor" } else { "apko" }
            ));
            continue;
        };
        for key in a.keys().chain(b.keys()).collect::<BTreeSet<_>>() {
            match (a.get(key), b.get(key)) {
                (None, Some(v)) if v.iter().all(|v| v.is_empty() || v == "0" || v == "[]") => {
                    out.insert(format!("installed db: apko writes `{key}:{}` where executor writes none", v[0]));
                }
                (x, y) if x != y => {
                    out.insert(format!("installed db: {name} `{key}:` executor={x:?} apko={y:?}"));
                }
                _ => {}
            }
        }
    }
    for field in ["Entrypoint", "Cmd", "Env", "User", "WorkingDir"] {
        let (a, b) = (&ours.config["config"][field], &theirs.config["config"][field]);
        if a != b {
            out.insert(format!("config {field}: executor={a} apko={b}"));
        }
    }
    // Labels by key: a value that follows the packages' build time would make one line per
    // image.
    let labels = |c: &serde_json::Value| c["config"]["Labels"].as_object().cloned().unwrap_or_default();
    let (a, b) = (labels(&ours.config), labels(&theirs.config));
    for key in a.keys().chain(b.keys()).collect::<BTreeSet<_>>() {
        match (a.get(key), b.get(key)) {
            (Some(_), None) => out.insert(format!("config label {key}: only executor sets it")),
            (None, Some(_)) => out.insert(format!("config label {key}: only apko sets it")),
            (x, y) if x != y => out.insert(format!("config label {key}: executor={x:?} apko={y:?}")),
            _ => false,
        };
    }
    for p in ours.sbom.difference(&theirs.sbom) {
        out.insert(format!("sbom: package {} {} only in executor's", p.0, p.1));
    }
    for p in theirs.sbom.difference(&ours.sbom) {
        out.insert(format!("sbom: package {} {} only in apko's", p.0, p.1));
    }
    out
}

/// The lines of the ```` ```differences ```` block of `docs/apko-differences.md`.
fn documented_differences(doc: &Path) -> BTreeSet<String> {
    let text = fs::read_to_string(doc).unwrap_or_else(|e| panic!("{}: {e}", doc.display()));
    let start = text.find("```differences\n").expect("a ```differences block in docs/apko-differences.md");
    let block = &text[start + "```differences\n".len()..];
    let end = block.find("```").expect("the block ends");
    block[..end].lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

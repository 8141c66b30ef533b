//! What layering by origin saves in a registry (issue #13, item 5). Prints figures; not a test.
//!
//! ```sh
//! bash bench/layering.sh         # builds the release binary, then runs this
//! cargo run --release -p executor --example layering_bench -- target/release/executor [RUNS] [BUDGET]
//! ```
//!
//! A corpus of 10 images with overlapping package sets (static, glibc-dynamic, cc, busybox,
//! openssl, python, node, jre, python-dev, node-dev), built from one signed x86_64
//! repository of 18 Wolfi-like packages of 13 origins (sizes after Wolfi's: glibc 6 MiB,
//! libstdc++ 2.5 MiB, python 16 MiB, nodejs 14 MiB, openjdk 24 MiB, ...; half of each file
//! pseudo-random bytes, half words, so about as compressible as binaries and data). Each image
//! is a `distroless_image` built twice: one layer, and `layering = {"strategy": "origin",
//! "budget": BUDGET}` (default 6). Each set of 10 is pushed to its own empty
//! `docker-registry` (../shared/tools/registry_up.sh) and the registry's blob storage is
//! measured (`blobs/` bytes on disk, every blob once: layers, configs, manifests, SBOMs), with
//! the unique layer bytes of the 10 layouts as a cross-check. Also: a cold build of the 10
//! images in each mode (median of RUNS, default 3).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[path = "common/mod.rs"]
mod common;
use common::{check, machine, median, xorshift};

use executor::apk::{PackageName, Version};
use executor_testkit::apk::{index_entry, write_index, write_package, PackageFile, PackageSpec, SigningKey};

/// (name, origin, size in KiB, depends).
const PACKAGES: &[(&str, &str, usize)] = &[
    ("wolfi-baselayout", "wolfi-baselayout", 24),
    ("ca-certificates-bundle", "ca-certificates", 220),
    ("tzdata", "tzdata", 1400),
    ("glibc", "glibc", 6200),
    ("ld-linux", "glibc", 220),
    ("glibc-locale-posix", "glibc", 180),
    ("libgcc", "gcc", 190),
    ("libstdc++", "gcc", 2500),
    ("libcrypto3", "openssl", 4600),
    ("libssl3", "openssl", 700),
    ("zlib", "zlib", 110),
    ("busybox", "busybox", 1000),
    ("python-3.12", "python-3.12", 16000),
    ("python-3.12-base", "python-3.12", 4000),
    ("nodejs", "nodejs-20", 14000),
    ("openjdk-17-jre", "openjdk-17", 24000),
    ("libffi", "libffi", 60),
    ("sqlite-libs", "sqlite", 1300),
];

/// The package sets the corpus is made of, each on the one before it.
const STATIC: &[&str] = &["wolfi-baselayout", "ca-certificates-bundle", "tzdata"];
const GLIBC: &[&str] = &["glibc", "ld-linux", "glibc-locale-posix", "libgcc"];
const OPENSSL: &[&str] = &["libcrypto3", "libssl3", "zlib"];
const PYTHON: &[&str] = &["libffi", "sqlite-libs", "python-3.12-base", "python-3.12"];

/// The corpus: image name and packages, composed from the sets above.
fn images() -> Vec<(&'static str, Vec<&'static str>)> {
    let set = |parts: &[&[&'static str]]| parts.concat();
    vec![
        ("static", set(&[STATIC])),
        ("glibc_dynamic", set(&[STATIC, GLIBC])),
        ("cc", set(&[STATIC, GLIBC, &["libstdc++"]])),
        ("busybox", set(&[STATIC, GLIBC, &["busybox"]])),
        ("openssl", set(&[STATIC, GLIBC, OPENSSL])),
        ("python", set(&[STATIC, GLIBC, OPENSSL, PYTHON])),
        ("node", set(&[STATIC, GLIBC, &["libstdc++"], OPENSSL, &["nodejs"]])),
        ("jre", set(&[STATIC, GLIBC, &["zlib", "openjdk-17-jre"]])),
        ("python_dev", set(&[STATIC, GLIBC, OPENSSL, PYTHON, &["busybox"]])),
        ("node_dev", set(&[STATIC, GLIBC, &["libstdc++"], OPENSSL, &["nodejs", "busybox"]])),
    ]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let exe = PathBuf::from(args.next().expect("usage: layering_bench <executor binary> [RUNS] [BUDGET]"));
    let exe = std::fs::canonicalize(&exe).expect("the executor binary");
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let budget: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(6);
    let repo_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("repository root");
    let base = std::env::var_os("BENCH_TMPDIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let work = tempfile::Builder::new().prefix("layering-bench-").tempdir_in(&base).expect("temp dir");
    let ws = work.path().join("ws");
    make_workspace(&repo_root, &ws, budget);
    println!("{}", machine());
    println!(
        "corpus: {} images, {} packages of {} origins, layering budget {budget}",
        images().len(),
        PACKAGES.len(),
        origins()
    );
    check(Command::new(&exe).arg("lock").current_dir(&ws).env("EXECUTOR_CACHE_DIR", work.path().join("lock-cache")));

    for (mode, suffix) in [("one layer", "_single"), ("layering by origin", "_layered")] {
        let targets: Vec<String> = images().iter().map(|(name, _)| format!("//:{name}{suffix}_x86_64")).collect();
        let mut times = Vec::new();
        for run in 0..runs {
            let _ = std::fs::remove_dir_all(ws.join("executor-out"));
            let cache = work.path().join(format!("cache{suffix}-{run}"));
            let start = Instant::now();
            check(Command::new(&exe).arg("build").args(&targets).current_dir(&ws).env("EXECUTOR_CACHE_DIR", &cache));
            times.push(start.elapsed().as_secs_f64());
            let _ = std::fs::remove_dir_all(&cache);
        }
        let median = median(&mut times);
        check(
            Command::new(&exe)
                .arg("build")
                .args(&targets)
                .current_dir(&ws)
                .env("EXECUTOR_CACHE_DIR", work.path().join("cache")),
        );
        // Every layer of the 10 layouts, each digest once: what a registry must store of them.
        let mut unique = std::collections::BTreeMap::new();
        let mut layers = 0;
        let mut per_image = 0u64;
        for (name, _) in images() {
            let layout = ws.join(format!("executor-out/{name}{suffix}_x86_64"));
            for (digest, size) in layout_layers(&layout) {
                layers += 1;
                per_image += size;
                unique.insert(digest, size);
            }
        }
        let unique_bytes: u64 = unique.values().sum();
        let stored = push_all(&exe, &repo_root, &ws, work.path(), suffix);
        println!(
            "{mode:>20}: {layers:3} layers in all, {:3} distinct; layer bytes {:>11} summed over images, {:>11} distinct; registry blob storage {:>11} bytes; cold build of the 10 images {median:.2} s",
            unique.len(),
            per_image,
            unique_bytes,
            stored
        );
    }
    shallow_pulls(&exe, &repo_root, &ws, work.path(), runs);
}

/// Figure 2: an app on a pulled base, built shallow (manifest and config of the base) against
/// a full pull of the base (`skopeo copy` to an OCI layout: manifest, config, layers): bytes
/// received and wall time (median of RUNS, each with an empty cache).
fn shallow_pulls(exe: &Path, repo_root: &Path, ws: &Path, work: &Path, runs: usize) {
    let registry = Registry::start(repo_root, &work.join("registry-pull"));
    let port = registry.port;
    for base in ["static_single", "python_single", "jre_single"] {
        let repo = format!("127.0.0.1:{port}/corpus/{}", base.replace('_', "-"));
        let out = Command::new(exe)
            .args(["push", &format!("//:{base}_x86_64"), "--repository", &repo])
            .current_dir(ws)
            .env("EXECUTOR_CACHE_DIR", work.join("cache"))
            .output()
            .expect("push");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let pushed = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let digest = pushed.rsplit_once('@').expect("digest").1.to_owned();
        let app = work.join(format!("app-{base}"));
        std::fs::create_dir_all(&app).expect("mkdir");
        std::fs::write(
            app.join("WORKSPACE"),
            format!(
                "oci_pull(name = \"base\", image = \"{repo}\", digest = \"{digest}\", platforms = [\"linux/amd64\"])\n"
            ),
        )
        .expect("WORKSPACE");
        std::fs::write(app.join("hello.txt"), "hello\n").expect("file");
        std::fs::write(
            app.join("BUILD"),
            "layer(name = \"l\", files = {\"/hello.txt\": \"hello.txt\"})\noci_image(name = \"app\", base = \"@base//:linux_amd64\", layers = [\":l\"], user = \"65532\")\n",
        )
        .expect("BUILD");
        let (mut shallow_times, mut full_times) = (Vec::new(), Vec::new());
        let (mut shallow_bytes, mut full_bytes) = (0, 0);
        for run in 0..runs {
            let _ = std::fs::remove_dir_all(app.join("executor-out"));
            let cache = work.join(format!("pull-cache-{run}"));
            let start = Instant::now();
            check(Command::new(exe).args(["build", "//:app"]).current_dir(&app).env("EXECUTOR_CACHE_DIR", &cache));
            shallow_times.push(start.elapsed().as_secs_f64());
            shallow_bytes = dir_bytes(&app.join("executor-out/@base/linux_amd64/blobs"));
            let _ = std::fs::remove_dir_all(&cache);
            let copy = work.join(format!("full-{run}"));
            let start = Instant::now();
            check(Command::new("skopeo").args([
                "copy",
                "--quiet",
                "--src-tls-verify=false",
                &format!("docker://{repo}@{digest}"),
                &format!("oci:{}:latest", copy.display()),
            ]));
            full_times.push(start.elapsed().as_secs_f64());
            full_bytes = dir_bytes(&copy.join("blobs"));
            let _ = std::fs::remove_dir_all(&copy);
        }
        println!(
            "pulled base {base:>14}: shallow build of an app on it receives {shallow_bytes:>9} bytes in {:.2} s (build included); a full pull (skopeo copy) {full_bytes:>9} bytes in {:.2} s",
            median(&mut shallow_times),
            median(&mut full_times)
        );
    }
}

/// A docker-registry on a free loopback port with its storage in `state`
/// (../shared/tools/registry_up.sh), stopped when dropped.
struct Registry {
    port: u16,
    state: PathBuf,
    tools: PathBuf,
}

impl Registry {
    fn start(repo_root: &Path, state: &Path) -> Registry {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        let tools = repo_root.join("../shared/tools");
        check(Command::new("bash").arg(tools.join("registry_up.sh")).arg(port.to_string()).arg(state));
        Registry { port, state: state.to_owned(), tools }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(self.tools.join("registry_down.sh"))
            .arg(self.port.to_string())
            .arg(&self.state)
            .output();
    }
}

/// Pushes the 10 images of one mode to a fresh registry; the bytes of its blob storage.
fn push_all(exe: &Path, repo_root: &Path, ws: &Path, work: &Path, suffix: &str) -> u64 {
    let registry = Registry::start(repo_root, &work.join(format!("registry{suffix}")));
    let port = registry.port;
    for (name, _) in images() {
        let repo = format!("127.0.0.1:{port}/corpus/{}", name.replace('_', "-"));
        check(
            Command::new(exe)
                .args(["push", &format!("//:{name}{suffix}_x86_64"), "--repository", &repo])
                .current_dir(ws)
                .env("EXECUTOR_CACHE_DIR", work.join("cache")),
        );
    }
    dir_bytes(&registry.state.join("storage/docker/registry/v2/blobs"))
}

/// Bytes of the regular files below `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let meta = e.metadata().expect("meta");
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

/// (digest, size) of each layer of the single-image layout `dir`.
fn layout_layers(dir: &Path) -> Vec<(String, u64)> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index.json")).expect("json");
    let digest = index["manifests"][0]["digest"].as_str().expect("digest");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("blobs/sha256").join(&digest["sha256:".len()..])).expect("manifest"),
    )
    .expect("json");
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| (l["digest"].as_str().expect("d").to_owned(), l["size"].as_u64().expect("size")))
        .collect()
}

fn origins() -> usize {
    PACKAGES.iter().map(|(_, o, _)| *o).collect::<std::collections::BTreeSet<_>>().len()
}

/// The workspace: the signed repository, `WORKSPACE` and a `BUILD` with each image twice.
fn make_workspace(repo_root: &Path, ws: &Path, budget: usize) {
    let key_path = repo_root.join("third_party/keys/executor-test-key.rsa");
    let key = SigningKey::read_file(&key_path).expect("test key");
    let dir = ws.join("repo/x86_64");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut entries = Vec::new();
    for (n, (name, origin, kib)) in PACKAGES.iter().enumerate() {
        let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (n as u64 + 1);
        let share = format!("usr/share/{name}");
        let mut files = vec![
            PackageFile::dir("usr"),
            PackageFile::dir("usr/lib"),
            PackageFile::dir("usr/share"),
            PackageFile::dir(&share),
        ];
        // Files of up to 1 MiB: half pseudo-random bytes (like code), half words (like data).
        let mut left = kib * 1024;
        let mut f = 0;
        while left > 0 {
            let size = left.min(1 << 20);
            let path = if f % 2 == 0 { format!("usr/lib/{name}-{f}.so") } else { format!("{share}/data-{f}.txt") };
            let content = if f % 2 == 0 { random(&mut rng, size) } else { words(&mut rng, size) };
            files.push(PackageFile::file(path, content));
            left -= size;
            f += 1;
        }
        let mut spec = PackageSpec::new(
            PackageName::new(name).expect("name"),
            Version::parse("1.0-r0").expect("version"),
            "x86_64",
        );
        spec.origin = Some((*origin).to_owned());
        spec.license = "MIT".into();
        spec.build_time = 1_700_000_000;
        spec.files = files;
        let bytes = write_package(&spec, Some(&key)).expect("package");
        let file = format!("{name}-1.0-r0.apk");
        std::fs::write(dir.join(&file), &bytes).expect("write apk");
        entries.push(index_entry(&bytes, &file).expect("index entry"));
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    std::fs::write(dir.join("APKINDEX.tar.gz"), write_index(&entries, "corpus", Some(&key)).expect("index"))
        .expect("index");
    std::fs::create_dir_all(ws.join("keys")).expect("mkdir keys");
    std::fs::write(ws.join("keys/BUILD"), "").expect("keys/BUILD");
    std::fs::copy(key_path.with_extension("rsa.pub"), ws.join("keys/executor-test-key.rsa.pub")).expect("copy key");
    std::fs::write(
        ws.join("WORKSPACE"),
        format!(
            "apk_repository(name = \"corpus\", url = \"file://repo\", keys = [\"//keys:executor-test-key.rsa.pub\"])\nlocal_repository(name = \"executor\", path = \"{}\")\n",
            repo_root.display()
        ),
    )
    .expect("WORKSPACE");
    let mut build = String::from("load(\"@executor//rules:defs.bzl\", \"distroless_image\")\n\n");
    for (name, packages) in images() {
        let list: Vec<String> = packages.iter().map(|p| format!("\"{p}\"")).collect();
        for (suffix, layering) in [
            ("_single", "None".to_owned()),
            ("_layered", format!("{{\"strategy\": \"origin\", \"budget\": {budget}}}")),
        ] {
            build.push_str(&format!(
                "distroless_image(\n    name = \"{name}{suffix}\",\n    repository = \"corpus\",\n    packages = [{}],\n    archs = [\"x86_64\"],\n    users = [\"nonroot:65532:65532:/home/nonroot:/sbin/nologin\"],\n    groups = [\"nonroot:65532\"],\n    layering = {layering},\n)\n",
                list.join(", ")
            ));
        }
    }
    std::fs::write(ws.join("BUILD"), build).expect("BUILD");
}

fn random(rng: &mut u64, size: usize) -> Vec<u8> {
    (0..size).map(|_| (xorshift(rng) >> 24) as u8).collect()
}

fn words(rng: &mut u64, size: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "lorem", "ipsum", "dolor", "sit", "amet", "config", "value", "path", "data", "index", "table", "entry", "zone",
        "time", "cert", "key",
    ];
    let mut out = Vec::with_capacity(size + 16);
    while out.len() < size {
        out.extend_from_slice(WORDS[(xorshift(rng) % 16) as usize].as_bytes());
        out.push(if xorshift(rng).is_multiple_of(9) { b'\n' } else { b' ' });
    }
    out.truncate(size);
    out
}

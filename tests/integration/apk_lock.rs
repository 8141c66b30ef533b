//! `executor lock` and `apk_fetch` against the real fixture repositories over `file://`.

use std::fs;

use crate::harness::{fixtures, Workspace};

const TARGET: &str = "apk_fetch(\n    name = \"apks\",\n    repository = \"melange\",\n    packages = [\"replayout\", \"custom-ca-certs-1\"],\n    archs = [\"x86_64\", \"aarch64\"],\n)\n";

fn melange(fx: &std::path::Path, build: &str) -> Workspace {
    let url = format!("file://{}", fx.join("melange-rsa256").display());
    Workspace::with_apk_repository("melange", &url, &[fx.join("melange-rsa256/melange.rsa.pub")], "")
        .file("img/BUILD", build)
}

/// sha256 of the fixture files, from `shared/fixtures/apk/SOURCES.md`.
fn fixture_sha256(fx: &std::path::Path, rel: &str) -> String {
    let sources = fs::read_to_string(fx.join("SOURCES.md")).expect("SOURCES.md");
    let line =
        sources.lines().find(|l| l.ends_with(&format!("  {rel}"))).unwrap_or_else(|| panic!("{rel} in SOURCES.md"));
    format!("sha256:{}", &line[..64])
}

#[test]
fn lock_then_build_over_file_urls() {
    let fx = fixtures();
    let ws = melange(&fx, TARGET);
    // Without a lockfile, the build says what to do.
    let run = ws.run(&["build", "//img:apks"]).failure(1);
    insta::assert_snapshot!("apk_build_without_lockfile", ws.normalize_fixtures(&run.normalized(&ws), &fx));

    let run = ws.run(&["lock"]).success();
    assert_eq!(run.stderr, "locked 6 packages for 1 target (6 fetched); executor.lock written\n");
    let lockfile = ws.read("executor.lock");
    insta::assert_snapshot!("apk_lockfile", ws.normalize_fixtures(&lockfile, &fx));

    // Locking again against the same indexes changes no byte and fetches nothing.
    let run = ws.run(&["lock"]).success();
    assert_eq!(run.stderr, "locked 6 packages for 1 target (0 fetched); executor.lock unchanged\n");
    assert_eq!(ws.read("executor.lock"), lockfile);
    ws.run(&["lock", "--check"]).success();

    // The build fetches nothing the lock step already verified into the store.
    let run = ws.run(&["build", "//img:apks", "--locked"]).success();
    assert!(run.stderr.contains("0 actions run, 6 cache hits"), "{}", run.stderr);
    for arch in ["x86_64", "aarch64"] {
        for pkg in ["pretend-baselayout", "replayout", "custom-ca-certs-1"] {
            let rel = format!("melange-rsa256/{arch}/{pkg}-1.0.0-r0.apk");
            let line = format!("  executor-out/img/apks/{arch}/{pkg}-1.0.0-r0.apk  {}", fixture_sha256(&fx, &rel));
            assert!(run.stdout.contains(&line), "missing {line}\n{}", run.stdout);
        }
    }
}

#[test]
fn build_with_an_empty_cache_fetches_from_the_lockfile_urls() {
    let fx = fixtures();
    let ws = melange(&fx, TARGET);
    ws.run(&["lock"]).success();
    fs::remove_dir_all(ws.cache()).expect("empty the cache");
    let run = ws.run(&["build", "//img:apks"]).success();
    assert!(run.stderr.contains("6 actions run"), "{}", run.stderr);
    // A second workspace on the same cache reuses every package.
    let other = melange(&fx, TARGET);
    fs::copy(ws.root().join("executor.lock"), other.root().join("executor.lock")).expect("copy lock");
    let run =
        other.command_in("", &["build", "//img:apks"]).env("EXECUTOR_CACHE_DIR", ws.cache()).output().expect("run");
    let run = crate::harness::to_run(run).success();
    assert!(run.stderr.contains("0 actions run, 6 cache hits"), "{}", run.stderr);
}

#[test]
fn stale_lockfile_is_reported() {
    let fx = fixtures();
    let ws = melange(&fx, TARGET);
    ws.run(&["lock"]).success();
    ws.write("img/BUILD", &TARGET.replace("\"custom-ca-certs-1\"]", "\"custom-ca-certs-1\", \"custom-ca-certs-2\"]"));
    ws.write("img/BUILD", &format!("{}apk_fetch(name = \"more\", repository = \"melange\", packages = [\"pretend-baselayout\"], arch = \"x86_64\")\n", ws.read("img/BUILD")));
    let check = ws.run(&["lock", "--check"]).failure(1);
    insta::assert_snapshot!("apk_lock_check_stale", ws.normalize_fixtures(&check.normalized(&ws), &fx));
    let build = ws.run(&["build", "//img:apks", "--locked"]).failure(1);
    assert_eq!(build.stderr, check.stderr);
    let build = ws.run(&["build", "//img:apks"]).failure(1);
    insta::assert_snapshot!("apk_build_stale", ws.normalize_fixtures(&build.normalized(&ws), &fx));
    // `executor lock` repairs it.
    ws.run(&["lock"]).success();
    ws.run(&["lock", "--check"]).success();
    ws.run(&["build", "//img:all"]).success();
}

#[test]
fn lock_errors() {
    let fx = fixtures();
    let alpine = format!("file://{}", fx.join("alpine-v3.17").display());
    let cases: Vec<(&str, Workspace)> = vec![
        (
            "apk_unsatisfiable",
            melange(&fx, "apk_fetch(name = \"a\", repository = \"melange\", packages = [\"replayout\", \"no-such-package\"], arch = \"x86_64\")\n"),
        ),
        (
            "apk_unknown_repository",
            melange(&fx, "apk_fetch(name = \"a\", repository = \"melang\", packages = [\"replayout\"], arch = \"x86_64\")\n"),
        ),
        (
            "apk_index_signed_by_unknown_key",
            Workspace::with_apk_repository("alpine", &alpine, &[fx.join("alpine-keys/alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub")], "")
                .file("img/BUILD", "apk_fetch(name = \"a\", repository = \"alpine\", packages = [\"tzdata\"], arch = \"aarch64\")\n"),
        ),
        (
            "apk_missing_index",
            melange(&fx, "apk_fetch(name = \"a\", repository = \"melange\", packages = [\"replayout\"], arch = \"s390x\")\n"),
        ),
        (
            "apk_bad_arch",
            melange(&fx, "apk_fetch(name = \"a\", repository = \"melange\", packages = [\"replayout\"], arch = \"amd46\")\n"),
        ),
        (
            "apk_bad_dependency",
            melange(&fx, "apk_fetch(name = \"a\", repository = \"melange\", packages = [\"replayout>=\"], arch = \"x86_64\")\n"),
        ),
    ];
    for (name, ws) in cases {
        let run = ws.run(&["lock"]);
        assert_eq!(run.code, 1, "{name}: {}", run.stderr);
        assert!(!ws.root().join("executor.lock").exists(), "{name}: a failed lock must write nothing");
        insta::assert_snapshot!(name, ws.normalize_fixtures(&run.normalized(&ws), &fx));
    }
}

#[test]
fn untrusted_repository_warns_on_every_use() {
    let fx = fixtures();
    let url = format!("file://{}", fx.join("melange-rsa256").display());
    let ws = Workspace::with_apk_repository("melange", &url, &[], "\n    allow_untrusted = True,").file(
        "img/BUILD",
        "apk_fetch(name = \"a\", repository = \"melange\", packages = [\"replayout\"], arch = \"x86_64\")\n",
    );
    let run = ws.run(&["lock"]).success();
    insta::assert_snapshot!("apk_untrusted_lock", ws.normalize_fixtures(&run.stderr, &fx));
    let run = ws.run(&["build", "//img:a"]).success();
    assert!(
        run.stderr.starts_with("warning: `//img:a` uses repository `melange`, which sets `allow_untrusted = True`"),
        "{}",
        run.stderr
    );
}

#[test]
fn tampered_lockfile_is_caught_at_build_time() {
    let fx = fixtures();
    let ws = melange(
        &fx,
        "apk_fetch(name = \"a\", repository = \"melange\", packages = [\"pretend-baselayout\"], arch = \"x86_64\")\n",
    );
    ws.run(&["lock"]).success();
    let good = ws.read("executor.lock");
    let sha = "sha256:7771da1b81d8d688a3cd2f593bdff7577b52069c40f8460868c68cf257420a42";
    let tampered: [(&str, String); 3] = [
        ("apk_wrong_sha256", good.replace(sha, &format!("sha256:{}", "0".repeat(64)))),
        ("apk_wrong_size", good.replace("size = 2930", "size = 2931")),
        ("apk_wrong_identity", good.replace("Q1m6wB0UFePGN8Drz82pC8y2uAiu8=", "Q1JQ8nfsxa27d0f6oa056sdT5IcJY=")),
    ];
    for (name, text) in tampered {
        assert_ne!(text, good, "{name}: the replacement must change the lockfile");
        ws.write("executor.lock", &text);
        fs::remove_dir_all(ws.cache()).ok();
        let run = ws.run(&["build", "//img:a"]).failure(1);
        insta::assert_snapshot!(name, ws.normalize_fixtures(&run.normalized(&ws), &fx));
        // Nothing unverified reached the store or the output tree.
        assert!(!ws.root().join("executor-out/img/a/x86_64/pretend-baselayout-1.0.0-r0.apk").exists(), "{name}");
        let cas = ws.cache().join("cas/sha256");
        let blobs = walk_files(&cas);
        for blob in blobs {
            let bytes = fs::read(&blob).expect("read");
            assert_ne!(executor::digest::Digest::of(&bytes).to_string(), sha, "{name}: the package reached the store");
        }
    }
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// An apko lockfile that lacks a package the target asks for is refused, naming it, and no
/// lockfile is written; one whose pins were edited so that they no longer install a request
/// fails `lock --check`.
#[test]
fn import_apko_refuses_a_lockfile_without_a_requested_package() {
    let fx = fixtures();
    let ws = melange(
        &fx,
        "apk_fetch(name = \"base\", repository = \"melange\", packages = [\"replayout\", \"pretend-baselayout>=2\", \"so:libnothere.so.1\"], archs = [\"x86_64\", \"aarch64\"])\n",
    );
    let apko = fx.join("apko-lock/apko.lock.json");
    let run = ws.run(&["lock", "--import-apko", apko.to_str().expect("utf-8"), "--target", "//img:base"]).failure(1);
    assert!(
        run.stderr.contains("does not install what `//img:base` asks for: `pretend-baselayout>=2` (x86_64, aarch64), `so:libnothere.so.1` (x86_64, aarch64)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("fix: make the apko lockfile again with these packages"), "{}", run.stderr);
    assert!(!ws.root().join("executor.lock").exists(), "nothing written");

    // A lockfile whose pins stopped installing a request (edited by hand) fails `lock --check`.
    ws.write(
        "img/BUILD",
        "apk_fetch(name = \"base\", repository = \"melange\", packages = [\"replayout\"], archs = [\"x86_64\", \"aarch64\"])\n",
    );
    ws.run(&["lock", "--import-apko", apko.to_str().expect("utf-8"), "--target", "//img:base"]).success();
    ws.run(&["lock", "--check"]).success();
    let lock = ws.read("executor.lock");
    // The first install list is aarch64's.
    let edited = lock.replacen("\n    \"replayout=1.0.0-r0\",\n", "\n", 1);
    assert_ne!(edited, lock, "the install lists name replayout");
    ws.write("executor.lock", &edited);
    let run = ws.run(&["lock", "--check"]).failure(1);
    assert!(
        run.stderr.contains("`//img:base` asks for `replayout`, which its pins for aarch64 do not install"),
        "{}",
        run.stderr
    );
}

/// An arch the repository does not publish (the melange fixture has x86_64 and aarch64 only,
/// like Wolfi): `lock` names the repository and the arch and says what to set, without the
/// hint about relative `file://` urls (this one is absolute).
#[test]
fn lock_names_an_arch_the_repository_does_not_publish() {
    let fx = fixtures();
    let ws = melange(
        &fx,
        "apk_fetch(name = \"a\", repository = \"melange\", packages = [\"replayout\"], archs = [\"x86_64\", \"riscv64\"])\n",
    );
    let run = ws.run(&["lock"]).failure(1);
    assert!(run.stderr.contains("repository `melange` has no index for arch `riscv64`"), "{}", run.stderr);
    assert!(run.stderr.contains("fix: if it does not publish `riscv64`, set `archs`"), "{}", run.stderr);
    assert!(!run.stderr.contains("relative"), "{}", run.stderr);
}

/// `lock --dry-run` shows each target's resolution per arch, as text or JSON, after
/// verifying the indexes, and neither fetches a package nor writes the lockfile.
#[test]
fn lock_dry_run_shows_the_resolution_without_fetching() {
    let fx = fixtures();
    let ws = melange(
        &fx,
        "apk_fetch(name = \"a\", repository = \"melange\", packages = [\"replayout\"], archs = [\"x86_64\", \"aarch64\"])\n",
    );
    let run = ws.run(&["lock", "--dry-run"]).success();
    let url = format!("file://{}", fx.join("melange-rsa256").display());
    assert_eq!(
        run.stdout,
        format!(
            "//img:a (repository melange, {url})\n  aarch64: pretend-baselayout 1.0.0-r0, replayout 1.0.0-r0\n  \
             x86_64: pretend-baselayout 1.0.0-r0, replayout 1.0.0-r0\n"
        )
    );
    assert!(
        run.stderr.contains("resolved 1 target; nothing fetched, executor.lock not written (dry run)"),
        "{}",
        run.stderr
    );
    let json = ws.run(&["lock", "--dry-run", "--output", "json"]).success();
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(parsed[0]["label"], "//img:a");
    assert_eq!(parsed[0]["archs"]["x86_64"][1]["name"], "replayout");
    assert_eq!(parsed[0]["archs"]["x86_64"][1]["version"], "1.0.0-r0");
    assert!(!ws.root().join("executor.lock").exists(), "nothing written");
    // No package reached the store: only the indexes were read (a real lock stores it).
    let replayout = fixture_sha256(&fx, "melange-rsa256/x86_64/replayout-1.0.0-r0.apk");
    let stored = |ws: &Workspace| {
        walk_files(&ws.cache().join("cas/sha256"))
            .iter()
            .filter(|b| fs::read(b).is_ok_and(|bytes| executor::digest::Digest::of(&bytes).to_string() == replayout))
            .count()
    };
    assert_eq!(stored(&ws), 0);
    let run = ws.run(&["lock", "--output", "json"]).failure(2);
    assert!(run.stderr.contains("--dry-run"), "{}", run.stderr);
    ws.run(&["lock"]).success();
    assert_eq!(stored(&ws), 1);
}

#[test]
fn import_apko_lockfile() {
    let fx = fixtures();
    let ws = melange(&fx, "apk_fetch(name = \"base\", repository = \"melange\", packages = [\"replayout\"], archs = [\"x86_64\", \"aarch64\"])\n");
    let apko = fx.join("apko-lock/apko.lock.json");
    let run = ws.run(&["lock", "--import-apko", apko.to_str().expect("utf-8"), "--target", "//img:base"]).success();
    assert_eq!(run.stderr, "locked 4 packages for 1 target (4 fetched); executor.lock written\n");
    insta::assert_snapshot!("apk_imported_lockfile", ws.normalize_fixtures(&ws.read("executor.lock"), &fx));
    ws.run(&["lock", "--check"]).success();
    let run = ws.run(&["build", "//img:base"]).success();
    assert!(
        run.stdout.contains(&fixture_sha256(&fx, "melange-rsa256/aarch64/replayout-1.0.0-r0.apk")),
        "{}",
        run.stdout
    );
    // Resolving from the indexes gives the same pins as apko did.
    let imported = ws.read("executor.lock");
    ws.run(&["lock"]).success();
    let relocked = ws.read("executor.lock");
    let pins = |t: &str| {
        t.lines()
            .filter(|l| l.starts_with("sha256 = \"sha256:") || l.contains("=1.0.0-r0"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let imported_pins: Vec<_> = pins(&imported);
    assert!(!imported_pins.is_empty());
    for pin in &imported_pins {
        assert!(relocked.contains(pin.as_str()), "{pin} missing after relock");
    }
}

/// A dependency's `apk_fetch` target is resolved with the dependency's own `apk_repository`
/// (a relative `file://` URL, relative to the dependency) and pinned by its own lockfile;
/// the main workspace's `lock` leaves it alone.
#[test]
fn a_dependencys_targets_use_its_own_repository_and_lockfile() {
    let fx = fixtures();
    let dep =
        Workspace::with_apk_repository("melange", "file://mirror", &[fx.join("melange-rsa256/melange.rsa.pub")], "")
            .file("img/BUILD", TARGET);
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(fx.join("melange-rsa256"))
        .arg(dep.root().join("mirror"))
        .status()
        .expect("cp");
    assert!(status.success());
    let main = Workspace::new()
        .file("WORKSPACE", &format!("local_repository(name = \"dep\", path = \"{}\")\n", dep.root().display()))
        .file("app/BUILD", "filegroup(name = \"all\", srcs = [\"@dep//img:apks\"])\n");

    let run = main.run(&["build", "//app:all"]).failure(1);
    insta::assert_snapshot!("apk_dependency_without_its_lockfile", main.normalize(&run.normalized(&main)));

    // The main workspace's lock pins only its own targets.
    main.run(&["lock"]).success();
    assert!(!main.read("executor.lock").contains("apks"), "{}", main.read("executor.lock"));
    main.run(&["build", "//app:all"]).failure(1);

    dep.run(&["lock"]).success();
    let run = main.run(&["build", "//app:all"]).success();
    let line = format!(
        "  executor-out/@dep/img/apks/x86_64/replayout-1.0.0-r0.apk  {}",
        fixture_sha256(&fx, "melange-rsa256/x86_64/replayout-1.0.0-r0.apk")
    );
    assert!(run.stdout.contains(&line), "missing {line}\n{}", run.stdout);
}

/// `compression_level` changes the compressed bytes only: the same tar inside, another digest;
/// a level outside 0..=9 is refused where it is written.
#[test]
fn compression_level_changes_the_gzip_not_the_tar() {
    use std::io::Read as _;
    let fx = fixtures();
    let build = "apk_fetch(name = \"apks\", repository = \"melange\", packages = [\"replayout\"], arch = \"x86_64\")\n\
                 layer(name = \"default\", packages = \":apks\")\n\
                 layer(name = \"fast\", packages = \":apks\", compression_level = 1)\n";
    let ws = melange(&fx, build);
    ws.run(&["lock"]).success();
    ws.run(&["build", "//img:default", "//img:fast"]).success();
    let read = |name: &str| fs::read(ws.root().join(format!("executor-out/img/{name}.tar.gz"))).expect("layer");
    let (default, fast) = (read("default"), read("fast"));
    assert_ne!(default, fast);
    let gunzip = |bytes: &[u8]| {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).expect("gunzip");
        out
    };
    assert_eq!(gunzip(&default), gunzip(&fast));

    ws.write("img/BUILD", &build.replace("compression_level = 1", "compression_level = 12"));
    let run = ws.run(&["build", "//img:fast"]).failure(1);
    assert!(
        run.stderr.contains("img/BUILD:3:1")
            && run.stderr.contains("`compression_level` of rule `layer` must be 0 to 9, not 12"),
        "{}",
        run.stderr
    );
}

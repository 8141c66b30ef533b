//! `executor push` and `executor verify` against a fake registry that misbehaves: every
//! failure must be a clear error (or a safe retry), never a corrupt or partial push.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::harness::{executor_bin, normalize_time, to_run, Run};
use executor_testkit::registry::{wrong_digest, Auth, FakeRegistry, Fault};

/// The repository pushed to.
const REPO: &str = "acme/static";

/// The user the authenticating registries accept, and its password (never to be printed).
const USER: &str = "fake-ci";
const PASSWORD: &str = "s3cret-Staple-42";

/// A fake registry and a copy of this repository's workspace, with its own cache and an
/// empty home.
struct Fixture {
    registry: FakeRegistry,
    /// Holds `ws/`, `cache/`, `home/` and the auth files.
    temp: tempfile::TempDir,
}

impl Fixture {
    fn new(auth: Auth) -> Fixture {
        let temp = tempfile::tempdir().expect("tempdir");
        crate::images::copy_repository(&temp.path().join("ws"));
        std::fs::create_dir_all(temp.path().join("home")).expect("mkdir home");
        Fixture { registry: FakeRegistry::start(auth), temp }
    }

    fn anonymous() -> Fixture {
        Fixture::new(Auth::Anonymous)
    }

    fn repo(&self) -> String {
        format!("{}/{REPO}", self.registry.host())
    }

    fn ws(&self) -> PathBuf {
        self.temp.path().join("ws")
    }

    /// Writes `contents` to the auth file `name`.
    fn auth_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.temp.path().join(name);
        std::fs::write(&path, contents).expect("write auth file");
        path
    }

    /// Builds the image first, so that a push's time is the push's alone (a cold build of
    /// eight platforms on two shared cores is no part of a time limit).
    fn build(&self) {
        let run = self.run(&["build", "//images:static"], &self.no_auth());
        assert_eq!(run.code, 0, "{}", run.stderr);
    }

    /// An auth file with no credentials (anonymous access).
    fn no_auth(&self) -> PathBuf {
        self.auth_file("no-auth.json", "{\"auths\": {}}")
    }

    /// An auth file naming `user:password` for the registry.
    fn creds(&self, name: &str, user: &str, password: &str) -> PathBuf {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let json = serde_json::json!({ "auths": { self.registry.host(): { "auth": auth } } });
        self.auth_file(name, &serde_json::to_string_pretty(&json).expect("json"))
    }

    /// `executor ARGS` in the workspace with `$REGISTRY_AUTH_FILE` = `auth_file`.
    fn run(&self, args: &[&str], auth_file: &Path) -> Run {
        let out = Command::new(executor_bin())
            .args(args)
            .current_dir(self.ws())
            .env("EXECUTOR_CACHE_DIR", self.temp.path().join("cache"))
            .env("REGISTRY_AUTH_FILE", auth_file)
            .env("HOME", self.temp.path().join("home"))
            .env("COSIGN_PASSWORD", "fake-key-password")
            .env_remove("DOCKER_CONFIG")
            .env_remove("XDG_CACHE_HOME")
            .stdin(Stdio::null())
            .output()
            .expect("run executor");
        to_run(out)
    }

    /// `executor push //images:static --repository HOST/acme/static --tag v1 EXTRA...`.
    fn push(&self, auth_file: &Path, extra: &[&str]) -> Run {
        let repo = self.repo();
        let mut args = vec!["push", "//images:static", "--repository", &repo, "--tag", "v1"];
        args.extend_from_slice(extra);
        self.run(&args, auth_file)
    }

    /// Replaces the port, temporary paths, upload session ids and timings.
    fn normalize(&self, text: &str) -> String {
        let text = text
            .replace(&self.registry.host(), "127.0.0.1:[PORT]")
            .replace(&self.temp.path().display().to_string(), "[TMP]");
        normalize_time(&normalize_upload_ids(&text))
    }

    /// The exit code and what the push printed after the build (the build's own output
    /// depends on the cache).
    fn report(&self, run: &Run) -> String {
        let lines: Vec<&str> = run.stderr.lines().collect();
        let start = lines.iter().position(|l| l.starts_with("build succeeded")).map_or(0, |i| i + 1);
        format!("exit code: {}\n{}", run.code, self.normalize(&lines[start..].join("\n")))
    }

    /// The layout's `latest` index: its digest and bytes.
    fn local_index(&self) -> (String, Vec<u8>) {
        let layout = self.ws().join("executor-out/images/static");
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json")).expect("json");
        let digest = index["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == "latest")
            .and_then(|d| d["digest"].as_str())
            .expect("the `latest` image")
            .to_owned();
        let bytes = std::fs::read(layout.join("blobs/sha256").join(&digest["sha256:".len()..])).expect("index blob");
        (digest, bytes)
    }

    /// Panics unless the registry holds no manifest and no tag, and nothing corrupt.
    #[track_caller]
    fn assert_nothing_pushed(&self) {
        self.registry.assert_consistent();
        assert!(self.registry.tags(REPO).is_empty(), "tags: {:?}", self.registry.tags(REPO));
        assert!(self.registry.manifests(REPO).is_empty(), "a manifest was put");
    }
}

/// `.../blobs/uploads/upload-17?...` -> `.../blobs/uploads/upload-[N]?...`: sessions are
/// numbered in the order parallel uploads start.
fn normalize_upload_ids(text: &str) -> String {
    let marker = "/blobs/uploads/upload-";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(marker) {
        out.push_str(&rest[..pos + marker.len()]);
        rest = &rest[pos + marker.len()..];
        let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        out.push_str("[N]");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Neither `password` nor a Basic credential of [`USER`] with it appears in the output.
#[track_caller]
fn assert_not_shown(run: &Run, password: &str) {
    crate::harness::assert_secret_not_shown(run, USER, password);
}

/// Panics unless `run` failed with exit code 1 within `limit`.
#[track_caller]
fn assert_failed_within(run: &Run, started: Instant, limit: Duration) {
    let took = started.elapsed();
    assert_eq!(run.code, 1, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(took < limit, "took {took:?} (limit {limit:?}):\n{}", run.stderr);
}

#[test]
fn push_then_push_again_uploads_nothing() {
    let fx = Fixture::anonymous();
    let no_auth = fx.no_auth();
    let first = fx.push(&no_auth, &[]).success();
    let (digest, index) = fx.local_index();
    assert_eq!(first.stdout.lines().last(), Some(format!("{}@{digest}", fx.repo()).as_str()), "{}", first.stdout);
    insta::assert_snapshot!("fake_push_first", fx.report(&first));

    // The tag names the layout's index, byte for byte.
    let pushed = fx.registry.manifest(REPO, "v1").expect("tag v1");
    assert_eq!(pushed.bytes, index);
    assert_eq!(pushed.media_type, "application/vnd.oci.image.index.v1+json");
    assert_eq!(fx.registry.tags(REPO)["v1"], digest);
    // Every blob is the layout's file of that digest; no upload is left open.
    let blobs = fx.registry.blobs();
    assert_eq!(blobs.len(), 25);
    for (blob, bytes) in &blobs {
        let local = fx.ws().join("executor-out/images/static/blobs/sha256").join(&blob["sha256:".len()..]);
        assert_eq!(&std::fs::read(local).expect("local blob"), bytes, "{blob}");
    }
    assert_eq!(fx.registry.open_uploads(), 0);
    // The blobs are far below the default 16 MiB chunk threshold: each goes in one `PUT`,
    // never in `PATCH`es (`chunked_uploads_with_a_small_chunk_size` covers those).
    assert_eq!(fx.registry.count("PATCH", "/"), 0);
    assert_eq!(fx.registry.count("DELETE", "/"), 0);
    assert_eq!(fx.registry.count("PUT", "/v2/acme/static/blobs/uploads/"), 25);
    // Without the referrers API, each platform's SBOM is listed under `sha256-<hex>`.
    let tags = fx.registry.tags(REPO);
    assert_eq!(tags.keys().filter(|t| t.starts_with("sha256-")).count(), 8, "{tags:?}");
    fx.registry.assert_consistent();

    // The second push only asks: one `HEAD` per blob, no upload.
    let before = fx.registry.requests().len();
    let second = fx.push(&no_auth, &["--tag", "v2"]).success();
    insta::assert_snapshot!("fake_push_second", fx.report(&second));
    let during = &fx.registry.requests()[before..];
    assert!(during.iter().all(|r| !r.path.contains("/blobs/uploads/")), "{during:#?}");
    assert_eq!(during.iter().filter(|r| r.method == "HEAD").count(), 25, "{during:#?}");
    assert_eq!(fx.registry.tags(REPO)["v2"], digest);
    fx.registry.assert_consistent();
}

#[test]
fn push_to_a_registry_with_the_referrers_api() {
    let fx = Fixture::anonymous();
    fx.registry.set_referrers_api(true);
    let run = fx.push(&fx.no_auth(), &[]).success();
    insta::assert_snapshot!("fake_push_referrers_api", fx.report(&run));
    // No fallback tags: the registry lists each SBOM as a referrer of its image manifest.
    assert_eq!(fx.registry.tags(REPO).keys().collect::<Vec<_>>(), ["v1"]);
    assert_eq!(fx.registry.count("GET", "/v2/acme/static/manifests/sha256-"), 0);
    let (_, index) = fx.local_index();
    let index: serde_json::Value = serde_json::from_slice(&index).expect("json");
    for platform in index["manifests"].as_array().expect("manifests") {
        let manifest = platform["digest"].as_str().expect("digest");
        let referrers = fx
            .registry
            .manifests(REPO)
            .values()
            .filter_map(|m| serde_json::from_slice::<serde_json::Value>(&m.bytes).ok())
            .filter(|m| m["subject"]["digest"] == manifest)
            .count();
        assert_eq!(referrers, 1, "{manifest}");
    }
    fx.registry.assert_consistent();
}

#[test]
fn push_with_a_bearer_token() {
    let fx = Fixture::new(Auth::Bearer { user: USER.into(), password: PASSWORD.into() });
    let creds = fx.creds("creds.json", USER, PASSWORD);
    let run = fx.push(&creds, &[]).success();
    assert_not_shown(&run, PASSWORD);
    assert_eq!(fx.registry.manifest(REPO, "v1").expect("tag v1").bytes, fx.local_index().1);
    // One token, asked for push access to the repository, served every request after.
    let tokens: Vec<_> = fx.registry.requests().into_iter().filter(|r| r.path == "/token").collect();
    assert_eq!(tokens.len(), 1, "{tokens:#?}");
    assert!(tokens[0].query.contains("scope=repository%3Aacme%2Fstatic%3Apull%2Cpush"), "{tokens:#?}");
    assert!(tokens[0].query.contains("service=fake"), "{tokens:#?}");
    assert_eq!(fx.registry.count("*", "/v2/"), fx.registry.requests().len() - 1);
    fx.registry.assert_consistent();
}

#[test]
fn wrong_or_missing_credentials_are_refused_without_showing_them() {
    let wrong = "wrong-Battery-9c1e";
    let mut report = String::new();
    for (case, auth, creds) in [
        ("basic, wrong password", Auth::Basic { user: USER.into(), password: PASSWORD.into() }, Some(wrong)),
        ("bearer, wrong password", Auth::Bearer { user: USER.into(), password: PASSWORD.into() }, Some(wrong)),
        ("basic, no credentials", Auth::Basic { user: USER.into(), password: PASSWORD.into() }, None),
    ] {
        let fx = Fixture::new(auth);
        let file = match creds {
            Some(password) => fx.creds("creds.json", USER, password),
            None => fx.no_auth(),
        };
        let run = fx.push(&file, &[]).failure(1);
        assert_not_shown(&run, wrong);
        assert_not_shown(&run, PASSWORD);
        report.push_str(&format!("== {case}\n{}\n", fx.report(&run)));
        // Nothing but the authentication was tried.
        let requests = fx.registry.requests();
        assert!(requests.iter().all(|r| r.path == "/v2/" || r.path == "/token"), "{case}: {requests:#?}");
        fx.assert_nothing_pushed();
        assert!(fx.registry.blobs().is_empty(), "{case}");
    }
    insta::assert_snapshot!("fake_push_refused_credentials", report);
}

#[test]
fn denied_blob_upload_fails_clearly() {
    let fx = Fixture::new(Auth::Basic { user: USER.into(), password: PASSWORD.into() });
    fx.registry.fault("POST", "/v2/acme/static/blobs/uploads/", Fault::Status(403));
    let run = fx.push(&fx.creds("creds.json", USER, PASSWORD), &[]).failure(1);
    assert_not_shown(&run, PASSWORD);
    insta::assert_snapshot!("fake_push_denied", fx.report(&run));
    // A 403 is a verdict, not retried; no new blob is started after it.
    assert!(fx.registry.count("POST", "/v2/acme/static/blobs/uploads/") <= 4);
    assert!(fx.registry.blobs().is_empty());
    fx.assert_nothing_pushed();
}

#[test]
fn a_host_without_the_registry_api_fails_at_once() {
    let fx = Fixture::anonymous();
    fx.registry.fault_exact("GET", "/v2/", Fault::Status(404));
    let run = fx.push(&fx.no_auth(), &[]).failure(1);
    insta::assert_snapshot!("fake_push_no_registry_api", fx.report(&run));
    assert_eq!(fx.registry.requests().len(), 1, "{:#?}", fx.registry.requests());
    fx.assert_nothing_pushed();
}

#[test]
fn a_manifest_put_failing_for_good_gives_up_after_the_retries() {
    let fx = Fixture::anonymous();
    fx.registry.fault("PUT", "/v2/acme/static/manifests/", Fault::Status(500));
    fx.build();
    let started = Instant::now();
    let run = fx.push(&fx.no_auth(), &[]);
    assert_failed_within(&run, started, Duration::from_secs(30));
    insta::assert_snapshot!("fake_push_gave_up", fx.report(&run));
    // The first manifest, tried 1 + 3 times (the default `--fetch-retries`), then nothing.
    let puts: Vec<_> =
        fx.registry.requests().into_iter().filter(|r| r.method == "PUT" && r.path.contains("/manifests/")).collect();
    assert_eq!(puts.len(), 4, "{puts:#?}");
    assert!(puts.iter().all(|r| r.path == puts[0].path), "{puts:#?}");
    fx.assert_nothing_pushed();
}

#[test]
fn transient_failures_are_retried_to_success() {
    let fx = Fixture::anonymous();
    fx.registry.fault("POST", "/v2/acme/static/blobs/uploads/", Fault::FailTimes(2, Box::new(Fault::Status(503))));
    fx.registry.fault("PUT", "/v2/acme/static/manifests/", Fault::FailTimes(2, Box::new(Fault::Status(500))));
    let run = fx.push(&fx.no_auth(), &[]).success();
    assert!(run.stderr.contains("(tags: v1): 25 blobs uploaded"), "{}", run.stderr);
    assert_eq!(fx.registry.manifest(REPO, "v1").expect("tag v1").bytes, fx.local_index().1);
    // Two failed and one successful upload session start more than there are blobs.
    assert_eq!(fx.registry.count("POST", "/v2/acme/static/blobs/uploads/"), 25 + 2);
    let puts: Vec<_> =
        fx.registry.requests().into_iter().filter(|r| r.method == "PUT" && r.path.contains("/manifests/")).collect();
    assert!(puts[..3].iter().all(|r| r.path == puts[0].path), "{puts:#?}");
    fx.registry.assert_consistent();
}

#[test]
fn a_wrong_digest_from_the_registry_stops_the_push_before_any_tag() {
    let fx = Fixture::anonymous();
    let no_auth = fx.no_auth();
    let mut report = String::new();

    // The registry stores the blob but names another digest: no manifest is put.
    fx.registry.fault("PUT", "/v2/acme/static/blobs/uploads/", Fault::WrongDigest);
    let run = fx.push(&no_auth, &[]).failure(1);
    report.push_str(&format!("== blob upload\n{}\n", fx.report(&run)));
    fx.assert_nothing_pushed();

    // It claims to have a blob, under another digest.
    fx.registry.clear_faults();
    fx.registry.fault("HEAD", "/v2/acme/static/blobs/", Fault::WrongDigest);
    let run = fx.push(&no_auth, &[]).failure(1);
    report.push_str(&format!("== blob check\n{}\n", fx.report(&run)));
    fx.assert_nothing_pushed();

    // It stores the first manifest but names another digest: nothing after it is put.
    fx.registry.clear_faults();
    fx.registry.fault("PUT", "/v2/acme/static/manifests/", Fault::WrongDigest);
    let run = fx.push(&no_auth, &[]).failure(1);
    report.push_str(&format!("== manifest\n{}\n", fx.report(&run)));
    assert_eq!(fx.registry.count("PUT", "/v2/acme/static/manifests/"), 1);
    assert!(fx.registry.tags(REPO).is_empty(), "{:?}", fx.registry.tags(REPO));
    assert!(fx.registry.manifests(REPO).len() <= 1);
    fx.registry.assert_consistent();
    insta::assert_snapshot!("fake_push_wrong_digest", report);
}

#[test]
fn truncated_answers_are_retried_then_reported() {
    let fx = Fixture::anonymous();
    let no_auth = fx.no_auth();
    fx.registry.fault_exact("GET", "/v2/", Fault::Truncate);
    fx.build();
    let started = Instant::now();
    let run = fx.push(&no_auth, &["--fetch-retries", "1"]);
    assert_failed_within(&run, started, Duration::from_secs(30));
    insta::assert_snapshot!("fake_push_truncated", fx.report(&run));
    assert_eq!(fx.registry.count("GET", "/v2/"), 2);
    fx.assert_nothing_pushed();

    // An upload committed but answered with a truncated response: retried in a new session,
    // and the push succeeds.
    fx.registry.clear_faults();
    fx.registry.fault("PUT", "/v2/acme/static/blobs/uploads/", Fault::FailTimes(1, Box::new(Fault::Truncate)));
    fx.push(&no_auth, &[]).success();
    assert_eq!(fx.registry.count("PUT", "/v2/acme/static/blobs/uploads/"), 25 + 1);
    assert_eq!(fx.registry.manifest(REPO, "v1").expect("tag v1").bytes, fx.local_index().1);
    fx.registry.assert_consistent();
}

#[test]
fn a_stalled_registry_fails_within_the_timeout() {
    let fx = Fixture::anonymous();
    fx.registry.fault("PUT", "/v2/acme/static/manifests/", Fault::Stall);
    fx.build();
    let started = Instant::now();
    // `--fetch-timeout` bounds registry requests too. Two seconds, not one, so that a loaded
    // machine cannot time out an upload that is merely slow.
    let run = fx.push(&fx.no_auth(), &["--fetch-timeout", "2", "--fetch-retries", "1"]);
    // Two attempts of two seconds each, the pause between them, and a no-op build.
    assert_failed_within(&run, started, Duration::from_secs(30));
    insta::assert_snapshot!("fake_push_stalled", fx.report(&run));
    assert_eq!(fx.registry.count("PUT", "/v2/acme/static/manifests/"), 2);
    fx.assert_nothing_pushed();
}

#[test]
fn a_malformed_auth_file_is_named() {
    let fx = Fixture::anonymous();
    let host = fx.registry.host();
    let mut report = String::new();
    for (name, contents) in [
        ("truncated.json", "{\"auths\": ".to_owned()),
        ("not-base64.json", format!("{{\"auths\": {{\"{host}\": {{\"auth\": \"{PASSWORD}!\"}}}}}}")),
    ] {
        let file = fx.auth_file(name, &contents);
        let run = fx.push(&file, &[]).failure(1);
        assert!(run.stderr.contains(&file.display().to_string()), "{}", run.stderr);
        assert_not_shown(&run, PASSWORD);
        report.push_str(&format!("== {name}\n{}\n", fx.report(&run)));
    }
    let missing = fx.temp.path().join("missing.json");
    let run = fx.push(&missing, &[]).failure(1);
    report.push_str(&format!("== missing.json\n{}\n", fx.report(&run)));
    insta::assert_snapshot!("fake_push_malformed_auth_file", report);
    // Nothing was sent with, or for want of, credentials.
    assert_eq!(fx.registry.requests(), []);
}

#[test]
fn verify_reads_the_tag_from_the_registry() {
    let fx = Fixture::new(Auth::Bearer { user: USER.into(), password: PASSWORD.into() });
    let creds = fx.creds("creds.json", USER, PASSWORD);
    fx.push(&creds, &[]).success();
    let (digest, _) = fx.local_index();
    let verify = |tag: &str, extra: &[&str]| {
        let reference = format!("{}:{tag}", fx.repo());
        let mut args = vec!["verify", "//images:static", "--digest", &reference];
        args.extend_from_slice(extra);
        fx.run(&args, &creds)
    };

    let before = fx.registry.requests().len();
    let ok = verify("v1", &[]).success();
    assert_eq!(ok.stdout, format!("verified //images:static: {digest}\n"));
    assert!(ok.stderr.contains(&format!("`{}:v1` is {digest}", fx.repo())), "{}", ok.stderr);
    assert_not_shown(&ok, PASSWORD);
    // Reading asks for pull access only, and sends nothing but reads.
    let during = &fx.registry.requests()[before..];
    let tokens: Vec<_> = during.iter().filter(|r| r.path == "/token").collect();
    assert_eq!(tokens.len(), 1, "{during:#?}");
    assert!(tokens[0].query.contains("scope=repository%3Aacme%2Fstatic%3Apull"), "{tokens:#?}");
    assert!(!tokens[0].query.contains("push"), "{tokens:#?}");
    assert!(during.iter().all(|r| r.method == "GET"), "{during:#?}");

    let mut report = String::new();
    let run = verify("v9", &[]).failure(1);
    report.push_str(&format!("== unknown tag\n{}\n", fx.report(&run)));
    // The first request is answered with the token challenge; every one after, cut short.
    fx.registry.fault("GET", "/v2/acme/static/manifests/", Fault::AfterTimes(1, Box::new(Fault::Truncate)));
    let run = verify("v1", &["--fetch-retries", "1"]).failure(1);
    report.push_str(&format!("== truncated manifest\n{}\n", fx.report(&run)));
    fx.registry.clear_faults();
    fx.registry.fault("GET", "/v2/acme/static/manifests/", Fault::AfterTimes(1, Box::new(Fault::WrongDigest)));
    let run = verify("v1", &[]).failure(1);
    report.push_str(&format!("== wrong digest\n{}\n", fx.report(&run)));
    insta::assert_snapshot!("fake_verify_errors", report);
    fx.registry.assert_consistent();
}

/// The fake itself: chunked uploads, digest checks and mounts, through plain HTTP.
#[test]
fn the_fake_registry_checks_what_it_stores() {
    let registry = FakeRegistry::start(Auth::Anonymous);
    let base = format!("http://{}", registry.host());
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    let call = |method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]| {
        let mut builder = ureq::http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let response = if body.is_empty() {
            agent.run(builder.body(()).expect("request"))
        } else {
            agent.run(builder.body(body).expect("request"))
        }
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (location, digest) = (header("location"), header("docker-content-digest"));
        let mut body = response.into_body();
        let bytes = if method == "HEAD" { Vec::new() } else { body.read_to_vec().expect("body") };
        (status, location.map(|l| format!("{base}{l}")), digest, bytes)
    };
    let blob = b"0123456789abcdefghij".to_vec();
    let digest = executor::digest::Digest::of(&blob).to_string();
    let with_digest = |location: &str, digest: &str| format!("{location}?digest={}", digest.replace(':', "%3A"));

    // Chunks must follow each other; a wrong digest commits nothing.
    let (status, location, _, _) = call("POST", &format!("{base}/v2/a/b/blobs/uploads/"), &[], &[]);
    assert_eq!(status, 202);
    let location = location.expect("Location");
    let (status, location, _, _) = call("PATCH", &location, &[("Content-Range", "0-9")], &blob[..10]);
    assert_eq!(status, 202);
    let location = location.expect("Location");
    assert_eq!(call("PATCH", &location, &[("Content-Range", "5-9")], &blob[5..10]).0, 416);
    let (status, _, _, body) = call("PUT", &with_digest(&location, &wrong_digest()), &[], &blob[10..]);
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("DIGEST_INVALID"));
    assert!(registry.blobs().is_empty());
    assert_eq!(registry.open_uploads(), 0);

    // The same bytes with their digest are committed.
    let (_, location, _, _) = call("POST", &format!("{base}/v2/a/b/blobs/uploads/"), &[], &[]);
    let location = location.expect("Location");
    let (_, location, _, _) = call("PATCH", &location, &[("Content-Range", "0-9")], &blob[..10]);
    let (status, _, answered, _) = call("PUT", &with_digest(&location.expect("Location"), &digest), &[], &blob[10..]);
    assert_eq!((status, answered.as_deref()), (201, Some(digest.as_str())));
    assert_eq!(call("HEAD", &format!("{base}/v2/a/b/blobs/{digest}"), &[], &[]).0, 200);
    assert_eq!(call("HEAD", &format!("{base}/v2/c/d/blobs/{digest}"), &[], &[]).0, 404);

    // A mount links a blob of another repository; a manifest needs its blobs.
    let mount = format!("{base}/v2/c/d/blobs/uploads/?mount={}&from=a%2Fb", digest.replace(':', "%3A"));
    assert_eq!(call("POST", &mount, &[], &[]).0, 201);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "config": { "mediaType": "application/vnd.oci.empty.v1+json", "digest": digest, "size": 20 },
        "layers": [{ "mediaType": "application/octet-stream", "digest": wrong_digest(), "size": 1 }],
    });
    let bytes = serde_json::to_vec(&manifest).expect("json");
    let (status, _, _, body) = call("PUT", &format!("{base}/v2/c/d/manifests/t"), &[], &bytes);
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("MANIFEST_BLOB_UNKNOWN"));
    assert!(registry.tags("c/d").is_empty());
    registry.assert_consistent();
}

#[test]
fn chunked_uploads_with_a_small_chunk_size() {
    let fx = Fixture::anonymous();
    let no_auth = fx.no_auth();
    fx.push(&no_auth, &["--chunk-size", "32768"]).success();
    fx.registry.assert_consistent();
    let (digest, _) = fx.local_index();
    assert_eq!(fx.registry.tags(REPO)["v1"], digest);
    // The layers (about 150 KB each) go in 32 KiB `PATCH`es; small blobs in one chunk.
    let layer = fx.ws().join("executor-out/images/static_x86_64_layer.tar.gz");
    let size = std::fs::metadata(&layer).expect("layer").len();
    assert!(size > 4 * 32768, "the layer is {size} bytes");
    assert!(fx.registry.count("PATCH", "/v2/acme/static/blobs/uploads/") >= 8 * 4);
    for (blob, bytes) in &fx.registry.blobs() {
        let local = fx.ws().join("executor-out/images/static/blobs/sha256").join(&blob["sha256:".len()..]);
        assert_eq!(&std::fs::read(local).expect("local blob"), bytes, "{blob}");
    }
    assert_eq!(fx.registry.open_uploads(), 0);

    let zero = fx.push(&no_auth, &["--chunk-size", "0"]);
    assert_eq!(zero.code, 2);
    assert_eq!(zero.stderr, "error: `--chunk-size` must be at least 1 byte\n");
}

#[test]
fn a_failed_blob_commit_cancels_its_upload() {
    let fx = Fixture::anonymous();
    let no_auth = fx.no_auth();
    fx.registry.fault("PUT", "/v2/acme/static/blobs/uploads/", Fault::Status(400));
    let run = fx.push(&no_auth, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    fx.assert_nothing_pushed();
    // Every session that was opened was closed again with `DELETE`.
    assert!(fx.registry.count("DELETE", "/v2/acme/static/blobs/uploads/") >= 1);
    assert_eq!(fx.registry.open_uploads(), 0);
}

#[test]
fn a_bad_destination_is_refused_before_building() {
    let fx = Fixture::anonymous();
    let no_auth = fx.no_auth();
    let bad_repo = fx.run(&["push", "//images:static", "--repository", "Bad Repo!!"], &no_auth);
    assert_eq!(bad_repo.code, 2, "{}", bad_repo.stderr);
    let bad_tag = fx.run(&["push", "//images:static", "--repository", &fx.repo(), "--tag", "v1!"], &no_auth);
    assert_eq!(bad_tag.code, 2, "{}", bad_tag.stderr);
    let missing = fx.run(&["push", "//images:static", "--repository", &fx.repo()], &fx.temp.path().join("nope.json"));
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    for run in [&bad_repo, &bad_tag, &missing] {
        assert!(!run.stderr.contains("build succeeded"), "built first: {}", run.stderr);
    }
    assert!(!fx.ws().join("executor-out").exists());
    insta::assert_snapshot!(
        "bad_destination",
        format!(
            "{}\n{}\n{}",
            fx.normalize(&bad_repo.stderr),
            fx.normalize(&bad_tag.stderr),
            fx.normalize(&missing.stderr)
        )
    );
    assert_eq!(fx.registry.requests().len(), 0);
}

#[test]
fn push_with_a_docker_credential_helper() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new(Auth::Bearer { user: USER.into(), password: PASSWORD.into() });
    // docker's protocol: `docker-credential-<name> get`, the host on stdin, JSON out.
    let bin = fx.temp.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let helper = bin.join("docker-credential-fake");
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nhost=$(cat)\n[ \"$host\" = \"{host}\" ] || {{ echo 'credentials not found in native keychain'; exit 1; }}\n\
         printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$host\"\n",
        host = fx.registry.host()
    );
    std::fs::write(&helper, script).expect("helper");
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // docker writes an empty entry under `auths` and names the store.
    let auth_file = fx.auth_file(
        "helper.json",
        &format!("{{\"auths\": {{\"{}\": {{}}}}, \"credsStore\": \"fake\"}}", fx.registry.host()),
    );
    let path = std::env::join_paths(
        std::iter::once(bin.clone()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .expect("PATH");
    let out = Command::new(executor_bin())
        .args(["push", "//images:static", "--repository", &fx.repo(), "--tag", "v1"])
        .current_dir(fx.ws())
        .env("EXECUTOR_CACHE_DIR", fx.temp.path().join("cache"))
        .env("REGISTRY_AUTH_FILE", &auth_file)
        .env("HOME", fx.temp.path().join("home"))
        .env("PATH", &path)
        .stdin(Stdio::null())
        .output()
        .expect("run executor");
    let run = to_run(out).success();
    assert_not_shown(&run, PASSWORD);
    assert_eq!(fx.registry.manifest(REPO, "v1").expect("tag v1").bytes, fx.local_index().1);
    fx.registry.assert_consistent();

    // A helper that is not installed is named, with the fix, before anything is built.
    let missing = fx.auth_file("missing.json", "{\"credsStore\": \"nowhere\"}");
    let run = fx.run(&["push", "//images:static", "--repository", &fx.repo()], &missing);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        fx.normalize(&run.stderr),
        "error: `[TMP]/missing.json` names the credential helper `docker-credential-nowhere` for `127.0.0.1:[PORT]`, \
         but it is not on PATH: install it, or point `$REGISTRY_AUTH_FILE` at an auth file with credentials for \
         `127.0.0.1:[PORT]`\n"
    );
}

#[test]
fn push_one_platform_image_with_its_sbom() {
    let fx = Fixture::anonymous();
    let no_auth = fx.no_auth();
    let run = fx.run(&["push", "//images:static_x86_64", "--repository", &fx.repo()], &no_auth).success();
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fx.ws().join("executor-out/images/static_x86_64.image.json")).expect("meta"),
    )
    .expect("json");
    let manifest = meta["digest"].as_str().expect("digest");
    assert_eq!(run.stdout.lines().last(), Some(format!("{}@{manifest}", fx.repo()).as_str()));
    assert!(
        run.stderr.contains("4 blobs uploaded")
            && run.stderr.contains("attached 1 SBOM as a referrer of the image manifest"),
        "{}",
        run.stderr
    );
    // The manifest under `latest`, its SBOM listed under `sha256-<hex>`.
    assert_eq!(fx.registry.tags(REPO)["latest"], manifest);
    let referrers =
        fx.registry.manifest(REPO, &format!("sha256-{}", &manifest["sha256:".len()..])).expect("referrers tag");
    let index: serde_json::Value = serde_json::from_slice(&referrers.bytes).expect("json");
    assert_eq!(index["manifests"][0]["artifactType"], "application/spdx+json");
    fx.registry.assert_consistent();
}

/// `verify --key` accepts a release `push --sign` signed, and refuses, naming each manifest
/// and why: another key, no signature, signature blobs the registry serves altered, a
/// signature moved from another image, and a registry that dropped the referrers.
#[test]
fn verify_checks_the_signatures_and_refuses_every_forgery() {
    let fx = Fixture::anonymous();
    fx.registry.set_referrers_api(false);
    let auth = fx.no_auth();
    let keys = fx.temp.path().join("keys");
    std::fs::create_dir_all(&keys).expect("mkdir");
    for prefix in ["signer", "stranger"] {
        let p = keys.join(prefix);
        let run = fx.run(&["keygen", "--output-prefix", p.to_str().expect("utf-8")], &auth);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let (key, public, stranger) = (keys.join("signer.key"), keys.join("signer.pub"), keys.join("stranger.pub"));
    let run = fx.push(&auth, &["--sign", key.to_str().expect("utf-8")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let release = format!("{}:v1", fx.repo());
    let verify = |public: &Path| {
        fx.run(&["verify", "//images:static", "--digest", &release, "--key", public.to_str().expect("utf-8")], &auth)
    };
    let run = verify(&public);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("9 manifests in")
            && run.stderr.contains("(9 with a Sigstore bundle, 9 with a `.sig` signature)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("attested: 16 statements"), "{}", run.stderr);

    // Another key: every manifest is refused.
    let run = verify(&stranger);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("9 of 9 manifests in"), "{}", run.stderr);
    assert!(run.stderr.contains("a signature by another key (or over altered bytes)"), "{}", run.stderr);

    // An attestation moved from another platform image (its subject is that image), the
    // referrers of this one dropped: the signatures still hold, the attestations do not.
    let attested = format!("{}/acme/attested", fx.registry.host());
    let run = fx.run(
        &["push", "//images:static", "--repository", &attested, "--tag", "v1", "--sign", key.to_str().expect("utf-8")],
        &auth,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let att_tags: Vec<String> = fx.registry.tags("acme/attested").into_keys().filter(|t| t.ends_with(".att")).collect();
    assert_eq!(att_tags.len(), 8, "{att_tags:?}");
    fx.registry.retag("acme/attested", &att_tags[0], &att_tags[1]);
    fx.registry.untag("acme/attested", att_tags[0].trim_end_matches(".att"));
    let moved = att_tags[0].trim_end_matches(".att").replacen("sha256-", "sha256:", 1);
    let run = fx.run(
        &["verify", "//images:static", "--digest", &format!("{attested}:v1"), "--key", public.to_str().expect("utf-8")],
        &auth,
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("attestation check failed for 2 of 16 statements"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "{moved}: its `https://slsa.dev/provenance/v1` attestation, signed by the key, differs"
        )),
        "{}",
        run.stderr
    );

    // The index's and a platform manifest's signatures, attacked in both formats.
    let tags = fx.registry.tags(REPO);
    let index = tags["v1"].clone();
    let platform = tags
        .keys()
        .filter_map(|t| t.strip_suffix(".sig"))
        .map(|t| t.replacen("sha256-", "sha256:", 1))
        .find(|d| *d != index)
        .expect("a platform manifest's signature");
    let sig_layers = |digest: &str| -> Vec<String> {
        let tag = format!("{}.sig", digest.replacen("sha256:", "sha256-", 1));
        let manifest = fx.registry.manifest(REPO, &tag).expect("a .sig manifest");
        let manifest: serde_json::Value = serde_json::from_slice(&manifest.bytes).expect("json");
        manifest["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| l["digest"].as_str().expect("digest").to_owned())
            .collect()
    };
    // 1. The index's payload and bundle blobs served altered.
    for layer in sig_layers(&index) {
        fx.registry.tamper_blob(&layer, b"{}".to_vec());
    }
    let bundle_tag = index.replacen("sha256:", "sha256-", 1);
    let referrers: serde_json::Value =
        serde_json::from_slice(&fx.registry.manifest(REPO, &bundle_tag).expect("referrers index").bytes).expect("json");
    for referrer in referrers["manifests"].as_array().expect("manifests") {
        if referrer["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json" {
            let m = fx.registry.manifest(REPO, referrer["digest"].as_str().expect("digest")).expect("bundle manifest");
            let m: serde_json::Value = serde_json::from_slice(&m.bytes).expect("json");
            fx.registry.tamper_blob(m["layers"][0]["digest"].as_str().expect("digest"), b"{}".to_vec());
        }
    }
    // 2. The platform manifest: the index's signature moved to its `.sig` tag, its
    //    referrers dropped.
    let platform_tag = platform.replacen("sha256:", "sha256-", 1);
    fx.registry.retag(REPO, &format!("{platform_tag}.sig"), &format!("{bundle_tag}.sig"));
    fx.registry.untag(REPO, &platform_tag);
    let run = verify(&public);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("2 of 9 manifests in"), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("{index}: ")) && run.stderr.contains("was served altered"), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("{platform}: ")), "{}", run.stderr);
    assert!(run.stderr.contains("no referrers (bundles)"), "{}", run.stderr);

    // 3. No signature at all: a release pushed without `--sign`.
    let unsigned = format!("{}/acme/unsigned", fx.registry.host());
    let run = fx.run(&["push", "//images:static", "--repository", &unsigned, "--tag", "v1"], &auth);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let release = format!("{unsigned}:v1");
    let run =
        fx.run(&["verify", "//images:static", "--digest", &release, "--key", public.to_str().expect("utf-8")], &auth);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("9 of 9 manifests") && run.stderr.contains(".sig` manifest (legacy signatures)"),
        "{}",
        run.stderr
    );
}

//! `executor push` against a real registry (Debian's docker-registry on 127.0.0.1), without
//! and with Basic authentication.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::harness::{executor_bin, free_port, require, to_run, Run};

/// A docker-registry serving plain HTTP on 127.0.0.1 from a throw-away directory, as
/// ../shared/tools/registry_up.sh starts it; killed when dropped.
pub(crate) struct Registry {
    pub(crate) port: u16,
    /// `config.yml`, `htpasswd`, `registry.log` and `storage/`.
    pub(crate) state: tempfile::TempDir,
    /// The `docker-registry serve` process, started here.
    child: Child,
}

impl Registry {
    /// A registry that lets anyone push.
    pub(crate) fn start() -> Registry {
        Registry::start_with(None)
    }

    /// A registry that lets anyone push, or with `htpasswd = Some((user, password))` only
    /// that user, authenticated with HTTP Basic.
    fn start_with(htpasswd: Option<(&str, &str)>) -> Registry {
        let mut needs = vec!["docker-registry", "skopeo"];
        if htpasswd.is_some() {
            needs.push("htpasswd");
        }
        require(&needs);
        // The port was free when picked, but another process may take it before the
        // registry binds it: then the registry exits, and another port is tried.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match Registry::spawn(htpasswd) {
                Ok(registry) => return registry,
                Err(log) if attempts < 5 && log.contains("address already in use") => continue,
                Err(log) => panic!("docker-registry did not start:\n{log}"),
            }
        }
    }

    /// Starts a registry on a port that was free a moment ago; its log if it exits first.
    fn spawn(htpasswd: Option<(&str, &str)>) -> Result<Registry, String> {
        let port = free_port();
        let state = tempfile::tempdir().expect("tempdir");
        let dir = state.path();
        // docker-registry accepts only bcrypt entries (`-B`).
        let auth = match htpasswd {
            None => String::new(),
            Some((user, password)) => {
                let out = Command::new("htpasswd").args(["-Bbn", user, password]).output().expect("htpasswd");
                assert!(out.status.success(), "htpasswd: {}", String::from_utf8_lossy(&out.stderr));
                std::fs::write(dir.join("htpasswd"), &out.stdout).expect("write htpasswd");
                format!("auth:\n  htpasswd:\n    realm: executor-test\n    path: {}\n", dir.join("htpasswd").display())
            }
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
             cache:\n    blobdescriptor: inmemory\n{auth}http:\n  addr: 127.0.0.1:{port}\n",
            dir.join("storage").display()
        );
        std::fs::write(dir.join("config.yml"), config).expect("write config.yml");
        let log = std::fs::File::create(dir.join("registry.log")).expect("registry.log");
        let mut cmd = Command::new("docker-registry");
        // It reads every `REGISTRY_*` variable as a configuration override, so the
        // `$REGISTRY_AUTH_FILE` of a client would break its `auth` section.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("REGISTRY_") {
                cmd.env_remove(name);
            }
        }
        let child = cmd
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("docker-registry");
        let mut registry = Registry { port, state, child };
        registry.wait_until_up()?;
        Ok(registry)
    }

    /// Waits until `GET /v2/` answers 200, or 401 when it wants credentials, from a registry
    /// that is still running (not another server on the port); its log if it exited.
    fn wait_until_up(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.v2_status();
            let log = || std::fs::read_to_string(self.state.path().join("registry.log")).unwrap_or_default();
            if let Ok(Some(exit)) = self.child.try_wait() {
                return Err(format!("docker-registry exited ({exit}):\n{}", log()));
            }
            if matches!(status, Some(200 | 401)) {
                return Ok(());
            }
            assert!(Instant::now() < deadline, "no answer from the registry (last: {status:?}):\n{}", log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The status of an anonymous `GET /v2/`, or `None` if nothing answers yet.
    fn v2_status(&self) -> Option<u16> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let host = format!("127.0.0.1:{}", self.port);
        write!(stream, "GET /v2/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).ok()?;
        // `HTTP/1.1 401`
        std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs docker-registry and skopeo (bash .ci/run installs them)"]
fn push_static_image_and_read_it_back() {
    let registry = Registry::start();
    let temp = tempfile::tempdir().expect("tempdir");
    let ws = temp.path().join("ws");
    crate::images::copy_repository(&ws);
    let repo = format!("127.0.0.1:{}/executor/static", registry.port);
    let push = |tag: &str| {
        let out = Command::new(executor_bin())
            .args(["push", "//images:static", "--repository", &repo, "--tag", tag])
            .current_dir(&ws)
            .env("EXECUTOR_CACHE_DIR", temp.path().join("cache"))
            .env("REGISTRY_AUTH_FILE", temp.path().join("no-auth.json"))
            .output()
            .expect("push");
        to_run(out)
    };
    // No credentials file: anonymous (the file named by REGISTRY_AUTH_FILE must exist).
    std::fs::write(temp.path().join("no-auth.json"), "{\"auths\": {}}").expect("auth file");
    let first = push("v1");
    assert_eq!(first.code, 0, "{}", first.stderr);
    let local: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.join("executor-out/images/static/index.json")).expect("index.json"))
            .expect("json");
    let digest = local["manifests"][0]["digest"].as_str().expect("digest").to_owned();
    // stdout is the pushed reference and nothing else, for `D=$(executor push …)`.
    assert_eq!(first.stdout, format!("{repo}@{digest}\n"));
    // 8 layers, 8 configs, 8 SBOMs and the empty `{}` config of the SBOM artifacts.
    assert!(first.stderr.contains("(tags: v1): 25 blobs uploaded"), "{}", first.stderr);
    assert!(first.stderr.contains("attached 8 SBOMs as referrers"), "{}", first.stderr);

    // The registry serves the same bytes.
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{repo}:v1")])
        .output()
        .expect("skopeo");
    assert!(raw.status.success(), "{}", String::from_utf8_lossy(&raw.stderr));
    assert_eq!(executor::digest::Digest::of(&raw.stdout).to_string(), digest);
    let copy = temp.path().join("copy");
    let status = Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--src-tls-verify=false",
            &format!("docker://{repo}:v1"),
            &format!("oci:{}:v1", copy.display()),
        ])
        .status()
        .expect("skopeo copy");
    assert!(status.success());
    let copied: serde_json::Value =
        serde_json::from_slice(&std::fs::read(copy.join("index.json")).expect("index.json")).expect("json");
    assert_eq!(copied["manifests"][0]["digest"].as_str(), Some(digest.as_str()));

    // Each platform's SBOM is a referrer of its manifest: distribution 2.8 has no referrers
    // API, so the referrers tag `sha256-<hex>` lists it; the SBOM blob is the local file.
    let agent = ureq::Agent::new_with_defaults();
    let get = |path: &str, accept: &str| -> Vec<u8> {
        let url = format!("http://127.0.0.1:{}/v2/executor/static/{path}", registry.port);
        let mut resp = agent.get(&url).header("Accept", accept).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
        resp.body_mut().with_config().limit(16 << 20).read_to_vec().expect("body")
    };
    let out = ws.join("executor-out/images");
    for arch in ["x86_64", "aarch64", "armhf", "armv7", "ppc64le", "riscv64", "s390x", "x86"] {
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join(format!("static_{arch}.image.json"))).expect("meta"))
                .expect("json");
        let manifest = meta["digest"].as_str().expect("digest");
        let referrers: serde_json::Value = serde_json::from_slice(&get(
            &format!("manifests/sha256-{}", &manifest["sha256:".len()..]),
            "application/vnd.oci.image.index.v1+json",
        ))
        .expect("referrers index");
        let [artifact] = referrers["manifests"].as_array().expect("manifests").as_slice() else {
            panic!("{arch}: one referrer expected: {referrers}")
        };
        assert_eq!(artifact["artifactType"], "application/spdx+json");
        let artifact: serde_json::Value = serde_json::from_slice(&get(
            &format!("manifests/{}", artifact["digest"].as_str().expect("digest")),
            "application/vnd.oci.image.manifest.v1+json",
        ))
        .expect("artifact manifest");
        assert_eq!(artifact["subject"]["digest"].as_str(), Some(manifest), "{arch}");
        let sbom = get(&format!("blobs/{}", artifact["layers"][0]["digest"].as_str().expect("digest")), "*/*");
        assert_eq!(sbom, std::fs::read(out.join(format!("static_{arch}.spdx.json"))).expect("sbom"), "{arch}");
    }

    // Anyone can check the release against the tag: a rebuild in an empty cache.
    let verify = Command::new(executor_bin())
        .args(["verify", "//images:static", "--digest", &format!("{repo}:v1")])
        .current_dir(&ws)
        .env("EXECUTOR_CACHE_DIR", temp.path().join("verifier-cache"))
        .env("REGISTRY_AUTH_FILE", temp.path().join("no-auth.json"))
        .output()
        .expect("verify");
    let verify = to_run(verify);
    assert_eq!(verify.code, 0, "{}", verify.stderr);
    assert_eq!(verify.stdout, format!("verified //images:static: {digest}\n"));

    // A second push uploads nothing, and leaves the referrers tags as they were.
    let second = push("v2");
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stderr.contains("(tags: v2): 0 blobs uploaded (0 bytes), 25 already there"), "{}", second.stderr);

    // To another repository of the same registry, every blob is mounted, none sent again.
    let other = format!("127.0.0.1:{}/executor/static-copy", registry.port);
    let mounted = Command::new(executor_bin())
        .args(["push", "//images:static", "--repository", &other, "--mount-from", "executor/static"])
        .current_dir(&ws)
        .env("EXECUTOR_CACHE_DIR", temp.path().join("cache"))
        .env("REGISTRY_AUTH_FILE", temp.path().join("no-auth.json"))
        .output()
        .expect("push");
    let mounted = to_run(mounted);
    assert_eq!(mounted.code, 0, "{}", mounted.stderr);
    assert!(
        mounted.stderr.contains("(tags: latest): 0 blobs uploaded (0 bytes), 0 already there, 25 mounted"),
        "{}",
        mounted.stderr
    );
}

#[test]
fn push_needs_an_image_target() {
    let ws = crate::harness::Workspace::new().file("p/BUILD", "write_file(name = \"a\", out = \"a\")\n");
    let run = ws.run(&["push", "//p:a", "--repository", "127.0.0.1:1/x"]).failure(2);
    assert_eq!(
        run.stderr.lines().last(),
        Some("error: `//p:a` is not an `oci_index` or `oci_image` target; only images can be pushed")
    );
}

/// The user the Basic-auth registry accepts, and its password (never to be printed).
const USER: &str = "executor-ci";
const PASSWORD: &str = "correct-Horse-7f3a";

/// A registry that wants [`USER`] and [`PASSWORD`], a copy of this repository's workspace,
/// and an empty home (no `~/.docker/config.json`) for `executor push`.
struct AuthFixture {
    registry: Registry,
    /// Holds `ws/`, `cache/`, `home/` and the auth files.
    temp: tempfile::TempDir,
}

impl AuthFixture {
    fn new() -> Self {
        let registry = Registry::start_with(Some((USER, PASSWORD)));
        let temp = tempfile::tempdir().expect("tempdir");
        crate::images::copy_repository(&temp.path().join("ws"));
        std::fs::create_dir_all(temp.path().join("home")).expect("mkdir home");
        AuthFixture { registry, temp }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.registry.port)
    }

    fn repo(&self) -> String {
        format!("{}/executor/static", self.host())
    }

    fn home(&self) -> PathBuf {
        self.temp.path().join("home")
    }

    /// Writes a docker-style auth file naming `user:password` for the registry.
    fn auth_file(&self, name: &str, user: &str, password: &str) -> PathBuf {
        let path = self.temp.path().join(name);
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let json = serde_json::json!({ "auths": { self.host(): { "auth": auth } } });
        std::fs::write(&path, serde_json::to_vec_pretty(&json).expect("json")).expect("write auth file");
        path
    }

    /// `executor push //images:static --repository REPO --tag v1`, with `$REGISTRY_AUTH_FILE`
    /// set to `auth_file` if given, and otherwise only the fixture's home to look in.
    fn push(&self, auth_file: Option<&Path>) -> Run {
        let mut cmd = Command::new(executor_bin());
        cmd.args(["push", "//images:static", "--repository", &self.repo(), "--tag", "v1"])
            .current_dir(self.temp.path().join("ws"))
            .env("EXECUTOR_CACHE_DIR", self.temp.path().join("cache"))
            .env("HOME", self.home())
            .env_remove("DOCKER_CONFIG")
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_CACHE_HOME")
            .stdin(Stdio::null());
        if let Some(file) = auth_file {
            cmd.env("REGISTRY_AUTH_FILE", file);
        }
        to_run(cmd.output().expect("push"))
    }

    /// The `error:` lines of a run, with the port and temporary paths replaced.
    fn errors(&self, run: &Run) -> String {
        let lines: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error:")).collect();
        lines
            .join("\n")
            .replace(&self.host(), "127.0.0.1:[PORT]")
            .replace(&self.temp.path().display().to_string(), "[TMP]")
    }
}

/// Neither `password` nor a Basic credential of [`USER`] with it appears in the output.
#[track_caller]
fn assert_not_shown(run: &Run, password: &str) {
    crate::harness::assert_secret_not_shown(run, USER, password);
}

#[test]
#[ignore = "needs docker-registry, skopeo and htpasswd (bash .ci/run installs them)"]
fn push_with_basic_auth_credentials() {
    let fx = AuthFixture::new();
    let auth = fx.auth_file("auth.json", USER, PASSWORD);
    let run = fx.push(Some(&auth)).success();
    assert_not_shown(&run, PASSWORD);
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fx.temp.path().join("ws/executor-out/images/static/index.json")).expect("index.json"),
    )
    .expect("json");
    let digest = index["manifests"][0]["digest"].as_str().expect("digest").to_owned();
    assert_eq!(run.stdout, format!("{}@{digest}\n", fx.repo()));
    let pushed = format!("pushed index `//images:static` to {} (tags: v1): ", fx.repo());
    assert!(run.stderr.contains(&pushed), "{}", run.stderr);

    // The registry serves the pushed bytes to the same user, and to nobody else.
    let inspect = |creds: Option<&str>| {
        let mut cmd = Command::new("skopeo");
        cmd.args(["inspect", "--raw", "--tls-verify=false"]);
        if let Some(creds) = creds {
            cmd.args(["--creds", creds]);
        }
        // No credentials from this machine's own auth files.
        cmd.arg(format!("docker://{}:v1", fx.repo()))
            .env("HOME", fx.home())
            .env("REGISTRY_AUTH_FILE", fx.temp.path().join("no-auth.json"))
            .env_remove("DOCKER_CONFIG")
            .env_remove("XDG_RUNTIME_DIR");
        cmd.output().expect("skopeo")
    };
    std::fs::write(fx.temp.path().join("no-auth.json"), "{\"auths\": {}}").expect("write");
    let raw = inspect(Some(&format!("{USER}:{PASSWORD}")));
    assert!(raw.status.success(), "{}", String::from_utf8_lossy(&raw.stderr));
    assert_eq!(executor::digest::Digest::of(&raw.stdout).to_string(), digest);
    let anonymous = inspect(None);
    assert!(!anonymous.status.success(), "the registry served an anonymous client");
}

#[test]
#[ignore = "needs docker-registry, skopeo and htpasswd (bash .ci/run installs them)"]
fn push_with_a_wrong_password_fails_without_showing_it() {
    let fx = AuthFixture::new();
    let wrong = "wrong-Battery-9c1e";
    let auth = fx.auth_file("wrong-auth.json", USER, wrong);
    let run = fx.push(Some(&auth)).failure(1);
    assert_not_shown(&run, wrong);
    assert_not_shown(&run, PASSWORD);
    insta::assert_snapshot!("push_wrong_password", fx.errors(&run));
}

#[test]
#[ignore = "needs docker-registry, skopeo and htpasswd (bash .ci/run installs them)"]
fn push_without_credentials_says_how_to_add_them() {
    let fx = AuthFixture::new();
    // No `$REGISTRY_AUTH_FILE` and no `~/.docker/config.json`.
    let run = fx.push(None).failure(1);
    insta::assert_snapshot!("push_without_credentials", fx.errors(&run));
    // An auth file with credentials for another registry only: the message names it.
    let other = fx.temp.path().join("other-auth.json");
    std::fs::write(&other, r#"{"auths": {"registry.example.com": {"auth": "dXNlcjpwYXNz"}}}"#).expect("write");
    let run = fx.push(Some(&other)).failure(1);
    insta::assert_snapshot!("push_without_credentials_for_this_registry", fx.errors(&run));
}

#[test]
#[ignore = "needs docker-registry, skopeo and htpasswd (bash .ci/run installs them)"]
fn push_with_a_malformed_docker_config_names_the_file() {
    let fx = AuthFixture::new();
    // `~/.docker/config.json` with the right credentials, cut off mid-object.
    let good = std::fs::read_to_string(fx.auth_file("auth.json", USER, PASSWORD)).expect("read");
    let config = fx.home().join(".docker/config.json");
    std::fs::create_dir_all(config.parent().expect("parent")).expect("mkdir .docker");
    std::fs::write(&config, &good[..good.len() - 3]).expect("write config.json");
    let run = fx.push(None).failure(1);
    assert_not_shown(&run, PASSWORD);
    assert!(run.stderr.contains(&config.display().to_string()), "{}", run.stderr);
    insta::assert_snapshot!("push_malformed_docker_config", fx.errors(&run));
}

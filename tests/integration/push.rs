//! `executor push` against a real registry (Debian's docker-registry on 127.0.0.1).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{executor_bin, to_run};

/// A registry started with ../shared/tools/registry_up.sh, stopped when dropped.
struct Registry {
    port: u16,
    state: tempfile::TempDir,
    tools: PathBuf,
}

impl Registry {
    fn start() -> Option<Registry> {
        let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools");
        let have = |bin: &str| {
            Command::new("sh").arg("-c").arg(format!("command -v {bin}")).status().map(|s| s.success()).unwrap_or(false)
        };
        if !(tools.join("registry_up.sh").is_file() && have("docker-registry") && have("skopeo")) {
            let reason = "registry_up.sh, docker-registry or skopeo missing (.ci/run installs them)";
            assert!(std::env::var_os("CI").is_none(), "{reason}");
            eprintln!("skipping: {reason}");
            return None;
        }
        // A free port: bind, read it, release it.
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
        let state = tempfile::tempdir().expect("tempdir");
        let status = Command::new("bash")
            .arg(tools.join("registry_up.sh"))
            .arg(port.to_string())
            .arg(state.path())
            .status()
            .expect("registry_up.sh");
        assert!(status.success(), "registry_up.sh failed");
        Some(Registry { port, state, tools })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(self.tools.join("registry_down.sh"))
            .arg(self.port.to_string())
            .arg(self.state.path())
            .status();
    }
}

#[test]
fn push_static_image_and_read_it_back() {
    let Some(registry) = Registry::start() else { return };
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
    // The last line of stdout is the pushed reference, for scripts.
    assert_eq!(first.stdout.lines().last(), Some(format!("{repo}@{digest}").as_str()), "{}", first.stdout);
    assert!(first.stderr.contains("(tags: v1): 16 blobs uploaded"), "{}", first.stderr);

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

    // A second push uploads nothing.
    let second = push("v2");
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stderr.contains("(tags: v2): 0 blobs uploaded (0 bytes), 16 already there"), "{}", second.stderr);
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

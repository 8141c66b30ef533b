//! `executor build --remote-cache` against a real HTTP cache: nginx's WebDAV module on
//! 127.0.0.1, started by ../shared/tools/http_cache_up.sh. A workspace fills the cache and
//! another one, elsewhere and with an empty local cache, builds from it without running an
//! action; a server that lies costs a warning per lie and never a wrong byte; a server that
//! is down costs one warning.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use executor::digest::Digest;

use crate::harness::{executor_bin, free_port, shared_tools, to_run, tree_contents, Run};

/// An nginx WebDAV cache on 127.0.0.1, stopped when dropped.
struct HttpCache {
    port: u16,
    /// nginx.conf, pid, logs, and `data/{ac,cas}/<hex>`: the entries, one file each.
    state: tempfile::TempDir,
    tools: PathBuf,
}

impl HttpCache {
    fn start() -> HttpCache {
        let tools = shared_tools(&["http_cache_up.sh", "http_cache_down.sh"], &["nginx", "curl"]);
        // The port was free when picked, but another process may take it before nginx binds
        // it: then another port is tried.
        for attempt in 1.. {
            let port = free_port();
            let state = tempfile::tempdir().expect("tempdir");
            let out = Command::new("bash")
                .arg(tools.join("http_cache_up.sh"))
                .arg(port.to_string())
                .arg(state.path())
                .output()
                .expect("http_cache_up.sh");
            if out.status.success() {
                return HttpCache { port, state, tools };
            }
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(attempt < 5 && stderr.contains("Address already in use"), "http_cache_up.sh failed:\n{stderr}");
        }
        unreachable!("the loop returns or fails")
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The files behind `/<kind>/<hex>` (`kind` is `ac` or `cas`), sorted by name.
    fn entries(&self, kind: &str) -> Vec<(String, PathBuf)> {
        let dir = self.state.path().join("data").join(kind);
        let mut out: Vec<(String, PathBuf)> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("entry"))
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .collect();
        out.sort();
        out
    }

    /// Replaces the URL, whose port changes from run to run.
    fn normalize(&self, text: &str) -> String {
        text.replace(&self.url(), "http://127.0.0.1:[PORT]")
    }
}

impl Drop for HttpCache {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(self.tools.join("http_cache_down.sh"))
            .arg(self.port.to_string())
            .arg(self.state.path())
            .stdout(Stdio::null())
            .status();
    }
}

/// A copy of this repository's `//images:static` workspace with its own, initially empty,
/// local cache.
struct StaticWorkspace {
    /// Holds the workspace and `cache/`.
    temp: tempfile::TempDir,
    /// The workspace root, at `temp/<subdir>`, so two copies differ in path depth too.
    ws: PathBuf,
}

impl StaticWorkspace {
    fn new(subdir: &str) -> Self {
        let temp = tempfile::tempdir().expect("tempdir");
        let ws = temp.path().join(subdir);
        crate::images::copy_repository(&ws);
        StaticWorkspace { temp, ws }
    }

    fn cache(&self) -> PathBuf {
        self.temp.path().join("cache")
    }

    /// `executor build [--remote-cache URL] //images:static`, as a member of a team that
    /// signs what it uploads and uses what the team signed.
    fn build(&self, remote: Option<&str>) -> Run {
        let (private, public) = team_keys(self.temp.path());
        let key_args = [
            "--remote-cache-key".to_owned(),
            public.display().to_string(),
            "--remote-cache-signing-key".to_owned(),
            private.display().to_string(),
        ];
        self.build_with(remote, &key_args)
    }

    /// `executor build [--remote-cache URL] ARGS //images:static`.
    fn build_with(&self, remote: Option<&str>, args: &[String]) -> Run {
        let mut cmd = Command::new(executor_bin());
        cmd.arg("build");
        if let Some(url) = remote {
            cmd.args(["--remote-cache", url]);
            cmd.args(args);
        }
        let out = cmd
            .arg("//images:static")
            .current_dir(&self.ws)
            .env("EXECUTOR_CACHE_DIR", self.cache())
            .env_remove("XDG_CACHE_HOME")
            .stdin(Stdio::null())
            .output()
            .expect("run executor");
        to_run(out)
    }

    /// Every file of the image layout, with its bytes and mode.
    fn layout(&self) -> Vec<(String, Vec<u8>, u32)> {
        let layout = self.ws.join("executor-out/images/static");
        let files = tree_contents(&layout);
        assert!(files.iter().any(|(path, _, _)| path == "index.json"), "no layout at {}", layout.display());
        files
    }
}

/// The counts of the `build succeeded: ...` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Summary {
    actions_run: u64,
    cache_hits: u64,
    remote_hits: u64,
}

impl Summary {
    /// Parses `build succeeded: 1 target, 0 actions run, 21 cache hits, 20 remote cache hits
    /// in 0.12s` (the remote count is there only with `--remote-cache`).
    fn of(run: &Run) -> Summary {
        let line = run
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix("build succeeded: "))
            .unwrap_or_else(|| panic!("no summary line:\n{}", run.stderr));
        let counts = line.rsplit_once(" in ").map_or(line, |(counts, _)| counts);
        let count = |what: &str| {
            counts
                .split(", ")
                .find_map(|part| {
                    let (n, rest) = part.split_once(' ')?;
                    (rest == what || rest.strip_prefix(what) == Some("s")).then(|| n.parse::<u64>().expect("count"))
                })
                .unwrap_or(0)
        };
        assert!(counts.contains("remote cache hit"), "built without --remote-cache? `{line}`");
        Summary {
            actions_run: count("action run").max(count("actions run")),
            cache_hits: count("cache hit"),
            remote_hits: count("remote cache hit"),
        }
    }

    fn actions(&self) -> u64 {
        self.actions_run + self.cache_hits + self.remote_hits
    }
}

/// The `warning:` lines of stderr.
fn warnings(run: &Run) -> Vec<&str> {
    run.stderr.lines().filter(|l| l.starts_with("warning:")).collect()
}

fn sha256_of_file(path: &Path) -> Digest {
    Digest::of(&fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// The team's Ed25519 key pair, written as PEM into `dir` (as `openssl genpkey -algorithm
/// ed25519` and `openssl pkey -pubout` write them).
fn team_keys(dir: &Path) -> (PathBuf, PathBuf) {
    use ed25519_dalek::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let (private, public) = (dir.join("team.key"), dir.join("team.pub"));
    fs::write(&private, key.to_pkcs8_pem(Default::default()).expect("pem").as_bytes()).expect("write key");
    fs::write(&public, key.verifying_key().to_public_key_pem(Default::default()).expect("pem")).expect("write pub");
    (private, public)
}

/// The result inside an `/ac/` entry (`{"format", "result": "<json>", "key", "signature"}`).
fn result_of(entry: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(entry["result"].as_str().expect("result string")).expect("result json")
}

/// The digests an action cache entry names (the result's `{"outputs": [{"kind", "digest", ...}]}`).
fn named_digests(entry: &serde_json::Value) -> Vec<String> {
    let result = result_of(entry);
    let outputs = result["outputs"].as_array().expect("outputs");
    outputs.iter().map(|o| o["digest"].as_str().expect("digest").to_owned()).collect()
}

/// Every blob in the local store (`<cache>/cas/sha256/<2 hex>/<hex>`) holds the bytes its
/// name says: nothing a server sent unverified got in.
fn assert_store_verified(cache: &Path) {
    let cas = cache.join("cas/sha256");
    let mut blobs = 0;
    for shard in fs::read_dir(&cas).unwrap_or_else(|e| panic!("{}: {e}", cas.display())) {
        for blob in fs::read_dir(shard.expect("shard").path()).expect("read shard") {
            let path = blob.expect("blob").path();
            let name = path.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
            assert_eq!(sha256_of_file(&path).hex(), name, "{} does not hold its bytes", path.display());
            blobs += 1;
        }
    }
    assert!(blobs > 0, "empty store at {}", cas.display());
}

#[test]
#[ignore = "needs nginx and curl (bash .ci/run installs them)"]
fn remote_cache_serves_every_action_to_another_workspace() {
    let cache = HttpCache::start();
    let url = cache.url();

    let first = StaticWorkspace::new("first/workspace");
    let run_first = first.build(Some(&url)).success();
    assert_eq!(warnings(&run_first), Vec::<&str>::new());
    let filled = Summary::of(&run_first);
    assert!(filled.actions_run > 0 && filled.remote_hits == 0, "{filled:?}");

    // It uploaded: every action result names blobs the server holds, and every blob there
    // holds the bytes its name says.
    let ac = cache.entries("ac");
    let cas = cache.entries("cas");
    assert!(!ac.is_empty() && !cas.is_empty(), "nothing uploaded: {} /ac/, {} /cas/", ac.len(), cas.len());
    for (hex, path) in &cas {
        assert_eq!(&sha256_of_file(path).hex(), hex, "/cas/{hex} does not hold its bytes");
    }
    for (hex, path) in &ac {
        let entry: serde_json::Value = serde_json::from_slice(&fs::read(path).expect("read")).expect("/ac/ json");
        for digest in named_digests(&entry) {
            let blob = digest.strip_prefix("sha256:").expect("sha256");
            assert!(cas.iter().any(|(h, _)| h == blob), "/ac/{hex} names {digest}, which the server lacks");
        }
    }

    // Another copy elsewhere, with an empty local cache: nothing runs, every action result
    // comes from the server (or from blobs it just downloaded), and the bytes are the same.
    let second = StaticWorkspace::new("second");
    let run_second = second.build(Some(&url)).success();
    assert_eq!(warnings(&run_second), Vec::<&str>::new());
    let served = Summary::of(&run_second);
    assert_eq!(served.actions_run, 0, "actions ran locally:\n{}", run_second.stderr);
    assert!(served.remote_hits > 0, "{served:?}");
    assert_eq!(served.actions(), filled.actions(), "{served:?} vs {filled:?}");
    assert_eq!(run_second.stdout, run_first.stdout);
    assert!(first.layout() == second.layout(), "the two layouts differ");
    assert_store_verified(&second.cache());
}

#[test]
#[ignore = "needs nginx and curl (bash .ci/run installs them)"]
fn remote_cache_that_lies_costs_warnings_never_a_wrong_byte() {
    let cache = HttpCache::start();
    let url = cache.url();
    let reference = StaticWorkspace::new("reference");
    let run_reference = reference.build(Some(&url)).success();
    let expected = reference.layout();

    let entries: Vec<(String, PathBuf, serde_json::Value)> = cache
        .entries("ac")
        .into_iter()
        .map(|(hex, path)| {
            let entry = serde_json::from_slice(&fs::read(&path).expect("read")).expect("/ac/ json");
            (hex, path, entry)
        })
        .collect();
    let kinds = |e: &serde_json::Value| -> Vec<String> {
        let result = result_of(e);
        let outputs = result["outputs"].as_array().expect("outputs");
        outputs.iter().map(|o| o["kind"].as_str().expect("kind").to_owned()).collect()
    };

    // A corrupt blob: the largest file output (a layer), every byte flipped, same length.
    // Only results of the action that makes it name it directly, and that action runs
    // before any other that needs it, so it is downloaded (and reported) once.
    let results: Vec<serde_json::Value> = entries.iter().map(|(_, _, e)| result_of(e)).collect();
    let tampered = results
        .iter()
        .flat_map(|r| r["outputs"].as_array().expect("outputs").iter())
        .filter(|o| o["kind"] == "file")
        .map(|o| (o["size"].as_u64().expect("size"), o["digest"].as_str().expect("digest").to_owned()))
        .max()
        .map(|(_, digest)| digest)
        .expect("a file output");
    let tampered_path = cache.state.path().join("data/cas").join(tampered.strip_prefix("sha256:").expect("sha256"));
    let flipped: Vec<u8> = fs::read(&tampered_path).expect("read").iter().map(|b| !b).collect();
    fs::write(&tampered_path, &flipped).expect("tamper");
    let tampered_got = Digest::of(&flipped).to_string();

    // Lying action results: a file output one byte longer than its blob (the signed text
    // edited), the signed result of an action with only file outputs served for one with a
    // directory output, and a body that is not an entry at all.
    // Not the results of `FetchApk` actions: their outputs are pinned, so a build takes them
    // from `/cas/` by digest (or from the local store, where the same package fetched for
    // another platform may already be) without reading `/ac/`, and which of them the
    // reference build ran and uploaded depends on timing.
    let lockfile = fs::read_to_string(reference.ws.join("executor.lock")).expect("lockfile");
    let pinned = |e: &serde_json::Value| named_digests(e).iter().any(|d| lockfile.contains(d.as_str()));
    let files: Vec<_> = entries
        .iter()
        .filter(|(_, _, e)| kinds(e).iter().all(|k| k == "file") && !named_digests(e).contains(&tampered) && !pinned(e))
        .collect();
    let dirs: Vec<_> = entries.iter().filter(|(_, _, e)| kinds(e).iter().any(|k| k == "dir")).collect();
    assert!(!files.is_empty() && dirs.len() >= 2, "{} file and {} directory entries", files.len(), dirs.len());

    let (size_lie_key, size_lie_path, size_lie) = files[0];
    let size_lie_result = result_of(size_lie);
    let size = size_lie_result["outputs"][0]["size"].as_u64().expect("size");
    let mut longer_result = size_lie_result.clone();
    longer_result["outputs"][0]["size"] = (size + 1).into();
    let mut longer = size_lie.clone();
    longer["result"] = serde_json::to_string(&longer_result).expect("json").into();
    fs::write(size_lie_path, serde_json::to_vec(&longer).expect("json")).expect("lie");

    let (shape_lie_key, shape_lie_path, _) = dirs[0];
    fs::write(shape_lie_path, serde_json::to_vec(size_lie).expect("json")).expect("lie");

    let (not_json_key, not_json_path, _) = dirs[1];
    fs::write(not_json_path, "<html>not a cache entry</html>").expect("lie");

    // A fresh workspace and local cache: the right bytes, one warning per lie.
    let fresh = StaticWorkspace::new("fresh");
    let run = fresh.build(Some(&url)).success();
    assert_eq!(run.stdout, run_reference.stdout);
    assert!(fresh.layout() == expected, "the layout differs from the reference build");
    let mut lines: Vec<String> = warnings(&run)
        .into_iter()
        .map(|line| {
            cache
                .normalize(line)
                .replace(&tampered_got, "[TAMPERED_GOT]")
                .replace(&tampered, "[TAMPERED]")
                .replace(&format!(", {} bytes)", flipped.len()), ", [TAMPERED_SIZE] bytes)")
                .replace(&format!("sha256:{size_lie_key}"), "[SIZE_LIE_KEY]")
                .replace(&format!("sha256:{shape_lie_key}"), "[SHAPE_LIE_KEY]")
                .replace(&format!("sha256:{not_json_key}"), "[NOT_JSON_KEY]")
        })
        .collect();
    lines.sort();
    insta::assert_snapshot!("remote_cache_lies", lines.join("\n"));

    // Nothing unverified reached the local store: a build from it alone runs nothing and
    // writes the same bytes.
    assert_store_verified(&fresh.cache());
    fs::remove_dir_all(fresh.ws.join("executor-out")).expect("remove executor-out");
    let again = fresh.build(None).success();
    assert!(!again.stderr.contains("warning"), "{}", again.stderr);
    assert!(again.stderr.contains(" 0 actions run, "), "{}", again.stderr);
    assert!(fresh.layout() == expected, "the layout from the local cache differs from the reference build");

    // The rebuild repaired the server: the next newcomer is served everything, no warning.
    let third = StaticWorkspace::new("third");
    let run = third.build(Some(&url)).success();
    assert!(warnings(&run).is_empty(), "{}", run.stderr);
    assert_eq!(Summary::of(&run).actions_run, 0, "{}", run.stderr);
    assert!(third.layout() == expected, "the layout served after the repair differs from the reference build");
}

#[test]
#[ignore = "needs nginx and curl (bash .ci/run installs them)"]
fn without_a_key_the_remote_cache_serves_only_pinned_packages() {
    let cache = HttpCache::start();
    let url = cache.url();
    let team = StaticWorkspace::new("team");
    let run_team = team.build(Some(&url)).success();
    // The entries on the server are signed by the team, but this build was given no key:
    // it reads no action result; it takes from the server only the packages the lockfile
    // pins, each checked completely, and builds the rest itself.
    let outsider = StaticWorkspace::new("outsider");
    let run = outsider.build_with(Some(&url), &[]).success();
    assert_eq!(warnings(&run), Vec::<&str>::new());
    let summary = Summary::of(&run);
    // Which fetch of a package shared by several archs downloads it and which ones find it
    // in the store depends on scheduling: count the other actions.
    let ran = |r: &Run| r.stderr.lines().filter(|l| l.starts_with('[') && !l.contains("] FetchApk ")).count() as u64;
    assert!(summary.remote_hits > 0, "{}", run.stderr);
    assert!(!run.stderr.contains("] FetchApk "), "{}", run.stderr);
    assert_eq!(summary.actions_run, ran(&run), "{}", run.stderr);
    assert_eq!(ran(&run), ran(&run_team), "{}", run.stderr);
    assert_eq!(run.stdout, run_team.stdout);
    assert!(outsider.layout() == team.layout(), "the layouts differ");
    // `--remote-cache-trust` takes every result from the server, signed or not.
    let trusting = StaticWorkspace::new("trusting");
    let run = trusting.build_with(Some(&url), &["--remote-cache-trust".to_owned()]).success();
    assert_eq!(Summary::of(&run).actions_run, 0, "{}", run.stderr);
    assert!(trusting.layout() == team.layout(), "the layouts differ");
}

#[test]
fn remote_cache_that_is_down_costs_one_warning() {
    // A port nothing listens on: bound a moment ago, released.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let ws = StaticWorkspace::new("ws");
    let run = ws.build(Some(&url)).success();
    let summary = Summary::of(&run);
    assert_eq!(summary.remote_hits, 0);
    assert!(summary.actions_run > 0, "{summary:?}");
    let about_remote: Vec<&str> =
        run.stderr.lines().filter(|l| l.contains("remote cache") && !l.starts_with("build succeeded:")).collect();
    assert_eq!(about_remote.len(), 1, "{}", run.stderr);
    assert_eq!(warnings(&run), about_remote, "{}", run.stderr);
    // Which action asks first depends on scheduling: its key is not part of the text.
    let line = about_remote[0].replace(&url, "http://127.0.0.1:[PORT]");
    // It may be a package asked for by digest (`/cas/`) or an action result (`/ac/`).
    let line = match line.split_once(" /ac/").or_else(|| line.split_once(" /cas/")) {
        Some((head, tail)) if tail.len() >= 64 => format!("{head} /[ac or cas]/[HEX]{}", &tail[64..]),
        _ => line,
    };
    insta::assert_snapshot!("remote_cache_down", line);
    ws.layout();
}

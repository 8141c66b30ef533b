//! A builder-style harness: a workspace in a temporary directory, the real `executor` binary,
//! and output normalized so that snapshots do not depend on where the test ran.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `executor` binary under test.
pub fn executor_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_executor"))
}

/// A temporary workspace with its own cache directory.
pub struct Workspace {
    /// Holds the workspace (`ws/`) and the cache (`cache/`).
    pub temp: tempfile::TempDir,
}

/// What one command did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout and stderr, with temporary paths and timings replaced by placeholders.
    pub fn normalized(&self, ws: &Workspace) -> String {
        format!(
            "exit code: {}\n--- stdout\n{}--- stderr\n{}",
            self.code,
            ws.normalize(&self.stdout),
            ws.normalize(&self.stderr)
        )
    }

    /// Panics with the whole output unless the command succeeded.
    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(self.code, 0, "command failed\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    /// Panics unless the command failed with `code`.
    #[track_caller]
    pub fn failure(self, code: i32) -> Self {
        assert_eq!(self.code, code, "unexpected exit code\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

impl Workspace {
    /// An empty workspace (`WORKSPACE` only).
    pub fn new() -> Self {
        let temp = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(temp.path().join("ws")).expect("mkdir ws");
        fs::write(temp.path().join("ws/WORKSPACE"), "").expect("write WORKSPACE");
        Workspace { temp }
    }

    /// The workspace root.
    pub fn root(&self) -> PathBuf {
        self.temp.path().join("ws")
    }

    /// The cache directory.
    pub fn cache(&self) -> PathBuf {
        self.temp.path().join("cache")
    }

    /// Writes a file below the workspace root, creating directories.
    pub fn file(self, path: &str, content: &str) -> Self {
        self.write(path, content);
        self
    }

    /// Writes a file below the workspace root.
    pub fn write(&self, path: &str, content: &str) {
        let full = self.root().join(path);
        fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        fs::write(full, content).expect("write");
    }

    /// Reads a file below the workspace root.
    pub fn read(&self, path: &str) -> String {
        fs::read_to_string(self.root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
    }

    /// A command running `executor ARGS` in `dir` (relative to the root) with this cache.
    pub fn command_in(&self, dir: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(executor_bin());
        cmd.args(args)
            .current_dir(self.root().join(dir))
            .env("EXECUTOR_CACHE_DIR", self.cache())
            .env_remove("XDG_CACHE_HOME")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `executor ARGS` at the workspace root.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_in("", args)
    }

    /// Runs `executor ARGS` in a subdirectory.
    pub fn run_in(&self, dir: &str, args: &[&str]) -> Run {
        to_run(self.command_in(dir, args).output().expect("run executor"))
    }

    /// Runs `executor ARGS` at the workspace root; also returns its peak resident memory in
    /// MiB, as the kernel accounted it.
    #[allow(clippy::zombie_processes)] // reaped by `wait_with_rusage`, which `Child` cannot do
    pub fn run_measuring_memory(&self, args: &[&str]) -> (Run, u64) {
        use std::io::Read;
        let mut child =
            self.command_in("", args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn executor");
        let read = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    pipe.read_to_end(&mut bytes).expect("read output");
                }
                String::from_utf8_lossy(&bytes).into_owned()
            })
        };
        let stdout = read(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
        let stderr = read(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
        let (status, max_rss_kib) = wait_with_rusage(child.id());
        let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -libc::WTERMSIG(status) };
        let run = Run { code, stdout: stdout.join().expect("stdout"), stderr: stderr.join().expect("stderr") };
        (run, max_rss_kib / 1024)
    }

    /// Replaces this workspace's temporary paths and timings.
    pub fn normalize(&self, text: &str) -> String {
        let mut out = text.replace(&self.root().display().to_string(), "[WS]");
        out = out.replace(&self.cache().display().to_string(), "[CACHE]");
        out = out.replace(&self.temp.path().display().to_string(), "[TMP]");
        normalize_progress(&normalize_time(&out))
    }
}

/// Converts process output.
pub fn to_run(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Progress lines (`[3/7] Mnemonic //label -> path`) come in the order actions start, which
/// depends on scheduling: their counters become `[n/N]` and each run of them is sorted.
pub fn normalize_progress(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut run: Vec<String> = Vec::new();
    let is_progress = |l: &str| l.starts_with('[') && l.find("] ").is_some_and(|i| l[1..i].contains('/'));
    for line in text.split_inclusive('\n') {
        if is_progress(line) {
            let rest = &line[line.find("] ").map(|i| i + 2).unwrap_or(0)..];
            run.push(format!("[n/N] {rest}"));
        } else {
            run.sort();
            out.append(&mut run);
            out.push(line.to_owned());
        }
    }
    run.sort();
    out.append(&mut run);
    out.concat()
}

/// `in 0.12s` -> `in [TIME]`.
pub fn normalize_time(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(" in ") {
        out.push_str(&rest[..pos + 4]);
        rest = &rest[pos + 4..];
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if end > 0 && rest[end..].starts_with('s') {
            out.push_str("[TIME]");
            rest = &rest[end + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// Every regular file below `dir` (skipping `.executor` state) with its bytes and mode.
pub fn tree_contents(dir: &Path) -> Vec<(String, Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("read_dir") {
            let entry = entry.expect("entry");
            let path = entry.path();
            if entry.file_name() == ".executor" {
                continue;
            }
            let meta = fs::symlink_metadata(&path).expect("meta");
            if meta.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("prefix").display().to_string();
                out.push((rel, fs::read(&path).expect("read"), meta.permissions().mode() & 0o7777));
            }
        }
    }
    out.sort();
    out
}

/// A loopback port that was free a moment ago: bind, read it, release it.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// Whether `bin` is on `PATH`.
pub fn have(bin: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {bin}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Fails the test unless every one of `bins` is on `PATH`.
///
/// A test that needs a program besides cargo is marked `#[ignore = "needs ..."]`: plain
/// `cargo test` lists it as ignored, and `cargo test -- --include-ignored` (README's test
/// command, which `.ci/run` runs after installing the programs) runs it, failing if a
/// program is missing. It never passes without doing its checks.
pub fn require(bins: &[&str]) {
    let missing: Vec<&str> = bins.iter().copied().filter(|b| !have(b)).collect();
    assert!(missing.is_empty(), "missing {}: install with `bash .ci/run` (see README.md, Tests)", missing.join(", "));
}

/// The program at `path` (such as GNU time); fails the test if it is not there (see
/// [`require`]).
pub fn tool(name: &str, path: &str) -> PathBuf {
    let path = PathBuf::from(path);
    assert!(path.is_file(), "missing {name} at {}: install with `bash .ci/run`", path.display());
    path
}

/// `../shared/tools`, after checking it holds `scripts` and that every one of `bins` is on
/// `PATH`; fails the test otherwise (see [`require`]).
pub fn shared_tools(scripts: &[&str], bins: &[&str]) -> PathBuf {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools");
    for script in scripts {
        assert!(tools.join(script).is_file(), "missing {}: the project's shared tools", tools.join(script).display());
    }
    require(bins);
    tools
}

/// `../shared/fixtures/apk` (real signed APK data), which every project machine has.
pub fn fixtures() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/apk");
    fs::canonicalize(&dir).unwrap_or_else(|e| panic!("fixtures missing at {}: {e}", dir.display()))
}

/// The repository's TEST signing key (`third_party/keys/executor-test-key.rsa`), which signs
/// the packages and indexes tests make.
pub fn test_signing_key() -> executor_testkit::apk::SigningKey {
    executor_testkit::apk::SigningKey::read_file(&test_key_path()).expect("test key")
}

fn test_key_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../third_party/keys/executor-test-key.rsa")
}

impl Workspace {
    /// A workspace whose `WORKSPACE` declares `apk_repository(name, url, keys)` with the
    /// given key files copied from the fixtures into `keys/`.
    pub fn with_apk_repository(name: &str, url: &str, key_files: &[PathBuf], extra: &str) -> Self {
        let ws = Workspace::new();
        let mut labels = Vec::new();
        for key in key_files {
            let file_name = key.file_name().and_then(|n| n.to_str()).expect("key name").to_owned();
            fs::create_dir_all(ws.root().join("keys")).expect("mkdir keys");
            fs::copy(key, ws.root().join("keys").join(&file_name)).expect("copy key");
            labels.push(format!("\"//keys:{file_name}\""));
        }
        ws.write(
            "WORKSPACE",
            &format!(
                "apk_repository(\n    name = \"{name}\",\n    url = \"{url}\",\n    keys = [{}],{extra}\n)\n",
                labels.join(", ")
            ),
        );
        ws
    }

    /// A workspace declaring the repository `test` at `<ws>/repo`, which trusts the test key
    /// (see [`test_signing_key`], copied to `//keys`); `files` (packages, `APKINDEX.tar.gz`)
    /// are written into `repo/x86_64/`.
    pub fn with_test_repository(files: &[(String, Vec<u8>)]) -> Self {
        let ws = Workspace::new();
        let dir = ws.root().join("repo/x86_64");
        fs::create_dir_all(&dir).expect("mkdir");
        for (name, bytes) in files {
            fs::write(dir.join(name), bytes).expect("write repository file");
        }
        fs::create_dir_all(ws.root().join("keys")).expect("mkdir keys");
        fs::write(ws.root().join("keys/BUILD"), "").expect("BUILD");
        fs::copy(test_key_path().with_extension("rsa.pub"), ws.root().join("keys/executor-test-key.rsa.pub"))
            .expect("copy key");
        ws.write(
            "WORKSPACE",
            "apk_repository(name = \"test\", url = \"file://repo\", keys = [\"//keys:executor-test-key.rsa.pub\"])\n",
        );
        ws
    }

    /// Also replaces the fixtures path.
    pub fn normalize_fixtures(&self, text: &str, fixtures: &Path) -> String {
        self.normalize(&text.replace(&fixtures.display().to_string(), "[FIXTURES]"))
    }
}

/// Neither `password` nor the Basic credential `user:password` (base64) appears in what
/// `run` printed.
#[track_caller]
pub fn assert_secret_not_shown(run: &Run, user: &str, password: &str) {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    for secret in [password, encoded.as_str()] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "secret shown:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
}

/// Waits for the child process `pid`: its wait status and peak resident memory in KiB.
#[allow(unsafe_code)]
fn wait_with_rusage(pid: u32) -> (i32, u64) {
    let pid = i32::try_from(pid).expect("pid");
    let mut status = 0;
    // SAFETY: `rusage` is a plain C struct that `wait4` fills in; `pid` is our own child,
    // not yet waited for (the `Child` handle is never waited on afterwards).
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::wait4(pid, &mut status, 0, &mut usage), pid, "wait4");
        usage
    };
    (status, u64::try_from(usage.ru_maxrss).unwrap_or(0))
}

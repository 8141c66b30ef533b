//! The commands: glue between the command line and the phases.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::action::Artifact;
use crate::builder::{stderr_is_terminal, BuildError, BuildOptions, Builder};
use crate::cli::{Cli, Command, QueryOutput};
use crate::error::Error;
use crate::fetch::{FetchOptions, UrlFetcher};
use crate::filecache::FileDigestCache;
use crate::graph::{analyze, expand, Node, TargetGraph};
use crate::label::{Label, TargetPattern};
use crate::load::{Limits, Loader};
use crate::remote_cache::{RemoteCacheConfig, RemoteCacheOptions};
use crate::rules::AnalysisEnv;
use crate::store::{Store, StoreError};
use crate::workspace::{find_root, OUT_DIR};
use executor_rules::release;
use std::sync::Arc;

/// The rule sets this binary builds with: the engine's built-ins and the image rules.
pub fn registry() -> crate::rules::Registry {
    crate::rules::Registry::new(&[&executor_rules::IMAGE_RULES])
}

/// Runs one command.
pub fn run(cli: Cli) -> Result<(), Error> {
    let cwd = std::env::current_dir().map_err(|e| Error::Usage(format!("cannot read the current directory: {e}")))?;
    let fetch_options = FetchOptions {
        read_timeout: std::time::Duration::from_secs(cli.fetch_timeout.max(1)),
        connect_timeout: std::time::Duration::from_secs(cli.fetch_timeout.clamp(1, 10)),
        retries: cli.fetch_retries,
        deadline: std::time::Duration::from_secs(cli.fetch_deadline.max(1)),
        ..FetchOptions::default()
    };
    let remote_config = match &cli.remote_cache {
        Some(url) => Some(RemoteCacheConfig {
            url: url.clone(),
            keys: cli.remote_cache_key.clone(),
            signing_key: cli.remote_cache_signing_key.clone(),
            trust_server: cli.remote_cache_trust,
        }),
        None if !cli.remote_cache_key.is_empty() || cli.remote_cache_signing_key.is_some() || cli.remote_cache_trust => {
            return Err(Error::Usage(
                "`--remote-cache-key`, `--remote-cache-signing-key` and `--remote-cache-trust` need `--remote-cache URL`"
                    .into(),
            ))
        }
        None => None,
    };
    let limits = cli.starlark_limits()?;
    match cli.command {
        Command::Docs => {
            print!("{}", registry().markdown());
            Ok(())
        }
        Command::Version => {
            println!("executor {}", crate::action::EXECUTOR_VERSION);
            Ok(())
        }
        Command::Clean { verify: true, .. } => {
            let dir = cache_dir(cli.cache_dir.as_deref(), &cwd)?;
            let report = Store::verify_all(&dir)?;
            eprintln!(
                "checked {} blobs and {} action results in {}: removed {} corrupt blobs and {} action results",
                report.blobs,
                report.entries,
                dir.display(),
                report.blobs_removed,
                report.entries_removed
            );
            Ok(())
        }
        Command::Clean { cache, .. } => {
            let (root, _) = find_root(&cwd, cli.workspace.as_deref())?;
            let out = root.join(OUT_DIR);
            if out.exists() {
                let _lock = lock_workspace(&out)?;
                remove_dir(&out)?;
            }
            eprintln!("removed {OUT_DIR}/");
            if cache {
                let dir = cache_dir(cli.cache_dir.as_deref(), &cwd)?;
                Store::wipe(&dir)?;
                eprintln!("emptied the cache at {}", dir.display());
            }
            Ok(())
        }
        Command::Query { expression, output } => {
            let loader = load(&cwd, cli.workspace.as_deref(), limits)?;
            query(&loader, &cwd, &expression, output)
        }
        Command::Lock { check, import_apko, target } => {
            let loader = load(&cwd, cli.workspace.as_deref(), limits)?;
            if check {
                executor_rules::lock::check(&loader)?;
            }
            let store = Store::open(&cache_dir(cli.cache_dir.as_deref(), &cwd)?)?;
            let fetcher = UrlFetcher::new(loader.workspace.root.clone(), fetch_options);
            if check {
                // Every pin against its package's bytes (from the cache, else fetched).
                executor_rules::lock::check_pins(&loader, &fetcher, &store)?;
                eprintln!("{} is up to date", executor_rules::lockfile::LOCKFILE);
                return Ok(());
            }
            let report = match (import_apko, target) {
                (Some(file), Some(target)) => {
                    let label = parse_label(&loader, &cwd, &target)?;
                    executor_rules::apko::import(&loader, &fetcher, &store, &cwd.join(file), &label)?
                }
                _ => executor_rules::lock::lock(&loader, &fetcher, &store)?,
            };
            let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
            eprintln!(
                "locked {} for {} ({} fetched); {} {}",
                plural(report.packages, "package"),
                plural(report.targets, "target"),
                report.fetched,
                executor_rules::lockfile::LOCKFILE,
                if report.changed { "written" } else { "unchanged" }
            );
            Ok(())
        }
        Command::Push { target, repository, tags, insecure, locked, mount_from, chunk_size } => {
            // Everything about the destination is checked before anything is built.
            let (reference, creds) = release::push_destination(&repository, tags)?;
            let mut push_options = release::push_options(&fetch_options, insecure);
            if let Some(from) = mount_from {
                let from = from.strip_prefix(&format!("{}/", reference.host)).unwrap_or(&from).to_owned();
                crate::registry::reference::check_repository(&from)
                    .map_err(|reason| Error::Usage(format!("--mount-from `{from}`: {reason}")))?;
                push_options.mount_from = Some(from);
            }
            if let Some(size) = chunk_size {
                if size == 0 {
                    return Err(Error::Usage("`--chunk-size` must be at least 1 byte".into()));
                }
                push_options.chunk_threshold = size;
                push_options.chunk_size = size;
            }
            let options = BuildOptions {
                jobs: default_jobs(),
                keep_going: false,
                progress_bar: stderr_is_terminal(),
                remote_cache: remote_config.clone(),
            };
            let args = BuildArgs::new(&cwd, cli.workspace.as_deref(), cli.cache_dir.as_deref(), locked, limits);
            let built = build(args, &[target], options, fetch_options)?;
            let image = release::built_image(&built.requested, &built.provided, &built.out_root, "push", "pushed")?;
            release::push(&image, &reference, creds, push_options)
        }
        Command::Build { patterns, jobs, keep_going, locked } => {
            let jobs = match jobs {
                Some(0) => return Err(Error::Usage("`--jobs` must be at least 1".into())),
                Some(j) => j,
                None => default_jobs(),
            };
            let options =
                BuildOptions { jobs, keep_going, progress_bar: stderr_is_terminal(), remote_cache: remote_config };
            let args = BuildArgs::new(&cwd, cli.workspace.as_deref(), cli.cache_dir.as_deref(), locked, limits);
            build(args, &patterns, options, fetch_options).map(|_| ())
        }
        Command::Verify { target, expected, insecure } => verify(
            &cwd,
            cli.workspace.as_deref(),
            cli.remote_cache.is_some(),
            &target,
            &expected,
            insecure,
            fetch_options,
            limits,
        ),
    }
}

/// What a successful build made, for commands that go on with it (`push`).
struct Built {
    /// The requested targets.
    requested: Vec<Label>,
    /// What each requested target provides.
    provided: std::collections::BTreeMap<Label, crate::rules::Provided>,
    /// `executor-out/` of the workspace.
    out_root: PathBuf,
}

/// `executor verify`: rebuilds `target` with `--locked` in a fresh cache and output
/// directory (removed afterwards), without any remote cache, and compares its digest with
/// `expected`.
#[allow(clippy::too_many_arguments)]
fn verify(
    cwd: &Path,
    workspace: Option<&Path>,
    remote_given: bool,
    target: &str,
    expected: &str,
    insecure: bool,
    fetch_options: FetchOptions,
    limits: Limits,
) -> Result<(), Error> {
    let expected_digest = release::expected_digest(expected, insecure, &fetch_options)?;
    if remote_given {
        eprintln!("note: `verify` ignores --remote-cache: a release check rebuilds everything itself");
    }
    let scratch = Scratch::new()?;
    let options = BuildOptions {
        jobs: default_jobs(),
        keep_going: false,
        progress_bar: stderr_is_terminal(),
        remote_cache: None,
    };
    let (cache, out) = (scratch.0.join("cache"), scratch.0.join("out"));
    let args = BuildArgs {
        out_dir: Some(&out),
        list_outputs: false,
        ..BuildArgs::new(cwd, workspace, Some(&cache), true, limits)
    };
    let built = build(args, &[target.to_owned()], options, fetch_options)?;
    let image = release::built_image(&built.requested, &built.provided, &built.out_root, "verify", "verified")?;
    release::check_rebuilt(&image, &expected_digest)
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// A private directory under the system's temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, Error> {
        let base = std::env::temp_dir();
        for attempt in 0..100u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let dir = base.join(format!("executor-verify-{}-{nanos:x}-{attempt}", std::process::id()));
            match fs::create_dir(&dir) {
                Ok(()) => return Ok(Scratch(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(source) => {
                    return Err(Error::Store(StoreError::Io(executor_base::io::PathError::new(
                        "cannot create",
                        dir,
                        source,
                    ))))
                }
            }
        }
        Err(Error::Usage(format!("cannot create a fresh directory under {}", base.display())))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn load(cwd: &Path, workspace: Option<&Path>, limits: Limits) -> Result<Loader, Error> {
    let (root, file) = find_root(cwd, workspace)?;
    Ok(Loader::new(root, file, limits, registry())?)
}

/// Parses one label given on the command line (relative to the current package).
fn parse_label(loader: &Loader, cwd: &Path, text: &str) -> Result<Label, Error> {
    match parse_patterns(loader, cwd, &[text.to_owned()])?.pop() {
        Some(TargetPattern::Target(label)) => Ok(label),
        _ => Err(Error::Usage(format!("`{text}` must name one target, not a pattern"))),
    }
}

fn parse_patterns(loader: &Loader, cwd: &Path, texts: &[String]) -> Result<Vec<TargetPattern>, Error> {
    let cwd = std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_owned());
    let base = loader.workspace.package_of_dir(&cwd);
    texts.iter().map(|t| TargetPattern::parse(t, &base).map_err(Error::from)).collect()
}

/// The cache directory: the flag, `$EXECUTOR_CACHE_DIR`, `$XDG_CACHE_HOME/executor`, or
/// `~/.cache/executor`.
fn cache_dir(flag: Option<&Path>, cwd: &Path) -> Result<PathBuf, Error> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let dir = flag
        .map(Path::to_owned)
        .or_else(|| env("EXECUTOR_CACHE_DIR"))
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("executor")))
        .or_else(|| env("HOME").map(|d| d.join(".cache/executor")))
        .ok_or_else(|| Error::Usage("cannot choose a cache directory: set `HOME` or pass `--cache-dir DIR`".into()))?;
    Ok(cwd.join(dir))
}

fn remove_dir(dir: &Path) -> Result<(), Error> {
    fs::remove_dir_all(dir).map_err(|source| {
        Error::Store(StoreError::Io(executor_base::io::PathError::new("cannot remove", dir.to_owned(), source)))
    })
}

/// Takes the workspace's exclusive lock, waiting (and saying so) while another command holds it.
fn lock_workspace(out: &Path) -> Result<File, Error> {
    let state = out.join(".executor");
    let io = |what, path: &Path| {
        let path = path.to_owned();
        move |source| Error::Store(StoreError::Io(executor_base::io::PathError::new(what, path, source)))
    };
    // Outputs are written only into real directories: a link here would send them elsewhere.
    for dir in [out, state.as_path()] {
        if fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
            let target = fs::read_link(dir).map(|t| t.display().to_string()).unwrap_or_default();
            return Err(Error::Build(BuildError::OutputIsLink { path: dir.display().to_string(), target }));
        }
    }
    let path = state.join("lock");
    let mut said = false;
    loop {
        fs::create_dir_all(&state).map_err(io("cannot create", &state))?;
        let file =
            File::options().create(true).truncate(false).write(true).open(&path).map_err(io("cannot open", &path))?;
        if file.try_lock().is_err() {
            if !said {
                eprintln!("waiting for another executor command in this workspace to finish...");
                said = true;
            }
            file.lock().map_err(io("cannot lock", &path))?;
        }
        // `executor clean` removes the lock file with `executor-out/` while holding it: a lock
        // taken on a file no longer at `path` excludes nobody, so open the new one.
        if same_file(&file, &path) {
            return Ok(file);
        }
    }
}

/// Whether the open `file` is the one at `path` now.
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Marks `executor-out/` as being written (`.executor/in-progress`) for as long as it lives.
/// A command killed mid-way leaves the mark; the next one then removes the temporaries the
/// killed one left (`.NAME.tmp-PID` files and directories) before it starts.
struct InProgress(PathBuf);

impl InProgress {
    /// Call with the workspace lock held.
    fn begin(out: &Path) -> Result<Self, Error> {
        let mark = out.join(".executor/in-progress");
        if mark.exists() {
            sweep_temporaries(out);
        }
        fs::write(&mark, b"").map_err(|source| {
            Error::Store(StoreError::Io(executor_base::io::PathError::new("cannot write", mark.clone(), source)))
        })?;
        Ok(InProgress(mark))
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Removes every `.NAME.tmp-PID` below `out` (never following symlinks).
fn sweep_temporaries(out: &Path) {
    let mut stack = vec![out.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Ok(meta) = fs::symlink_metadata(&path) else { continue };
            if name.starts_with('.') && name.contains(".tmp-") {
                let _ = if meta.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
            } else if meta.is_dir() {
                stack.push(path);
            }
        }
    }
}

/// Where and how a build runs, besides what it builds.
struct BuildArgs<'a> {
    cwd: &'a Path,
    /// `--workspace`.
    workspace: Option<&'a Path>,
    /// `--cache-dir`.
    cache: Option<&'a Path>,
    /// Instead of the workspace's `executor-out/`.
    out_dir: Option<&'a Path>,
    /// Print each requested target's outputs and digests on stdout.
    list_outputs: bool,
    /// `--locked`.
    locked: bool,
    /// `--starlark-*`.
    limits: Limits,
}

impl<'a> BuildArgs<'a> {
    fn new(cwd: &'a Path, workspace: Option<&'a Path>, cache: Option<&'a Path>, locked: bool, limits: Limits) -> Self {
        BuildArgs { cwd, workspace, cache, out_dir: None, list_outputs: true, locked, limits }
    }
}

fn build(
    args: BuildArgs<'_>,
    patterns: &[String],
    options: BuildOptions,
    fetch_options: FetchOptions,
) -> Result<Built, Error> {
    let BuildArgs { cwd, workspace, cache, out_dir, list_outputs, locked, limits } = args;
    let start = Instant::now();
    // A bad url is a usage error at once; a bad server only ever costs a warning.
    let remote = options
        .remote_cache
        .as_ref()
        .map(|config| config.open(RemoteCacheOptions::default()))
        .transpose()
        .map_err(Error::Usage)?;
    let loader = load(cwd, workspace, limits)?;
    if locked {
        executor_rules::lock::check(&loader)?;
    }
    let patterns = parse_patterns(&loader, cwd, patterns)?;
    let requested = expand(&loader, &patterns)?;
    let graph = TargetGraph::build(&loader, requested)?;
    let state = loader.registry.analysis_state(&loader.workspace)?;
    let fetcher = Arc::new(UrlFetcher::new(loader.workspace.root.clone(), fetch_options));
    let env = AnalysisEnv::new(loader.workspace.clone(), fetcher, state);
    let analysis = analyze(&graph, &env)?;
    for warning in &analysis.warnings {
        eprintln!("warning: {warning}");
    }
    let store = Store::open(&cache_dir(cache, cwd)?)?;
    let out_root = out_dir.map(Path::to_owned).unwrap_or_else(|| loader.workspace.root.join(OUT_DIR));
    let _lock = lock_workspace(&out_root)?;
    let _in_progress = InProgress::begin(&out_root)?;
    let files = FileDigestCache::load(out_root.join(".executor/file-digests.json"));
    let builder =
        Builder { store: &store, files: &files, out_root: out_root.clone(), options, remote: remote.as_ref() };
    let result = builder.run(&analysis)?;

    // Digests of source files that targets provide directly (filegroups of sources).
    let sources = std::sync::Mutex::new(Vec::new());
    let mut stdout = std::io::stdout().lock();
    for label in graph.requested.iter().filter(|_| list_outputs) {
        let provided = &analysis.provided[label];
        // Images and indexes are named by their manifest or index digest, which is what a
        // registry will serve, rather than by the digest of their directory tree.
        if let Some(line) = loader.registry.describe(provided, &out_root) {
            let _ = writeln!(stdout, "{label}\n{line}");
            continue;
        }
        let mut lines = Vec::new();
        for file in &provided.files {
            let digest = match file {
                Artifact::Source { file: path, .. } => files.ingest(path, &store).ok().map(|(d, _)| d),
                Artifact::Derived { .. } => result.digest(file, &sources),
            };
            if let Some(d) = digest {
                lines.push(format!("  {}  {d}", file.display_path()));
            }
        }
        if lines.len() == provided.files.len() {
            let _ = writeln!(stdout, "{label}");
            for line in lines {
                let _ = writeln!(stdout, "{line}");
            }
        }
    }
    drop(stdout);
    files.save();
    let stats = &result.stats;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    // Remote hits are shown only with `--remote-cache`, so output without it is unchanged.
    let remote_hits =
        remote.as_ref().map(|_| format!(", {}", plural(stats.remote_hits, "remote cache hit"))).unwrap_or_default();
    let summary = format!(
        "{}, {} run, {}{remote_hits} in {:.2}s",
        plural(graph.requested.len(), "target"),
        plural(stats.actions_run, "action"),
        plural(stats.cache_hits, "cache hit"),
        start.elapsed().as_secs_f64()
    );
    if result.errors.is_empty() {
        eprintln!("build succeeded: {summary}");
        let provided = graph.requested.iter().map(|l| (l.clone(), analysis.provided[l].clone())).collect();
        return Ok(Built { requested: graph.requested.clone(), provided, out_root });
    }
    eprintln!("build failed: {summary}");
    Err(Error::Build(BuildError::Actions { failures: result.errors, skipped: stats.skipped }))
}

fn query(loader: &Loader, cwd: &Path, expression: &str, output: QueryOutput) -> Result<(), Error> {
    let expression = expression.trim();
    let (deps, inner) = match expression.strip_prefix("deps(").and_then(|r| r.strip_suffix(')')) {
        Some(inner) => (true, inner.trim()),
        None => (false, expression),
    };
    let patterns = parse_patterns(loader, cwd, &[inner.to_owned()])?;
    let requested = expand(loader, &patterns)?;
    let mut nodes: Vec<(Label, Node)> = Vec::new();
    if deps {
        let graph = TargetGraph::build(loader, requested.clone())?;
        let mut labels = graph.transitive_deps(&requested);
        labels.extend(requested);
        labels.sort();
        labels.dedup();
        for l in labels {
            let node = graph.nodes[&l].clone();
            nodes.push((l, node));
        }
    } else {
        for l in requested {
            let package = loader.package(l.repo.as_ref(), &l.package)?;
            if let Some(t) = package.as_ref().and_then(|p| p.targets.get(&l.name)) {
                nodes.push((l, Node::Rule(t.clone())));
            }
        }
    }
    let mut out = std::io::stdout().lock();
    match output {
        QueryOutput::Label => {
            for (l, _) in &nodes {
                let _ = writeln!(out, "{l}");
            }
        }
        QueryOutput::LabelKind => {
            for (l, node) in &nodes {
                let kind = match node {
                    Node::Rule(t) => format!("{} rule", t.kind()),
                    Node::File { .. } => "source file".to_owned(),
                };
                let _ = writeln!(out, "{kind} {l}");
            }
        }
        QueryOutput::Json => {
            let items: Vec<serde_json::Value> = nodes
                .iter()
                .map(|(l, node)| match node {
                    Node::Rule(t) => serde_json::json!({
                        "label": l.to_string(),
                        "kind": t.kind(),
                        "location": t.location,
                        "attrs": t.attrs,
                        "deps": t.deps().iter().map(|(_, d)| d.to_string()).collect::<Vec<_>>(),
                    }),
                    Node::File { path, .. } => serde_json::json!({
                        "label": l.to_string(),
                        "kind": "source file",
                        "path": path,
                    }),
                })
                .collect();
            let text = serde_json::to_string_pretty(&items).unwrap_or_default();
            let _ = writeln!(out, "{text}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_waiting_while_clean_removes_the_lock_file_takes_the_new_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join(OUT_DIR);
        let held = lock_workspace(&out).expect("first lock");
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn({
            let out = out.clone();
            move || {
                let file = lock_workspace(&out).expect("second lock");
                let _ = tx.send(());
                file
            }
        });
        // Long enough for the waiter to block on the file the first command holds.
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(rx.try_recv().is_err(), "the second command waits");
        // What `executor clean` does: remove the directory, lock file and all, then release.
        fs::remove_dir_all(&out).expect("clean");
        drop(held);
        let file = waiter.join().expect("waiter");
        let path = out.join(".executor/lock");
        assert!(same_file(&file, &path), "the waiter holds the lock file now at {}", path.display());
        // So a third command waits for it rather than running beside it.
        let third = File::options().write(true).open(&path).expect("open");
        assert!(third.try_lock().is_err(), "the lock at the path is held");
    }
}

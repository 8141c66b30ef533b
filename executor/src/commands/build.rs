//! `executor build`: load, analyze, run the actions, materialize, print outputs.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::{cache_dir, load, parse_patterns};
use crate::action::Artifact;
use crate::builder::{BuildError, BuildOptions, Builder};
use crate::error::Error;
use crate::fetch::{FetchOptions, UrlFetcher};
use crate::filecache::FileDigestCache;
use crate::graph::{analyze, expand, TargetGraph};
use crate::label::Label;
use crate::load::Limits;
use crate::remote_cache::RemoteCacheOptions;
use crate::rules::AnalysisEnv;
use crate::store::{Store, StoreError};
use crate::workspace::OUT_DIR;

/// What a successful build made, for commands that go on with it (`push`).
pub(super) struct Built {
    /// The requested targets.
    pub(super) requested: Vec<Label>,
    /// What each requested target provides.
    pub(super) provided: std::collections::BTreeMap<Label, crate::rules::Provided>,
    /// `executor-out/` of the workspace.
    pub(super) out_root: PathBuf,
    /// The workspace root (where `executor.lock` is).
    pub(super) root: PathBuf,
}

/// Takes the workspace's exclusive lock, waiting (and saying so) while another command holds it.
pub(super) fn lock_workspace(out: &Path) -> Result<File, Error> {
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
pub(super) struct BuildArgs<'a> {
    pub(super) cwd: &'a Path,
    /// `--workspace`.
    pub(super) workspace: Option<&'a Path>,
    /// `--cache-dir`.
    pub(super) cache: Option<&'a Path>,
    /// Instead of the workspace's `executor-out/`.
    pub(super) out_dir: Option<&'a Path>,
    /// Print each requested target's outputs and digests on stdout.
    pub(super) list_outputs: bool,
    /// `--locked`.
    pub(super) locked: bool,
    /// `--starlark-*`.
    pub(super) limits: Limits,
    /// `--platforms`, as OCI platforms.
    pub(super) platforms: Option<Vec<String>>,
    /// `--stamp`'s annotations (empty: unstamped).
    pub(super) stamp: std::collections::BTreeMap<String, String>,
}

impl<'a> BuildArgs<'a> {
    pub(super) fn new(
        cwd: &'a Path,
        workspace: Option<&'a Path>,
        cache: Option<&'a Path>,
        locked: bool,
        limits: Limits,
    ) -> Self {
        BuildArgs {
            cwd,
            workspace,
            cache,
            out_dir: None,
            list_outputs: true,
            locked,
            limits,
            platforms: None,
            stamp: std::collections::BTreeMap::new(),
        }
    }
}

pub(super) fn build(
    args: BuildArgs<'_>,
    patterns: &[String],
    options: BuildOptions,
    fetch_options: FetchOptions,
) -> Result<Built, Error> {
    let BuildArgs { cwd, workspace, cache, out_dir, list_outputs, locked, limits, platforms, stamp } = args;
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
    let mut state = loader.registry.analysis_state(&loader.workspace)?;
    state.insert(crate::rules::BuildSettings { platforms, stamp });
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
    // Only what the requested targets' files need runs (an index built with `--platforms`
    // leaves out its other images' actions).
    let wanted = analysis.needed_by(&graph.requested);
    let result = builder.run_wanted(&analysis, Some(&wanted))?;

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
                Artifact::Source { file: path, .. } => files.ingest(path, &store).ok().map(|i| i.digest),
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
        return Ok(Built {
            requested: graph.requested.clone(),
            provided,
            out_root,
            root: loader.workspace.root.clone(),
        });
    }
    eprintln!("build failed: {summary}");
    Err(Error::Build(BuildError::Actions { failures: result.errors, skipped: stats.skipped }))
}

/// `--stamp`'s annotations: `org.opencontainers.image.revision` and `.source` from the
/// workspace status command's `KEY VALUE` lines (run in the workspace root), `.created` from
/// `SOURCE_DATE_EPOCH`. Empty without `--stamp`.
pub(super) fn stamp_annotations(
    flags: &crate::cli::StampFlags,
    cwd: &Path,
    workspace: Option<&Path>,
) -> Result<std::collections::BTreeMap<String, String>, Error> {
    let mut out = std::collections::BTreeMap::new();
    if !flags.stamp {
        return Ok(out);
    }
    let (root, _) = crate::workspace::find_root(cwd, workspace)?;
    if let Some(program) = &flags.workspace_status_command {
        let shown = program.display().to_string();
        let output = std::process::Command::new(root.join(program)).current_dir(&root).output().map_err(|e| {
            Error::Usage(format!(
                "--workspace-status-command `{shown}`: cannot run it: {e}\n  fix: name an executable program (relative to the workspace root)"
            ))
        })?;
        if !output.status.success() {
            return Err(Error::Usage(format!(
                "--workspace-status-command `{shown}` failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let values: std::collections::BTreeMap<&str, &str> =
            text.lines().filter_map(|l| l.split_once(' ')).map(|(k, v)| (k.trim(), v.trim())).collect();
        let first =
            |keys: &[&str]| keys.iter().find_map(|k| values.get(k).filter(|v| !v.is_empty())).map(|v| (*v).to_owned());
        if let Some(revision) = first(&["STABLE_GIT_COMMIT", "STABLE_GIT_SHA", "BUILD_SCM_REVISION"]) {
            out.insert("org.opencontainers.image.revision".to_owned(), revision);
        }
        if let Some(source) = first(&["STABLE_SOURCE_URL", "BUILD_SCM_REMOTE"]) {
            out.insert("org.opencontainers.image.source".to_owned(), source);
        }
    }
    if let Some(epoch) = std::env::var_os("SOURCE_DATE_EPOCH") {
        let text = epoch.to_string_lossy();
        let seconds: u64 =
            text.trim().parse().map_err(|_| Error::Usage(format!("SOURCE_DATE_EPOCH `{text}` is not unix seconds")))?;
        let created =
            executor_image::oci::rfc3339_utc(seconds).map_err(|e| Error::Usage(format!("SOURCE_DATE_EPOCH: {e}")))?;
        out.insert("org.opencontainers.image.created".to_owned(), created);
    }
    if out.is_empty() {
        eprintln!("warning: --stamp found nothing to stamp: pass --workspace-status-command, or set SOURCE_DATE_EPOCH");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

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

//! Execution: runs the actions of an analysis in parallel, through the action-cache chain,
//! and materializes outputs under `executor-out/`.
//!
//! Split as ninja splits its builder: the [`plan`] (which actions may start; pure counters),
//! the [`cache`] chain (local, pinned, remote: one interface), the [`materialize`]r (store ->
//! `executor-out/`, hard links, read-only) and the [`status`] reporter (progress, warnings).
//! [`Builder`] ties them: for each action, in dependency order, it computes input digests
//! (source files through the [`FileDigestCache`], derived inputs from the producing action)
//! and the key, asks the cache chain, and otherwise runs the action in a scratch directory
//! and moves its outputs into the store. Independent actions run on a rayon pool of `jobs`
//! threads. Nothing an action writes is visible until it is complete.

pub mod cache;
pub mod materialize;
pub mod plan;
pub mod status;

use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::action::{Action, ActionContext, Artifact, InputPath, OutputKind};
use crate::digest::{hash_reader, Digest};
use crate::error::Error;
use crate::filecache::FileDigestCache;
use crate::graph::Analysis;
use crate::remote_cache::RemoteCache;
use crate::store::{ActionResult, OutputRecord, Store};

use cache::{CacheChain, Tier};
use materialize::{materialize_tree, Materializer};
use plan::Plan;
use status::Reporter;

/// How to run a build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Parallel actions.
    pub jobs: usize,
    /// Go on with independent actions after a failure.
    pub keep_going: bool,
    /// Show a progress bar (stderr is a terminal) instead of a plain line per action run.
    pub progress_bar: bool,
    /// `--remote-cache URL` and its trust flags, if given (the command turns it into
    /// [`Builder::remote`]).
    pub remote_cache: Option<crate::remote_cache::RemoteCacheConfig>,
}

/// An action that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{mnemonic} `{owner}` failed: {message}")]
pub struct ActionFailure {
    /// The action's mnemonic (`Layer`).
    pub mnemonic: &'static str,
    /// The target whose analysis created it.
    pub owner: crate::label::Label,
    /// Why, as the action (or the builder) said.
    pub message: String,
}

/// Why a build did not produce every output.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Actions failed; `skipped` more did not run because of them.
    #[error("{}{}", failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"), skipped_line(*skipped))]
    Actions { failures: Vec<ActionFailure>, skipped: usize },
    /// The worker threads cannot be started.
    #[error("cannot start {jobs} worker threads: {message}")]
    Threads { jobs: usize, message: String },
    /// `executor-out/` (or its state directory) is a symlink.
    #[error("`{path}` is a symlink (to `{target}`): executor writes outputs only into a real directory\n  fix: remove the link (`rm {path}`)")]
    OutputIsLink { path: String, target: String },
}

fn skipped_line(skipped: usize) -> String {
    match skipped {
        0 => String::new(),
        1 => "\n1 action not run because of the failure".to_owned(),
        n => format!("\n{n} actions not run because of the failure"),
    }
}

/// What happened, for the closing summary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BuildStats {
    /// Actions that ran.
    pub actions_run: usize,
    /// Actions answered by the action cache.
    pub cache_hits: usize,
    /// Actions answered by the remote cache (outputs downloaded and verified).
    pub remote_hits: usize,
    /// Actions that failed.
    pub failed: usize,
    /// Actions not run because a dependency failed or the build stopped.
    pub skipped: usize,
}

/// The digest of every artifact the build produced or read.
#[derive(Debug, Default)]
pub struct BuildResult {
    /// Counters for the summary.
    pub stats: BuildStats,
    /// Output records per action (None where the action failed or was skipped).
    pub outputs: Vec<Option<Vec<OutputRecord>>>,
    /// The failed actions, in action order.
    pub errors: Vec<ActionFailure>,
    /// How long execution took.
    pub elapsed: Duration,
}

impl BuildResult {
    /// The digest of an artifact, if it was built (or read).
    pub fn digest(&self, artifact: &Artifact, sources: &Mutex<Vec<(PathBuf, Digest)>>) -> Option<Digest> {
        match artifact {
            Artifact::Derived { action, index, .. } => {
                self.outputs.get(action.0)?.as_ref()?.get(*index).map(OutputRecord::digest)
            }
            Artifact::Source { file, .. } => sources.lock().ok()?.iter().find(|(p, _)| p == file).map(|(_, d)| *d),
        }
    }
}

/// Runs a build. `out_root` is the workspace's `executor-out/`.
pub struct Builder<'a> {
    /// The store.
    pub store: &'a Store,
    /// Source and output digests by stat data.
    pub files: &'a FileDigestCache,
    /// `executor-out/` of the workspace.
    pub out_root: PathBuf,
    /// Options.
    pub options: BuildOptions,
    /// The remote cache (`--remote-cache`): consulted after a local miss, filled after a run.
    pub remote: Option<&'a RemoteCache>,
}

/// Why running an action in its scratch area did not give outputs.
enum RunError {
    /// Input `.0` was missing or corrupt in the store (and is evicted): make it again.
    CorruptInput(usize),
    /// The action failed, or the store could not be written.
    Failed(String),
}

/// Outcome of one action.
enum Outcome {
    Ran(Vec<OutputRecord>),
    Hit(Vec<OutputRecord>),
    RemoteHit(Vec<OutputRecord>),
}

/// What the workers of one build share.
struct Shared<'a> {
    analysis: &'a Analysis,
    plan: Plan,
    cache: CacheChain<'a>,
    materializer: Materializer<'a>,
    reporter: Reporter,
    results: Vec<OnceLock<Option<Vec<OutputRecord>>>>,
    stop: AtomicBool,
    stats: Mutex<BuildStats>,
    errors: Mutex<Vec<(usize, ActionFailure)>>,
}

impl Builder<'_> {
    /// Runs every action of `analysis` and materializes its outputs.
    pub fn run(&self, analysis: &Analysis) -> Result<BuildResult, Error> {
        self.run_wanted(analysis, None)
    }

    /// Runs the actions of `analysis` that `wanted` marks (all when `None`; see
    /// [`Analysis::needed_by`]) and materializes their outputs.
    pub fn run_wanted(&self, analysis: &Analysis, wanted: Option<&[bool]>) -> Result<BuildResult, Error> {
        let start = Instant::now();
        let plan = match wanted {
            Some(wanted) => Plan::only(&analysis.actions, wanted),
            None => Plan::new(&analysis.actions),
        };
        let n = plan.len();
        let unwanted = n - plan.wanted();
        let shared = Shared {
            analysis,
            cache: CacheChain { store: self.store, remote: self.remote },
            materializer: Materializer { store: self.store, files: self.files, out_root: self.out_root.clone() },
            reporter: Reporter::new(plan.wanted(), self.options.progress_bar),
            results: (0..n).map(|_| OnceLock::new()).collect(),
            stop: AtomicBool::new(false),
            stats: Mutex::new(BuildStats::default()),
            errors: Mutex::new(Vec::new()),
            plan,
        };
        // The remote cache's warnings go above the progress bar while one is drawn.
        let previous_reporter = match (self.remote, self.options.progress_bar) {
            (Some(remote), true) => Some(remote.replace_reporter(Box::new(shared.reporter.line_sink()))),
            _ => None,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.options.jobs.max(1))
            .build()
            .map_err(|e| BuildError::Threads { jobs: self.options.jobs, message: e.to_string() })?;
        pool.scope_fifo(|scope| {
            for id in shared.plan.ready() {
                self.spawn(scope, &shared, id);
            }
        });
        shared.reporter.finish();
        if let (Some(remote), Some(previous)) = (self.remote, previous_reporter) {
            drop(remote.replace_reporter(previous));
        }
        let mut stats = shared.stats.into_inner().unwrap_or_else(|e| e.into_inner());
        let outputs: Vec<Option<Vec<OutputRecord>>> =
            shared.results.into_iter().map(|r| r.into_inner().flatten()).collect();
        stats.skipped = outputs.iter().filter(|o| o.is_none()).count() - stats.failed - unwanted;
        let mut errors = shared.errors.into_inner().unwrap_or_else(|e| e.into_inner());
        errors.sort_by_key(|(id, _)| *id);
        Ok(BuildResult {
            stats,
            outputs,
            errors: errors.into_iter().map(|(_, e)| e).collect(),
            elapsed: start.elapsed(),
        })
    }

    fn spawn<'s>(&'s self, scope: &rayon::ScopeFifo<'s>, shared: &'s Shared<'s>, id: usize) {
        scope.spawn_fifo(move |scope| {
            let action = &shared.analysis.actions.actions[id];
            let result = if shared.stop.load(Ordering::Relaxed) {
                None
            } else {
                match self.execute(action, shared) {
                    Ok(outcome) => {
                        let mut stats = shared.stats.lock().unwrap_or_else(|e| e.into_inner());
                        Some(match outcome {
                            Outcome::Ran(o) => {
                                stats.actions_run += 1;
                                o
                            }
                            Outcome::Hit(o) => {
                                stats.cache_hits += 1;
                                o
                            }
                            Outcome::RemoteHit(o) => {
                                stats.remote_hits += 1;
                                o
                            }
                        })
                    }
                    Err(message) => {
                        shared.stats.lock().unwrap_or_else(|e| e.into_inner()).failed += 1;
                        let failure =
                            ActionFailure { mnemonic: action.exec.mnemonic(), owner: action.owner.clone(), message };
                        shared.reporter.failed(&failure.to_string());
                        shared.errors.lock().unwrap_or_else(|e| e.into_inner()).push((id, failure));
                        if !self.options.keep_going {
                            shared.stop.store(true, Ordering::Relaxed);
                        }
                        None
                    }
                }
            };
            let ok = result.is_some();
            let _ = shared.results[id].set(result);
            shared.reporter.ended(None);
            for dependent in shared.plan.ended(id) {
                if ok {
                    self.spawn(scope, shared, dependent);
                } else {
                    // A dependency failed: record the dependent as skipped, and its own
                    // dependents in turn, so every action ends with a result.
                    self.skip(shared, dependent);
                }
            }
        });
    }

    /// Records `id` as skipped, and in turn every dependent left without a dependency to
    /// wait for (a worklist, not recursion: chains of actions may be long).
    fn skip(&self, shared: &Shared<'_>, id: usize) {
        let mut todo = vec![id];
        while let Some(id) = todo.pop() {
            let _ = shared.results[id].set(None);
            shared.reporter.ended(None);
            todo.extend(shared.plan.ended(id));
        }
    }

    /// Digests of an action's inputs, in order.
    fn input_digests(
        &self,
        action: &Action,
        shared: &Shared<'_>,
    ) -> Result<Vec<(Digest, Option<OutputRecord>)>, String> {
        action
            .inputs
            .iter()
            .map(|input| match &input.artifact {
                Artifact::Source { file, path, .. } => {
                    // A source file's execute bit is part of what the action reads (a layer
                    // keeps it, as Docker's COPY does).
                    let found = self.files.ingest(file, self.store).map_err(|e| format!("input `{path}`: {e}"))?;
                    let (digest, size, executable) = (found.digest, found.size, found.executable);
                    Ok((digest, Some(OutputRecord::File { digest, size, executable })))
                }
                Artifact::Derived { action, index, path } => {
                    let record = shared.results[action.0]
                        .get()
                        .and_then(|r| r.as_ref())
                        .and_then(|r| r.get(*index))
                        .cloned()
                        .ok_or_else(|| format!("internal error: input `{path}` was not built"))?;
                    Ok((record.digest(), Some(record)))
                }
            })
            .collect()
    }

    fn execute(&self, action: &Action, shared: &Shared<'_>) -> Result<Outcome, String> {
        let inputs = self.input_digests(action, shared)?;
        let key = action.key(&key_inputs(&inputs))?;
        let mut place = |records: &[OutputRecord], fresh: bool| {
            shared.materializer.materialize(&action.outputs, records, fresh).map_err(|e| e.to_string())
        };
        match shared.cache.lookup(&key, action, &shared.reporter, &mut place)? {
            Some((records, Tier::Local)) => return Ok(Outcome::Hit(records)),
            Some((records, Tier::Remote)) => return Ok(Outcome::RemoteHit(records)),
            None => {}
        }
        let token = shared.reporter.running(action);
        let result = self.run_action(action, &inputs, shared, 0, Some(token));
        shared.reporter.stopped(token);
        let records = result?;
        shared.cache.record(&key, &records)?;
        if !place(&records, true)? {
            return Err("its outputs vanished from the cache while the build ran; build again".into());
        }
        shared.cache.share(&key, &records);
        Ok(Outcome::Ran(records))
    }

    /// Runs an action in a scratch area and moves its outputs into the store. An input found
    /// missing or corrupt in the store (it was evicted when read) is made again first: a
    /// source file is stored again, a derived one by re-running its producer. `depth` counts
    /// the producers being re-made above this one.
    fn run_action(
        &self,
        action: &Action,
        inputs: &[(Digest, Option<OutputRecord>)],
        shared: &Shared<'_>,
        depth: usize,
        token: Option<usize>,
    ) -> Result<Vec<OutputRecord>, String> {
        // Each input can be re-made once per attempt; more attempts than inputs means the
        // store keeps losing bytes (a failing disk): stop.
        for _ in 0..=inputs.len() {
            let scratch = self.store.temp_path("action");
            fs::create_dir_all(&scratch).map_err(|e| format!("cannot create `{}`: {e}", scratch.display()))?;
            let result = self.run_in(action, inputs, &scratch, shared, token);
            let _ = fs::remove_dir_all(&scratch);
            match result {
                Ok(records) => return Ok(records),
                Err(RunError::Failed(message)) => return Err(message),
                Err(RunError::CorruptInput(i)) => {
                    self.remake_input(&action.inputs[i].artifact, inputs[i].0, shared, depth)?
                }
            }
        }
        Err("its inputs keep vanishing from the cache (is the disk failing?); run `executor clean --verify`".into())
    }

    /// Puts the bytes of `input` (digest `digest`) back into the store after they were found
    /// missing or corrupt there.
    fn remake_input(&self, input: &Artifact, digest: Digest, shared: &Shared<'_>, depth: usize) -> Result<(), String> {
        const MAX_DEPTH: usize = 256;
        match input {
            Artifact::Source { file, path, .. } => {
                let (got, _) = self.store.put_file(file).map_err(|e| format!("input `{path}`: {e}"))?;
                if got != digest {
                    return Err(format!("input `{path}` changed while the build ran; build again"));
                }
                Ok(())
            }
            Artifact::Derived { action: producer, path, .. } => {
                if depth >= MAX_DEPTH {
                    return Err(format!("input `executor-out/{path}` is corrupt in the cache and so are too many of its inputs; run `executor clean --verify`"));
                }
                let producer_action = &shared.analysis.actions.actions[producer.0];
                let expected = shared.results[producer.0]
                    .get()
                    .and_then(|r| r.clone())
                    .ok_or_else(|| format!("internal error: input `{path}` was not built"))?;
                let inputs = self.input_digests(producer_action, shared)?;
                let key = producer_action.key(&key_inputs(&inputs))?;
                self.store.remove_action(&key);
                let records = self.run_action(producer_action, &inputs, shared, depth + 1, None)?;
                if records != expected {
                    return Err(format!(
                        "input `executor-out/{path}` was corrupt in the cache, and {} `{}` made different bytes when run again: it is not reproducible",
                        producer_action.exec.mnemonic(),
                        producer_action.owner
                    ));
                }
                self.store.put_action(&key, &ActionResult { outputs: records }).map_err(|e| e.to_string())?;
                Ok(())
            }
        }
    }

    fn run_in(
        &self,
        action: &Action,
        inputs: &[(Digest, Option<OutputRecord>)],
        scratch: &Path,
        shared: &Shared<'_>,
        token: Option<usize>,
    ) -> Result<Vec<OutputRecord>, RunError> {
        let status = shared.reporter.for_action(token);
        let mut input_paths = Vec::with_capacity(inputs.len());
        for (i, (digest, record)) in inputs.iter().enumerate() {
            match record {
                Some(OutputRecord::Dir { digest }) => {
                    let dir = scratch.join(format!("in-{i}"));
                    if !materialize_tree(self.store, digest, &dir).map_err(|e| RunError::Failed(e.to_string()))? {
                        // The tree or a file of it was missing or corrupt (and is evicted).
                        return Err(RunError::CorruptInput(i));
                    }
                    input_paths.push(dir);
                }
                _ => {
                    // Never hand an action unverified bytes.
                    let path = self.store.blob_path(digest);
                    let ok = fs::File::open(&path).and_then(hash_reader).map(|(d, _)| d == *digest).unwrap_or(false);
                    if !ok {
                        self.store.evict(digest);
                        return Err(RunError::CorruptInput(i));
                    }
                    input_paths.push(path);
                }
            }
        }
        let mut output_paths = Vec::with_capacity(action.outputs.len());
        for (i, spec) in action.outputs.iter().enumerate() {
            let path = scratch.join(format!("out-{i}"));
            if spec.kind == OutputKind::Dir {
                fs::create_dir(&path).map_err(|e| RunError::Failed(e.to_string()))?;
            }
            output_paths.push(path);
        }
        let tmp = scratch.join("tmp");
        fs::create_dir(&tmp).map_err(|e| RunError::Failed(e.to_string()))?;
        let ctx = ActionContext {
            inputs: action
                .inputs
                .iter()
                .zip(input_paths)
                .zip(inputs)
                .map(|((i, path), (_, record))| InputPath {
                    name: i.name.clone(),
                    path,
                    executable: matches!(record, Some(OutputRecord::File { executable: true, .. })),
                })
                .collect(),
            outputs: output_paths,
            scratch: tmp,
            proofs: self.store,
            status: &status,
            jobs: self.options.jobs.max(1),
        };
        action.exec.run(&ctx).map_err(|e| RunError::Failed(e.0))?;
        let mut records = Vec::with_capacity(action.outputs.len());
        for (spec, path) in action.outputs.iter().zip(&ctx.outputs) {
            records.push(match spec.kind {
                OutputKind::File { executable } => {
                    let (digest, size) = fs::File::open(path)
                        .and_then(hash_reader)
                        .map_err(|e| RunError::Failed(format!("did not write its output `{}`: {e}", spec.path)))?;
                    // A blob the store holds already stays: outputs may be hard links to it.
                    if self.store.has_blob(&digest, size) {
                        let _ = fs::remove_file(path);
                    } else {
                        self.store.commit_blob(path, &digest).map_err(|e| RunError::Failed(e.to_string()))?;
                    }
                    OutputRecord::File { digest, size, executable }
                }
                OutputKind::Dir => OutputRecord::Dir {
                    digest: self.store.put_tree(path).map_err(|e| RunError::Failed(e.to_string()))?,
                },
            });
        }
        Ok(records)
    }
}

/// The digest and executable bit of each input, for [`Action::key`].
fn key_inputs(inputs: &[(Digest, Option<OutputRecord>)]) -> Vec<(Digest, bool)> {
    inputs.iter().map(|(d, record)| (*d, matches!(record, Some(OutputRecord::File { executable: true, .. })))).collect()
}

/// True when progress should be drawn as a bar.
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::action::{ActionError, ActionExec, ActionGraph, ActionId, OutputSpec};
    use crate::label::Label;

    /// Writes its name, or fails when `fail` is set.
    #[derive(Debug, serde::Serialize)]
    struct Fake {
        name: &'static str,
        fail: bool,
    }

    impl ActionExec for Fake {
        fn mnemonic(&self) -> &'static str {
            "Fake"
        }
        fn version(&self) -> u32 {
            1
        }
        fn run(&self, ctx: &ActionContext<'_>) -> Result<(), crate::action::ActionError> {
            if self.fail {
                return Err(ActionError(format!("{} was told to fail", self.name)));
            }
            let mut content = self.name.as_bytes().to_vec();
            for input in &ctx.inputs {
                content.extend(fs::read(&input.path)?);
            }
            fs::write(&ctx.outputs[0], content)?;
            Ok(())
        }
    }

    fn fake(name: &'static str, fail: bool, inputs: Vec<usize>) -> Action {
        Action {
            owner: Label::parse_absolute(&format!("//p:{name}")).expect("label"),
            inputs: inputs
                .into_iter()
                .map(|i| {
                    crate::action::Input::new(
                        format!("in/{i}"),
                        Artifact::Derived { action: ActionId(i), index: 0, path: format!("p/{i}") },
                    )
                })
                .collect(),
            outputs: vec![OutputSpec { path: format!("p/{name}"), kind: OutputKind::File { executable: false } }],
            exec: Arc::new(Fake { name, fail }),
        }
    }

    fn run(actions: Vec<Action>, keep_going: bool, jobs: usize) -> (BuildResult, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("cache")).expect("store");
        let files = FileDigestCache::load(dir.path().join("files.json"));
        let builder = Builder {
            store: &store,
            files: &files,
            out_root: dir.path().join("out"),
            options: BuildOptions { jobs, keep_going, progress_bar: false, remote_cache: None },
            remote: None,
        };
        let analysis = Analysis { actions: ActionGraph { actions }, ..Default::default() };
        let result = builder.run(&analysis).expect("build runs");
        (result, dir)
    }

    #[test]
    fn keep_going_runs_independent_actions_and_skips_dependents() {
        // 0 fails; 1 and 2 depend on it (2 through 1); 3 is independent.
        let actions = vec![
            fake("a", true, vec![]),
            fake("b", false, vec![0]),
            fake("c", false, vec![1]),
            fake("d", false, vec![]),
        ];
        let (result, dir) = run(actions, true, 2);
        assert_eq!(result.stats, BuildStats { actions_run: 1, cache_hits: 0, remote_hits: 0, failed: 1, skipped: 2 });
        let errors: Vec<String> = result.errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors, ["Fake `//p:a` failed: a was told to fail"]);
        assert_eq!(fs::read(dir.path().join("out/p/d")).expect("d built"), b"d");
        assert!(!dir.path().join("out/p/b").exists());
    }

    /// Writes the number of threads its context allows.
    #[derive(Debug, serde::Serialize)]
    struct Jobs;

    impl ActionExec for Jobs {
        fn mnemonic(&self) -> &'static str {
            "Jobs"
        }
        fn version(&self) -> u32 {
            1
        }
        fn run(&self, ctx: &ActionContext<'_>) -> Result<(), crate::action::ActionError> {
            fs::write(&ctx.outputs[0], ctx.jobs.to_string())?;
            Ok(())
        }
    }

    #[test]
    fn actions_may_use_as_many_threads_as_jobs_says() {
        for jobs in [1, 3] {
            let action = Action { exec: Arc::new(Jobs), ..fake("jobs", false, vec![]) };
            let (result, dir) = run(vec![action], false, jobs);
            assert_eq!(result.stats.actions_run, 1);
            assert_eq!(fs::read_to_string(dir.path().join("out/p/jobs")).expect("built"), jobs.to_string());
        }
    }

    #[test]
    fn without_keep_going_nothing_starts_after_a_failure() {
        // With one job, actions start in id order: the failure comes first.
        let actions = vec![fake("a", true, vec![]), fake("b", false, vec![]), fake("c", false, vec![])];
        let (result, _dir) = run(actions, false, 1);
        assert_eq!(result.stats, BuildStats { actions_run: 0, cache_hits: 0, remote_hits: 0, failed: 1, skipped: 2 });
    }

    #[test]
    fn inputs_flow_between_actions_and_results_are_cached() {
        let actions = || vec![fake("a", false, vec![]), fake("b", false, vec![0]), fake("c", false, vec![0, 1])];
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("cache")).expect("store");
        let files = FileDigestCache::load(dir.path().join("files.json"));
        let builder = Builder {
            store: &store,
            files: &files,
            out_root: dir.path().join("out"),
            options: BuildOptions { jobs: 2, keep_going: false, progress_bar: false, remote_cache: None },
            remote: None,
        };
        let first = builder
            .run(&Analysis { actions: ActionGraph { actions: actions() }, ..Default::default() })
            .expect("first");
        assert_eq!(first.stats.actions_run, 3);
        assert_eq!(fs::read(dir.path().join("out/p/c")).expect("c"), b"caba");
        let second = builder
            .run(&Analysis { actions: ActionGraph { actions: actions() }, ..Default::default() })
            .expect("second");
        assert_eq!(second.stats, BuildStats { actions_run: 0, cache_hits: 3, remote_hits: 0, failed: 0, skipped: 0 });
    }

    /// Builds `actions` in a fresh store and output tree, through `remote`.
    fn run_with_remote(actions: Vec<Action>, remote: &RemoteCache) -> BuildResult {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("cache")).expect("store");
        let files = FileDigestCache::load(dir.path().join("files.json"));
        let builder = Builder {
            store: &store,
            files: &files,
            out_root: dir.path().join("out"),
            options: BuildOptions { jobs: 2, keep_going: false, progress_bar: false, remote_cache: None },
            remote: Some(remote),
        };
        builder.run(&Analysis { actions: ActionGraph { actions }, ..Default::default() }).expect("build runs")
    }

    #[test]
    fn an_unreachable_remote_cache_builds_locally_with_one_warning() {
        let url = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            format!("http://{}", listener.local_addr().expect("addr"))
        };
        let warnings = Arc::new(Mutex::new(Vec::new()));
        let sink = warnings.clone();
        let remote = RemoteCache::new(&url, crate::remote_cache::RemoteCacheOptions::default())
            .expect("url")
            .with_reporter(move |line| sink.lock().expect("warnings").push(line.to_owned()));
        let actions = vec![fake("a", false, vec![]), fake("b", false, vec![0]), fake("c", false, vec![])];
        let result = run_with_remote(actions, &remote);
        assert_eq!(result.stats, BuildStats { actions_run: 3, cache_hits: 0, remote_hits: 0, failed: 0, skipped: 0 });
        let warnings = warnings.lock().expect("warnings");
        assert_eq!(warnings.len(), 1, "{warnings:#?}");
        assert!(warnings[0].starts_with(&format!("warning: remote cache {url}: ")), "{}", warnings[0]);
        assert!(warnings[0].ends_with(": connection refused; building locally"), "{}", warnings[0]);
        assert!(!remote.is_enabled());
    }
}

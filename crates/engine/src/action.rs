//! Actions: the units of work analysis produces and the builder runs.
//!
//! An **action** reads declared input **artifacts** and writes declared outputs. It is
//! identified by its **key**: sha256 over the executor's version, the action's mnemonic and
//! implementation version, its parameters (the action's own serialized form: every field
//! enters the key unless marked `#[serde(skip)]`), the digests of its inputs in order, and the
//! kinds of its outputs. Equal keys mean equal outputs, which is
//! what lets the action cache (and later a remote cache) answer instead of running it.
//!
//! Hermeticity is by construction: [`ActionContext`] hands an action the store paths of its
//! declared inputs and fresh paths for its outputs, nothing else.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::digest::Digest;
use crate::label::Label;

/// The version that enters every action key; bumping it invalidates every cached result.
pub const EXECUTOR_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Index of an action in its [`ActionGraph`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActionId(pub usize);

/// A file or directory that actions read or targets provide.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Artifact {
    /// A source file, by its path relative to the workspace root (`/`-separated).
    Source {
        /// The file's label, for messages.
        label: Label,
        /// The path users see: workspace-relative, or `@repo/path` in an external repository.
        path: String,
        /// Where to read it. Never enters a key or an output: only the content's digest does.
        file: PathBuf,
    },
    /// Output `index` of action `action`, materialized at `executor-out/<path>`.
    Derived {
        /// The producing action.
        action: ActionId,
        /// Position in the action's outputs.
        index: usize,
        /// Path below `executor-out/`.
        path: String,
    },
}

impl Artifact {
    /// The path a user sees: the source path, or `executor-out/<path>`.
    pub fn display_path(&self) -> String {
        match self {
            Artifact::Source { path, .. } => path.clone(),
            Artifact::Derived { path, .. } => format!("executor-out/{path}"),
        }
    }
}

/// Whether an output is a file or a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// A regular file.
    File {
        /// Materialized with mode 0755 instead of 0644.
        executable: bool,
    },
    /// A directory tree (for example an OCI image layout).
    Dir,
}

/// One declared output of an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    /// Path below `executor-out/`.
    pub path: String,
    /// File or directory.
    pub kind: OutputKind,
}

/// Facts an action proved about bytes (a signature checked), remembered by 32-byte keys so
/// that they are proved once per store. What a key covers is the action's business; the
/// store only keeps the set.
pub trait ProofCache: Sync {
    /// Whether a proof with this key was recorded.
    fn holds(&self, key: &[u8; 32]) -> bool;
    /// Records a proof (best effort: a failure only costs proving it again).
    fn record(&self, key: &[u8; 32]);
}

/// No proofs remembered: everything is proved again.
pub struct NoProofs;

impl ProofCache for NoProofs {
    fn holds(&self, _: &[u8; 32]) -> bool {
        false
    }
    fn record(&self, _: &[u8; 32]) {}
}

/// Where actions report to the user. Actions never print: output would garble the progress
/// display.
pub trait Status: Sync {
    /// A warning about the action's work; the build goes on.
    fn warn(&self, message: &str);

    /// How many bytes the action has moved so far (downloaded, written): shown beside it
    /// while it runs.
    fn progress(&self, bytes: u64) {
        let _ = bytes;
    }
}

/// One declared input of an action: a name the action reads it by, and the artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// Unique within the action: `template`, or `apks/0`, `apks/1`, ... for a list.
    pub name: String,
    /// The file or directory.
    pub artifact: Artifact,
}

impl Input {
    /// An input named `name`.
    pub fn new(name: impl Into<String>, artifact: Artifact) -> Self {
        Input { name: name.into(), artifact }
    }

    /// A list of inputs named `<list>/0`, `<list>/1`, ... in order; read back with
    /// [`ActionContext::input_list`].
    pub fn list<'a>(list: &str, artifacts: impl IntoIterator<Item = &'a Artifact>) -> Vec<Input> {
        artifacts.into_iter().enumerate().map(|(i, a)| Input::new(format!("{list}/{i}"), a.clone())).collect()
    }
}

/// What an action sees while it runs: its inputs' bytes and where to put its outputs.
pub struct ActionContext<'a> {
    /// Verified, read-only store paths of the declared inputs, by name, in declaration order.
    /// Read them with [`input`](Self::input) and [`input_list`](Self::input_list).
    pub inputs: Vec<InputPath>,
    /// Paths the action must create, one per declared output, in declaration order. For a
    /// [`OutputKind::Dir`] output the path is an existing empty directory.
    pub outputs: Vec<PathBuf>,
    /// An empty directory for the action's temporary files, removed after it ran.
    pub scratch: PathBuf,
    /// Proofs recorded in the store, so a fact is proved once.
    pub proofs: &'a dyn ProofCache,
    /// Where warnings go.
    pub status: &'a dyn Status,
    /// Threads the action may use for its own work (compression): the build's `--jobs`, so
    /// that actions running side by side do not each take every core.
    pub jobs: usize,
}

/// One input as an action sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputPath {
    /// Its name ([`Input::name`]).
    pub name: String,
    /// Its verified, read-only path.
    pub path: PathBuf,
    /// Whether the file is executable: a source file with an execute bit, or an output
    /// declared executable. The bit is part of the action's key.
    pub executable: bool,
}

impl ActionContext<'_> {
    /// The path of the input named `name`.
    pub fn input(&self, name: &str) -> Result<&Path, ActionError> {
        self.input_entry(name).map(|i| i.path.as_path())
    }

    /// The input named `name`, with its executable bit.
    pub fn input_entry(&self, name: &str) -> Result<&InputPath, ActionError> {
        self.inputs
            .iter()
            .find(|i| i.name == name)
            .ok_or_else(|| ActionError(format!("internal error: the action has no input `{name}`")))
    }

    /// The paths of the list of inputs named `list` ([`Input::list`]), in order.
    pub fn input_list(&self, list: &str) -> Vec<&Path> {
        self.input_list_entries(list).into_iter().map(|i| i.path.as_path()).collect()
    }

    /// The list of inputs named `list`, in order, with their executable bits.
    pub fn input_list_entries(&self, list: &str) -> Vec<&InputPath> {
        let mut found: Vec<(usize, &InputPath)> = self
            .inputs
            .iter()
            .filter_map(|input| {
                let i = input.name.strip_prefix(list)?.strip_prefix('/')?.parse().ok()?;
                Some((i, input))
            })
            .collect();
        found.sort_by_key(|(i, _)| *i);
        found.into_iter().map(|(_, input)| input).collect()
    }
}

impl fmt::Debug for ActionContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionContext")
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .field("scratch", &self.scratch)
            .field("jobs", &self.jobs)
            .finish()
    }
}

/// Why an action failed; the builder adds the action's owner and mnemonic.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ActionError(pub String);

impl From<std::io::Error> for ActionError {
    fn from(e: std::io::Error) -> Self {
        ActionError(e.to_string())
    }
}

/// An action's parameters as they enter its key: the serialized action itself, so that no
/// field can be left out of the key by mistake (a field that cannot change the outputs, such
/// as a shared client, is marked `#[serde(skip)]`).
pub trait KeyData {
    /// The parameters as JSON.
    fn key_data(&self) -> Result<serde_json::Value, serde_json::Error>;
}

impl<T: Serialize> KeyData for T {
    fn key_data(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

/// The work of one action kind. Implementations must be deterministic functions of their
/// serialized fields ([`KeyData`]) and the input bytes.
pub trait ActionExec: Send + Sync + fmt::Debug + KeyData {
    /// A short CamelCase name for progress lines (`WriteFile`).
    fn mnemonic(&self) -> &'static str;
    /// Bumped whenever the bytes this action produces for the same key data change.
    fn version(&self) -> u32;
    /// For actions whose outputs are known in advance (content pinned by digest): the
    /// digest and size of each output. When the store already holds them (verified), the
    /// action need not run.
    fn pinned_outputs(&self) -> Option<Vec<(Digest, u64)>> {
        None
    }
    /// For actions with [`pinned_outputs`](Self::pinned_outputs): checks files already in
    /// the store (whose sha256 and size match) as completely as [`run`](Self::run) checks
    /// what it fetches. Only then may the builder use them without running the action.
    fn verify_pinned(&self, outputs: &[PathBuf], proofs: &dyn ProofCache, status: &dyn Status) -> Result<(), String> {
        let _ = (outputs, proofs, status);
        Err("its outputs cannot be checked without running it".into())
    }
    /// Produces the outputs.
    fn run(&self, ctx: &ActionContext<'_>) -> Result<(), ActionError>;
}

/// One node of the action graph.
#[derive(Debug, Clone)]
pub struct Action {
    /// The target whose analysis created the action.
    pub owner: Label,
    /// Inputs by name.
    pub inputs: Vec<Input>,
    /// Declared outputs.
    pub outputs: Vec<OutputSpec>,
    /// What runs.
    pub exec: Arc<dyn ActionExec>,
}

/// An input as it enters a key: its name, its bytes and its executable bit.
#[derive(Serialize)]
struct KeyInput<'a> {
    name: &'a str,
    digest: Digest,
    executable: bool,
}

#[derive(Serialize)]
struct KeyMaterial<'a> {
    executor: &'static str,
    mnemonic: &'static str,
    version: u32,
    data: serde_json::Value,
    inputs: Vec<KeyInput<'a>>,
    outputs: Vec<OutputKind>,
}

impl Action {
    /// The action key, given the digest and executable bit of each input, in order: the
    /// digest of the canonical JSON of everything that decides the outputs (inputs enter by
    /// name, digest and executable bit). An action whose key data cannot be encoded gets no
    /// key (an internal error), never a shared fallback key.
    pub fn key(&self, input_digests: &[(Digest, bool)]) -> Result<Digest, String> {
        let cannot = |e: serde_json::Error| {
            format!("internal error: the key of {} `{}` cannot be encoded: {e}", self.exec.mnemonic(), self.owner)
        };
        if input_digests.len() != self.inputs.len() {
            return Err(format!(
                "internal error: {} `{}` has {} inputs but {} digests",
                self.exec.mnemonic(),
                self.owner,
                self.inputs.len(),
                input_digests.len()
            ));
        }
        let material = KeyMaterial {
            executor: EXECUTOR_VERSION,
            mnemonic: self.exec.mnemonic(),
            version: self.exec.version(),
            data: self.exec.key_data().map_err(cannot)?,
            inputs: self
                .inputs
                .iter()
                .zip(input_digests)
                .map(|(i, &(digest, executable))| KeyInput { name: &i.name, digest, executable })
                .collect(),
            outputs: self.outputs.iter().map(|o| o.kind).collect(),
        };
        let value = serde_json::to_value(&material).map_err(cannot)?;
        Ok(Digest::of(executor_base::canonical::to_canonical_json(&value).as_bytes()))
    }
}

/// Every action of a build, indexed by [`ActionId`].
#[derive(Debug, Default)]
pub struct ActionGraph {
    /// Actions in creation order; an action's derived inputs always have smaller ids.
    pub actions: Vec<Action>,
}

impl ActionGraph {
    /// Adds an action and returns the artifacts of its outputs.
    pub fn add(&mut self, action: Action) -> Vec<Artifact> {
        let id = ActionId(self.actions.len());
        let outs = action
            .outputs
            .iter()
            .enumerate()
            .map(|(index, o)| Artifact::Derived { action: id, index, path: o.path.clone() })
            .collect();
        self.actions.push(action);
        outs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::label::Label;

    #[derive(Debug, Serialize)]
    struct Fake {
        b: &'static str,
        a: u32,
    }
    impl ActionExec for Fake {
        fn mnemonic(&self) -> &'static str {
            "Fake"
        }
        fn version(&self) -> u32 {
            1
        }
        fn run(&self, _: &ActionContext<'_>) -> Result<(), ActionError> {
            Ok(())
        }
    }

    fn action(data: &'static str, inputs: &[&str]) -> Action {
        let owner = Label::parse_absolute("//p:t").expect("label");
        let source = |name: &str| Artifact::Source { label: owner.clone(), path: name.into(), file: name.into() };
        Action {
            inputs: inputs.iter().map(|n| Input::new(*n, source(n))).collect(),
            owner,
            outputs: vec![OutputSpec { path: "p/t".into(), kind: OutputKind::File { executable: false } }],
            exec: Arc::new(Fake { b: data, a: 1 }),
        }
    }

    #[test]
    fn key_depends_on_data_and_named_inputs_only() {
        let one = action("x", &["in"]);
        let d1 = Digest::of(b"1");
        let d2 = Digest::of(b"2");
        let key = |a: &Action, d: &[Digest]| a.key(&d.iter().map(|d| (*d, false)).collect::<Vec<_>>()).expect("key");
        assert_eq!(key(&one, &[d1]), key(&action("x", &["in"]), &[d1]));
        assert_ne!(key(&one, &[d1]), key(&action("y", &["in"]), &[d1]));
        assert_ne!(key(&one, &[d1]), key(&one, &[d2]));
        // The same bytes under another name are another input.
        assert_ne!(key(&one, &[d1]), key(&action("x", &["other"]), &[d1]));
        // The same bytes made executable are another input.
        assert_ne!(key(&one, &[d1]), one.key(&[(d1, true)]).expect("key"));
        let two = action("x", &["a", "b"]);
        assert_ne!(key(&two, &[d1, d2]), key(&two, &[d2, d1]));
        // Digests that do not match the inputs one for one give no key.
        assert!(two.key(&[(d1, false)]).expect_err("one digest for two inputs").contains("has 2 inputs but 1 digests"));
    }
}

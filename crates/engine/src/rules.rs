//! The seam every rule set implements: rules, what targets provide, WORKSPACE functions, and
//! what analysis may see.
//!
//! The engine defines no domain: a **rule set** ([`RuleSet`]) brings its rules ([`Rule`]),
//! its `WORKSPACE` functions ([`WorkspaceFunction`]), and the state its analysis reads
//! ([`RuleSet::analysis_state`]). A target provides its files and a typed map of
//! **providers** ([`Provided`]), whose types belong to the rule set that defines them, as
//! Bazel's providers and Buck2's provider collections. The engine's own rules are only the
//! generic ones ([`Builtins`]).
//!
//! A rule's attributes are checked and converted once, at loading, into its typed
//! [`Rule::Attrs`], which both its checks and its analysis read.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::action::{ActionGraph, Artifact};
use crate::fetch::Fetcher;
use crate::label::Label;
use crate::target::{AttrSpec, AttrValue, Target};
use crate::typemap::{Entry, TypeMap};
use crate::workspace::Workspace;

pub mod expand_template;
pub mod filegroup;
pub mod write_file;

pub use crate::typemap::Entry as Provider;

/// What a target provides to its dependents and to `executor build`.
#[derive(Debug, Clone, Default)]
pub struct Provided {
    /// The target's files, in a fixed order.
    pub files: Vec<Artifact>,
    /// Typed values defined by rule sets (`LayerInfo`, ...), at most one per type.
    pub providers: TypeMap,
}

impl Provided {
    /// Files only, no providers.
    pub fn files(files: Vec<Artifact>) -> Self {
        Provided { files, providers: TypeMap::new() }
    }

    /// Adds a provider.
    pub fn with<P: Provider>(mut self, provider: P) -> Self {
        self.providers.insert(provider);
        self
    }

    /// The provider of type `P`, if the target provides one.
    pub fn get<P: Provider>(&self) -> Option<&P> {
        self.providers.get::<P>()
    }
}

/// Why a target's analysis failed; the caller adds the target's label and location.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AnalysisError(pub String);

/// What analysis may read besides the targets: the workspace, the fetcher fetch actions use,
/// and the state rule sets added ([`RuleSet::analysis_state`]). Shared by all targets of one
/// command.
pub struct AnalysisEnv {
    /// The workspace and its declarations.
    pub workspace: Workspace,
    /// How fetch actions transfer bytes.
    pub fetcher: Arc<dyn Fetcher>,
    /// State of the rule sets, by type.
    pub state: TypeMap,
}

/// What the command line says about every target, for rule sets to read from
/// [`AnalysisEnv::state`] (always there).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildSettings {
    /// `--platforms`: build only these platforms of multi-platform targets (`linux/amd64`,
    /// `linux/arm/v7`); `None` builds them all.
    pub platforms: Option<Vec<String>>,
    /// `--stamp`: annotations for images and indexes (`org.opencontainers.image.revision`,
    /// `.source`, `.created`) from the workspace status command and `SOURCE_DATE_EPOCH`;
    /// empty for an unstamped build, whose actions keep their keys.
    pub stamp: std::collections::BTreeMap<String, String>,
}

impl crate::typemap::Entry for BuildSettings {
    const NAME: &'static str = "BuildSettings";
}

impl AnalysisEnv {
    /// An environment for one command.
    pub fn new(workspace: Workspace, fetcher: Arc<dyn Fetcher>, state: TypeMap) -> Self {
        AnalysisEnv { workspace, fetcher, state }
    }

    /// The rule-set state of type `T`.
    pub fn state<T: Entry>(&self) -> Result<&T, AnalysisError> {
        self.state.get::<T>().ok_or_else(|| AnalysisError(format!("internal error: no `{}` in this command", T::NAME)))
    }
}

/// What analysis of one target may see and do.
pub struct AnalysisContext<'a> {
    /// Workspace, fetcher, rule-set state.
    pub env: &'a AnalysisEnv,
    /// What each dependency (rule target or source file) provides.
    pub deps: &'a BTreeMap<Label, Provided>,
    /// Where new actions go.
    pub graph: &'a mut ActionGraph,
    /// Warnings for the user; the command shows them (never printed during analysis).
    pub warnings: &'a mut Vec<String>,
}

impl AnalysisContext<'_> {
    /// What `label` provides; every label in the target's attributes is present.
    pub fn provided(&self, label: &Label) -> Result<&Provided, AnalysisError> {
        self.deps.get(label).ok_or_else(|| AnalysisError(format!("internal error: `{label}` was not analyzed")))
    }

    /// Tells the user something that does not stop the build.
    pub fn warn(&mut self, message: impl Into<String>) {
        self.warnings.push(message.into());
    }
}

/// A rule: a kind of target with typed attributes and an analysis.
pub trait Rule: Send + Sync + 'static {
    /// The attributes as analysis reads them: a struct whose fields are named as in
    /// [`ATTRS`](Self::ATTRS) (unset optional ones take their `serde` default).
    type Attrs: DeserializeOwned + Send + Sync + fmt::Debug + 'static;
    /// The name `BUILD` files call, e.g. `write_file`.
    const KIND: &'static str;
    /// One paragraph for docs.
    const DOC: &'static str;
    /// The attributes besides `name`.
    const ATTRS: &'static [AttrSpec];
    /// Checks that need the whole attribute set (run at loading time, so errors point at the
    /// `BUILD` file). The default accepts everything.
    fn check(&self, _attrs: &Self::Attrs) -> Result<(), String> {
        Ok(())
    }
    /// Creates the target's actions and returns what it provides.
    fn analyze(
        &self,
        target: &Target,
        attrs: &Self::Attrs,
        ctx: &mut AnalysisContext<'_>,
    ) -> Result<Provided, AnalysisError>;
}

/// A [`Rule`] behind a pointer: what the engine stores in targets and registries.
pub trait DynRule: Send + Sync {
    /// [`Rule::KIND`].
    fn kind(&self) -> &'static str;
    /// [`Rule::DOC`].
    fn doc(&self) -> &'static str;
    /// [`Rule::ATTRS`].
    fn attrs(&self) -> &'static [AttrSpec];
    /// Converts checked attribute values into the rule's typed attributes and checks them.
    fn parse(&self, attrs: &BTreeMap<&'static str, AttrValue>) -> Result<Arc<dyn Any + Send + Sync>, String>;
    /// Analyzes a target of this rule.
    fn analyze(&self, target: &Target, ctx: &mut AnalysisContext<'_>) -> Result<Provided, AnalysisError>;
}

impl<R: Rule> DynRule for R {
    fn kind(&self) -> &'static str {
        R::KIND
    }
    fn doc(&self) -> &'static str {
        R::DOC
    }
    fn attrs(&self) -> &'static [AttrSpec] {
        R::ATTRS
    }
    fn parse(&self, attrs: &BTreeMap<&'static str, AttrValue>) -> Result<Arc<dyn Any + Send + Sync>, String> {
        let typed = typed_attrs::<R::Attrs>(R::KIND, attrs)?;
        self.check(&typed)?;
        Ok(Arc::new(typed))
    }
    fn analyze(&self, target: &Target, ctx: &mut AnalysisContext<'_>) -> Result<Provided, AnalysisError> {
        let attrs = target.typed_attrs::<R::Attrs>().ok_or_else(|| {
            AnalysisError(format!("internal error: `{}` has no `{}` attributes", target.label, R::KIND))
        })?;
        Rule::analyze(self, target, attrs, ctx)
    }
}

/// Moves checked attribute values into a rule's (or function's) typed attributes. The values
/// already have their declared types, so a failure here is a mismatch between an `ATTRS`
/// table and its struct: an internal error.
pub fn typed_attrs<T: DeserializeOwned>(kind: &str, attrs: &BTreeMap<&'static str, AttrValue>) -> Result<T, String> {
    let value = serde_json::to_value(attrs)
        .map_err(|e| format!("internal error: the attributes of `{kind}` cannot be encoded: {e}"))?;
    serde_json::from_value(value)
        .map_err(|e| format!("internal error: the attributes of `{kind}` do not match its attribute table: {e}"))
}

/// What a `WORKSPACE` function declared: a value of the rule set's own type.
pub type Declared = Arc<dyn Any + Send + Sync>;

/// A function `WORKSPACE` files call (`apk_repository`), declared by a rule set. Its calls
/// are checked against [`attrs`](Self::attrs) like rule calls (keyword arguments only,
/// `name` first); each becomes a declaration the rule set reads back from
/// [`Workspace::declared`].
pub trait WorkspaceFunction: Send + Sync {
    /// The name `WORKSPACE` calls.
    fn kind(&self) -> &'static str;
    /// One paragraph for docs.
    fn doc(&self) -> &'static str;
    /// The arguments besides `name`.
    fn attrs(&self) -> &'static [AttrSpec];
    /// Checks one call and returns what it declares. `location` is `WORKSPACE:3:1`; `repo`
    /// is the repository whose `WORKSPACE` it is (`None` = main), whose relative labels
    /// `attrs` already resolved.
    fn declare(
        &self,
        name: &str,
        attrs: &BTreeMap<&'static str, AttrValue>,
        location: &str,
        repo: Option<&crate::label::RepoName>,
    ) -> Result<Declared, String>;
    /// The `BUILD` file of the repository `@<name>` that a call declares, for functions that
    /// declare one (as Bazel's repository rules write one): `oci_pull`'s targets. Only the
    /// main `WORKSPACE`'s calls declare repositories, as with `local_repository`.
    fn repository(&self, declared: &Declared) -> Option<String> {
        let _ = declared;
        None
    }
}

/// A set of rules with what they need: the unit that extends the engine.
pub trait RuleSet: Send + Sync {
    /// A title for docs (`Image rules`).
    fn title(&self) -> &'static str;
    /// One paragraph for docs.
    fn doc(&self) -> &'static str;
    /// The rules `BUILD` files may call.
    fn rules(&self) -> &'static [&'static dyn DynRule];
    /// The functions `WORKSPACE` may call.
    fn workspace_functions(&self) -> &'static [&'static dyn WorkspaceFunction] {
        &[]
    }
    /// Adds what this rule set's analysis reads (a lockfile, keyrings) to `state`, once per
    /// command, after `WORKSPACE` is loaded.
    fn analysis_state(&self, workspace: &Workspace, state: &mut TypeMap) -> Result<(), crate::error::Error> {
        let _ = (workspace, state);
        Ok(())
    }
    /// One line naming what a built target is, for `build --list-outputs`, when the rule set
    /// knows better than its file digests (an image by its manifest digest). `out_root` is
    /// where outputs were materialized.
    fn describe(&self, provided: &Provided, out_root: &std::path::Path) -> Option<String> {
        let _ = (provided, out_root);
        None
    }
}

/// The engine's own rules: generic ones every workspace has.
pub struct Builtins;

impl RuleSet for Builtins {
    fn title(&self) -> &'static str {
        "Built-in rules"
    }
    fn doc(&self) -> &'static str {
        "Generic rules every workspace has, whatever rule sets the binary carries."
    }
    fn rules(&self) -> &'static [&'static dyn DynRule] {
        &[&expand_template::ExpandTemplate, &filegroup::Filegroup, &write_file::WriteFile]
    }
}

/// The rules of several rule sets, looked up by kind.
#[derive(Clone)]
pub struct Registry {
    sets: Vec<&'static dyn RuleSet>,
}

impl Registry {
    /// The engine's built-in rules and `sets`. Two rules (or two `WORKSPACE` functions) of
    /// one kind are a programming error, reported by [`Registry::check`].
    pub fn new(sets: &[&'static dyn RuleSet]) -> Self {
        let mut all: Vec<&'static dyn RuleSet> = vec![&Builtins];
        all.extend_from_slice(sets);
        Registry { sets: all }
    }

    /// The rule sets, built-ins first.
    pub fn sets(&self) -> &[&'static dyn RuleSet] {
        &self.sets
    }

    /// Every rule, sorted by kind.
    pub fn rules(&self) -> Vec<&'static dyn DynRule> {
        let mut rules: Vec<_> = self.sets.iter().flat_map(|s| s.rules().iter().copied()).collect();
        rules.sort_by_key(|r| r.kind());
        rules
    }

    /// Every `WORKSPACE` function, sorted by kind.
    pub fn workspace_functions(&self) -> Vec<&'static dyn WorkspaceFunction> {
        let mut functions: Vec<_> = self.sets.iter().flat_map(|s| s.workspace_functions().iter().copied()).collect();
        functions.sort_by_key(|f| f.kind());
        functions
    }

    /// The rule named `kind`.
    pub fn rule(&self, kind: &str) -> Option<&'static dyn DynRule> {
        self.rules().into_iter().find(|r| r.kind() == kind)
    }

    /// Refuses two rules or functions of one kind.
    pub fn check(&self) -> Result<(), String> {
        let kinds: Vec<&str> = self.rules().iter().map(|r| r.kind()).collect();
        let functions: Vec<&str> = self.workspace_functions().iter().map(|f| f.kind()).collect();
        for list in [kinds, functions] {
            if let Some(w) = list.windows(2).find(|w| w[0] == w[1]) {
                return Err(format!("internal error: two rule sets define `{}`", w[0]));
            }
        }
        Ok(())
    }

    /// Every rule set's analysis state, for one command.
    pub fn analysis_state(&self, workspace: &Workspace) -> Result<TypeMap, crate::error::Error> {
        let mut state = TypeMap::new();
        for set in &self.sets {
            set.analysis_state(workspace, &mut state)?;
        }
        Ok(state)
    }

    /// The first rule set's description of a built target.
    pub fn describe(&self, provided: &Provided, out_root: &std::path::Path) -> Option<String> {
        self.sets.iter().find_map(|s| s.describe(provided, out_root))
    }
}

impl Registry {
    /// The reference of every rule set's `WORKSPACE` functions and rules, as Markdown:
    /// what `executor docs` prints and `docs/rules.md` holds.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "# Rules\n\n<!-- Generated by `executor docs` from the rules' attribute tables; do not edit. -->\n\n\
             Every rule takes `name` (a string, required) besides the attributes listed. Setting an \
             attribute to `None` leaves it unset. Labels are resolved against the package of the \
             `BUILD` file (`WORKSPACE` functions: against the main repository's root).\n",
        );
        for set in &self.sets {
            out.push_str(&format!("\n## {}\n\n{}\n", set.title(), set.doc()));
            let mut functions: Vec<_> = set.workspace_functions().to_vec();
            functions.sort_by_key(|f| f.kind());
            for f in functions {
                out.push_str(&entry(f.kind(), "`WORKSPACE` function", f.doc(), f.attrs()));
            }
            let mut rules: Vec<_> = set.rules().to_vec();
            rules.sort_by_key(|r| r.kind());
            for r in rules {
                out.push_str(&entry(r.kind(), "rule", r.doc(), r.attrs()));
            }
        }
        out
    }
}

/// One rule's or function's section of [`Registry::markdown`].
fn entry(kind: &str, what: &str, doc: &str, attrs: &[AttrSpec]) -> String {
    let names: Vec<&str> = std::iter::once("name").chain(attrs.iter().map(|a| a.name)).collect();
    let mut out = format!("\n### `{kind}`\n\n{what}: `{kind}({})`\n\n{doc}\n", names.join(", "));
    if !attrs.is_empty() {
        out.push_str("\n| attribute | type | required | description |\n|---|---|---|---|\n");
        for a in attrs {
            let doc = a.doc.replace('|', "\\|");
            let required = if a.mandatory { "yes" } else { "no" };
            out.push_str(&format!("| `{}` | {} | {required} | {doc} |\n", a.name, a.ty.describe()));
        }
    }
    out
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.rules().iter().map(|r| r.kind())).finish()
    }
}

/// Joins a package path and a relative name into a `/`-separated output path.
pub fn package_relative(package: &str, name: &str) -> String {
    if package.is_empty() {
        name.to_owned()
    } else {
        format!("{package}/{name}")
    }
}

/// The output path of `rel` for a target: below `@repo/` for an external repository.
pub fn output_root(label: &Label, rel: &str) -> String {
    match &label.repo {
        Some(repo) => format!("@{}/{rel}", repo.as_str()),
        None => rel.to_owned(),
    }
}

/// Refuses an `out` attribute of `rule` that is not a relative path inside the package.
pub fn check_out(rule: &str, out: &str) -> Result<(), String> {
    crate::label::TargetName::new(out)
        .map(|_| ())
        .map_err(|e| format!("attribute `out` of rule `{rule}` must be a relative path: {}", e.reason))
}

/// The output path `executor-out/<package>/<name>` of a target's file named `name` (below
/// `@repo/` for an external repository).
pub fn output_path(label: &Label, name: &str) -> String {
    output_root(label, &package_relative(label.package.as_str(), name))
}

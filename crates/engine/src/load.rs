//! Loading: Starlark evaluation of `WORKSPACE`, `.bzl` and `BUILD` files into targets.
//!
//! Each `.bzl` module is evaluated once per command and shared by everything that loads it;
//! each package is evaluated once. Both caches are explicit members of [`Loader`], and both
//! are safe to fill from several threads: packages load in parallel.
//!
//! Dialects: `BUILD` files may not `def` functions (put macros in `.bzl` files); `.bzl` and
//! `WORKSPACE` files may. Rules are called directly in `BUILD` files and as `native.<rule>`
//! in macros.
//!
//! No input crashes the process: every file is evaluated through [`sandbox`] (its own
//! thread and stack, steps, time and memory within [`Limits`], panics and fatal signals
//! turned into errors naming the file and line), and `load()` chains are walked with an
//! explicit stack ([`Loader::load_all`]), however long.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use starlark::codemap::FileSpan;
use starlark::environment::{FrozenModule, Globals, GlobalsBuilder, LibraryExtension, Module};
use starlark::eval::{Arguments, Evaluator, ReturnFileLoader};
use starlark::starlark_module;
use starlark::syntax::{AstModule, Dialect};
use starlark::values::list_or_tuple::UnpackListOrTuple;
use starlark::values::none::NoneType;
use starlark::values::Heap;
use starlark::PrintHandler;

use crate::label::{Label, LabelContext, LabelError, PackagePath, RepoName, TargetName};
use crate::rules::{DynRule, Registry, WorkspaceFunction};
use crate::target::{convert_attr, did_you_mean, AttrError, AttrSpec, AttrValue, Location, Target};
use crate::workspace::{build_file, is_ignored_dir, Declaration, Workspace, OUT_DIR};

mod limits;
mod sandbox;

pub use limits::{Limits, MAX_CALL_DEPTH, MAX_NESTING};
pub use sandbox::{with_loading_stack, CountingAllocator, STACK_SIZE};

/// Why a file could not be loaded. Cloneable because one failed `.bzl` module is reported by
/// every package that loads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// Starlark's diagnostic (a syntax or evaluation error, or a limit the sandbox enforced),
    /// rendered with its file, line, column and source excerpt.
    #[error("{0}")]
    Diagnostic(String),
    /// A `load()` names a module that does not exist.
    #[error("cannot find `{label}`: {reason}")]
    NotFound { label: Label, reason: String },
    /// A `load()` names a file that is not a `.bzl` module.
    #[error("cannot load `{label}`: only `.bzl` files can be loaded")]
    NotBzl { label: Label },
    /// `load()`s form a cycle.
    #[error("load cycle: {}", cycle.iter().map(|l| format!("`{l}`")).collect::<Vec<_>>().join(" -> "))]
    Cycle { cycle: Vec<Label> },
    /// A `load()` names an invalid label.
    #[error(transparent)]
    Label(#[from] LabelError),
    /// An error told at the `load()` statement that caused it.
    #[error("{location}: {cause}")]
    AtLoad { location: String, cause: Box<LoadError> },
    /// A package of a repository `WORKSPACE` does not declare.
    #[error("repository `@{repo}` is not declared in {workspace_file}\n  fix: declare it with `local_repository(name = ..., path = ...)`")]
    UnknownRepository { repo: String, workspace_file: &'static str },
    /// A `WORKSPACE`, `BUILD` or `.bzl` file cannot be read, or resolves outside its repository.
    #[error("{0}")]
    Read(String),
    /// The interpreter could not be set up or run (a thread, a frozen module).
    #[error("{0}")]
    Internal(String),
}

/// One evaluated package.
#[derive(Debug)]
pub struct Package {
    /// The repository (`None` = main).
    pub repo: Option<RepoName>,
    /// The package path.
    pub path: PackagePath,
    /// Absolute directory of the package.
    pub dir: PathBuf,
    /// The `BUILD` file as users see it (`images/BUILD`).
    pub build_file: String,
    /// Declared targets by name.
    pub targets: BTreeMap<TargetName, Target>,
}

type Slot<T> = Arc<OnceLock<Result<T, LoadError>>>;

/// A package's identity: its repository (`None` = main) and path.
type PackageKey = (Option<RepoName>, PackagePath);

/// Evaluates Starlark files of one workspace, caching modules and packages.
pub struct Loader {
    /// The workspace, with the repositories its `WORKSPACE` declares.
    pub workspace: Workspace,
    /// The rules and `WORKSPACE` functions files may call.
    pub registry: Registry,
    build_globals: Globals,
    bzl_globals: Globals,
    /// `.bzl` modules by label; each evaluated at most once.
    modules: Mutex<HashMap<Label, Slot<FrozenModule>>>,
    /// Packages by repository and path; each evaluated at most once.
    packages: Mutex<HashMap<PackageKey, Slot<Arc<Package>>>>,
    /// What evaluating one file may take.
    limits: Limits,
}

/// A parsed file whose `load()`s are not evaluated yet.
struct Parsed {
    /// The file as users see it (`images/BUILD`).
    display: String,
    ast: AstModule,
    /// What each `load()` names, and where, in order.
    loads: Vec<(String, FileSpan)>,
}

/// A `.bzl` module on the path of [`Loader::load_all`]'s walk, waiting for its `load()`s.
struct Pending {
    label: Label,
    parsed: Parsed,
    /// The modules of its first `loaded.len()` `load()`s.
    loaded: Vec<(String, FrozenModule)>,
}

/// What [`Loader::next_module`] found for one `load()`.
enum Next {
    /// The module, evaluated.
    Ready(FrozenModule),
    /// The module, parsed; its own `load()`s come first.
    Open(Box<Pending>),
    /// The `load()` fails with this error.
    Failed(LoadError),
}

/// Renders a Starlark error with its location and source excerpt, without colors.
fn render(e: starlark::Error) -> LoadError {
    let text = e.to_string();
    let mut lines: Vec<&str> = text.trim_end().lines().collect();
    // A traceback of one frame repeats the location shown below it: drop it. Deeper ones
    // (macros) show how a BUILD file reached the failing call, and stay.
    if lines.first() == Some(&"Traceback (most recent call last):") {
        let frames: Vec<&str> = lines
            .iter()
            .skip(1)
            .take_while(|l| !l.starts_with("error: "))
            .filter_map(|l| l.strip_prefix("  * ").and_then(|f| f.split(", in ").next()))
            .collect();
        let at = lines.iter().find_map(|l| l.trim_start().strip_prefix("--> ")).unwrap_or("");
        let same_place = frames.len() == 1 && at.starts_with(&format!("{}:", frames[0]));
        if same_place {
            let end = lines.iter().position(|l| l.starts_with("error: ")).unwrap_or(0);
            lines.drain(..end);
        }
    }
    let lines = collapse_repeated_frames(lines);
    let mut out = lines.join("\n");
    if let Some(rest) = out.strip_prefix("error: ") {
        out = rest.to_owned();
    }
    if out.starts_with("`def` is not allowed in this dialect") {
        out = out.replacen(
            "`def` is not allowed in this dialect",
            "`def` is not allowed in BUILD files; define functions (macros) in a `.bzl` file and `load()` them",
            1,
        );
    }
    if out.contains("Starlark call stack overflow") {
        out = out.replacen(
            "Starlark call stack overflow",
            &format!(
                "function calls nest more than {MAX_CALL_DEPTH} deep\n  fix: look for a function that calls itself \
                 without end; Starlark has no recursion: write it as a loop"
            ),
            1,
        );
    }
    LoadError::Diagnostic(out)
}

/// A traceback's runs of one repeated frame (a recursion), each as its first frame and a
/// count: `  * f.bzl:2, in f` with its source line, then `  (repeated 98 more times)`.
fn collapse_repeated_frames(lines: Vec<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let is_frame = lines[i].starts_with("  * ") && i + 1 < lines.len() && !lines[i + 1].starts_with("  * ");
        if !is_frame {
            out.push(lines[i].to_owned());
            i += 1;
            continue;
        }
        let frame = &lines[i..i + 2];
        let mut repeats = 0;
        while lines.get(i + 2 * (repeats + 1)..i + 2 * (repeats + 2)) == Some(frame) {
            repeats += 1;
        }
        out.extend(frame.iter().map(|l| (*l).to_owned()));
        if repeats > 1 {
            out.push(format!("  (repeated {repeats} more times)"));
        } else if repeats == 1 {
            out.extend(frame.iter().map(|l| (*l).to_owned()));
        }
        i += 2 * (repeats + 1);
    }
    out
}

/// `error`, told at the `load()` at `span`.
fn at_load(span: &FileSpan, error: LoadError) -> LoadError {
    LoadError::AtLoad { location: location(span), cause: Box::new(error) }
}

/// `file:line:col` of a span.
pub fn location(span: &FileSpan) -> String {
    format!("{}:{}", span.filename(), span.resolve_span().begin)
}

struct StderrPrint<'a>(&'a str);
impl PrintHandler for StderrPrint<'_> {
    fn println(&self, text: &str) -> starlark::Result<()> {
        eprintln!("DEBUG: {}: {text}", self.0);
        Ok(())
    }
}

fn dialect(allow_def: bool) -> Dialect {
    Dialect { enable_def: allow_def, enable_lambda: true, enable_load: true, ..Dialect::Standard }
}

fn extensions() -> [LibraryExtension; 5] {
    [
        LibraryExtension::StructType,
        LibraryExtension::Print,
        LibraryExtension::Json,
        LibraryExtension::Map,
        LibraryExtension::Filter,
    ]
}

/// Evaluator extras; a module of their own because `ProvidesStaticType`'s derive
/// implements an unsafe trait.
mod context {
    #![allow(unsafe_code)]
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use starlark::any::ProvidesStaticType;

    use crate::label::{LabelContext, RepoName, TargetName};
    use crate::target::Target;

    /// What native functions see while a `BUILD` file is evaluated.
    #[derive(ProvidesStaticType)]
    pub(super) struct PackageContext {
        /// Resolution context for relative labels.
        pub(super) label_context: LabelContext,
        /// Absolute package directory, for `glob`.
        pub(super) dir: PathBuf,
        /// Declared targets so far.
        pub(super) targets: RefCell<BTreeMap<TargetName, Target>>,
    }

    /// What native functions see while `WORKSPACE` is evaluated.
    #[derive(ProvidesStaticType)]
    pub(super) struct WorkspaceContext {
        pub(super) root: PathBuf,
        /// Whose `WORKSPACE` this is: the main repository's (default context) or a declared
        /// one's, whose relative labels name its own files.
        pub(super) label_context: LabelContext,
        pub(super) repos: RefCell<BTreeMap<RepoName, (PathBuf, String)>>,
        pub(super) declarations: RefCell<BTreeMap<crate::workspace::DeclarationKey, crate::workspace::Declaration>>,
        /// Repositories declared by rule sets' functions: their `BUILD` source and where.
        pub(super) generated: RefCell<BTreeMap<RepoName, (String, String)>>,
    }
}
use context::{PackageContext, WorkspaceContext};

fn package_context<'a>(eval: &Evaluator<'_, 'a, '_>, what: &str) -> anyhow::Result<&'a PackageContext> {
    eval.extra
        .and_then(|e| e.downcast_ref::<PackageContext>())
        .ok_or_else(|| anyhow::anyhow!("`{what}` can only be called while a BUILD file is evaluated (from the BUILD file or a macro it calls), not at the top level of a .bzl or WORKSPACE file"))
}

/// The keyword arguments of a rule or `WORKSPACE` function call, checked against `specs`:
/// `name` and the converted attributes (an argument set to `None` is unset, as in Bazel).
fn call_attrs<'v>(
    kind: &'static str,
    specs: &'static [AttrSpec],
    args: &Arguments<'v, '_>,
    heap: Heap<'v>,
    label_context: &LabelContext,
) -> anyhow::Result<(TargetName, BTreeMap<&'static str, AttrValue>)> {
    let starlark_error = |e: starlark::Error| anyhow::anyhow!("{e}");
    if args.positions(heap).map_err(starlark_error)?.next().is_some() {
        return Err(AttrError::Positional { rule: kind }.into());
    }
    let kwargs = args.names_map().map_err(starlark_error)?;
    let mut name = None;
    let mut attrs = BTreeMap::new();
    for (key, value) in kwargs.iter() {
        let key = key.as_str();
        if key == "name" {
            let text = value.unpack_str().ok_or_else(|| AttrError::Type {
                rule: kind,
                attr: "name",
                expected: "a string",
                got: format!("`{}`", value.get_type()),
            })?;
            name =
                Some(TargetName::new(text).map_err(|source| AttrError::Label { rule: kind, attr: "name", source })?);
            continue;
        }
        let Some(spec) = specs.iter().find(|a| a.name == key) else {
            let names = std::iter::once("name").chain(specs.iter().map(|a| a.name));
            return Err(AttrError::Unknown { rule: kind, attr: key.to_owned(), hint: did_you_mean(key, names) }.into());
        };
        if value.is_none() {
            continue; // `attr = None` means unset, as in Bazel
        }
        attrs.insert(spec.name, convert_attr(kind, spec, *value, label_context)?);
    }
    let name = name.ok_or(AttrError::Missing { rule: kind, attr: "name" })?;
    if let Some(missing) = specs.iter().find(|a| a.mandatory && !attrs.contains_key(a.name)) {
        return Err(AttrError::Missing { rule: kind, attr: missing.name }.into());
    }
    Ok((name, attrs))
}

/// Declares a target of `rule` from the keyword arguments of its call.
fn declare<'v>(
    rule: &'static dyn DynRule,
    args: &Arguments<'v, '_>,
    eval: &mut Evaluator<'v, '_, '_>,
) -> anyhow::Result<()> {
    let ctx = package_context(eval, rule.kind())?;
    let (name, attrs) = call_attrs(rule.kind(), rule.attrs(), args, eval.heap(), &ctx.label_context)?;
    // The outermost frame is the call in the BUILD file, also for targets made by macros.
    let stack = eval.call_stack();
    let span = stack.frames.iter().find_map(|f| f.location.clone()).or_else(|| eval.call_stack_top_location());
    let location = Location(span.as_ref().map(location).unwrap_or_default());
    let label = Label::new(ctx.label_context.repo.clone(), ctx.label_context.package.clone(), name.clone());
    let typed = rule.parse(&attrs).map_err(anyhow::Error::msg)?;
    let target = Target { label, rule, attrs, typed, location };
    let mut targets = ctx.targets.borrow_mut();
    if let Some(previous) = targets.get(&name) {
        anyhow::bail!("target `{name}` is declared twice; the first declaration is at {}", previous.location);
    }
    targets.insert(name, target);
    Ok(())
}

/// Records a call of a rule set's `WORKSPACE` function.
fn declare_in_workspace<'v>(
    function: &'static dyn WorkspaceFunction,
    args: &Arguments<'v, '_>,
    eval: &mut Evaluator<'v, '_, '_>,
) -> anyhow::Result<()> {
    let ctx = workspace_context(eval)?;
    let (name, attrs) = call_attrs(function.kind(), function.attrs(), args, eval.heap(), &ctx.label_context)?;
    let here = eval.call_stack_top_location().map(|s| location(&s)).unwrap_or_default();
    let key = (ctx.label_context.repo.clone(), function.kind(), name.as_str().to_owned());
    if let Some(previous) = ctx.declarations.borrow().get(&key) {
        anyhow::bail!(
            "{} `{name}` is declared twice; the first declaration is at {}",
            declared_noun(function.kind()),
            previous.location
        );
    }
    let value =
        function.declare(name.as_str(), &attrs, &here, ctx.label_context.repo.as_ref()).map_err(anyhow::Error::msg)?;
    if ctx.label_context.repo.is_none() {
        if let Some(build) = function.repository(&value) {
            let repo = RepoName::new(name.as_str())?;
            let previous = ctx
                .repos
                .borrow()
                .get(&repo)
                .map(|(_, at)| at.clone())
                .or_else(|| ctx.generated.borrow().get(&repo).map(|(_, at)| at.clone()));
            if let Some(previous) = previous {
                anyhow::bail!("repository `@{name}` is declared twice; the first declaration is at {previous}");
            }
            ctx.generated.borrow_mut().insert(repo, (build, here.clone()));
        }
    }
    ctx.declarations.borrow_mut().insert(key, Declaration { value, location: here });
    Ok(())
}

/// What a `WORKSPACE` function declares, for messages: `repository` for `apk_repository`.
fn declared_noun(kind: &str) -> &str {
    kind.rsplit('_').next().unwrap_or(kind)
}

/// Rules and `WORKSPACE` functions as Starlark values: callables generated from the
/// registry, so that a rule set adds a rule without touching the loader.
mod callables {
    #![allow(unsafe_code)] // `ProvidesStaticType`'s derive implements an unsafe trait.
    use std::fmt;

    use allocative::Allocative;
    use starlark::any::ProvidesStaticType;
    use starlark::eval::{Arguments, Evaluator};
    use starlark::starlark_simple_value;
    use starlark::values::none::NoneType;
    use starlark::values::{starlark_value, NoSerialize, StarlarkValue, Value};

    use crate::rules::{DynRule, WorkspaceFunction};

    /// A rule `BUILD` files call.
    #[derive(ProvidesStaticType, NoSerialize, Allocative)]
    pub(super) struct RuleCallable(#[allocative(skip)] pub(super) &'static dyn DynRule);

    /// A rule set's `WORKSPACE` function.
    #[derive(ProvidesStaticType, NoSerialize, Allocative)]
    pub(super) struct WorkspaceCallable(#[allocative(skip)] pub(super) &'static dyn WorkspaceFunction);

    impl fmt::Debug for RuleCallable {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "rule({})", self.0.kind())
        }
    }
    impl fmt::Display for RuleCallable {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "<rule {}>", self.0.kind())
        }
    }
    impl fmt::Debug for WorkspaceCallable {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "workspace_function({})", self.0.kind())
        }
    }
    impl fmt::Display for WorkspaceCallable {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "<function {}>", self.0.kind())
        }
    }

    starlark_simple_value!(RuleCallable);
    starlark_simple_value!(WorkspaceCallable);

    #[starlark_value(type = "rule")]
    impl<'v> StarlarkValue<'v> for RuleCallable {
        fn invoke(
            &self,
            _me: Value<'v>,
            args: &Arguments<'v, '_>,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> starlark::Result<Value<'v>> {
            super::declare(self.0, args, eval).map_err(starlark::Error::from)?;
            Ok(Value::new_none())
        }
    }

    #[starlark_value(type = "function")]
    impl<'v> StarlarkValue<'v> for WorkspaceCallable {
        fn invoke(
            &self,
            _me: Value<'v>,
            args: &Arguments<'v, '_>,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> starlark::Result<Value<'v>> {
            super::declare_in_workspace(self.0, args, eval).map_err(starlark::Error::from)?;
            let _ = NoneType;
            Ok(Value::new_none())
        }
    }
}

/// Adds every rule of `registry` to `builder` as a callable.
fn add_rules(builder: &mut GlobalsBuilder, registry: &Registry) {
    for rule in registry.rules() {
        builder.set(rule.kind(), callables::RuleCallable(rule));
    }
}

#[starlark_module]
fn package_functions(builder: &mut GlobalsBuilder) {
    /// The files of the package matching `include` and none of `exclude`, sorted. Files of
    /// subpackages and of `executor-out` never match.
    fn glob<'v>(
        #[starlark(require = pos)] include: UnpackListOrTuple<String>,
        #[starlark(require = named, default = UnpackListOrTuple::default())] exclude: UnpackListOrTuple<String>,
        #[starlark(require = named, default = false)] allow_empty: bool,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Vec<String>> {
        let ctx = package_context(eval, "glob")?;
        glob_package(&ctx.dir, &include.items, &exclude.items, allow_empty)
    }

    /// The path of the package being evaluated (`""` for the root package).
    fn package_name<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<String> {
        Ok(package_context(eval, "package_name")?.label_context.package.as_str().to_owned())
    }
}

/// Evaluates `glob()` in a package directory.
fn glob_package(dir: &Path, include: &[String], exclude: &[String], allow_empty: bool) -> anyhow::Result<Vec<String>> {
    let compile = |p: &String| {
        if p.starts_with('/') || p.split('/').any(|c| c == "..") {
            anyhow::bail!("glob pattern `{p}` must be relative to the package and may not contain `..`");
        }
        glob::Pattern::new(p).map_err(|e| anyhow::anyhow!("invalid glob pattern `{p}`: {e}"))
    };
    let include: Vec<_> = include.iter().map(compile).collect::<Result<_, _>>()?;
    let exclude: Vec<_> = exclude.iter().map(compile).collect::<Result<_, _>>()?;
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let mut files = Vec::new();
    list_package_files(dir, "", &mut files)?;
    let mut out: Vec<String> = files
        .into_iter()
        .filter(|f| include.iter().any(|p| p.matches_with(f, opts)) && !exclude.iter().any(|p| p.matches_with(f, opts)))
        .collect();
    out.sort();
    if out.is_empty() && !allow_empty {
        let pats: Vec<_> = include.iter().map(|p| format!("`{}`", p.as_str())).collect();
        anyhow::bail!(
            "glob({}) matches no file\n  fix: correct the pattern, or pass `allow_empty = True`",
            pats.join(", ")
        );
    }
    Ok(out)
}

/// Files below `dir` that belong to its package (not in subpackages, hidden or output dirs).
/// Directories are walked depth-first with an explicit stack of listings, not recursion.
fn list_package_files(dir: &Path, prefix: &str, out: &mut Vec<String>) -> anyhow::Result<()> {
    let list = |dir: &Path| fs::read_dir(dir).map_err(|e| anyhow::anyhow!("cannot list `{}`: {e}", dir.display()));
    let mut stack = vec![(list(dir)?, prefix.to_owned())];
    while let Some((entries, prefix)) = stack.last_mut() {
        let Some(entry) = entries.next() else {
            stack.pop();
            continue;
        };
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let rel = format!("{prefix}{name}");
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            let path = entry.path();
            if is_ignored_dir(name) || build_file(&path).is_some() {
                continue;
            }
            stack.push((list(&path)?, format!("{rel}/")));
        } else if TargetName::new(&rel).is_ok() {
            out.push(rel);
        }
    }
    Ok(())
}

#[starlark_module]
fn workspace_functions(builder: &mut GlobalsBuilder) {
    /// Names the workspace. Accepted for Bazel compatibility; the name is not used.
    fn workspace<'v>(
        #[starlark(require = named)] name: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        RepoName::new(name)?;
        workspace_context(eval)?;
        Ok(NoneType)
    }

    /// Declares repository `@name` rooted at `path` (relative to the workspace, or absolute).
    fn local_repository<'v>(
        #[starlark(require = named)] name: &str,
        #[starlark(require = named)] path: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let ctx = workspace_context(eval)?;
        let repo = RepoName::new(name)?;
        if ctx.label_context.repo.is_some() {
            // As in Bazel's WORKSPACE mode, only the main repository declares repositories:
            // a dependency's own `local_repository` calls are for when it is built alone.
            return Ok(NoneType);
        }
        let dir = ctx.root.join(path);
        let dir = fs::canonicalize(&dir).map_err(|_| {
            anyhow::anyhow!("repository `@{name}`: directory `{path}` does not exist\n  fix: correct `path` (relative to the workspace root)")
        })?;
        let here = eval.call_stack_top_location().map(|s| location(&s)).unwrap_or_default();
        let mut repos = ctx.repos.borrow_mut();
        let previous = repos
            .get(&repo)
            .map(|(_, at)| at.clone())
            .or_else(|| ctx.generated.borrow().get(&repo).map(|(_, at)| at.clone()));
        if let Some(previous) = previous {
            anyhow::bail!("repository `@{name}` is declared twice; the first declaration is at {previous}");
        }
        repos.insert(repo, (dir, here));
        Ok(NoneType)
    }
}

fn workspace_context<'a>(eval: &Evaluator<'_, 'a, '_>) -> anyhow::Result<&'a WorkspaceContext> {
    eval.extra
        .and_then(|e| e.downcast_ref::<WorkspaceContext>())
        .ok_or_else(|| anyhow::anyhow!("repositories can only be declared in the WORKSPACE file"))
}

/// Reads a `WORKSPACE`, `BUILD` or `.bzl` file of the repository rooted at `root`.
fn read_source(root: Option<&Path>, path: &Path, display: &str) -> Result<String, LoadError> {
    if let Some(root) = root {
        crate::workspace::check_inside(root, path, display).map_err(LoadError::Read)?;
    }
    fs::read_to_string(path).map_err(|e| LoadError::Read(format!("cannot read `{display}`: {e}")))
}

impl Loader {
    /// Evaluates the `WORKSPACE` file at `root` and returns a loader for its packages, which
    /// evaluates every file within `limits`.
    pub fn new(
        root: PathBuf,
        workspace_file: &'static str,
        limits: Limits,
        registry: Registry,
    ) -> Result<Self, LoadError> {
        registry.check().map_err(LoadError::Internal)?;
        let rules = GlobalsBuilder::extended_by(&extensions())
            .with(limits::limited_builtins)
            .with(|b| add_rules(b, &registry))
            .with(package_functions)
            .with_namespace("native", |b| {
                add_rules(b, &registry);
                package_functions(b);
            })
            .build();
        let bzl = GlobalsBuilder::extended_by(&extensions())
            .with(limits::limited_builtins)
            .with_namespace("native", |b| {
                add_rules(b, &registry);
                package_functions(b);
            })
            .build();
        let ws_globals = GlobalsBuilder::extended_by(&extensions())
            .with(limits::limited_builtins)
            .with(workspace_functions)
            .with(|b| {
                for function in registry.workspace_functions() {
                    b.set(function.kind(), callables::WorkspaceCallable(function));
                }
            })
            .build();
        let mut loader = Loader {
            workspace: Workspace::new(root.clone(), workspace_file),
            registry,
            build_globals: rules,
            bzl_globals: bzl,
            modules: Mutex::new(HashMap::new()),
            packages: Mutex::new(HashMap::new()),
            limits,
        };
        let source = read_source(Some(&root), &root.join(workspace_file), workspace_file)?;
        let (repos, mut declarations, generated) = sandbox::run(workspace_file, || {
            let ctx = WorkspaceContext {
                root: root.clone(),
                label_context: LabelContext::default(),
                repos: RefCell::new(BTreeMap::new()),
                declarations: RefCell::new(BTreeMap::new()),
                generated: RefCell::new(BTreeMap::new()),
            };
            loader.eval(workspace_file, source, true, &ws_globals, &LabelContext::default(), Some(&ctx))?;
            Ok((ctx.repos.into_inner(), ctx.declarations.into_inner(), ctx.generated.into_inner()))
        })?;
        loader.workspace.repos = repos.into_iter().map(|(k, (dir, _))| (k, dir)).collect();
        // A generated repository's root is a directory that does not exist: it has no files.
        for (repo, (build, _)) in generated {
            let dir = root.join(OUT_DIR).join(".executor").join("external").join(repo.as_str());
            loader.workspace.repos.insert(repo.clone(), dir);
            loader.workspace.generated.insert(repo, build);
        }
        // Each declared repository's own `WORKSPACE` declares what its targets see (its APK
        // repositories, say), so that they build the same wherever the repository is used.
        for (repo, dir) in &loader.workspace.repos {
            if loader.workspace.generated.contains_key(repo) {
                continue;
            }
            let Some(file) = crate::workspace::workspace_file(dir) else { continue };
            let display = loader.workspace.display_path(Some(repo), file);
            let source = read_source(Some(dir), &dir.join(file), &display)?;
            let label_context = LabelContext { repo: Some(repo.clone()), package: PackagePath::root() };
            let theirs = sandbox::run(&display, || {
                let ctx = WorkspaceContext {
                    root: dir.clone(),
                    label_context: label_context.clone(),
                    repos: RefCell::new(BTreeMap::new()),
                    declarations: RefCell::new(BTreeMap::new()),
                    generated: RefCell::new(BTreeMap::new()),
                };
                loader.eval(&display, source, true, &ws_globals, &label_context, Some(&ctx))?;
                Ok(ctx.declarations.into_inner())
            })?;
            declarations.extend(theirs);
        }
        loader.workspace.declarations = declarations;
        Ok(loader)
    }

    /// Parses and evaluates a `BUILD` or `WORKSPACE` file, the modules it loads first. Runs
    /// on a [`sandbox::run`] thread.
    fn eval(
        &self,
        display: &str,
        source: String,
        allow_def: bool,
        globals: &Globals,
        context: &LabelContext,
        extra: Option<&dyn starlark::any::AnyLifetime<'_>>,
    ) -> Result<(), LoadError> {
        let parsed = self.parse(display, source, allow_def)?;
        let loaded = self.load_all(&parsed.loads, context)?;
        self.eval_parsed(parsed, loaded, globals, extra, false).map(|_| ())
    }

    /// Parses one file (after [`limits::check_nesting`]), with `*` checked.
    fn parse(&self, display: &str, source: String, allow_def: bool) -> Result<Parsed, LoadError> {
        limits::check_nesting(display, &source)?;
        sandbox::guarded(display, &self.limits, || {
            let mut ast = AstModule::parse(display, source, &dialect(allow_def)).map_err(render)?;
            ast.replace_binary_operators(&HashMap::from([("*".to_owned(), limits::CHECKED_MUL.to_owned())]));
            let loads = ast.loads().into_iter().map(|l| (l.module_id.to_owned(), l.span)).collect();
            Ok(Parsed { display: display.to_owned(), ast, loads })
        })
    }

    /// Evaluates a parsed file whose `load()`s are `loaded`; its frozen module if `freeze`
    /// (`.bzl` modules; the values of `BUILD` and `WORKSPACE` files are not kept).
    fn eval_parsed(
        &self,
        parsed: Parsed,
        loaded: Vec<(String, FrozenModule)>,
        globals: &Globals,
        extra: Option<&dyn starlark::any::AnyLifetime<'_>>,
        freeze: bool,
    ) -> Result<Option<FrozenModule>, LoadError> {
        let Parsed { display, ast, .. } = parsed;
        let modules: HashMap<&str, &FrozenModule> = loaded.iter().map(|(k, m)| (k.as_str(), m)).collect();
        let file_loader = ReturnFileLoader { modules: &modules };
        let printer = StderrPrint(&display);
        sandbox::guarded(&display, &self.limits, || {
            Module::with_temp_heap(|module| {
                {
                    let mut eval = Evaluator::new(&module);
                    eval.set_loader(&file_loader);
                    eval.set_print_handler(&printer);
                    eval.extra = extra;
                    sandbox::watch(&mut eval, &module)?;
                    eval.eval_module(ast, globals).map_err(sandbox::explain)?;
                }
                if !freeze {
                    return Ok(None);
                }
                let frozen = module
                    .freeze()
                    .map_err(|e| LoadError::Internal(format!("{display}: cannot freeze module: {e:?}")))?;
                Ok(Some(frozen))
            })
        })
    }

    /// Evaluates the `.bzl` modules that `loads` name (`load()`s of a file in `context`)
    /// and, first, the modules they load, each once. A depth-first walk with an explicit
    /// stack, not recursion: a chain of 10,000 modules each loading the next needs no
    /// deeper native stack than one module. Runs on a [`sandbox::run`] thread.
    fn load_all(
        &self,
        loads: &[(String, FileSpan)],
        context: &LabelContext,
    ) -> Result<Vec<(String, FrozenModule)>, LoadError> {
        let mut root: Vec<(String, FrozenModule)> = Vec::new();
        // The modules on the path from the file to the module being loaded.
        let mut stack: Vec<Pending> = Vec::new();
        loop {
            let (loads, done, context) = match stack.last() {
                Some(p) => (&p.parsed.loads[..], p.loaded.len(), p.label.context()),
                None => (loads, root.len(), context.clone()),
            };
            let Some((id, span)) = loads.get(done).cloned() else {
                // Every module the innermost file loads is ready: evaluate it in turn. Its
                // loader finds it in the cache on the next round.
                let Some(pending) = stack.pop() else { return Ok(root) };
                let slot = self.module_slot(&pending.label);
                slot.get_or_init(|| self.eval_module(pending));
                continue;
            };
            match self.next_module(&id, &span, &context, &stack) {
                Next::Ready(module) => match stack.last_mut() {
                    Some(p) => p.loaded.push((id, module)),
                    None => root.push((id, module)),
                },
                Next::Open(pending) => stack.push(*pending),
                Next::Failed(e) => match stack.pop() {
                    None => return Err(e),
                    // The module that loads the failing one fails with the same error.
                    Some(pending) => {
                        self.module_slot(&pending.label).get_or_init(|| Err(e));
                    }
                },
            }
        }
    }

    /// The module `id` names in a `load()` at `span` of a file in `context`, with `stack`
    /// the modules being loaded.
    fn next_module(&self, id: &str, span: &FileSpan, context: &LabelContext, stack: &[Pending]) -> Next {
        let label = match Label::parse(id, context) {
            Ok(label) => label,
            Err(e) => return Next::Failed(at_load(span, LoadError::Label(e))),
        };
        if !label.name.as_str().ends_with(".bzl") {
            return Next::Failed(at_load(span, LoadError::NotBzl { label }));
        }
        // Errors about the module's existence and cycles are told at the `load()`.
        let here = |e: LoadError| match e {
            LoadError::NotFound { .. } | LoadError::Cycle { .. } => at_load(span, e),
            e => e,
        };
        if let Some(pos) = stack.iter().position(|p| p.label == label) {
            let cycle = stack[pos..].iter().map(|p| p.label.clone()).chain([label]).collect();
            return Next::Failed(here(LoadError::Cycle { cycle }));
        }
        let slot = self.module_slot(&label);
        if let Some(done) = slot.get() {
            return match done {
                Ok(module) => Next::Ready(module.clone()),
                Err(e) => Next::Failed(here(e.clone())),
            };
        }
        match self.open_module(&label) {
            Ok(pending) => Next::Open(Box::new(pending)),
            Err(e) => {
                slot.get_or_init(|| Err(e.clone()));
                Next::Failed(here(e))
            }
        }
    }

    /// Reads and parses the `.bzl` module `label`.
    fn open_module(&self, label: &Label) -> Result<Pending, LoadError> {
        let Some(dir) = self.workspace.package_dir(label.repo.as_ref(), &label.package) else {
            return Err(LoadError::NotFound {
                label: label.clone(),
                reason: format!(
                    "repository `{}` is not declared in {}",
                    label.repo.as_ref().map(|r| r.to_string()).unwrap_or_default(),
                    self.workspace.workspace_file
                ),
            });
        };
        let rel = crate::rules::package_relative(label.package.as_str(), label.name.as_str());
        let display = self.workspace.display_path(label.repo.as_ref(), &rel);
        let path = dir.join(label.name.as_str());
        if !path.is_file() {
            return Err(LoadError::NotFound {
                label: label.clone(),
                reason: format!("file `{display}` does not exist"),
            });
        }
        let source = read_source(self.workspace.repo_root(label.repo.as_ref()), &path, &display)?;
        let parsed = self.parse(&display, source, true)?;
        Ok(Pending { label: label.clone(), parsed, loaded: Vec::new() })
    }

    /// Evaluates a `.bzl` module whose `load()`s are all evaluated.
    fn eval_module(&self, pending: Pending) -> Result<FrozenModule, LoadError> {
        let display = pending.parsed.display.clone();
        self.eval_parsed(pending.parsed, pending.loaded, &self.bzl_globals, None, true)?
            .ok_or_else(|| LoadError::Internal(format!("{display}: the module was not frozen")))
    }

    /// The cache slot of the `.bzl` module `label`.
    fn module_slot(&self, label: &Label) -> Slot<FrozenModule> {
        let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        modules.entry(label.clone()).or_default().clone()
    }

    /// The package `path` of `repo`, evaluated once. `Ok(None)` if there is no such package.
    pub fn package(&self, repo: Option<&RepoName>, path: &PackagePath) -> Result<Option<Arc<Package>>, LoadError> {
        let Some(dir) = self.workspace.package_dir(repo, path) else {
            return Err(LoadError::UnknownRepository {
                repo: repo.map(|r| r.as_str().to_owned()).unwrap_or_default(),
                workspace_file: self.workspace.workspace_file,
            });
        };
        if path.as_str().split('/').any(|c| c == OUT_DIR || c.starts_with('.')) && !path.as_str().is_empty() {
            return Ok(None);
        }
        let generated = repo.and_then(|r| self.workspace.generated.get(r));
        let build = match generated {
            Some(_) if !path.as_str().is_empty() => return Ok(None),
            Some(_) => "BUILD",
            None => match build_file(&dir) {
                Some(build) => build,
                None => return Ok(None),
            },
        };
        let slot = {
            let mut packages = self.packages.lock().unwrap_or_else(|e| e.into_inner());
            packages.entry((repo.cloned(), path.clone())).or_default().clone()
        };
        slot.get_or_init(|| {
            let rel = crate::rules::package_relative(path.as_str(), build);
            let display = self.workspace.display_path(repo, &rel);
            let source = match generated {
                Some(source) => source.clone(),
                None => read_source(self.workspace.repo_root(repo), &dir.join(build), &display)?,
            };
            let context = LabelContext { repo: repo.cloned(), package: path.clone() };
            let targets = sandbox::run(&display, || {
                let ctx = PackageContext {
                    label_context: context.clone(),
                    dir: dir.clone(),
                    targets: RefCell::new(BTreeMap::new()),
                };
                self.eval(&display, source, false, &self.build_globals, &context, Some(&ctx))?;
                Ok(ctx.targets.into_inner())
            })?;
            Ok(Arc::new(Package {
                repo: repo.cloned(),
                path: path.clone(),
                dir: dir.clone(),
                build_file: display,
                targets,
            }))
        })
        .clone()
        .map(Some)
    }
}

impl Loader {
    /// The rule kinds BUILD files can call, for `did you mean` and docs.
    pub fn rule_kinds(&self) -> Vec<&'static str> {
        self.registry.rules().iter().map(|r| r.kind()).collect()
    }
}

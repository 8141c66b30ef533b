//! The target graph and analysis: patterns -> targets -> actions.
//!
//! [`TargetGraph::build`] expands patterns, loads every package the requested targets reach,
//! tells rule targets from source files, rejects unknown labels (with "did you mean") and
//! cycles (printing the cycle), and orders targets dependencies-first.
//! [`analyze`] then runs each rule's analysis in that order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rayon::prelude::*;

use crate::action::{ActionGraph, Artifact};
use crate::error::Error;
use crate::label::{Label, PackagePath, RepoName, TargetPattern};
use crate::load::{Loader, Package};
use crate::rules::{AnalysisContext, AnalysisEnv, AnalysisError, Provided};
use crate::target::{did_you_mean, Location, Target};
use crate::workspace::{build_file, WorkspaceError};

/// A node of the target graph.
#[derive(Debug, Clone)]
pub enum Node {
    /// A rule target.
    Rule(Target),
    /// A source file: its display path and absolute path.
    File { path: String, file: std::path::PathBuf },
}

/// Targets reachable from a request, dependencies first.
#[derive(Debug, Default)]
pub struct TargetGraph {
    /// The requested rule targets, sorted.
    pub requested: Vec<Label>,
    /// Every reachable node.
    pub nodes: BTreeMap<Label, Node>,
    /// Labels in dependency order (each after all its dependencies); ties in label order.
    pub order: Vec<Label>,
}

/// The state of [`TargetGraph::build`]'s depth-first walk.
struct Walk<'a> {
    loader: &'a Loader,
    /// 1 = on the stack, 2 = done; absent = unvisited.
    state: BTreeMap<Label, u8>,
    /// The path from the root to the target being visited.
    stack: Vec<Frame>,
    /// Packages looked up so far (`None`: no such package), so that each is asked for once.
    packages: BTreeMap<(Option<RepoName>, PackagePath), Option<Arc<Package>>>,
}

/// A rule target on the path of [`TargetGraph::build`]'s walk.
struct Frame {
    label: Label,
    /// Its direct dependencies with the attribute naming each, in [`Target::deps`] order.
    deps: Vec<(&'static str, Label)>,
    /// The index in `deps` of the next one to visit.
    next: usize,
}

fn repo_text(repo: Option<&RepoName>) -> String {
    repo.map(|r| r.to_string()).unwrap_or_default()
}

/// `//pkg` as users write a package.
fn package_label(repo: Option<&RepoName>, path: &PackagePath) -> String {
    format!("{}//{path}", repo_text(repo))
}

fn no_such_package(loader: &Loader, repo: Option<&RepoName>, path: &PackagePath) -> GraphError {
    let known = loader.workspace.find_packages(repo, &PackagePath::root()).unwrap_or_default();
    let hint = did_you_mean(path.as_str(), known.iter().map(|p| p.as_str()));
    let hint = hint.replace(", did you mean `", &format!(", did you mean `{}//", repo_text(repo)));
    GraphError::NoSuchPackage {
        package: package_label(repo, path),
        dir: loader.workspace.display_path(repo, if path.as_str().is_empty() { "." } else { path.as_str() }),
        hint,
    }
}

/// Loads a package that must exist.
fn require_package(loader: &Loader, repo: Option<&RepoName>, path: &PackagePath) -> Result<Arc<Package>, Error> {
    loader.package(repo, path)?.ok_or_else(|| Error::from(no_such_package(loader, repo, path)))
}

/// Expands patterns into the rule targets they select, sorted and deduplicated.
pub fn expand(loader: &Loader, patterns: &[TargetPattern]) -> Result<Vec<Label>, Error> {
    let mut out = BTreeSet::new();
    for pattern in patterns {
        match pattern {
            TargetPattern::Target(label) => {
                let package = require_package(loader, label.repo.as_ref(), &label.package)?;
                if !package.targets.contains_key(&label.name) {
                    let hint = did_you_mean(label.name.as_str(), package.targets.keys().map(|n| n.as_str()));
                    let hint = hint.replace(
                        ", did you mean `",
                        &format!(", did you mean `{}:", package_label(label.repo.as_ref(), &label.package)),
                    );
                    return Err(Error::from(GraphError::NoSuchTarget {
                        label: label.clone(),
                        build_file: package.build_file.clone(),
                        hint,
                    }));
                }
                out.insert(label.clone());
            }
            TargetPattern::AllInPackage { repo, package } => {
                let package = require_package(loader, repo.as_ref(), package)?;
                // As in Bazel, a target actually named `all` wins over the wildcard.
                match package.targets.values().find(|t| t.label.name.as_str() == "all") {
                    Some(t) => {
                        out.insert(t.label.clone());
                    }
                    None => out.extend(package.targets.values().map(|t| t.label.clone())),
                }
            }
            TargetPattern::Recursive { repo, package } => {
                if loader.workspace.repo_root(repo.as_ref()).is_none() {
                    loader.package(repo.as_ref(), package)?; // reports the undeclared repository
                }
                let paths = loader.workspace.find_packages(repo.as_ref(), package).map_err(GraphError::Workspace)?;
                if paths.is_empty() {
                    return Err(Error::from(GraphError::NoPackages {
                        pattern: pattern.to_string(),
                        dir: loader.workspace.display_path(
                            repo.as_ref(),
                            if package.as_str().is_empty() { "." } else { package.as_str() },
                        ),
                    }));
                }
                let packages: Vec<Arc<Package>> =
                    paths.par_iter().map(|p| require_package(loader, repo.as_ref(), p)).collect::<Result<_, _>>()?;
                for package in packages {
                    out.extend(package.targets.values().map(|t| t.label.clone()));
                }
            }
        }
    }
    Ok(out.into_iter().collect())
}

impl TargetGraph {
    /// Loads everything `requested` reaches and orders it.
    ///
    /// The walk is a depth-first search with an explicit stack, not recursion: a chain of
    /// 100,000 targets needs no deeper native stack than one target.
    pub fn build(loader: &Loader, requested: Vec<Label>) -> Result<Self, Error> {
        let mut graph = TargetGraph { requested, ..Default::default() };
        let mut walk = Walk { loader, state: BTreeMap::new(), stack: Vec::new(), packages: BTreeMap::new() };
        for root in graph.requested.clone() {
            graph.enter(&mut walk, &root, None)?;
            while let Some(frame) = walk.stack.last_mut() {
                match frame.deps.get(frame.next) {
                    Some((attr, dep)) => {
                        let (attr, dep) = (*attr, dep.clone());
                        frame.next += 1;
                        let referrer = frame.label.clone();
                        graph.enter(&mut walk, &dep, Some((&referrer, attr)))?;
                    }
                    None => {
                        let label = frame.label.clone();
                        walk.stack.pop();
                        walk.state.insert(label.clone(), 2);
                        graph.order.push(label);
                    }
                }
            }
        }
        Ok(graph)
    }

    /// Visits `label`, reached from `referrer` (the target and attribute naming it): a source
    /// file is done at once, a rule target is pushed on `stack` for its dependencies.
    fn enter(
        &mut self,
        walk: &mut Walk<'_>,
        label: &Label,
        referrer: Option<(&Label, &'static str)>,
    ) -> Result<(), Error> {
        let Walk { loader, state, stack, packages } = walk;
        let loader: &Loader = loader;
        match state.get(label) {
            Some(2) => return Ok(()),
            Some(1) => {
                let start = stack.iter().position(|f| &f.label == label).unwrap_or(0);
                let cycle: Vec<Label> = stack[start..].iter().map(|f| f.label.clone()).chain([label.clone()]).collect();
                let location = match self.nodes.get(label) {
                    Some(Node::Rule(t)) => Some(t.location.clone()),
                    _ => None,
                };
                return Err(Error::from(GraphError::Cycle { location, cycle }));
            }
            _ => {}
        }
        let referrer = match referrer {
            Some((l, attr)) => match self.nodes.get(l) {
                Some(Node::Rule(t)) => Some((t, attr)),
                _ => None,
            },
            None => None,
        };
        let key = (label.repo.clone(), label.package.clone());
        let package = match packages.get(&key) {
            Some(p) => p.clone(),
            None => {
                let p = loader.package(label.repo.as_ref(), &label.package)?;
                packages.insert(key, p.clone());
                p
            }
        };
        let package = match package {
            Some(p) => p,
            None => {
                let error = no_such_package(loader, label.repo.as_ref(), &label.package);
                return Err(Error::from(GraphError::named_by(referrer, error)));
            }
        };
        let Some(target) = package.targets.get(&label.name) else {
            // Not a rule target: it must be a source file of that package.
            let node = source_file(loader, &package, label, referrer)?;
            self.nodes.insert(label.clone(), node);
            state.insert(label.clone(), 2);
            self.order.push(label.clone());
            return Ok(());
        };
        state.insert(label.clone(), 1);
        let deps = target.deps().into_iter().map(|(attr, l)| (attr, l.clone())).collect();
        stack.push(Frame { label: label.clone(), deps, next: 0 });
        self.nodes.insert(label.clone(), Node::Rule(target.clone()));
        Ok(())
    }

    /// The transitive dependencies of `roots` (rule targets and files), sorted, without roots.
    pub fn transitive_deps(&self, roots: &[Label]) -> Vec<Label> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&Label> = roots.iter().collect();
        while let Some(l) = todo.pop() {
            if let Some(Node::Rule(t)) = self.nodes.get(l) {
                for (_, d) in t.deps() {
                    if seen.insert(d.clone()) {
                        todo.push(d);
                    }
                }
            }
        }
        seen.into_iter().collect()
    }
}

fn source_file(
    loader: &Loader,
    package: &Package,
    label: &Label,
    referrer: Option<(&Target, &'static str)>,
) -> Result<Node, Error> {
    let rel = crate::rules::package_relative(package.path.as_str(), label.name.as_str());
    let display = loader.workspace.display_path(label.repo.as_ref(), &rel);
    let path = package.dir.join(label.name.as_str());
    let context = |error: GraphError| Error::from(GraphError::named_by(referrer, error));
    if !path.is_file() {
        let hint = did_you_mean(label.name.as_str(), package.targets.keys().map(|n| n.as_str()));
        return Err(context(GraphError::MissingFile {
            label: label.clone(),
            path: display,
            build_file: package.build_file.clone(),
            hint,
        }));
    }
    if let Some(root) = loader.workspace.repo_root(label.repo.as_ref()) {
        crate::workspace::check_inside(root, &path, &display).map_err(|e| context(GraphError::OutsideRepository(e)))?;
    }
    // A file below a subpackage belongs to that package, as in Bazel.
    let mut dir = package.dir.clone();
    let components: Vec<&str> = label.name.as_str().split('/').collect();
    for (i, c) in components.iter().enumerate().take(components.len().saturating_sub(1)) {
        dir.push(c);
        if build_file(&dir).is_some() {
            let sub = package.path.join(&components[..=i].join("/")).unwrap_or_default();
            return Err(context(GraphError::CrossesPackage {
                label: label.clone(),
                path: display,
                package: package_label(label.repo.as_ref(), &sub),
                write: format!("{}//{sub}:{}", repo_text(label.repo.as_ref()), components[i + 1..].join("/")),
            }));
        }
    }
    Ok(Node::File { path: display, file: path })
}

/// Why the target graph is wrong.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// A pattern or label names a directory without a `BUILD` file.
    #[error("no such package `{package}`: there is no BUILD file in `{dir}`{hint}")]
    NoSuchPackage { package: String, dir: String, hint: String },
    /// A label names a target its package does not declare.
    #[error("no such target `{label}`: `{build_file}` declares no target named `{}`{hint}", label.name)]
    NoSuchTarget { label: Label, build_file: String, hint: String },
    /// A recursive pattern matches no package.
    #[error("no packages match `{pattern}`: there is no BUILD file at or below `{dir}`")]
    NoPackages { pattern: String, dir: String },
    /// Targets depend on each other in a circle.
    #[error("{}dependency cycle: {}", location.as_ref().map(|l| format!("{l}: ")).unwrap_or_default(), cycle.iter().map(|l| format!("`{l}`")).collect::<Vec<_>>().join(" -> "))]
    Cycle { location: Option<Location>, cycle: Vec<Label> },
    /// A label is neither a target nor an existing file.
    #[error("missing input file `{label}`: `{path}` does not exist and `{build_file}` declares no target `{}`{hint}", label.name)]
    MissingFile { label: Label, path: String, build_file: String, hint: String },
    /// A source file resolves outside its repository.
    #[error("{0}")]
    OutsideRepository(String),
    /// A file label reaches into a subpackage.
    #[error("`{label}` crosses a package boundary: `{path}` belongs to package `{package}`; write `{write}`")]
    CrossesPackage { label: Label, path: String, package: String, write: String },
    /// An error about a label, where an attribute of a target names it.
    #[error("{location}: `{label}` attribute `{attr}`: {cause}")]
    InAttribute { location: Location, label: Label, attr: &'static str, cause: Box<GraphError> },
    /// Packages cannot be listed.
    #[error(transparent)]
    Workspace(WorkspaceError),
}

impl GraphError {
    /// `error`, placed at the attribute of the target that names the label, if any.
    fn named_by(referrer: Option<(&Target, &'static str)>, error: GraphError) -> GraphError {
        match referrer {
            Some((t, attr)) => GraphError::InAttribute {
                location: t.location.clone(),
                label: t.label.clone(),
                attr,
                cause: Box::new(error),
            },
            None => error,
        }
    }
}

/// Why analysis failed.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisFailure {
    /// A rule refused a target.
    #[error("{location}: `{label}`: {cause}")]
    Rule { location: Location, label: Label, cause: AnalysisError },
    /// An output would land in executor's own state directory.
    #[error("{location}: `{label}`: output `executor-out/{path}` is inside `executor-out/.executor/`, which executor reserves for its own state\n  fix: choose another output name")]
    ReservedOutput { location: Location, label: Label, path: String },
    /// Two targets write one output path.
    #[error("output `executor-out/{path}` is written by both `{first}` and `{second}`\n  fix: give one of them another output name")]
    SharedOutput { path: String, first: Label, second: Label },
    /// One output lies inside another.
    #[error("output `executor-out/{nested}` of `{nested_owner}` is inside `executor-out/{path}`, {}: one would replace the other\n  fix: give one of them another output name", if nested_owner == owner { "another output of it".to_owned() } else { format!("an output of `{owner}`") })]
    NestedOutput { nested: String, nested_owner: Label, path: String, owner: Label },
}

/// The result of analysis.
#[derive(Debug, Default)]
pub struct Analysis {
    /// Every action.
    pub actions: ActionGraph,
    /// What every node provides.
    pub provided: BTreeMap<Label, Provided>,
    /// Warnings rules gave, in analysis order.
    pub warnings: Vec<String>,
}

impl Analysis {
    /// The actions the files of `labels` need, transitively through action inputs, marked by
    /// action id: what a build of those targets runs. Other analyzed actions (an index's
    /// images left out by `--platforms`) do not run.
    pub fn needed_by(&self, labels: &[Label]) -> Vec<bool> {
        let derived = |artifact: &crate::action::Artifact| match artifact {
            crate::action::Artifact::Derived { action, .. } => Some(action.0),
            crate::action::Artifact::Source { .. } => None,
        };
        let mut wanted = vec![false; self.actions.actions.len()];
        let mut stack: Vec<usize> = labels
            .iter()
            .filter_map(|label| self.provided.get(label))
            .flat_map(|provided| provided.files.iter().filter_map(derived))
            .collect();
        while let Some(id) = stack.pop() {
            let Some(seen) = wanted.get_mut(id) else { continue };
            if std::mem::replace(seen, true) {
                continue;
            }
            stack.extend(self.actions.actions[id].inputs.iter().filter_map(|input| derived(&input.artifact)));
        }
        wanted
    }
}

/// Runs every rule's analysis in dependency order.
pub fn analyze(graph: &TargetGraph, env: &AnalysisEnv) -> Result<Analysis, Error> {
    let mut out = Analysis::default();
    for label in &graph.order {
        let provided = match &graph.nodes[label] {
            Node::File { path, file } => {
                Provided::files(vec![Artifact::Source { label: label.clone(), path: path.clone(), file: file.clone() }])
            }
            Node::Rule(target) => {
                let first_new = out.actions.actions.len();
                let mut ctx =
                    AnalysisContext { env, deps: &out.provided, graph: &mut out.actions, warnings: &mut out.warnings };
                let provided = target.rule.analyze(target, &mut ctx).map_err(|cause| AnalysisFailure::Rule {
                    location: target.location.clone(),
                    label: target.label.clone(),
                    cause,
                })?;
                // `executor-out/.executor/` holds the workspace lock and the build's state.
                for spec in out.actions.actions[first_new..].iter().flat_map(|a| &a.outputs) {
                    if spec.path.split('/').next() == Some(".executor") {
                        return Err(Error::from(AnalysisFailure::ReservedOutput {
                            location: target.location.clone(),
                            label: target.label.clone(),
                            path: spec.path.clone(),
                        }));
                    }
                }
                provided
            }
        };
        out.provided.insert(label.clone(), provided);
    }
    // Two actions may not write one output path.
    let mut owners: BTreeMap<&str, &Label> = BTreeMap::new();
    for action in &out.actions.actions {
        for spec in &action.outputs {
            if let Some(first) = owners.insert(&spec.path, &action.owner) {
                if first != &action.owner {
                    let (a, b) = if first < &action.owner { (first, &action.owner) } else { (&action.owner, first) };
                    return Err(Error::from(AnalysisFailure::SharedOutput {
                        path: spec.path.clone(),
                        first: a.clone(),
                        second: b.clone(),
                    }));
                }
            }
        }
    }
    // Nor may one output lie inside another (`a` and `a/b`): which of them `executor-out/`
    // ends up with would depend on the order the actions ran in.
    for (path, owner) in &owners {
        let inside = format!("{path}/");
        if let Some((nested, nested_owner)) =
            owners.range(inside.as_str()..).next().filter(|(p, _)| p.starts_with(inside.as_str()))
        {
            return Err(Error::from(AnalysisFailure::NestedOutput {
                nested: (*nested).to_owned(),
                nested_owner: (*nested_owner).clone(),
                path: (*path).to_owned(),
                owner: (*owner).clone(),
            }));
        }
    }
    Ok(out)
}

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
use crate::rules::{AnalysisContext, AnalysisEnv, Provided};
use crate::target::{did_you_mean, Target};
use crate::workspace::build_file;

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

fn no_such_package(loader: &Loader, repo: Option<&RepoName>, path: &PackagePath) -> String {
    let known = loader.workspace.find_packages(repo, &PackagePath::root()).unwrap_or_default();
    let hint = did_you_mean(path.as_str(), known.iter().map(|p| p.as_str()));
    let hint = hint.replace(", did you mean `", &format!(", did you mean `{}//", repo_text(repo)));
    format!(
        "no such package `{}`: there is no BUILD file in `{}`{hint}",
        package_label(repo, path),
        loader.workspace.display_path(repo, if path.as_str().is_empty() { "." } else { path.as_str() })
    )
}

/// Loads a package that must exist.
fn require_package(loader: &Loader, repo: Option<&RepoName>, path: &PackagePath) -> Result<Arc<Package>, Error> {
    loader.package(repo, path)?.ok_or_else(|| Error::Graph(no_such_package(loader, repo, path)))
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
                    return Err(Error::Graph(format!(
                        "no such target `{label}`: `{}` declares no target named `{}`{hint}",
                        package.build_file, label.name
                    )));
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
                let paths =
                    loader.workspace.find_packages(repo.as_ref(), package).map_err(|e| Error::Graph(e.to_string()))?;
                if paths.is_empty() {
                    return Err(Error::Graph(format!(
                        "no packages match `{pattern}`: there is no BUILD file at or below `{}`",
                        loader.workspace.display_path(
                            repo.as_ref(),
                            if package.as_str().is_empty() { "." } else { package.as_str() }
                        )
                    )));
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
                let cycle: Vec<String> =
                    stack[start..].iter().map(|f| &f.label).chain([label]).map(|l| format!("`{l}`")).collect();
                let at = match self.nodes.get(label) {
                    Some(Node::Rule(t)) => format!("{}: ", t.location),
                    _ => String::new(),
                };
                return Err(Error::Graph(format!("{at}dependency cycle: {}", cycle.join(" -> "))));
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
                let msg = no_such_package(loader, label.repo.as_ref(), &label.package);
                return Err(Error::Graph(match referrer {
                    Some((t, attr)) => {
                        format!("{}: `{}` attribute `{attr}`: {msg}", t.location, t.label)
                    }
                    None => msg,
                }));
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
    let context = |msg: String| match referrer {
        Some((t, attr)) => format!("{}: `{}` attribute `{attr}`: {msg}", t.location, t.label),
        None => msg,
    };
    if !path.is_file() {
        let hint = did_you_mean(label.name.as_str(), package.targets.keys().map(|n| n.as_str()));
        return Err(Error::Graph(context(format!(
            "missing input file `{label}`: `{display}` does not exist and `{}` declares no target `{}`{hint}",
            package.build_file, label.name
        ))));
    }
    if let Some(root) = loader.workspace.repo_root(label.repo.as_ref()) {
        crate::workspace::check_inside(root, &path, &display).map_err(|e| Error::Graph(context(e)))?;
    }
    // A file below a subpackage belongs to that package, as in Bazel.
    let mut dir = package.dir.clone();
    let components: Vec<&str> = label.name.as_str().split('/').collect();
    for (i, c) in components.iter().enumerate().take(components.len().saturating_sub(1)) {
        dir.push(c);
        if build_file(&dir).is_some() {
            let sub = package.path.join(&components[..=i].join("/")).unwrap_or_default();
            return Err(Error::Graph(context(format!(
                "`{label}` crosses a package boundary: `{display}` belongs to package `{}`; write `{}//{sub}:{}`",
                package_label(label.repo.as_ref(), &sub),
                repo_text(label.repo.as_ref()),
                components[i + 1..].join("/")
            ))));
        }
    }
    Ok(Node::File { path: display, file: path })
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
                let provided = target
                    .rule
                    .analyze(target, &mut ctx)
                    .map_err(|e| Error::Analysis(format!("{}: `{}`: {e}", target.location, target.label)))?;
                // `executor-out/.executor/` holds the workspace lock and the build's state.
                for spec in out.actions.actions[first_new..].iter().flat_map(|a| &a.outputs) {
                    if spec.path.split('/').next() == Some(".executor") {
                        return Err(Error::Analysis(format!(
                            "{}: `{}`: output `executor-out/{}` is inside `executor-out/.executor/`, which executor reserves for its own state\n  fix: choose another output name",
                            target.location, target.label, spec.path
                        )));
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
                    return Err(Error::Analysis(format!(
                        "output `executor-out/{}` is written by both `{a}` and `{b}`\n  fix: give one of them another output name",
                        spec.path
                    )));
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
            let whose = if nested_owner == owner {
                "another output of it".to_owned()
            } else {
                format!("an output of `{owner}`")
            };
            return Err(Error::Analysis(format!(
                "output `executor-out/{nested}` of `{nested_owner}` is inside `executor-out/{path}`, {whose}: one would replace the other\n  fix: give one of them another output name"
            )));
        }
    }
    Ok(out)
}

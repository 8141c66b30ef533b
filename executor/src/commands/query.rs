//! `executor query`: targets and their dependencies, as labels, kinds or JSON.

use std::io::Write;
use std::path::Path;

use super::parse_patterns;
use crate::cli::QueryOutput;
use crate::error::Error;
use crate::graph::{expand, Node, TargetGraph};
use crate::label::Label;
use crate::load::Loader;

pub(super) fn query(loader: &Loader, cwd: &Path, expression: &str, output: QueryOutput) -> Result<(), Error> {
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

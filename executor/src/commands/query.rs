//! `executor query`: targets and their dependencies, as labels, kinds or JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use super::parse_patterns;
use crate::cli::QueryOutput;
use crate::error::Error;
use crate::graph::{expand, Node, TargetGraph};
use crate::label::Label;
use crate::load::Loader;

/// A parsed query expression: the subset of Bazel's query language executor answers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    /// A target pattern: `//pkg:name`, `//pkg/...`, `:all`.
    Pattern(String),
    /// `deps(EXPR)`: EXPR and everything it depends on, transitively.
    Deps(Box<Expr>),
    /// `rdeps(UNIVERSE, EXPR)`: the targets of UNIVERSE's closure that depend on EXPR
    /// (EXPR's targets included), transitively.
    Rdeps(Box<Expr>, Box<Expr>),
    /// `kind(REGEX, EXPR)`: the targets of EXPR whose kind (`oci_image rule`, `source file`)
    /// REGEX matches.
    Kind(String, Box<Expr>),
    /// `somepath(FROM, TO)`: one dependency path from a target of FROM to one of TO.
    Somepath(Box<Expr>, Box<Expr>),
    /// `allpaths(FROM, TO)`: every target on some dependency path from FROM to TO.
    Allpaths(Box<Expr>, Box<Expr>),
}

/// The functions `executor query` knows, for messages.
const FUNCTIONS: &str = "`deps(E)`, `rdeps(UNIVERSE, E)`, `kind(REGEX, E)`, `somepath(FROM, TO)`, `allpaths(FROM, TO)`";

/// How deeply query functions may nest (the parser recurses once per level).
const MAX_QUERY_DEPTH: usize = 64;

/// Parses a query expression.
fn parse(text: &str) -> Result<Expr, Error> {
    let mut parser = Parser { text, pos: 0 };
    let expr = parser.expr(0)?;
    parser.skip_space();
    if parser.pos < text.len() {
        return Err(parser.error(&format!("unexpected `{}`", &text[parser.pos..])));
    }
    Ok(expr)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> Error {
        Error::Usage(format!(
            "query `{}`: {what} (at column {})\n  fix: write a target pattern, or one of {FUNCTIONS}",
            self.text,
            self.pos + 1
        ))
    }

    fn skip_space(&mut self) {
        while self.text[self.pos..].starts_with(char::is_whitespace) {
            self.pos += self.text[self.pos..].chars().next().map_or(1, char::len_utf8);
        }
    }

    /// A word: a pattern, a function name or a regex (anything up to `,`, `(`, `)` or space),
    /// or a string in double or single quotes, as Bazel's query allows.
    fn word(&mut self) -> &str {
        self.skip_space();
        let start = self.pos;
        for quote in ['"', '\''] {
            if self.text[start..].starts_with(quote) {
                if let Some(len) = self.text[start + 1..].find(quote) {
                    self.pos = start + 1 + len + 1;
                    return &self.text[start + 1..start + 1 + len];
                }
            }
        }
        let rest = &self.text[start..];
        let len = rest.find(|c: char| c == ',' || c == '(' || c == ')' || c.is_whitespace()).unwrap_or(rest.len());
        self.pos += len;
        &self.text[start..start + len]
    }

    fn expect(&mut self, c: char) -> Result<(), Error> {
        self.skip_space();
        if self.text[self.pos..].starts_with(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected `{c}`")))
        }
    }

    fn expr(&mut self, depth: usize) -> Result<Expr, Error> {
        if depth > MAX_QUERY_DEPTH {
            return Err(self.error(&format!("functions nest more than {MAX_QUERY_DEPTH} deep")));
        }
        let start = self.pos;
        let word = self.word().to_owned();
        self.skip_space();
        if !self.text[self.pos..].starts_with('(') {
            if word.is_empty() {
                return Err(self.error("expected a target pattern or a function"));
            }
            return Ok(Expr::Pattern(word));
        }
        self.pos += 1;
        let expr = match word.as_str() {
            "deps" => Expr::Deps(Box::new(self.expr(depth + 1)?)),
            "rdeps" => {
                let universe = self.expr(depth + 1)?;
                self.expect(',')?;
                Expr::Rdeps(Box::new(universe), Box::new(self.expr(depth + 1)?))
            }
            "kind" => {
                let regex = self.word().to_owned();
                self.expect(',')?;
                Expr::Kind(regex, Box::new(self.expr(depth + 1)?))
            }
            "somepath" | "allpaths" => {
                let from = self.expr(depth + 1)?;
                self.expect(',')?;
                let to = self.expr(depth + 1)?;
                if word == "somepath" {
                    Expr::Somepath(Box::new(from), Box::new(to))
                } else {
                    Expr::Allpaths(Box::new(from), Box::new(to))
                }
            }
            _ => {
                self.pos = start;
                return Err(self.error(&format!("unknown function `{word}`: executor's query knows {FUNCTIONS}")));
            }
        };
        self.expect(')')?;
        Ok(expr)
    }
}

/// Evaluates expressions against one growing target graph.
struct Eval<'a> {
    loader: &'a Loader,
    cwd: &'a Path,
    /// Every node seen, with its direct dependencies.
    nodes: BTreeMap<Label, Node>,
}

impl Eval<'_> {
    /// The rule targets a pattern selects.
    fn pattern(&mut self, text: &str) -> Result<BTreeSet<Label>, Error> {
        let patterns = parse_patterns(self.loader, self.cwd, &[text.to_owned()])?;
        let labels = expand(self.loader, &patterns)?;
        for l in &labels {
            if !self.nodes.contains_key(l) {
                let package = self.loader.package(l.repo.as_ref(), &l.package)?;
                if let Some(t) = package.as_ref().and_then(|p| p.targets.get(&l.name)) {
                    self.nodes.insert(l.clone(), Node::Rule(t.clone()));
                }
            }
        }
        Ok(labels.into_iter().collect())
    }

    /// `roots` and their transitive dependencies (the graph is loaded as needed).
    fn closure(&mut self, roots: &BTreeSet<Label>) -> Result<BTreeSet<Label>, Error> {
        let rules: Vec<Label> =
            roots.iter().filter(|l| matches!(self.nodes.get(*l), Some(Node::Rule(_)))).cloned().collect();
        let graph = TargetGraph::build(self.loader, rules)?;
        let mut all: BTreeSet<Label> = graph.nodes.keys().cloned().collect();
        self.nodes.extend(graph.nodes);
        all.extend(roots.iter().cloned());
        Ok(all)
    }

    /// The direct dependencies of `label`.
    fn deps_of(&self, label: &Label) -> Vec<Label> {
        match self.nodes.get(label) {
            Some(Node::Rule(t)) => t.deps().into_iter().map(|(_, l)| l.clone()).collect(),
            _ => Vec::new(),
        }
    }

    /// The nodes of `within` that reach a node of `targets` (targets included), walking the
    /// reverse edges with a worklist.
    fn reaching(&self, within: &BTreeSet<Label>, targets: &BTreeSet<Label>) -> BTreeSet<Label> {
        let mut rdeps: BTreeMap<&Label, Vec<&Label>> = BTreeMap::new();
        for l in within {
            if let Some(Node::Rule(t)) = self.nodes.get(l) {
                for (_, d) in t.deps() {
                    rdeps.entry(d).or_default().push(l);
                }
            }
        }
        let mut seen: BTreeSet<Label> = targets.iter().filter(|t| within.contains(*t)).cloned().collect();
        let mut todo: Vec<Label> = seen.iter().cloned().collect();
        while let Some(l) = todo.pop() {
            for &r in rdeps.get(&l).map(Vec::as_slice).unwrap_or_default() {
                if seen.insert(r.clone()) {
                    todo.push(r.clone());
                }
            }
        }
        seen
    }

    fn eval(&mut self, expr: &Expr) -> Result<BTreeSet<Label>, Error> {
        Ok(match expr {
            Expr::Pattern(text) => self.pattern(text)?,
            Expr::Deps(e) => {
                let roots = self.eval(e)?;
                self.closure(&roots)?
            }
            Expr::Rdeps(universe, e) => {
                let universe = self.eval(universe)?;
                let within = self.closure(&universe)?;
                let targets = self.eval(e)?;
                self.reaching(&within, &targets)
            }
            Expr::Kind(pattern, e) => {
                let regex = regex::Regex::new(pattern)
                    .map_err(|err| Error::Usage(format!("kind(`{pattern}`, ...): not a regular expression: {err}")))?;
                let set = self.eval(e)?;
                set.into_iter()
                    .filter(|l| {
                        // As Bazel: `<kind> rule` or `source file`, searched (not anchored).
                        let kind = match self.nodes.get(l) {
                            Some(Node::Rule(t)) => format!("{} rule", t.kind()),
                            _ => "source file".to_owned(),
                        };
                        regex.is_match(&kind)
                    })
                    .collect()
            }
            Expr::Allpaths(from, to) => {
                let from = self.eval(from)?;
                let to = self.eval(to)?;
                // Reachable from FROM, and reaching TO.
                let within = self.closure(&from)?;
                self.reaching(&within, &to)
            }
            Expr::Somepath(from, to) => {
                let from = self.eval(from)?;
                let to = self.eval(to)?;
                self.closure(&from)?;
                self.some_path(&from, &to)
            }
        })
    }

    /// One shortest path from a node of `from` to a node of `to` (breadth first), or none.
    fn some_path(&self, from: &BTreeSet<Label>, to: &BTreeSet<Label>) -> BTreeSet<Label> {
        let mut parent: BTreeMap<Label, Option<Label>> = from.iter().map(|l| (l.clone(), None)).collect();
        let mut queue: std::collections::VecDeque<Label> = from.iter().cloned().collect();
        while let Some(l) = queue.pop_front() {
            if to.contains(&l) {
                let mut path = BTreeSet::new();
                let mut at = Some(l);
                while let Some(node) = at {
                    at = parent.get(&node).cloned().flatten();
                    path.insert(node);
                }
                return path;
            }
            for d in self.deps_of(&l) {
                if !parent.contains_key(&d) {
                    parent.insert(d.clone(), Some(l.clone()));
                    queue.push_back(d);
                }
            }
        }
        BTreeSet::new()
    }
}

pub(super) fn query(loader: &Loader, cwd: &Path, expression: &str, output: QueryOutput) -> Result<(), Error> {
    let expr = parse(expression.trim())?;
    let mut eval = Eval { loader, cwd, nodes: BTreeMap::new() };
    let labels = eval.eval(&expr)?;
    let nodes: Vec<(Label, Node)> =
        labels.into_iter().filter_map(|l| eval.nodes.get(&l).cloned().map(|n| (l, n))).collect();
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

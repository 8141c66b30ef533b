//! Resolution: from requested dependency atoms and the index entries of one
//! architecture, the set of packages to install, in install order.
//!
//! Rules (apk's, simplified to a deterministic greedy walk without
//! backtracking):
//! - a dependency `name[op version]` is satisfied by a package called `name`
//!   whose version matches, or by a package that provides `name` at a
//!   matching version; an unversioned provide satisfies only a dependency
//!   without a version constraint;
//! - at most one package per package name; a versioned provide claims its
//!   name like a package name does (two packages providing `so:libfoo.so.1=1`
//!   cannot both be installed); unversioned provides may overlap;
//! - `!name[op version]` (a conflict, requested or in a package's `D:`)
//!   excludes every package it matches, except the package declaring it;
//! - dependencies are processed breadth first, in request order and then in
//!   each package's `D:` order; a dependency already satisfied by a selected
//!   package selects nothing new;
//! - after the walk, packages whose `i:` (install-if) atoms are all satisfied
//!   by the selection are added (by name order), with their dependencies,
//!   until nothing changes.
//!
//! Choosing among candidates for one dependency, first difference wins:
//! 1. a package whose own name is the dependency's name, over packages that
//!    only provide it;
//! 2. higher provider priority (`k:`, absent = 0);
//! 3. higher version of the name as provided (own version, or the provide's
//!    version; an unversioned provide ranks lowest);
//! 4. higher package version;
//! 5. lexicographically smaller package name;
//! 6. earlier in the input (for identical name and version in two inputs,
//!    only the first is used at all, like apk's repository order).
//!
//! Install order: depth-first over the selection in selection order,
//! dependencies (in `D:` order) before dependents; a dependency cycle is
//! broken where the walk meets a package already on its stack.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::rc::Rc;

use crate::dependency::{Constraint, Dependency};
use crate::index::IndexEntry;
use crate::version::Version;

/// A request that cannot be satisfied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("cannot resolve {chain}: no package provides `{name}`")]
    NoProvider { chain: Chain, name: String },
    #[error(
        "cannot resolve {chain}: no version matches; available: {}",
        available.join(", ")
    )]
    NoMatchingVersion {
        chain: Chain,
        /// Candidates for the name, as `` `name-version` `` (providers
        /// listed with what they provide), sorted.
        available: Vec<String>,
    },
    #[error("cannot resolve {chain}: every candidate conflicts: {}", reasons.join("; "))]
    Conflict { chain: Chain, reasons: Vec<String> },
}

/// How a dependency was reached: the requested atom, then for each step the
/// atom and the package chosen for it, ending with the failing atom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain(pub Vec<Link>);

/// One step of a [`Chain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub atom: String,
    /// `name-version` of the package chosen for `atom`, when one was.
    pub package: Option<String>,
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, link) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" -> ")?;
            }
            write!(f, "`{}`", link.atom)?;
            if let Some(package) = &link.package {
                if !package.starts_with(&format!("{}-", link.atom)) {
                    write!(f, " ({package})")?;
                }
            }
        }
        Ok(())
    }
}

/// The packages to install.
#[derive(Debug, Clone)]
pub struct Resolution<'a> {
    /// Every selected package once, dependencies before dependents.
    pub install_order: Vec<&'a IndexEntry>,
}

impl Resolution<'_> {
    /// `name-version` of each package, in install order.
    pub fn package_ids(&self) -> Vec<String> {
        self.install_order.iter().map(|e| e.package_id()).collect()
    }
}

/// One way an entry answers to a name.
#[derive(Clone, Copy)]
struct Offer<'a> {
    entry: usize,
    /// The version it answers with; `None` for an unversioned provide.
    version: Option<&'a Version>,
    /// Whether the name is the entry's own name.
    own: bool,
}

/// Resolves `requests` over `entries` (one architecture; several indexes may
/// be chained, earlier ones win for identical name and version).
pub fn resolve<'a>(
    entries: impl IntoIterator<Item = &'a IndexEntry>,
    requests: &[Dependency],
) -> Result<Resolution<'a>, ResolveError> {
    Providers::new(entries).resolve(requests)
}

/// Every name to the entries that answer to it, built once per index (or chain of
/// indexes) and shared by every resolution over it.
pub struct Providers<'a> {
    /// Input entries, duplicates removed, in input order.
    entries: Vec<&'a IndexEntry>,
    /// Every name to the entries that answer to it, in input order. Only looked up,
    /// never iterated, so a hash map's order cannot leak into a result.
    offers: HashMap<&'a str, Vec<Offer<'a>>>,
}

impl<'a> Providers<'a> {
    /// Indexes `entries` (earlier ones win for identical name and version).
    pub fn new(entries: impl IntoIterator<Item = &'a IndexEntry>) -> Self {
        let iter = entries.into_iter();
        let mut seen = HashSet::with_capacity(iter.size_hint().0);
        let entries: Vec<&'a IndexEntry> =
            iter.filter(|e| seen.insert((e.name.as_str(), e.version.as_str()))).collect();
        let mut offers: HashMap<&'a str, Vec<Offer<'a>>> = HashMap::with_capacity(entries.len() * 2);
        for (i, e) in entries.iter().enumerate() {
            offers.entry(e.name.as_str()).or_default().push(Offer { entry: i, version: Some(&e.version), own: true });
            for p in &e.provides {
                offers.entry(p.name.as_str()).or_default().push(Offer {
                    entry: i,
                    version: p.version.as_ref(),
                    own: false,
                });
            }
        }
        Providers { entries, offers }
    }

    /// Resolves `requests` over these entries.
    pub fn resolve(&self, requests: &[Dependency]) -> Result<Resolution<'a>, ResolveError> {
        let mut solver = Solver {
            entries: &self.entries,
            offers: &self.offers,
            selected: Vec::new(),
            by_name: HashMap::new(),
            claimed: HashMap::new(),
            conflicts: Vec::new(),
            edges: HashMap::new(),
        };
        let mut queue = VecDeque::new();
        for request in requests {
            if request.conflict {
                solver.conflicts.push((None, request.clone()));
            } else {
                queue.push_back(Pending { dependency: request.clone(), from: None, chain: None });
            }
        }
        solver.run(&mut queue)?;
        solver.install_if(&mut queue)?;
        Ok(Resolution { install_order: solver.install_order() })
    }
}

/// A dependency waiting to be processed.
struct Pending {
    dependency: Dependency,
    /// The selected entry that declared it (`None` for a request).
    from: Option<usize>,
    /// How `from` was reached: shared with every sibling, so queuing a dependency costs
    /// O(1) however deep the chain is (a copied `Vec` made deep chains quadratic).
    chain: Option<Rc<ChainNode>>,
}

/// One link of a shared, persistent chain; `parent` leads back to the request.
struct ChainNode {
    link: Link,
    parent: Option<Rc<ChainNode>>,
}

impl Drop for ChainNode {
    /// Unlinks the chain iteratively: the default drop would recurse once per link and
    /// overflow the stack on a deep chain.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(node) = next {
            match Rc::try_unwrap(node) {
                Ok(mut node) => next = node.parent.take(),
                // Still shared: whoever holds it drops the rest.
                Err(_) => break,
            }
        }
    }
}

/// The links from the request down to `node`, in order.
fn chain_links(node: &Option<Rc<ChainNode>>) -> Vec<Link> {
    let mut links = Vec::new();
    let mut cursor = node.as_deref();
    while let Some(n) = cursor {
        links.push(n.link.clone());
        cursor = n.parent.as_deref();
    }
    links.reverse();
    links
}

/// The maps below are only looked up, never iterated, so a hash map's order cannot reach a
/// result; they are hash maps because a deep chain makes millions of lookups.
struct Solver<'a, 'p> {
    /// Input entries, duplicates removed, in input order.
    entries: &'p [&'a IndexEntry],
    /// Every name to the entries that answer to it, in input order.
    offers: &'p HashMap<&'a str, Vec<Offer<'a>>>,
    /// Selected entries, in selection order.
    selected: Vec<usize>,
    /// Package name to the selected entry with that name.
    by_name: HashMap<&'a str, usize>,
    /// Names claimed by selected entries (own names and versioned provides).
    claimed: HashMap<&'a str, usize>,
    /// Active conflicts and the entry declaring them (`None`: requested).
    conflicts: Vec<(Option<usize>, Dependency)>,
    /// For each selected entry, the entries chosen for its dependencies, in
    /// `D:` order.
    edges: HashMap<usize, Vec<usize>>,
}

impl<'a> Solver<'a, '_> {
    fn run(&mut self, queue: &mut VecDeque<Pending>) -> Result<(), ResolveError> {
        while let Some(pending) = queue.pop_front() {
            let chosen = self.satisfy(&pending)?;
            if let Some(from) = pending.from {
                self.edges.entry(from).or_default().push(chosen);
            }
            if self.by_name.get(self.entries[chosen].name.as_str()) == Some(&chosen)
                && !self.edges.contains_key(&chosen)
            {
                // Newly selected: queue its dependencies.
                self.edges.insert(chosen, Vec::new());
                let entry = self.entries[chosen];
                let chain = Some(Rc::new(ChainNode {
                    link: Link { atom: pending.dependency.to_string(), package: Some(entry.package_id()) },
                    parent: pending.chain.clone(),
                }));
                for dependency in &entry.depends {
                    if dependency.conflict {
                        continue;
                    }
                    queue.push_back(Pending {
                        dependency: dependency.clone(),
                        from: Some(chosen),
                        chain: chain.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Returns the entry that satisfies `pending`, selecting one if needed.
    fn satisfy(&mut self, pending: &Pending) -> Result<usize, ResolveError> {
        let dep = &pending.dependency;
        let chain = || {
            let mut links = chain_links(&pending.chain);
            links.push(Link { atom: dep.to_string(), package: None });
            Chain(links)
        };
        let Some(offers) = self.offers.get(dep.name.as_str()) else {
            return Err(ResolveError::NoProvider { chain: chain(), name: dep.name.to_string() });
        };
        let matching: Vec<Offer<'a>> = offers.iter().copied().filter(|o| offer_matches(o, &dep.constraint)).collect();
        if matching.is_empty() {
            let mut available: Vec<String> = offers
                .iter()
                .map(|o| {
                    let entry = self.entries[o.entry];
                    match (o.own, o.version) {
                        (true, _) => format!("`{}`", entry.package_id()),
                        (false, Some(v)) => {
                            format!("`{}` (provides `{}={v}`)", entry.package_id(), dep.name)
                        }
                        (false, None) => {
                            format!("`{}` (provides `{}`)", entry.package_id(), dep.name)
                        }
                    }
                })
                .collect();
            available.sort();
            available.dedup();
            return Err(ResolveError::NoMatchingVersion { chain: chain(), available });
        }
        // Already satisfied by the selection? Prefer the best such entry.
        let mut satisfied: Vec<Offer<'a>> = matching.iter().copied().filter(|o| self.is_selected(o.entry)).collect();
        if !satisfied.is_empty() {
            satisfied.sort_by(|a, b| self.rank(a, b));
            return Ok(satisfied[0].entry);
        }
        let mut ranked = matching;
        ranked.sort_by(|a, b| self.rank(a, b));
        let mut reasons = Vec::new();
        for offer in &ranked {
            match self.blocker(offer.entry) {
                None => {
                    self.select(offer.entry);
                    return Ok(offer.entry);
                }
                Some(reason) => reasons.push(format!("`{}` {reason}", self.entries[offer.entry].package_id())),
            }
        }
        reasons.sort();
        reasons.dedup();
        Err(ResolveError::Conflict { chain: chain(), reasons })
    }

    fn is_selected(&self, entry: usize) -> bool {
        self.by_name.get(self.entries[entry].name.as_str()) == Some(&entry)
    }

    /// Candidate order; see the module docs.
    fn rank(&self, a: &Offer<'a>, b: &Offer<'a>) -> std::cmp::Ordering {
        let (ea, eb) = (self.entries[a.entry], self.entries[b.entry]);
        b.own
            .cmp(&a.own)
            .then_with(|| eb.provider_priority.unwrap_or(0).cmp(&ea.provider_priority.unwrap_or(0)))
            .then_with(|| b.version.cmp(&a.version))
            .then_with(|| eb.version.cmp(&ea.version))
            .then_with(|| ea.name.cmp(&eb.name))
            .then_with(|| a.entry.cmp(&b.entry))
    }

    /// Why `candidate` cannot join the selection, if it cannot.
    fn blocker(&self, candidate: usize) -> Option<String> {
        let entry = self.entries[candidate];
        if let Some(&other) = self.by_name.get(entry.name.as_str()) {
            return Some(format!("(`{}` is already selected)", self.entries[other].package_id()));
        }
        for name in claims(entry) {
            if let Some(&other) = self.claimed.get(name) {
                if other != candidate {
                    return Some(format!("(`{}` already provides `{name}`)", self.entries[other].package_id()));
                }
            }
        }
        for (owner, conflict) in &self.conflicts {
            if *owner != Some(candidate) && conflict_matches(conflict, entry) {
                let by = match owner {
                    Some(o) => format!("`{}`", self.entries[*o].package_id()),
                    None => "the request".to_owned(),
                };
                return Some(format!("(conflicts with `{conflict}` from {by})"));
            }
        }
        for conflict in entry.depends.iter().filter(|d| d.conflict) {
            for &other in &self.selected {
                if conflict_matches(conflict, self.entries[other]) {
                    return Some(format!(
                        "(its `{conflict}` conflicts with selected `{}`)",
                        self.entries[other].package_id()
                    ));
                }
            }
        }
        None
    }

    fn select(&mut self, candidate: usize) {
        let entry = self.entries[candidate];
        self.selected.push(candidate);
        self.by_name.insert(entry.name.as_str(), candidate);
        for name in claims(entry) {
            self.claimed.insert(name, candidate);
        }
        for conflict in entry.depends.iter().filter(|d| d.conflict) {
            self.conflicts.push((Some(candidate), conflict.clone()));
        }
    }

    /// Adds install-if packages until nothing changes.
    fn install_if(&mut self, queue: &mut VecDeque<Pending>) -> Result<(), ResolveError> {
        loop {
            let mut added = false;
            let candidates: Vec<usize> = {
                let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
                for (i, e) in self.entries.iter().enumerate() {
                    if !e.install_if.is_empty() && !self.by_name.contains_key(e.name.as_str()) {
                        by_name.entry(e.name.as_str()).or_default().push(i);
                    }
                }
                by_name
                    .into_values()
                    .filter_map(|mut versions| {
                        versions.retain(|&i| self.install_if_holds(self.entries[i]));
                        versions.sort_by(|&a, &b| self.entries[b].version.cmp(&self.entries[a].version));
                        versions.into_iter().find(|&i| self.blocker(i).is_none())
                    })
                    .collect()
            };
            for candidate in candidates {
                if self.by_name.contains_key(self.entries[candidate].name.as_str()) || self.blocker(candidate).is_some()
                {
                    continue;
                }
                let entry = self.entries[candidate];
                let trigger = entry.install_if.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ");
                queue.push_back(Pending {
                    dependency: Dependency {
                        name: entry.name.clone(),
                        constraint: Constraint::Version(crate::dependency::Op::Equal, entry.version.clone()),
                        conflict: false,
                    },
                    from: None,
                    chain: Some(Rc::new(ChainNode {
                        link: Link { atom: format!("install-if {trigger}"), package: None },
                        parent: None,
                    })),
                });
                self.run(queue)?;
                added = true;
            }
            if !added {
                return Ok(());
            }
        }
    }

    fn install_if_holds(&self, entry: &IndexEntry) -> bool {
        entry.install_if.iter().all(|dep| {
            let satisfied = self.selected.iter().any(|&s| {
                let e = self.entries[s];
                dep.matches(e.name.as_str(), &e.version) || e.provides.iter().any(|p| p.satisfies(dep))
            });
            satisfied != dep.conflict
        })
    }

    /// Depth-first post-order over the selection, iterative: a chain of any depth must not
    /// exhaust the stack.
    fn install_order(&self) -> Vec<&'a IndexEntry> {
        let mut order = Vec::with_capacity(self.selected.len());
        let mut visited: HashSet<usize> = HashSet::with_capacity(self.selected.len());
        // (node, index of the next child to visit)
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for &root in &self.selected {
            if !visited.insert(root) {
                continue;
            }
            stack.push((root, 0));
            while let Some(top) = stack.last_mut() {
                let (node, next) = *top;
                let children = self.edges.get(&node).map(Vec::as_slice).unwrap_or_default();
                if let Some(&child) = children.get(next) {
                    top.1 += 1;
                    // A node already seen is done or on the stack (a cycle): skip it.
                    if visited.insert(child) {
                        stack.push((child, 0));
                    }
                } else {
                    stack.pop();
                    order.push(self.entries[node]);
                }
            }
        }
        order
    }
}

/// Names an entry claims exclusively: its own and its versioned provides.
fn claims(entry: &IndexEntry) -> impl Iterator<Item = &str> {
    std::iter::once(entry.name.as_str())
        .chain(entry.provides.iter().filter(|p| p.version.is_some()).map(|p| p.name.as_str()))
}

fn offer_matches(offer: &Offer<'_>, constraint: &Constraint) -> bool {
    match offer.version {
        Some(version) => constraint.matches(version),
        None => constraint.matches_unversioned(),
    }
}

/// Whether the conflict atom `conflict` matches `entry`.
fn conflict_matches(conflict: &Dependency, entry: &IndexEntry) -> bool {
    conflict.matches(entry.name.as_str(), &entry.version) || entry.provides.iter().any(|p| p.satisfies(conflict))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{parse_text, Index, TrustPolicy};
    use crate::key::Keyring;
    use std::path::Path;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/apk");

    fn alpine() -> Index {
        let dir = Path::new(FIXTURES);
        let mut keys = Keyring::new();
        keys.insert_file(&dir.join("alpine-keys/alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub")).expect("key");
        let bytes = std::fs::read(dir.join("alpine-v3.17/aarch64/APKINDEX.tar.gz")).expect("index");
        Index::read(&bytes, "alpine-v3.17", &keys, TrustPolicy::RequireTrusted).expect("index")
    }

    fn deps(atoms: &[&str]) -> Vec<Dependency> {
        atoms.iter().map(|a| Dependency::parse(a).unwrap_or_else(|e| panic!("{a}: {e}"))).collect()
    }

    #[test]
    fn resolves_static_set_on_real_index() {
        let index = alpine();
        let resolution =
            resolve(index.entries(), &deps(&["alpine-baselayout-data", "ca-certificates-bundle", "tzdata"]))
                .expect("resolves");
        assert_eq!(
            resolution.package_ids(),
            ["alpine-baselayout-data-3.4.0-r0", "ca-certificates-bundle-20230506-r0", "tzdata-2023c-r0"]
        );
    }

    #[test]
    fn resolves_busybox_and_baselayout_with_providers() {
        let index = alpine();
        let resolution = resolve(index.entries(), &deps(&["alpine-baselayout", "busybox"])).expect("resolves");
        let ids = resolution.package_ids();
        // `/bin/sh` is provided by several `*-binsh` packages; busybox-binsh
        // has the highest provider priority.
        assert_eq!(
            ids,
            [
                "alpine-baselayout-data-3.4.0-r0",
                "musl-1.2.3-r5",
                "busybox-1.35.0-r29",
                "busybox-binsh-1.35.0-r29",
                "alpine-baselayout-3.4.0-r0",
            ]
        );
        // Deterministic: same input, same output.
        let again = resolve(index.entries(), &deps(&["alpine-baselayout", "busybox"])).expect("resolves");
        assert_eq!(again.package_ids(), ids);
    }

    #[test]
    fn resolves_on_real_wolfi_index() {
        let dir = Path::new(FIXTURES);
        let mut keys = Keyring::new();
        keys.insert_file(&dir.join("wolfi/keys/wolfi-signing.rsa.pub")).expect("key");
        let bytes = std::fs::read(dir.join("wolfi/x86_64/APKINDEX.tar.gz")).expect("index");
        let index = Index::read(&bytes, "wolfi", &keys, TrustPolicy::RequireTrusted).expect("index");
        let resolution = resolve(index.entries(), &deps(&["wolfi-baselayout", "ca-certificates-bundle", "busybox"]))
            .expect("resolves");
        // busybox -> so:libc.so.6 -> glibc -> linux-headers, wolfi-baselayout.
        assert_eq!(
            resolution.package_ids(),
            [
                "wolfi-baselayout-1-r2",
                "ca-certificates-bundle-20220614-r1",
                "linux-headers-5.16.9-r1",
                "glibc-2.36-r0",
                "busybox-1.35.0-r2",
            ]
        );
    }

    #[test]
    fn unsatisfiable_requests_name_the_chain() {
        // The real index minus the packages providing libcrypto.
        let index = alpine();
        let without: Vec<&IndexEntry> = index.entries().iter().filter(|e| e.name.as_str() != "libcrypto3").collect();
        let err = resolve(without, &deps(&["libssl3"])).expect_err("no libcrypto");
        assert_eq!(
            err.to_string(),
            "cannot resolve `libssl3` -> `so:libcrypto.so.3`: no package provides \
             `so:libcrypto.so.3`"
        );
        let err = resolve(index.entries(), &deps(&["tzdata>2024"])).expect_err("too new");
        assert_eq!(err.to_string(), "cannot resolve `tzdata>2024`: no version matches; available: `tzdata-2023c-r0`");
        let err = resolve(index.entries(), &deps(&["no-such-package"])).expect_err("missing");
        assert_eq!(err.to_string(), "cannot resolve `no-such-package`: no package provides `no-such-package`");
    }

    const REPO: &str = "\
C:Q1/JgpM8J6DWI/541tUX+uHEzSjqo=\nP:app\nV:1.0-r0\nD:lib>=2 cmd:sh !old\n\n\
C:Q1ZfOyBH7XWYFHrZw8vrXYPABkX2g=\nP:lib\nV:1.0-r0\np:so:lib.so.1=1\n\n\
C:Q1jb30PjSe/IaKLU1FnoZ/0Kgq7Fs=\nP:lib\nV:2.0-r0\np:so:lib.so.1=2\n\n\
C:Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=\nP:lib\nV:2.1_rc1-r0\n\n\
C:Q1b4mjG8cnaLnkBrGzo2SGaicrYaQ=\nP:dash\nV:0.5-r0\nk:60\np:cmd:sh\n\n\
C:Q1i9yh+TFxsBSOEZfabkdiq94H0uE=\nP:bb\nV:1.36-r0\nk:100\np:cmd:sh\nD:lib\n\n\
C:Q1BhTjwJVL4Zcygd+DWS09r4nMThA=\nP:old\nV:1-r0\n\n\
C:Q1dCsKJvMnxtpg1CoCw+thiaWORo8=\nP:app-doc\nV:1.0-r0\ni:app docs\n\n\
C:Q1pAwE+YY6aAhBq9iuZqpqiss3xmk=\nP:docs\nV:1-r0\n\n\
C:Q1/eXfmbYT1WXenFSqKjroYyK84NE=\nP:cycle-a\nV:1-r0\nD:cycle-b\n\n\
C:Q1HYV3GHk9wRjFNygSSkFi7+gHkMs=\nP:cycle-b\nV:1-r0\nD:cycle-a\n\n\
C:Q1E9ECSFYVWX/JK7euE0qnWbi45bA=\nP:alt-lib\nV:9-r0\np:so:lib.so.1=9\n";

    #[test]
    fn deep_dependency_chains_resolve_in_linear_time_without_recursion() {
        // 200,000 links: a copied chain per dependency made this quadratic (20k links took
        // 24 s) and a recursive install order overflowed the stack.
        let n = 200_000;
        let parsed = parse_text(&executor_testkit::apk::chain_index(n), "chain").expect("parses");
        let start = std::time::Instant::now();
        let r = resolve(&parsed.entries, &deps(&["p0"])).expect("resolves");
        let elapsed = start.elapsed();
        assert_eq!(r.install_order.len(), n);
        assert_eq!(r.install_order[0].name.as_str(), format!("p{}", n - 1));
        assert_eq!(r.install_order[n - 1].name.as_str(), "p0");
        // Linear time is well under a second in a release build; a generous bound here
        // (unoptimized test build, shared CI cores) still fails a quadratic walk (minutes).
        assert!(elapsed < std::time::Duration::from_secs(20), "took {elapsed:?}");
    }

    #[test]
    fn a_failure_deep_in_a_chain_names_every_link() {
        let mut text = executor_testkit::apk::chain_index(4);
        text = text.replace("D:p3\n", "D:p3 missing\n");
        let parsed = parse_text(&text, "chain").expect("parses");
        let err = resolve(&parsed.entries, &deps(&["p0"])).expect_err("missing");
        assert_eq!(err.to_string(), "cannot resolve `p0` -> `p1` -> `p2` -> `missing`: no package provides `missing`");
    }

    #[test]
    fn synthetic_rules() {
        let parsed = parse_text(REPO, "repo").expect("parses");
        let entries = &parsed.entries;
        // Highest matching version, providers by priority, dependencies first.
        let r = resolve(entries, &deps(&["app"])).expect("resolves");
        assert_eq!(r.package_ids(), ["lib-2.1_rc1-r0", "bb-1.36-r0", "app-1.0-r0"]);
        // A requested conflict removes a candidate.
        let r = resolve(entries, &deps(&["app", "!bb"])).expect("resolves");
        assert_eq!(r.package_ids(), ["lib-2.1_rc1-r0", "dash-0.5-r0", "app-1.0-r0"]);
        // A package's conflict against something requested.
        let err = resolve(entries, &deps(&["old", "app"])).expect_err("conflict");
        assert_eq!(
            err.to_string(),
            "cannot resolve `app`: every candidate conflicts: `app-1.0-r0` (its `!old` \
             conflicts with selected `old-1-r0`)"
        );
        // Two versions of one name.
        let err = resolve(entries, &deps(&["lib=1.0-r0", "app"])).expect_err("version clash");
        assert_eq!(
            err.to_string(),
            "cannot resolve `app` -> `lib>=2`: every candidate conflicts: `lib-2.0-r0` \
             (`lib-1.0-r0` is already selected); `lib-2.1_rc1-r0` (`lib-1.0-r0` is already \
             selected)"
        );
        // Versioned provides: own name wins over a provider with a higher
        // provided version only when the name is the package's; for a
        // virtual name, the higher provided version wins.
        let r = resolve(entries, &deps(&["so:lib.so.1"])).expect("resolves");
        assert_eq!(r.package_ids(), ["alt-lib-9-r0"]);
        let r = resolve(entries, &deps(&["so:lib.so.1<9"])).expect("resolves");
        assert_eq!(r.package_ids(), ["lib-2.0-r0"]);
        // A versioned provide claims its name.
        let err = resolve(entries, &deps(&["alt-lib", "lib=2.0-r0"])).expect_err("claimed");
        assert!(err.to_string().contains("(`alt-lib-9-r0` already provides `so:lib.so.1`)"), "{err}");
        // `~` prefix match; pre-releases sort below releases.
        let r = resolve(entries, &deps(&["lib~2.1"])).expect("resolves");
        assert_eq!(r.package_ids(), ["lib-2.1_rc1-r0"]);
        // Install-if: app-doc joins when app and docs are both selected.
        let r = resolve(entries, &deps(&["app", "docs"])).expect("resolves");
        assert_eq!(r.package_ids(), ["lib-2.1_rc1-r0", "bb-1.36-r0", "app-1.0-r0", "docs-1-r0", "app-doc-1.0-r0"]);
        // Cycles terminate; order is deterministic.
        let r = resolve(entries, &deps(&["cycle-a"])).expect("resolves");
        assert_eq!(r.package_ids(), ["cycle-b-1-r0", "cycle-a-1-r0"]);
        // Unversioned provides do not satisfy versioned dependencies.
        let err = resolve(entries, &deps(&["cmd:sh>=1"])).expect_err("unversioned");
        assert_eq!(
            err.to_string(),
            "cannot resolve `cmd:sh>=1`: no version matches; available: `bb-1.36-r0` (provides \
             `cmd:sh`), `dash-0.5-r0` (provides `cmd:sh`)"
        );
        // Chains name the packages picked for virtual names.
        let without_lib: Vec<&IndexEntry> = entries.iter().filter(|e| e.name.as_str() != "lib").collect();
        let err = resolve(without_lib, &deps(&["cmd:sh", "!dash"])).expect_err("no lib");
        assert_eq!(err.to_string(), "cannot resolve `cmd:sh` (bb-1.36-r0) -> `lib`: no package provides `lib`");
    }
}

//! `layer`: one reproducible tar layer from locked packages, files, directories, symlinks and
//! accounts.
//!
//! The layer's **epoch** (the mtime ceiling and the image's `created`) is the `epoch`
//! attribute when set, else the newest build time of the installed packages, else 0. It is
//! never read from the environment or the clock, so the same inputs give the same bytes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::action::{Action, ActionContext, ActionError, ActionExec, Artifact, Input, OutputKind, OutputSpec};
use crate::apk::{Keyring, LockPin, Package, PublicKey};
use crate::check_epoch;
use crate::digest::Digest;
use crate::install::{InstalledSummary, Installer};
use crate::label::Label;
use crate::layer_tree::{Content, EntryKind, LayerOptions, LayerPath, LayerTree, LayerWriter};
use crate::platform::Arch;
use crate::rules::{output_path, AnalysisContext, AnalysisError, Provided, Rule};
use crate::target::{AttrSpec, AttrType, Target};
use crate::{ApkInfo, LayerInfo, Verdicts};

/// The `layer` rule.
pub struct LayerRule;

/// The attributes of a `layer` target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    /// An `apk_fetch` target.
    #[serde(default)]
    pub packages: Option<Label>,
    /// Which arch of `packages`.
    #[serde(default)]
    pub arch: Option<String>,
    /// Destination path to a label providing one file.
    #[serde(default)]
    pub files: BTreeMap<String, Label>,
    /// Directories to create.
    #[serde(default)]
    pub directories: Vec<String>,
    /// Link path to target.
    #[serde(default)]
    pub symlinks: BTreeMap<String, String>,
    /// Tarballs whose entries the layer holds, as rules_oci's `tars`.
    #[serde(default)]
    pub tars: Vec<Label>,
    /// Octal mode per path.
    #[serde(default)]
    pub modes: BTreeMap<String, String>,
    /// `uid:gid` per path.
    #[serde(default)]
    pub owners: BTreeMap<String, String>,
    /// Account lines.
    #[serde(default)]
    pub users: Vec<String>,
    /// Group lines.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Unix seconds clamping every mtime.
    #[serde(default)]
    pub epoch: Option<i64>,
    /// The image this layer goes on: its accounts are merged.
    #[serde(default)]
    pub base: Option<Label>,
    /// Deflate level 0..=9 (default 6).
    #[serde(default)]
    pub compression_level: Option<i64>,
    /// Spread the packages over several layers: `origin`.
    #[serde(default)]
    pub layering: Option<String>,
    /// With `layering`: at most this many layers of packages.
    #[serde(default)]
    pub layering_budget: Option<i64>,
}

/// One account line of `users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSpec {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// One line of `groups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSpec {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

fn parse_id(text: &str, what: &str, line: &str) -> Result<u32, String> {
    text.parse().map_err(|_| format!("{what} `{text}` in `{line}` is not a number"))
}

/// The most layers of packages `layering_budget` allows (an image has at most 127 layers
/// in practice: overlay file systems stack no more).
const MAX_LAYERING_BUDGET: i64 = 127;

/// `layering` and `layering_budget`: the budget, when layering.
fn layering_budget(attrs: &Attrs) -> Result<Option<usize>, String> {
    match (attrs.layering.as_deref(), attrs.layering_budget) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err("attribute `layering_budget` of rule `layer` needs `layering = \"origin\"`".into()),
        (Some("origin"), Some(n)) if (1..=MAX_LAYERING_BUDGET).contains(&n) => Ok(usize::try_from(n).ok()),
        (Some("origin"), Some(n)) => Err(format!(
            "attribute `layering_budget` of rule `layer` must be 1 to {MAX_LAYERING_BUDGET}, not {n}"
        )),
        (Some("origin"), None) => {
            Err("attribute `layering = \"origin\"` of rule `layer` needs `layering_budget`, the most layers of packages".into())
        }
        (Some(other), _) => Err(format!(
            "attribute `layering` of rule `layer` must be `origin` (packages grouped by origin, as apko's layering), not `{other}`"
        )),
    }
}

/// Groups installed packages (indices into `packages`) for layering, as apko's `origin`
/// strategy: by origin (the source package; the name when none), a package that `replaces`
/// another of the image (at a version its constraint allows) in the other's group, the
/// groups sorted by installed size, largest first (ties: by their greatest name), and those
/// beyond `budget - 1` merged into the last one.
pub fn group_by_origin(packages: &[InstalledSummary], budget: usize) -> Vec<Vec<usize>> {
    // Union-find over packages: same origin, or one replaces the other.
    let mut parent: Vec<usize> = (0..packages.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut first_of_origin: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, p) in packages.iter().enumerate() {
        let origin = p.origin.as_deref().unwrap_or(&p.name);
        let first = *first_of_origin.entry(origin).or_insert(i);
        let (a, b) = (root(&mut parent, first), root(&mut parent, i));
        parent[b] = a;
    }
    for (i, p) in packages.iter().enumerate() {
        for replaced in p.replaces.iter().filter_map(|r| crate::apk::Dependency::parse(r).ok()) {
            let target = packages
                .iter()
                .position(|q| crate::apk::Version::parse(&q.version).is_ok_and(|v| replaced.matches(&q.name, &v)));
            if let Some(j) = target {
                let (a, b) = (root(&mut parent, j), root(&mut parent, i));
                parent[b] = a;
            }
        }
    }
    let mut by_origin: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..packages.len() {
        let r = root(&mut parent, i);
        by_origin.entry(r).or_default().push(i);
    }
    let size = |group: &[usize]| group.iter().map(|&i| packages[i].installed_size.unwrap_or(0)).sum::<u64>();
    let tiebreaker = |group: &[usize]| group.iter().map(|&i| packages[i].name.as_str()).max().unwrap_or("");
    let mut groups: Vec<Vec<usize>> = by_origin.into_values().collect();
    groups.sort_by(|a, b| size(b).cmp(&size(a)).then_with(|| tiebreaker(a).cmp(tiebreaker(b))));
    let budget = budget.max(1);
    if groups.len() > budget {
        let rest: Vec<usize> = groups.drain(budget - 1..).flatten().collect();
        groups.push(rest);
    }
    for group in &mut groups {
        group.sort_by(|&a, &b| packages[a].name.cmp(&packages[b].name));
    }
    groups
}

/// The `compression_level` attribute: `None` for the default level (6), so that layers at the
/// default keep their action keys.
fn compression_level(level: Option<i64>) -> Result<Option<u32>, String> {
    match level {
        None => Ok(None),
        Some(l) if l == i64::from(crate::layer_tree::DEFAULT_LEVEL) => Ok(None),
        Some(l @ 0..=9) => Ok(u32::try_from(l).ok()),
        Some(l) => Err(format!("attribute `compression_level` of rule `layer` must be 0 to 9, not {l}")),
    }
}

fn parse_user(line: &str) -> Result<UserSpec, String> {
    let parts: Vec<&str> = line.split(':').collect();
    let [name, uid, gid, home, shell] = parts[..] else {
        return Err(format!(
            "user `{line}` must be `name:uid:gid:home:shell` (e.g. `nonroot:65532:65532:/home/nonroot:/sbin/nologin`)"
        ));
    };
    if name.is_empty() || !home.starts_with('/') || !shell.starts_with('/') {
        return Err(format!("user `{line}`: the name must not be empty and home and shell must be absolute paths"));
    }
    Ok(UserSpec {
        name: name.to_owned(),
        uid: parse_id(uid, "uid", line)?,
        gid: parse_id(gid, "gid", line)?,
        home: home.to_owned(),
        shell: shell.to_owned(),
    })
}

fn parse_group(line: &str) -> Result<GroupSpec, String> {
    let parts: Vec<&str> = line.split(':').collect();
    let (name, gid, members) = match parts[..] {
        [name, gid] => (name, gid, ""),
        [name, gid, members] => (name, gid, members),
        _ => return Err(format!("group `{line}` must be `name:gid` or `name:gid:member,member`")),
    };
    if name.is_empty() {
        return Err(format!("group `{line}` has an empty name"));
    }
    Ok(GroupSpec {
        name: name.to_owned(),
        gid: parse_id(gid, "gid", line)?,
        members: members.split(',').filter(|m| !m.is_empty()).map(str::to_owned).collect(),
    })
}

fn parse_mode(text: &str, path: &str) -> Result<u32, String> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("mode `{text}` of `{path}` must be octal, like `0755`"))
}

fn parse_owner(text: &str, path: &str) -> Result<(u32, u32), String> {
    let (u, g) = text.split_once(':').ok_or_else(|| format!("owner `{text}` of `{path}` must be `uid:gid`"))?;
    Ok((parse_id(u, "uid", text)?, parse_id(g, "gid", text)?))
}

fn absolute(path: &str, attr: &str) -> Result<String, String> {
    let rel =
        path.strip_prefix('/').ok_or_else(|| format!("path `{path}` in `{attr}` must be absolute (start with `/`)"))?;
    if rel.is_empty() || rel.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err(format!("path `{path}` in `{attr}` must be a clean absolute path (no `.`, `..` or `//`)"));
    }
    Ok(path.to_owned())
}

/// An extra file, directory or symlink of the layer, in the order they are added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Extra {
    /// `mode` is the one `modes` gives; without it, the source file's: 0755 if it is
    /// executable, else 0644 (as Docker's COPY keeps the mode).
    File {
        path: String,
        mode: Option<u32>,
        uid: u32,
        gid: u32,
    },
    Dir {
        path: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Symlink {
        path: String,
        target: String,
    },
}

/// Everything the layer action needs besides its inputs; also its key data.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LayerSpec {
    arch: Option<Arch>,
    world: Vec<String>,
    repositories: Vec<String>,
    key_names: Vec<String>,
    /// Number of `.apk` inputs (the list `apks`; the key files are the list `keys`, the files
    /// of `extras` the list `files`, in order).
    apks: usize,
    /// The pinned sha256 of each `.apk` input, in input order (for the SBOM).
    apk_sha256: Vec<Digest>,
    /// What the lockfile pins for each `.apk` input, in input order: each is verified
    /// against its pin and the keys before it is installed.
    apk_pins: Vec<LockPin>,
    /// The packages' repository sets `allow_untrusted = True`.
    allow_untrusted: bool,
    extras: Vec<Extra>,
    users: Vec<UserSpec>,
    groups: Vec<GroupSpec>,
    epoch: Option<u64>,
    /// The inputs `base/layout` and `base/meta` are the image this layer goes on, whose
    /// account files its accounts extend.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    has_base: bool,
    /// Deflate level when not the default (a layer of the default level keeps its key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    compression_level: Option<u32>,
    /// Number of tarball inputs (the list `tars`), unpacked after the packages.
    #[serde(default, skip_serializing_if = "is_zero")]
    tars: usize,
    /// The tarballs' labels, for messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tar_labels: Vec<String>,
    /// `layering = "origin"`: at most this many layers of packages, grouped by origin, and
    /// one on top for the rest; the output is then a directory of layers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layering_budget: Option<usize>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Decompressed bytes a layer tarball may hold (a gzip bomb stops there).
const MAX_TAR_BYTES: u64 = 64 << 30;

/// What a layer action reports about itself (`<name>.layer.json`), for images and SBOMs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMeta {
    /// sha256 of the uncompressed tar.
    pub diff_id: crate::digest::Digest,
    /// sha256 of the `.tar.gz`.
    pub digest: crate::digest::Digest,
    /// Size of the `.tar.gz`.
    pub size: u64,
    /// The epoch used.
    pub epoch: u64,
    /// The arch of the installed packages, if any.
    pub arch: Option<Arch>,
    /// Accounts the layer's /etc/passwd holds: name -> (uid, gid).
    pub users: BTreeMap<String, (u32, u32)>,
    /// Installed packages, in install order.
    pub packages: Vec<InstalledSummary>,
    /// The history entry's `created_by`.
    pub created_by: String,
    /// The `ID` of the layer's `os-release`, if it has one: the SBOM's purl namespace.
    #[serde(default)]
    pub os_release_id: Option<String>,
    /// With `layering`: the layers, bottom first, each a file of the output directory;
    /// `diff_id`, `digest` and `size` above are then the top one's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<LayerPart>,
}

/// One layer of a layered `layer` target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerPart {
    /// Its file in the output directory (`0.tar.gz`, ...).
    pub file: String,
    /// sha256 of the uncompressed tar.
    pub diff_id: crate::digest::Digest,
    /// sha256 of the `.tar.gz`.
    pub digest: crate::digest::Digest,
    /// Size of the `.tar.gz`.
    pub size: u64,
    /// The history entry's `created_by`: which packages it holds.
    pub created_by: String,
}

impl Rule for LayerRule {
    type Attrs = Attrs;
    const KIND: &'static str = "layer";
    const DOC: &'static str =
        "Installs locked packages, files, directories, symlinks and accounts into one deterministic .tar.gz layer.";
    const ATTRS: &'static [AttrSpec] = &[
        AttrSpec {
            name: "packages",
            ty: AttrType::Label,
            mandatory: false,
            doc: "An `apk_fetch` target whose locked packages are installed, in lock order.",
        },
        AttrSpec {
            name: "arch",
            ty: AttrType::String,
            mandatory: false,
            doc: "Which arch of `packages` to install (required when it has several).",
        },
        AttrSpec {
            name: "files",
            ty: AttrType::StringKeyedLabelDict,
            mandatory: false,
            doc: "Absolute destination path to a label providing exactly one file.",
        },
        AttrSpec {
            name: "directories",
            ty: AttrType::StringList,
            mandatory: false,
            doc: "Directories to create (mode 0755, owner 0:0 unless `modes`/`owners` say otherwise).",
        },
        AttrSpec { name: "symlinks", ty: AttrType::StringDict, mandatory: false, doc: "Link path to target." },
        AttrSpec {
            name: "tars",
            ty: AttrType::LabelList,
            mandatory: false,
            doc: "Tarballs (plain or gzip, each one file: a source or another target's output) whose directories, files, symlinks and hard links the layer holds, with their modes and numeric owners, after the packages and before `files`, `directories` and `symlinks`; paths are checked as packages' are, and devices are refused. mtimes are 0 (as for `files`), xattrs are dropped, hard links become copies.",
        },
        AttrSpec {
            name: "modes",
            ty: AttrType::StringDict,
            mandatory: false,
            doc: "Octal mode per path of `files` (default: the source file's, 0755 if it is executable, else 0644) or `directories` (default 0755).",
        },
        AttrSpec {
            name: "owners",
            ty: AttrType::StringDict,
            mandatory: false,
            doc: "`uid:gid` per path of `files` or `directories` (default `0:0`).",
        },
        AttrSpec {
            name: "users",
            ty: AttrType::StringList,
            mandatory: false,
            doc: "Accounts appended to /etc/passwd, as `name:uid:gid:home:shell`; homes are created.",
        },
        AttrSpec {
            name: "groups",
            ty: AttrType::StringList,
            mandatory: false,
            doc: "Groups appended to /etc/group, as `name:gid` or `name:gid:member,member`.",
        },
        AttrSpec {
            name: "epoch",
            ty: AttrType::Int,
            mandatory: false,
            doc: "Unix seconds clamping every mtime (default: the newest package build time, or 0).",
        },
        AttrSpec {
            name: "base",
            ty: AttrType::Label,
            mandatory: false,
            doc: "The `oci_image` this layer goes on top of: `users` and `groups` are added to its `/etc/passwd` and `/etc/group` (which the layer then carries whole), so they do not hide the base's accounts.",
        },
        AttrSpec {
            name: "compression_level",
            ty: AttrType::Int,
            mandatory: false,
            doc: "gzip (deflate) level, 0 to 9 (default 6, gzip's own default). Lower is faster and larger: a layer of 1 GiB of text takes 15.8 s and 327 MB at level 6, 11.3 s and 336 MB at 4, 8.5 s and 356 MB at 3 (2 cores). Another level is another digest.",
        },
        AttrSpec {
            name: "layering",
            ty: AttrType::String,
            mandatory: false,
            doc: "`origin`: spread the packages over several layers, as apko's layering does: packages of one origin (source package) stay together (and a package that `replaces` another goes with it), the `layering_budget` largest groups get a layer each (the rest share the last of them), and a top layer holds everything else (accounts, `files`, the apk database, every directory). Images that share packages then share those layers' blobs; the union of the layers is the same file system as the single layer.",
        },
        AttrSpec {
            name: "layering_budget",
            ty: AttrType::Int,
            mandatory: false,
            doc: "With `layering`: at most this many layers of packages, 1 to 127 (the top layer comes on top of them).",
        },
    ];

    fn check(&self, attrs: &Attrs) -> Result<(), String> {
        if let Some(a) = &attrs.arch {
            Arch::parse(a).map_err(|e| format!("rule `layer`: {e}"))?;
        }
        for u in &attrs.users {
            parse_user(u)?;
        }
        for g in &attrs.groups {
            parse_group(g)?;
        }
        check_epoch("layer", attrs.epoch)?;
        compression_level(attrs.compression_level)?;
        layering_budget(attrs)?;
        Ok(())
    }

    fn analyze(
        &self,
        target: &Target,
        attrs: &Attrs,
        ctx: &mut AnalysisContext<'_>,
    ) -> Result<Provided, AnalysisError> {
        let err = |m: String| AnalysisError(m);
        let mut apk_inputs: Vec<Artifact> = Vec::new();
        let mut file_inputs: Vec<Artifact> = Vec::new();
        let mut spec = LayerSpec {
            arch: None,
            world: Vec::new(),
            repositories: Vec::new(),
            key_names: Vec::new(),
            apks: 0,
            apk_sha256: Vec::new(),
            apk_pins: Vec::new(),
            allow_untrusted: false,
            extras: Vec::new(),
            users: attrs.users.iter().map(|u| parse_user(u)).collect::<Result<_, _>>().map_err(err)?,
            groups: attrs.groups.iter().map(|g| parse_group(g)).collect::<Result<_, _>>().map_err(err)?,
            epoch: attrs.epoch.and_then(|e| u64::try_from(e).ok()),
            has_base: false,
            compression_level: compression_level(attrs.compression_level).map_err(err)?,
            tars: 0,
            tar_labels: Vec::new(),
            layering_budget: layering_budget(attrs).map_err(err)?,
        };
        let requested_arch = match &attrs.arch {
            Some(a) => Some(Arch::parse(a).map_err(|e| err(e.to_string()))?),
            None => None,
        };
        let mut keys = Vec::new();
        if let Some(label) = &attrs.packages {
            let provided = ctx.provided(label)?;
            let Some(meta) = provided.get::<ApkInfo>() else {
                return Err(err(format!("attribute `packages`: `{label}` is not an `apk_fetch` target")));
            };
            let arch = match requested_arch {
                Some(a) => a,
                None if meta.apks.len() == 1 => *meta.apks.keys().next().unwrap_or(&Arch::X86_64),
                None => {
                    let archs: Vec<&str> = meta.apks.keys().map(|a| a.apk()).collect();
                    return Err(err(format!(
                        "`{label}` has several archs ({}): set `arch` to the one this layer installs",
                        archs.join(", ")
                    )));
                }
            };
            let apks = meta
                .apks
                .get(&arch)
                .ok_or_else(|| err(format!("attribute `arch`: `{label}` does not fetch packages for `{arch}`")))?;
            spec.arch = Some(arch);
            spec.world = meta.world.clone();
            spec.repositories = vec![meta.repository_url.clone()];
            spec.apks = apks.len();
            spec.apk_sha256 = apks.iter().map(|a| a.sha256).collect();
            spec.apk_pins = apks.iter().map(|a| a.pin.clone()).collect();
            spec.allow_untrusted = meta.allow_untrusted;
            apk_inputs.extend(apks.iter().map(|a| a.artifact.clone()));
            for (name, artifact) in &meta.keys {
                spec.key_names.push(name.clone());
                keys.push(artifact.clone());
            }
        } else if requested_arch.is_some() {
            spec.arch = requested_arch;
        }

        let modes = &attrs.modes;
        let owners = &attrs.owners;
        let mut used: Vec<String> = Vec::new();
        let mut mode_owner = |path: &String, default_mode: u32| -> Result<(u32, u32, u32), AnalysisError> {
            let mode = match modes.get(path) {
                Some(m) => parse_mode(m, path).map_err(err)?,
                None => default_mode,
            };
            let (uid, gid) = match owners.get(path) {
                Some(o) => parse_owner(o, path).map_err(err)?,
                None => (0, 0),
            };
            used.push(path.clone());
            Ok((mode, uid, gid))
        };
        for dir in &attrs.directories {
            let path = absolute(dir, "directories").map_err(err)?;
            let (mode, uid, gid) = mode_owner(dir, 0o755)?;
            spec.extras.push(Extra::Dir { path, mode, uid, gid });
        }
        {
            for (dest, label) in &attrs.files {
                let path = absolute(dest, "files").map_err(err)?;
                let provided = ctx.provided(label)?;
                let [file] = &provided.files[..] else {
                    return Err(err(format!(
                        "attribute `files`: `{label}` (for `{dest}`) must provide exactly one file, it provides {}",
                        provided.files.len()
                    )));
                };
                let explicit = modes.contains_key(dest);
                let (mode, uid, gid) = mode_owner(dest, 0o644)?;
                spec.extras.push(Extra::File { path, mode: explicit.then_some(mode), uid, gid });
                file_inputs.push(file.clone());
            }
        }
        for (link, to) in &attrs.symlinks {
            let path = absolute(link, "symlinks").map_err(err)?;
            spec.extras.push(Extra::Symlink { path, target: to.clone() });
        }
        let unused: Vec<String> =
            modes.keys().chain(owners.keys()).filter(|p| !used.contains(*p)).map(|p| format!("`{p}`")).collect();
        if !unused.is_empty() {
            return Err(err(format!(
                "`modes`/`owners` name {} which no entry of `files` or `directories` creates",
                unused.join(", ")
            )));
        }

        let spec_arch = spec.arch;
        let name = target.label.name.as_str();
        let base = |suffix: &str| output_path(&target.label, &format!("{name}{suffix}"));
        let mut inputs = Input::list("apks", &apk_inputs);
        inputs.extend(Input::list("keys", &keys));
        inputs.extend(Input::list("files", &file_inputs));
        let mut tar_inputs = Vec::new();
        for label in &attrs.tars {
            let provided = ctx.provided(label)?;
            let [file] = &provided.files[..] else {
                return Err(err(format!(
                    "attribute `tars`: `{label}` must provide exactly one file, it provides {}",
                    provided.files.len()
                )));
            };
            tar_inputs.push(file.clone());
            spec.tar_labels.push(label.to_string());
        }
        spec.tars = tar_inputs.len();
        inputs.extend(Input::list("tars", &tar_inputs));
        if let Some(label) = &attrs.base {
            let image = ctx
                .provided(label)?
                .get::<crate::ImageInfo>()
                .cloned()
                .ok_or_else(|| err(format!("attribute `base`: `{label}` is not an `oci_image` target")))?;
            if let Some(arch) = spec.arch.filter(|a| *a != image.arch) {
                return Err(err(format!(
                    "attribute `base`: `{label}` is for `{}`, this layer for `{arch}`",
                    image.arch
                )));
            }
            spec.has_base = true;
            spec.arch = Some(image.arch);
            inputs.push(Input::new("base/layout", image.layout));
            inputs.push(Input::new("base/meta", image.meta));
            if !attrs.users.is_empty() || !attrs.groups.is_empty() {
                // Its account files are read from its layers: a shallow base's are fetched.
                inputs.extend(Input::list("base/blobs", &image.blobs));
            }
        }
        let outs = ctx.graph.add(Action {
            owner: target.label.clone(),
            inputs,
            outputs: vec![
                match spec.layering_budget {
                    // The layers of a layered target: a directory of `<n>.tar.gz`.
                    Some(_) => OutputSpec { path: base(".layers"), kind: OutputKind::Dir },
                    None => OutputSpec { path: base(".tar.gz"), kind: OutputKind::File { executable: false } },
                },
                OutputSpec { path: base(".layer.json"), kind: OutputKind::File { executable: false } },
            ],
            exec: Arc::new(LayerExec { spec }),
        });
        let layer = LayerInfo { tar: outs[0].clone(), meta: outs[1].clone(), arch: spec_arch };
        Ok(Provided::files(outs).with(layer))
    }
}

/// The action: install everything into a tree and write it as a layer.
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct LayerExec {
    spec: LayerSpec,
}

impl ActionExec for LayerExec {
    fn mnemonic(&self) -> &'static str {
        "Layer"
    }
    fn version(&self) -> u32 {
        1
    }
    fn run(&self, ctx: &ActionContext<'_>) -> Result<(), ActionError> {
        let spec = &self.spec;
        let fail = |m: String| ActionError(m);
        // Large file contents are spooled to disk in the action's scratch directory (removed
        // by the builder), so memory stays flat whatever the size of the package set.
        let scratch = ctx.scratch.clone();
        let mut installer = Installer::with_spool_dir(spec.arch.unwrap_or(Arch::X86_64), scratch);
        let mut newest = 0u64;
        let (apks, keys, files) = (ctx.input_list("apks"), ctx.input_list("keys"), ctx.input_list_entries("files"));
        if keys.len() != spec.key_names.len() {
            return Err(fail("internal error: a key input without its name".into()));
        }
        // The trusted keys are the repository's key files from the workspace.
        let mut keyring = Keyring::new();
        for (name, path) in spec.key_names.iter().zip(&keys) {
            let pem = std::fs::read_to_string(path)?;
            keyring
                .insert(PublicKey::from_pem(name, &pem).map_err(|e| fail(e.to_string()))?)
                .map_err(|e| fail(e.to_string()))?;
        }
        let policy = crate::apk_fetch::signature_policy(spec.allow_untrusted);
        if spec.apk_pins.len() != apks.len() {
            return Err(fail("internal error: a package input without its pin".into()));
        }
        for (path, pin) in apks.iter().zip(&spec.apk_pins) {
            let bytes = std::fs::read(path)?;
            let origin = format!("{}-{}.apk", pin.name, pin.version);
            // Whatever put these bytes in the store, they are installed only if they are
            // exactly what the lockfile pins, signed by a trusted key (verdict cached).
            let package = Package::verify_locked(&bytes, &origin, pin, &keyring, policy, &Verdicts(ctx.proofs))
                .map_err(|e| fail(e.to_string()))?;
            newest = newest.max(package.package().info().build_date.unwrap_or(0));
            let repo = spec.repositories.first().map(String::as_str).unwrap_or_default();
            installer.install(&package, repo).map_err(|e| fail(e.to_string()))?;
        }
        if spec.apks > 0 {
            installer.set_world(spec.world.iter().cloned());
            installer.set_repositories(spec.repositories.iter().cloned());
            for (name, path) in spec.key_names.iter().zip(&keys) {
                installer.add_key(name, std::fs::read(path)?).map_err(|e| fail(e.to_string()))?;
            }
        }
        if spec.has_base && (!spec.users.is_empty() || !spec.groups.is_empty()) {
            // The base's account files, as its layers make them, extended below: without
            // them, this layer's `/etc/passwd` would hide the base's accounts.
            let meta: crate::oci_image::ImageMeta = crate::oci_image::read_json(ctx.input("base/meta")?)?;
            let layout = ctx.input("base/layout")?;
            let mut image = crate::oci::read_layout_image(layout, Some(crate::oci_image::IMAGE_TAG), meta.arch)
                .map_err(|e| fail(e.to_string()))?;
            let blob_dirs = ctx.input_list("base/blobs");
            image.find_missing(&blob_dirs).map_err(|e| fail(e.to_string()))?;
            let layers = image.layer_paths(layout).map_err(|e| fail(e.to_string()))?;
            for path in ["etc/passwd", "etc/group"] {
                let found = crate::layer_tree::read_layered_file(&layers, path, crate::install::MAX_ACCOUNT_FILE)
                    .map_err(|e| fail(format!("cannot read `/{path}` of the base image: {e}")))?;
                if let Some(file) = found {
                    let (uid, gid) = (u32::try_from(file.uid).unwrap_or(0), u32::try_from(file.gid).unwrap_or(0));
                    installer
                        .add_file(&format!("/{path}"), Content::from_bytes(file.bytes), file.mode, uid, gid)
                        .map_err(|e| fail(e.to_string()))?;
                }
            }
        }
        for (n, tar) in ctx.input_list("tars").into_iter().enumerate() {
            let shown = spec.tar_labels.get(n).cloned().unwrap_or_else(|| format!("tars/{n}"));
            add_tar(&mut installer, tar, &shown, &ctx.scratch.join(format!("tar-{n}"))).map_err(fail)?;
        }
        let mut file_inputs = files.iter();
        for extra in &spec.extras {
            match extra {
                Extra::Dir { path, mode, uid, gid } => installer.add_dir(path, *mode, *uid, *gid),
                Extra::File { path, mode, uid, gid } => {
                    let source = file_inputs.next().ok_or_else(|| fail("internal error: missing file input".into()))?;
                    let mode = mode.unwrap_or(if source.executable { 0o755 } else { 0o644 });
                    let content = Content::from_file(source.path.clone())?;
                    installer.add_file(path, content, mode, *uid, *gid)
                }
                Extra::Symlink { path, target } => installer.add_symlink(path, target),
            }
            .map_err(|e| fail(e.to_string()))?;
        }
        for g in &spec.groups {
            let members: Vec<&str> = g.members.iter().map(String::as_str).collect();
            installer.add_group(&g.name, g.gid, &members).map_err(|e| fail(e.to_string()))?;
        }
        for u in &spec.users {
            installer.add_user(&u.name, u.uid, u.gid, &u.name, &u.home, &u.shell).map_err(|e| fail(e.to_string()))?;
        }
        let users = installer.users();
        let finished = installer.finish_owned().map_err(|e| fail(e.to_string()))?;
        let (mut tree, mut packages, owners, records) =
            (finished.tree, finished.summaries, finished.owners, finished.records);
        // Installed in input order, one summary per package.
        for (summary, sha256) in packages.iter_mut().zip(&spec.apk_sha256) {
            summary.sha256 = Some(*sha256);
        }
        let os_release_id = os_release_id(&mut tree)?;
        let epoch = spec.epoch.unwrap_or(newest);
        if let Some(budget) = spec.layering_budget {
            return self.write_layered(ctx, tree, packages, (&owners, &records), budget, (epoch, users, os_release_id));
        }
        let out = File::create(&ctx.outputs[0])?;
        // Compression threads: no more than the build's jobs (layers of several platforms
        // compress side by side), nor than the cores.
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let jobs = ctx.jobs.clamp(1, cores);
        // The compressed bytes written so far show beside the action while it runs.
        let out = executor_base::io::ProgressWriter::new(out, |bytes| ctx.status.progress(bytes));
        let level = spec.compression_level.unwrap_or(crate::layer_tree::DEFAULT_LEVEL);
        let writer = LayerWriter::new(BufWriter::new(out), LayerOptions { epoch, jobs, level })
            .map_err(|e| fail(e.to_string()))?;
        let digests = writer.write_tree(tree).map_err(|e| fail(e.to_string()))?;
        let created_by = match packages.len() {
            0 => "executor layer".to_owned(),
            n => format!("executor layer: {n} apk package{}", if n == 1 { "" } else { "s" }),
        };
        let meta = LayerMeta {
            diff_id: digests.diff_id,
            digest: digests.digest,
            size: digests.size,
            epoch,
            arch: spec.arch,
            users,
            packages,
            created_by,
            os_release_id,
            parts: Vec::new(),
        };
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| fail(e.to_string()))?;
        std::fs::write(&ctx.outputs[1], json)?;
        Ok(())
    }
}

impl LayerExec {
    /// Writes a layered target: the packages' layers by origin, then the top one, each a
    /// `<n>.tar.gz` of the output directory, and the description listing them.
    fn write_layered(
        &self,
        ctx: &ActionContext<'_>,
        tree: LayerTree,
        packages: Vec<InstalledSummary>,
        (owners, records): (&BTreeMap<LayerPath, usize>, &[String]),
        budget: usize,
        (epoch, users, os_release_id): (u64, BTreeMap<String, (u32, u32)>, Option<String>),
    ) -> Result<(), ActionError> {
        let fail = |m: String| ActionError(m);
        let groups = group_by_origin(&packages, budget);
        let mut group_of_package = vec![0; packages.len()];
        for (g, members) in groups.iter().enumerate() {
            for &p in members {
                group_of_package[p] = g;
            }
        }
        let part_of: BTreeMap<LayerPath, usize> =
            owners.iter().filter_map(|(path, &p)| Some((path.clone(), *group_of_package.get(p)?))).collect();
        let mut trees = tree.split(&part_of, groups.len());
        // Each package layer carries its packages' records of the apk database, as apko's
        // layering does, so that scanners reading one layer at a time know what it holds; the
        // top layer's whole database replaces them in the image.
        for (members, part) in groups.iter().zip(trees.iter_mut()) {
            let mut db = String::new();
            for &p in members.iter().collect::<std::collections::BTreeSet<_>>() {
                db.push_str(records.get(p).map(String::as_str).unwrap_or_default());
            }
            add_partial_database(part, db).map_err(|e| fail(e.to_string()))?;
        }
        let dir = &ctx.outputs[0];
        std::fs::create_dir_all(dir)?;
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let jobs = ctx.jobs.clamp(1, cores);
        let level = self.spec.compression_level.unwrap_or(crate::layer_tree::DEFAULT_LEVEL);
        let mut parts = Vec::with_capacity(trees.len());
        let mut written = 0u64;
        for (n, part) in trees.into_iter().enumerate() {
            let file = format!("{n}.tar.gz");
            let out = File::create(dir.join(&file))?;
            let base = written;
            let out = executor_base::io::ProgressWriter::new(out, |bytes| ctx.status.progress(base + bytes));
            let writer = LayerWriter::new(BufWriter::new(out), LayerOptions { epoch, jobs, level })
                .map_err(|e| fail(e.to_string()))?;
            let digests = writer.write_tree(part).map_err(|e| fail(e.to_string()))?;
            written += digests.size;
            let created_by = match groups.get(n) {
                Some(members) => {
                    let names: Vec<&str> = members.iter().map(|&i| packages[i].name.as_str()).collect();
                    format!("executor layer: apk packages {}", names.join(", "))
                }
                None => "executor layer: accounts, files, directories and the apk database".to_owned(),
            };
            parts.push(LayerPart {
                file,
                diff_id: digests.diff_id,
                digest: digests.digest,
                size: digests.size,
                created_by,
            });
        }
        let top =
            parts.last().cloned().ok_or_else(|| fail("internal error: a layered target without layers".into()))?;
        let meta = LayerMeta {
            diff_id: top.diff_id,
            digest: top.digest,
            size: top.size,
            epoch,
            arch: self.spec.arch,
            users,
            packages,
            created_by: top.created_by,
            os_release_id,
            parts,
        };
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| fail(e.to_string()))?;
        std::fs::write(&ctx.outputs[1], json)?;
        Ok(())
    }
}

/// Puts `db` at `usr/lib/apk/db/installed` of a package layer, with the directories above it
/// (as the top layer has them: root-owned `0755`, mtime 0 as every directory copy of a
/// package layer).
fn add_partial_database(tree: &mut LayerTree, db: String) -> Result<(), crate::layer_tree::LayerError> {
    use crate::layer_tree::{Entry, Mode};
    for dir in ["usr", "usr/lib", "usr/lib/apk", "usr/lib/apk/db"] {
        let path = LayerPath::new(dir)?;
        if !tree.contains(&path) {
            tree.insert(path, Entry::directory().with_mode(Mode::new(0o755)?))?;
        }
    }
    let entry = Entry::file(Content::from_bytes(db.into_bytes())).with_mode(Mode::new(0o644)?);
    tree.insert(LayerPath::new(crate::install::INSTALLED_DB)?, entry)
}

/// The `ID` of the tree's `etc/os-release` (else `usr/lib/os-release`), as apko takes an
/// SBOM's purl namespace from it, in purl form: lowercase, `_` as `-`. A symlinked or large
/// file is not followed; the small file read is put back as bytes.
fn os_release_id(tree: &mut LayerTree) -> Result<Option<String>, ActionError> {
    const MAX: u64 = 64 * 1024;
    for name in ["etc/os-release", "usr/lib/os-release"] {
        let path = LayerPath::new(name).map_err(|e| ActionError(e.to_string()))?;
        let small_file = matches!(tree.get(&path), Some(e) if matches!(&e.kind, EntryKind::File(c) if c.size() <= MAX));
        if !small_file {
            continue;
        }
        let Some(mut entry) = tree.remove(&path) else { continue };
        let EntryKind::File(content) = std::mem::replace(&mut entry.kind, EntryKind::Directory) else { continue };
        let mut bytes = Vec::new();
        content.open()?.read_to_end(&mut bytes)?;
        entry.kind = EntryKind::File(Content::from_bytes(bytes.clone()));
        tree.insert(path, entry).map_err(|e| ActionError(e.to_string()))?;
        return Ok(parse_os_release_id(&String::from_utf8_lossy(&bytes)));
    }
    Ok(None)
}

/// `ID=` of an os-release text (quotes removed), in purl namespace form; `None` without
/// one.
fn parse_os_release_id(text: &str) -> Option<String> {
    let value = text.lines().find_map(|l| l.trim().strip_prefix("ID="))?;
    let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
    let id: String = value
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' })
        .collect();
    (!id.is_empty()).then_some(id)
}

/// Adds the entries of the tarball at `path` (plain or gzip) to the layer: directories, files
/// (spooled into `scratch`), symlinks and hard links (as copies), with their modes and numeric
/// owners; anything else is refused. Paths go through the installer's checks.
fn add_tar(
    installer: &mut crate::install::Installer,
    path: &std::path::Path,
    shown: &str,
    scratch: &std::path::Path,
) -> Result<(), String> {
    use std::io::Read as _;
    let bad = |what: String| format!("layer tarball `{shown}`: {what}");
    let mut file = File::open(path).map_err(|e| bad(e.to_string()))?;
    let mut magic = [0u8; 2];
    let gzip = file.read(&mut magic).map_err(|e| bad(e.to_string()))? == 2 && magic == [0x1f, 0x8b];
    let file = File::open(path).map_err(|e| bad(e.to_string()))?;
    let reader: Box<dyn std::io::Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file)).take(MAX_TAR_BYTES))
    } else {
        Box::new(file)
    };
    std::fs::create_dir_all(scratch).map_err(|e| bad(e.to_string()))?;
    let mut archive = tar::Archive::new(reader);
    let mut extracted: BTreeMap<String, (std::path::PathBuf, u32, u32, u32)> = BTreeMap::new();
    for (n, entry) in archive.entries().map_err(|e| bad(e.to_string()))?.enumerate() {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let raw = String::from_utf8(entry.path_bytes().into_owned()).map_err(|_| bad("a path is not UTF-8".into()))?;
        let rel = raw.trim_start_matches("./").trim_end_matches('/');
        if rel.is_empty() || rel == "." {
            continue;
        }
        let dest = format!("/{rel}");
        let header = entry.header();
        let mode = header.mode().map_err(|e| bad(e.to_string()))? & 0o7777;
        let id = |v: std::io::Result<u64>| -> Result<u32, String> {
            v.ok()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| bad(format!("`{dest}`: its owner id is unreadable or over 32 bits")))
        };
        let (uid, gid) = (id(header.uid())?, id(header.gid())?);
        let kind = header.entry_type();
        let added = match kind {
            tar::EntryType::Directory => installer.add_dir(&dest, mode, uid, gid),
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let spooled = scratch.join(n.to_string());
                let mut out = File::create(&spooled).map_err(|e| bad(e.to_string()))?;
                std::io::copy(&mut entry, &mut out).map_err(|e| bad(format!("`{dest}`: {e}")))?;
                extracted.insert(rel.to_owned(), (spooled.clone(), mode, uid, gid));
                let content = Content::from_file(spooled).map_err(|e| bad(e.to_string()))?;
                installer.add_file(&dest, content, mode, uid, gid)
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
                let target =
                    String::from_utf8(target).map_err(|_| bad(format!("`{dest}`: a link target that is not UTF-8")))?;
                installer.add_symlink(&dest, &target)
            }
            tar::EntryType::Link => {
                let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
                let target = String::from_utf8_lossy(&target).trim_start_matches("./").to_owned();
                let Some((spooled, _, _, _)) = extracted.get(&target).cloned() else {
                    return Err(bad(format!(
                        "`{dest}` is a hard link to `{target}`, which is not a file before it in the tarball"
                    )));
                };
                let content = Content::from_file(spooled).map_err(|e| bad(e.to_string()))?;
                installer.add_file(&dest, content, mode, uid, gid)
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            other => {
                return Err(bad(format!(
                    "`{dest}` is a {} entry; a layer tarball holds directories, files and links",
                    match other {
                        tar::EntryType::Char => "character device",
                        tar::EntryType::Block => "block device",
                        tar::EntryType::Fifo => "fifo",
                        _ => "special",
                    }
                )))
            }
        };
        added.map_err(|e| bad(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(name: &str, origin: &str, size: u64, replaces: &[&str]) -> InstalledSummary {
        InstalledSummary {
            name: name.into(),
            version: "1.0-r0".into(),
            arch: "x86_64".into(),
            identity: None,
            license: None,
            origin: Some(origin.into()),
            description: None,
            url: None,
            commit: None,
            maintainer: None,
            build_date: None,
            size: None,
            installed_size: Some(size),
            repository: String::new(),
            depends: Vec::new(),
            provides: Vec::new(),
            files: Vec::new(),
            sha256: None,
            replaces: replaces.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    #[test]
    fn packages_group_by_origin_and_replaces_within_the_budget() {
        let packages = [
            summary("glibc", "glibc", 600, &[]),
            summary("ld-linux", "glibc", 20, &[]),
            summary("python", "python", 1000, &[]),
            summary("zlib", "zlib", 10, &[]),
            summary("busybox", "busybox", 100, &[]),
            // Overwrites busybox's files: one group with it, whatever its origin.
            summary("busybox-full", "toybox", 50, &["busybox"]),
            // A constraint the installed version does not meet merges nothing.
            summary("zlib-ng", "zlib-ng", 5, &["zlib<1.0"]),
        ];
        let names = |groups: Vec<Vec<usize>>| -> Vec<Vec<&str>> {
            groups.into_iter().map(|g| g.into_iter().map(|i| packages[i].name.as_str()).collect()).collect()
        };
        assert_eq!(
            names(group_by_origin(&packages, 10)),
            [vec!["python"], vec!["glibc", "ld-linux"], vec!["busybox", "busybox-full"], vec!["zlib"], vec!["zlib-ng"]]
        );
        assert_eq!(
            names(group_by_origin(&packages, 2)),
            [vec!["python"], vec!["busybox", "busybox-full", "glibc", "ld-linux", "zlib", "zlib-ng"]]
        );
        assert_eq!(names(group_by_origin(&packages, 1)).len(), 1);
    }

    #[test]
    fn os_release_ids() {
        assert_eq!(parse_os_release_id("NAME=\"Alpine Linux\"\nID=alpine\n").as_deref(), Some("alpine"));
        assert_eq!(parse_os_release_id("ID=\"wolfi\"\nID_LIKE=x\n").as_deref(), Some("wolfi"));
        assert_eq!(parse_os_release_id("ID='Open_WRT'").as_deref(), Some("open-wrt"));
        assert_eq!(parse_os_release_id("NAME=x\nID_LIKE=alpine\n"), None);
        assert_eq!(parse_os_release_id("ID=\n"), None);
    }

    #[test]
    fn account_lines() {
        assert_eq!(
            parse_user("nonroot:65532:65532:/home/nonroot:/sbin/nologin").expect("valid"),
            UserSpec {
                name: "nonroot".into(),
                uid: 65532,
                gid: 65532,
                home: "/home/nonroot".into(),
                shell: "/sbin/nologin".into()
            }
        );
        assert!(parse_user("nonroot:x:65532:/home:/bin/sh").is_err());
        assert!(parse_user("nonroot:1:1:home:/bin/sh").is_err());
        assert_eq!(parse_group("wheel:10:root,nonroot").expect("valid").members, ["root", "nonroot"]);
        assert_eq!(parse_mode("0755", "/x"), Ok(0o755));
        assert!(parse_mode("999", "/x").is_err());
        assert_eq!(parse_owner("65532:65532", "/x"), Ok((65532, 65532)));
        assert!(absolute("usr/bin/x", "files").is_err());
        assert!(absolute("/usr/../x", "files").is_err());
    }
}

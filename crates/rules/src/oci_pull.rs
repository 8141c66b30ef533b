//! Images pulled from a registry by digest: `oci_pull` in `WORKSPACE` declares repository
//! `@<name>`, whose targets are made by the rule `pulled_image`: `@<name>//:image` (the
//! index) and one image per platform (`@<name>//:linux_amd64`, `@<name>//:linux_arm_v7`),
//! usable as `oci_image(base = ...)`.
//!
//! Pulls are **shallow**: a target's action downloads the index, the manifests and the
//! configs (each checked against the digest that names it) and writes an OCI layout without
//! the layer blobs, which its description lists with the repository they are in
//! (`remote_blobs`). The layers are downloaded by a separate action (`PullLayers`), which
//! runs only when an action that needs their bytes lists its output as an input (`oci_load`,
//! a `layer` adding accounts to the base's). `executor push` mounts them from the base's
//! repository on the same registry, or copies them from it.
//!
//! Builds never resolve tags: an `oci_pull` with only a `tag` is pinned by `executor lock`,
//! which writes the digest to `executor.lock`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::action::{Action, ActionContext, ActionError, ActionExec, Input, OutputKind, OutputSpec};
use crate::digest::Digest;
use crate::label::RepoName;
use crate::oci::{self, BlobSource, JsonBlob};
use crate::oci_image::{ImageMeta, IMAGE_TAG};
use crate::oci_index::IndexMeta;
use crate::platform::Arch;
use crate::registry::{PulledManifest, Puller, PushOptions, Reference};
use crate::rules::{
    output_path, typed_attrs, AnalysisContext, AnalysisError, Declared, Provided, Rule, WorkspaceFunction,
};
use crate::target::{AttrSpec, AttrType, AttrValue, Target};
use crate::{ImageInfo, ImageState, IndexInfo};

/// The `WORKSPACE` function's name.
pub const OCI_PULL: &str = "oci_pull";

/// The largest config blob accepted (they are JSON documents of a few KiB).
const MAX_CONFIG: u64 = 16 * 1024 * 1024;

/// The most manifests a pulled index may list (eight platforms and their attestations are
/// sixteen): each is a request.
const MAX_INDEX_MANIFESTS: usize = 256;

/// One `oci_pull(name, image, digest, tag, platforms)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciPull {
    /// The repository's name: `@<name>`.
    pub name: String,
    /// `HOST/REPOSITORY`.
    pub image: String,
    /// The digest of the index (or manifest) pulled, if `WORKSPACE` gives it.
    pub digest: Option<Digest>,
    /// The tag `executor lock` resolves, if `WORKSPACE` gives no digest.
    pub tag: Option<String>,
    /// The platforms that get a target, in the order given.
    pub platforms: Vec<Arch>,
    /// Where it was declared (`WORKSPACE:3:1`).
    pub location: String,
}

impl OciPull {
    /// The per-platform target name: `linux/arm/v7` -> `linux_arm_v7`.
    pub fn target_name(arch: Arch) -> String {
        arch.oci_platform().replace('/', "_")
    }
}

/// The `oci_pull` `WORKSPACE` function.
pub struct OciPullFunction;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    image: String,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    platforms: Vec<String>,
}

impl WorkspaceFunction for OciPullFunction {
    fn kind(&self) -> &'static str {
        OCI_PULL
    }
    fn doc(&self) -> &'static str {
        "Declares repository `@<name>`: an image in a registry, pinned by digest. Its targets are `@<name>//:image` (the index) and one `oci_image`-like target per platform, named after it with `/` as `_` (`@<name>//:linux_amd64`, `@<name>//:linux_arm_v7`), usable as `oci_image(base = ...)`. Builds are shallow: they download the index, manifests and configs, never the base's layers unless an output needs their bytes (`oci_load`, a `layer` adding accounts to the base's); so the OCI layouts of these targets, and of images and indexes built on them, lack the base's layer blobs, which their `*.image.json` / `*.index.json` list under `remote_blobs`. `executor push` mounts them from the base's repository when it is on the same registry, else copies them from there. Credentials come from the docker-style auth file `push` reads. Only the main `WORKSPACE` declares repositories."
    }
    fn attrs(&self) -> &'static [AttrSpec] {
        &[
            AttrSpec {
                name: "image",
                ty: AttrType::String,
                mandatory: true,
                doc: "`HOST[:PORT]/REPOSITORY`, without tag or digest (`cgr.dev/chainguard/static`, `127.0.0.1:5000/executor/static`).",
            },
            AttrSpec {
                name: "digest",
                ty: AttrType::String,
                mandatory: false,
                doc: "`sha256:...` of the image index (or single manifest) to pull. Builds use nothing else.",
            },
            AttrSpec {
                name: "tag",
                ty: AttrType::String,
                mandatory: false,
                doc: "A tag for `executor lock` to resolve and pin in `executor.lock`, when `digest` is not given; builds never resolve it.",
            },
            AttrSpec {
                name: "platforms",
                ty: AttrType::StringList,
                mandatory: true,
                doc: "The platforms that get a target (`linux/amd64`, `linux/arm/v7`, or APK arch names); each must be in the index.",
            },
        ]
    }
    fn declare(
        &self,
        name: &str,
        attrs: &BTreeMap<&'static str, AttrValue>,
        location: &str,
        _repo: Option<&RepoName>,
    ) -> Result<Declared, String> {
        let args: Args = typed_attrs(OCI_PULL, attrs)?;
        let image = check_image(name, &args.image)?;
        let digest = match args.digest.as_deref().filter(|d| !d.is_empty()) {
            Some(text) => Some(text.parse::<Digest>().map_err(|_| {
                format!("oci_pull `{name}`: `digest` must be `sha256:` and 64 lowercase hex digits, got `{text}`")
            })?),
            None => None,
        };
        let tag = args.tag.filter(|t| !t.is_empty());
        if let Some(tag) = &tag {
            crate::registry::reference::check_tag(tag).map_err(|e| format!("oci_pull `{name}`: tag `{tag}`: {e}"))?;
        }
        if digest.is_none() && tag.is_none() {
            return Err(format!(
                "oci_pull `{name}` names neither a `digest` nor a `tag`\n  fix: add `digest = \"sha256:...\"`, or `tag = \"...\"` and run `executor lock` to pin its digest"
            ));
        }
        if args.platforms.is_empty() {
            return Err(format!(
                "oci_pull `{name}`: `platforms` is empty\n  fix: list the platforms to build on, like `platforms = [\"linux/amd64\", \"linux/arm64\"]`"
            ));
        }
        let mut platforms = Vec::new();
        for p in &args.platforms {
            let arch = Arch::parse(p).map_err(|e| format!("oci_pull `{name}`: {e}"))?;
            if platforms.contains(&arch) {
                return Err(format!(
                    "oci_pull `{name}`: platform `{p}` is `{}`, which `platforms` lists already",
                    arch.oci_platform()
                ));
            }
            platforms.push(arch);
        }
        Ok(Arc::new(OciPull { name: name.to_owned(), image, digest, tag, platforms, location: location.to_owned() }))
    }
    fn repository(&self, declared: &Declared) -> Option<String> {
        let pull = declared.downcast_ref::<OciPull>()?;
        let mut build = format!(
            "# Made by `oci_pull(name = \"{0}\")` in WORKSPACE.\npulled_image(name = \"image\", pull = \"{0}\")\n",
            pull.name
        );
        for arch in &pull.platforms {
            build.push_str(&format!(
                "pulled_image(name = \"{}\", pull = \"{}\", platform = \"{}\")\n",
                OciPull::target_name(*arch),
                pull.name,
                arch.oci_platform()
            ));
        }
        Some(build)
    }
}

/// Checks `HOST[:PORT]/REPOSITORY` (no tag, no digest); returns it.
fn check_image(name: &str, image: &str) -> Result<String, String> {
    if let Some((_, digest)) = image.split_once('@') {
        return Err(format!(
            "oci_pull `{name}`: `image` must not name a digest\n  fix: write `image = \"{}\", digest = \"{digest}\"`",
            image.split('@').next().unwrap_or_default()
        ));
    }
    let last = image.rsplit('/').next().unwrap_or_default();
    if image.contains('/') && last.contains(':') {
        let (repo, tag) = image.rsplit_once(':').unwrap_or_default();
        return Err(format!(
            "oci_pull `{name}`: `image` must not name a tag\n  fix: pin it by `digest`, or write `image = \"{repo}\", tag = \"{tag}\"` and run `executor lock`"
        ));
    }
    let reference = Reference::parse(image).map_err(|e| format!("oci_pull `{name}`: {e}"))?;
    Ok(format!("{}/{}", reference.host, reference.repository))
}

/// The `oci_pull` declarations of the main `WORKSPACE`, by name.
pub fn pulls(workspace: &crate::workspace::Workspace) -> BTreeMap<&str, &OciPull> {
    workspace.declared::<OciPull>(None, OCI_PULL).collect()
}

/// The rule of `oci_pull`'s targets.
pub struct PulledImage;

/// The attributes of a `pulled_image` target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PulledAttrs {
    /// The `oci_pull` it belongs to.
    pub pull: String,
    /// The platform; none for the index.
    #[serde(default)]
    pub platform: Option<String>,
}

impl Rule for PulledImage {
    type Attrs = PulledAttrs;
    const KIND: &'static str = "pulled_image";
    const DOC: &'static str = "A target of an `oci_pull` repository (which makes them; BUILD files do not call it): the pulled index, or one platform's image, as a shallow OCI layout.";
    const ATTRS: &'static [AttrSpec] = &[
        AttrSpec { name: "pull", ty: AttrType::String, mandatory: true, doc: "The `oci_pull` in `WORKSPACE`." },
        AttrSpec {
            name: "platform",
            ty: AttrType::String,
            mandatory: false,
            doc: "The platform's image (`linux/amd64`); none: the index.",
        },
    ];
    fn check(&self, attrs: &PulledAttrs) -> Result<(), String> {
        if let Some(p) = &attrs.platform {
            Arch::parse(p).map_err(|e| format!("rule `pulled_image`: {e}"))?;
        }
        Ok(())
    }

    fn analyze(
        &self,
        target: &Target,
        attrs: &PulledAttrs,
        ctx: &mut AnalysisContext<'_>,
    ) -> Result<Provided, AnalysisError> {
        let err = |m: String| AnalysisError(m);
        let pull = pulls(&ctx.env.workspace).get(attrs.pull.as_str()).copied().cloned().ok_or_else(|| {
            err(format!(
                "`pulled_image` targets are made by `oci_pull` in the main WORKSPACE, which declares no `{}`",
                attrs.pull
            ))
        })?;
        let digest = pinned_digest(&pull, ctx)?;
        let name = target.label.name.as_str();
        let path = |suffix: &str| output_path(&target.label, &format!("{name}{suffix}"));
        // Registry requests time out and retry as `--fetch-*` say downloads do.
        let access =
            Arc::new(RegistryAccess { options: crate::release::push_options(&ctx.env.fetcher.options(), false) });
        let layers_action =
            |arch: Arch, layout: &crate::action::Artifact, ctx: &mut AnalysisContext<'_>, suffix: &str| {
                ctx.graph.add(Action {
                    owner: target.label.clone(),
                    inputs: vec![Input::new("layout", layout.clone())],
                    outputs: vec![OutputSpec { path: path(suffix), kind: OutputKind::Dir }],
                    exec: Arc::new(PullLayers { image: pull.image.clone(), digest, arch, access: Arc::clone(&access) }),
                })
            };
        match &attrs.platform {
            Some(platform) => {
                let arch = Arch::parse(platform).map_err(|e| err(e.to_string()))?;
                let outs = ctx.graph.add(Action {
                    owner: target.label.clone(),
                    inputs: Vec::new(),
                    outputs: vec![
                        OutputSpec { path: path(""), kind: OutputKind::Dir },
                        OutputSpec { path: path(".image.json"), kind: OutputKind::File { executable: false } },
                    ],
                    exec: Arc::new(PullImage { image: pull.image.clone(), digest, arch, access: Arc::clone(&access) }),
                });
                let blobs = layers_action(arch, &outs[0], ctx, ".layers");
                let image = ImageInfo { layout: outs[0].clone(), meta: outs[1].clone(), arch, blobs: blobs.clone() };
                Ok(Provided::files(outs).with(image))
            }
            None => {
                let outs = ctx.graph.add(Action {
                    owner: target.label.clone(),
                    inputs: Vec::new(),
                    outputs: vec![
                        OutputSpec { path: path(""), kind: OutputKind::Dir },
                        OutputSpec { path: path(".index.json"), kind: OutputKind::File { executable: false } },
                    ],
                    exec: Arc::new(PullIndex {
                        image: pull.image.clone(),
                        digest,
                        archs: pull.platforms.clone(),
                        access: Arc::clone(&access),
                    }),
                });
                let mut blobs = BTreeMap::new();
                for arch in &pull.platforms {
                    let suffix = format!(".layers/{}", OciPull::target_name(*arch));
                    blobs.insert(*arch, layers_action(*arch, &outs[0], ctx, &suffix));
                }
                let index =
                    IndexInfo { layout: outs[0].clone(), meta: outs[1].clone(), archs: pull.platforms.clone(), blobs };
                Ok(Provided::files(outs).with(index))
            }
        }
    }
}

/// The digest a build pulls: `WORKSPACE`'s, else the one `executor lock` pinned for the tag.
fn pinned_digest(pull: &OciPull, ctx: &AnalysisContext<'_>) -> Result<Digest, AnalysisError> {
    if let Some(digest) = pull.digest {
        return Ok(digest);
    }
    let tag = pull.tag.as_deref().unwrap_or("latest");
    let state = ctx.env.state.get::<ImageState>();
    let lock = state.map(|s| s.lock_of(None)).transpose().map_err(AnalysisError)?.flatten();
    let pinned = lock
        .as_ref()
        .and_then(|l| l.image(&pull.name))
        .filter(|i| i.image == pull.image && i.tag.as_deref() == Some(tag));
    match pinned {
        Some(locked) => Ok(locked.digest),
        None => Err(AnalysisError(format!(
            "oci_pull `{}` ({}) names the tag `{tag}`, which `{}` does not pin; builds never resolve tags\n  fix: run `executor lock` to pin its digest, or set `digest` in WORKSPACE",
            pull.name,
            pull.location,
            crate::lockfile::LOCKFILE
        ))),
    }
}

/// How pull actions reach registries: options and the process's auth file (read when a pull
/// runs; credentials never enter a key or an output).
#[derive(Debug, Default)]
pub struct RegistryAccess {
    options: PushOptions,
}

impl RegistryAccess {
    /// A reader of `image` (`HOST/REPO`), with the credentials the auth file has for its host.
    pub fn puller(&self, image: &str) -> Result<Puller, ActionError> {
        let reference = Reference::parse(image).map_err(|e| ActionError(e.to_string()))?;
        let creds = crate::registry::load_credentials(&reference.host, &crate::registry::AuthEnv::from_process())
            .map_err(|e| ActionError(e.to_string()))?;
        Ok(Puller::new(&reference, &self.options, creds))
    }
}

/// Downloads `digest` of `image` and, when it is an index, the manifest for `arch`: returns
/// the index (if any) and the platform's manifest, both checked against their digests.
fn platform_manifest(
    puller: &Puller,
    image: &str,
    digest: Digest,
    arch: Arch,
) -> Result<(Option<PulledManifest>, PulledManifest), ActionError> {
    let fail = |m: String| ActionError(m);
    let top = puller.manifest(digest).map_err(|e| fail(e.to_string()))?;
    if !top.is_index() {
        return Ok((None, top));
    }
    let index: oci::ImageIndex = serde_json::from_slice(&top.bytes)
        .map_err(|e| fail(format!("the index `{image}@{digest}` is not an image index: {e}")))?;
    let Some(child) =
        index.manifests().iter().find(|d| d.platform().as_ref().is_some_and(|p| oci::platform_matches(p, arch)))
    else {
        let have: Vec<String> = index
            .manifests()
            .iter()
            .filter_map(|d| d.platform().as_ref().map(oci::platform_text))
            .filter(|p| p != "unknown/unknown")
            .collect();
        return Err(fail(format!(
            "`{image}@{digest}` has no `{}` image (it has: {})\n  fix: remove `{}` from the `platforms` of its `oci_pull`",
            arch.oci_platform(),
            have.join(", "),
            arch.oci_platform()
        )));
    };
    let child_digest: Digest =
        child.digest().to_string().parse().map_err(|_| {
            fail(format!("the index `{image}@{digest}` names `{}`, not a sha256 digest", child.digest()))
        })?;
    let manifest = puller.manifest(child_digest).map_err(|e| fail(e.to_string()))?;
    Ok((Some(top), manifest))
}

/// A platform's manifest, parsed: only OCI images can be bases.
fn parse_manifest(image: &str, manifest: &PulledManifest) -> Result<oci::ImageManifest, ActionError> {
    if manifest.media_type != crate::registry::MEDIA_TYPE_MANIFEST {
        return Err(ActionError(format!(
            "`{image}@{}` is a `{}`, not an OCI image manifest; only OCI images can be pulled as bases\n  fix: pull an OCI image (convert it with `crane` or `skopeo copy --format oci`)",
            manifest.digest, manifest.media_type
        )));
    }
    serde_json::from_slice(&manifest.bytes)
        .map_err(|e| ActionError(format!("the manifest `{image}@{}` is not an image manifest: {e}", manifest.digest)))
}

/// A config's digest and bytes, and the manifest's layers (digest, size).
type PulledConfig = (Digest, Vec<u8>, Vec<(Digest, u64)>);

/// A manifest's config, downloaded and checked against its descriptor, and its layers.
fn config_of(
    puller: &Puller,
    image: &str,
    manifest: &oci::ImageManifest,
    manifest_digest: Digest,
) -> Result<PulledConfig, ActionError> {
    let fail = |m: String| ActionError(m);
    let parse = |d: String| -> Result<Digest, ActionError> {
        d.parse().map_err(|_| fail(format!("`{image}@{manifest_digest}` names `{d}`, not a sha256 digest")))
    };
    let config = manifest.config();
    if config.size() > MAX_CONFIG {
        return Err(fail(format!(
            "the config of `{image}@{manifest_digest}` is {} bytes, more than the {MAX_CONFIG} accepted",
            config.size()
        )));
    }
    let config_digest = parse(config.digest().to_string())?;
    let bytes = puller.blob_bytes(config_digest, config.size()).map_err(|e| fail(e.to_string()))?;
    let layers = manifest
        .layers()
        .iter()
        .map(|l| Ok((parse(l.digest().to_string())?, l.size())))
        .collect::<Result<_, ActionError>>()?;
    Ok((config_digest, bytes, layers))
}

/// `PullImage`: one platform's manifest and config, as a shallow single-image layout.
#[derive(Debug, Serialize)]
struct PullImage {
    image: String,
    digest: Digest,
    arch: Arch,
    #[serde(skip)]
    access: Arc<RegistryAccess>,
}

impl ActionExec for PullImage {
    fn mnemonic(&self) -> &'static str {
        "PullImage"
    }
    fn version(&self) -> u32 {
        1
    }
    fn run(&self, ctx: &ActionContext<'_>) -> Result<(), ActionError> {
        let fail = |m: String| ActionError(m);
        let puller = self.access.puller(&self.image)?;
        let (_, manifest) = platform_manifest(&puller, &self.image, self.digest, self.arch)?;
        let parsed = parse_manifest(&self.image, &manifest)?;
        let (config_digest, config, layers) = config_of(&puller, &self.image, &parsed, manifest.digest)?;
        let parsed_config: oci::ImageConfiguration = serde_json::from_slice(&config).map_err(|e| {
            fail(format!("the config of `{}@{}` is not an image config: {e}", self.image, manifest.digest))
        })?;
        oci::check_platform(&parsed_config, self.arch, &format!("the config of `{}@{}`", self.image, manifest.digest))
            .map_err(|e| fail(e.to_string()))?;
        let absent: BTreeSet<Digest> = layers.iter().map(|(d, _)| *d).collect();
        let top = JsonBlob { bytes: manifest.bytes.clone(), digest: manifest.digest };
        oci::write_shallow_image_layout(
            &ctx.outputs[0],
            &top,
            self.arch,
            [(config_digest, BlobSource::Bytes(&config))],
            IMAGE_TAG,
            &absent,
        )
        .map_err(|e| fail(e.to_string()))?;
        let meta = pulled_meta(&self.image, self.arch, &manifest, config_digest, &parsed_config, &absent);
        std::fs::write(&ctx.outputs[1], serde_json::to_vec_pretty(&meta).map_err(|e| fail(e.to_string()))?)?;
        Ok(())
    }
}

/// The description of a pulled image: what a shallow pull knows. Its accounts and packages
/// are in its layers, which a shallow build does not read.
fn pulled_meta(
    image: &str,
    arch: Arch,
    manifest: &PulledManifest,
    config: Digest,
    parsed_config: &oci::ImageConfiguration,
    absent: &BTreeSet<Digest>,
) -> ImageMeta {
    ImageMeta {
        arch,
        digest: manifest.digest,
        size: manifest.bytes.len() as u64,
        config,
        epoch: parsed_config.created().as_deref().and_then(oci::parse_rfc3339).unwrap_or(0),
        users: BTreeMap::new(),
        packages: Vec::new(),
        os_release_id: None,
        sbom: None,
        remote_blobs: absent.iter().map(|d| (*d, image.to_owned())).collect(),
        pulled_base: Some((image.to_owned(), manifest.digest)),
    }
}

/// `PullIndex`: the index, every manifest it lists and their configs, as a shallow layout.
#[derive(Debug, Serialize)]
struct PullIndex {
    image: String,
    digest: Digest,
    archs: Vec<Arch>,
    #[serde(skip)]
    access: Arc<RegistryAccess>,
}

impl ActionExec for PullIndex {
    fn mnemonic(&self) -> &'static str {
        "PullIndex"
    }
    fn version(&self) -> u32 {
        1
    }
    fn run(&self, ctx: &ActionContext<'_>) -> Result<(), ActionError> {
        let fail = |m: String| ActionError(m);
        let puller = self.access.puller(&self.image)?;
        let mut images = BTreeMap::new();
        let mut index = None;
        for arch in &self.archs {
            let (top, manifest) = platform_manifest(&puller, &self.image, self.digest, *arch)?;
            let Some(top) = top else {
                return Err(fail(format!(
                    "`{}@{}` is a single image, not an index: use its platform's target (`:{}`)",
                    self.image,
                    self.digest,
                    OciPull::target_name(*arch)
                )));
            };
            images.insert(arch.oci_platform(), manifest.digest);
            index = Some(top);
        }
        let Some(index) = index else { return Err(fail("internal error: an index with no platforms".into())) };
        // The layout holds every manifest the index lists (attestations too) and their
        // configs; no layer.
        let parsed: oci::ImageIndex = serde_json::from_slice(&index.bytes)
            .map_err(|e| fail(format!("the index `{}@{}` is not an image index: {e}", self.image, self.digest)))?;
        if parsed.manifests().len() > MAX_INDEX_MANIFESTS {
            return Err(fail(format!(
                "the index `{}@{}` lists {} manifests, more than the {MAX_INDEX_MANIFESTS} a pull reads",
                self.image,
                self.digest,
                parsed.manifests().len()
            )));
        }
        let mut documents: Vec<(Digest, Vec<u8>)> = Vec::new();
        let mut absent = BTreeSet::new();
        for child in parsed.manifests() {
            let digest: Digest = child.digest().to_string().parse().map_err(|_| {
                fail(format!(
                    "the index `{}@{}` names `{}`, not a sha256 digest",
                    self.image,
                    self.digest,
                    child.digest()
                ))
            })?;
            let manifest = puller.manifest(digest).map_err(|e| fail(e.to_string()))?;
            if manifest.is_index() {
                return Err(fail(format!(
                    "the index `{}@{}` nests another index ({digest}), which pulls do not follow",
                    self.image, self.digest
                )));
            }
            let parsed_manifest = parse_manifest(&self.image, &manifest)?;
            let (config_digest, config, layers) = config_of(&puller, &self.image, &parsed_manifest, digest)?;
            absent.extend(layers.iter().map(|(d, _)| *d));
            documents.push((digest, manifest.bytes));
            documents.push((config_digest, config));
        }
        let top = JsonBlob { bytes: index.bytes.clone(), digest: index.digest };
        let blobs = documents.iter().map(|(d, b)| (*d, BlobSource::Bytes(b)));
        oci::write_shallow_layout(&ctx.outputs[0], &top, blobs, IMAGE_TAG, &absent).map_err(|e| fail(e.to_string()))?;
        let meta = IndexMeta {
            digest: index.digest,
            size: index.bytes.len() as u64,
            tag: IMAGE_TAG.to_owned(),
            images,
            sboms: BTreeMap::new(),
            remote_blobs: absent.iter().map(|d| (*d, self.image.clone())).collect(),
        };
        std::fs::write(&ctx.outputs[1], serde_json::to_vec_pretty(&meta).map_err(|e| fail(e.to_string()))?)?;
        Ok(())
    }
}

/// `PullLayers`: the layer blobs of one platform's image of a shallow layout, downloaded
/// (each checked against its digest and size) into `blobs/sha256/<hex>`. Runs only when an
/// action that needs the bytes lists its output.
#[derive(Debug, Serialize)]
struct PullLayers {
    image: String,
    digest: Digest,
    arch: Arch,
    #[serde(skip)]
    access: Arc<RegistryAccess>,
}

impl ActionExec for PullLayers {
    fn mnemonic(&self) -> &'static str {
        "PullLayers"
    }
    fn version(&self) -> u32 {
        1
    }
    fn run(&self, ctx: &ActionContext<'_>) -> Result<(), ActionError> {
        let fail = |m: String| ActionError(m);
        let layout = ctx.input("layout")?;
        let image = oci::read_layout_image(layout, Some(IMAGE_TAG), self.arch).map_err(|e| fail(e.to_string()))?;
        let dir = ctx.outputs[0].join("blobs").join("sha256");
        std::fs::create_dir_all(&dir)?;
        let puller = self.access.puller(&self.image)?;
        let mut moved = 0u64;
        for layer in &image.layers {
            let path = dir.join(layer.descriptor.digest.hex());
            if path.exists() {
                continue;
            }
            puller
                .blob_to_file(layer.descriptor.digest, layer.descriptor.size, &path)
                .map_err(|e| fail(e.to_string()))?;
            moved += layer.descriptor.size;
            ctx.status.progress(moved);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_checked() {
        assert_eq!(check_image("s", "127.0.0.1:5000/executor/static"), Ok("127.0.0.1:5000/executor/static".into()));
        let tag = check_image("s", "cgr.dev/chainguard/static:latest").expect_err("tag");
        assert!(tag.contains("write `image = \"cgr.dev/chainguard/static\", tag = \"latest\"`"), "{tag}");
        let digest = check_image("s", "cgr.dev/chainguard/static@sha256:00").expect_err("digest");
        assert!(digest.contains("digest = \"sha256:00\""), "{digest}");
        assert_eq!(OciPull::target_name(Arch::Armv7), "linux_arm_v7");
    }
}

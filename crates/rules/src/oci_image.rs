//! `oci_image`: one platform's image (config + manifest) over `base` and `layers`, written
//! as a single-image OCI layout directory plus a small JSON description for dependents.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::action::{Action, ActionContext, ActionError, ActionExec, Input, OutputKind, OutputSpec};
use crate::check_epoch;
use crate::digest::Digest;
use crate::install::InstalledSummary;
use crate::label::Label;
use crate::layer::LayerMeta;
use crate::oci::{self, BlobSource, ImageSettings, LayerDescriptor, LayerInfo};
use crate::platform::Arch;
use crate::rules::{output_path, AnalysisContext, AnalysisError, Provided, Rule};
use crate::sbom::{attach_sbom, spdx_document, SbomBase, SbomInput, SbomPackage};
use crate::target::{AttrSpec, AttrType, Target};
use crate::ImageInfo;

/// The `oci_image` rule.
pub struct OciImage;

/// The attributes of an `oci_image` target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    /// The base image.
    #[serde(default)]
    pub base: Option<Label>,
    /// Layers, bottom first.
    #[serde(default)]
    pub layers: Vec<Label>,
    /// The platform.
    #[serde(default)]
    pub arch: Option<String>,
    /// config.Entrypoint.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// config.Cmd.
    #[serde(default)]
    pub cmd: Vec<String>,
    /// Environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// config.User.
    #[serde(default)]
    pub user: String,
    /// config.WorkingDir.
    #[serde(default)]
    pub workdir: Option<String>,
    /// config.Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// `created`, unix seconds.
    #[serde(default)]
    pub epoch: Option<i64>,
    /// Write and attach an SBOM.
    #[serde(default = "yes")]
    pub sbom: bool,
    /// The SBOM's purl namespace.
    #[serde(default)]
    pub distro: Option<String>,
}

fn yes() -> bool {
    true
}

/// The ref name of the image in an `oci_image` layout's `index.json`.
pub const IMAGE_TAG: &str = "latest";

/// What an image action reports about itself (`<name>.image.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageMeta {
    /// The platform.
    pub arch: Arch,
    /// The manifest's digest: the image's identity.
    pub digest: Digest,
    /// The manifest's size.
    pub size: u64,
    /// The config's digest.
    pub config: Digest,
    /// `created`, in unix seconds.
    pub epoch: u64,
    /// Accounts of the image: name -> (uid, gid).
    pub users: BTreeMap<String, (u32, u32)>,
    /// Installed packages of every layer, base first.
    pub packages: Vec<InstalledSummary>,
    /// The `ID` of the image's os-release (the topmost layer that has one wins).
    #[serde(default)]
    pub os_release_id: Option<String>,
    /// The SBOM attached to the image in its layout (`<tag>.sbom`), if any.
    #[serde(default)]
    pub sbom: Option<SbomMeta>,
    /// The layer blobs the layout lacks (it is shallow: built on a pulled base), and the
    /// repository (`HOST/REPO`) each can be read from.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub remote_blobs: BTreeMap<Digest, String>,
    /// The pulled image this one is (or is built on): its repository (`HOST/REPO`) and this
    /// platform's manifest digest. Its packages are not in `packages` (the SBOM names it), nor
    /// its accounts in `users`: its `/etc/passwd` is in layers a shallow build does not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled_base: Option<(String, Digest)>,
}

/// An image's SBOM: the SPDX document's blob, attached with `epoch` as its `created`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SbomMeta {
    /// sha256 of the SPDX JSON document (`blobs/sha256/<hex>` of the layout).
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// The SBOM's purl namespace.
    pub distro: String,
}

/// The manifest annotation naming the base image's manifest digest.
pub const ANNOTATION_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
/// The manifest annotation naming the base image.
pub const ANNOTATION_BASE_NAME: &str = "org.opencontainers.image.base.name";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ImageSpec {
    arch: Arch,
    has_base: bool,
    /// The base image's label, for the `org.opencontainers.image.base.name` annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base_name: Option<String>,
    layers: usize,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: BTreeMap<String, String>,
    user: String,
    workdir: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    epoch: Option<u64>,
    tag: String,
    /// The image name in the SBOM; `None`: no SBOM.
    sbom_name: Option<String>,
    /// `distro`, if set.
    distro: Option<String>,
}

impl Rule for OciImage {
    type Attrs = Attrs;
    const KIND: &'static str = "oci_image";
    const DOC: &'static str =
        "An OCI image for one platform: `base` plus `layers`, with entrypoint, cmd, env, user, workdir, labels and annotations.";
    const ATTRS: &'static [AttrSpec] = &[
        AttrSpec {
            name: "base",
            ty: AttrType::Label,
            mandatory: false,
            doc: "An `oci_image` this one is built on; the manifest then carries `org.opencontainers.image.base.digest` (its manifest digest) and `org.opencontainers.image.base.name` (its label), as ko sets them, unless `annotations` sets them.",
        },
        AttrSpec { name: "layers", ty: AttrType::LabelList, mandatory: false, doc: "`layer` targets, bottom first." },
        AttrSpec {
            name: "arch",
            ty: AttrType::String,
            mandatory: false,
            doc: "The platform (`x86_64` or `linux/amd64`); default: the layers' or the base's.",
        },
        AttrSpec { name: "entrypoint", ty: AttrType::StringList, mandatory: false, doc: "config.Entrypoint." },
        AttrSpec { name: "cmd", ty: AttrType::StringList, mandatory: false, doc: "config.Cmd." },
        AttrSpec {
            name: "env",
            ty: AttrType::StringDict,
            mandatory: false,
            doc: "Environment, over apko's defaults (PATH, SSL_CERT_FILE) and the base's.",
        },
        AttrSpec {
            name: "user",
            ty: AttrType::String,
            mandatory: false,
            doc: "config.User: an account of the image (`nonroot`), or numeric `uid[:gid]`.",
        },
        AttrSpec { name: "workdir", ty: AttrType::String, mandatory: false, doc: "config.WorkingDir (absolute)." },
        AttrSpec { name: "labels", ty: AttrType::StringDict, mandatory: false, doc: "config.Labels." },
        AttrSpec { name: "annotations", ty: AttrType::StringDict, mandatory: false, doc: "Manifest annotations." },
        AttrSpec {
            name: "epoch",
            ty: AttrType::Int,
            mandatory: false,
            doc: "`created`, in unix seconds (default: the newest epoch of the layers and the base).",
        },
        AttrSpec {
            name: "sbom",
            ty: AttrType::Bool,
            mandatory: false,
            doc: "Write `<name>.spdx.json` (SPDX 2.3, every installed package) and attach it to the layout as an OCI artifact whose subject is the image (default True).",
        },
        AttrSpec {
            name: "distro",
            ty: AttrType::String,
            mandatory: false,
            doc: "The SBOM's purl namespace (`pkg:apk/<distro>/...`); default: the `ID` of the image's os-release, else `unknown`.",
        },
    ];
    fn check(&self, attrs: &Attrs) -> Result<(), String> {
        if let Some(a) = &attrs.arch {
            Arch::parse(a).map_err(|e| format!("rule `oci_image`: {e}"))?;
        }
        if let Some(d) = &attrs.distro {
            if !crate::sbom::valid_namespace(d) {
                return Err(format!(
                    "attribute `distro` of rule `oci_image` must be lowercase letters, digits, `.` and `-` (like `wolfi`), got `{d}`"
                ));
            }
        }
        if let Some(w) = &attrs.workdir {
            if !w.starts_with('/') {
                return Err(format!("attribute `workdir` of rule `oci_image` must be absolute, got `{w}`"));
            }
        }
        for key in attrs.env.keys() {
            if key.is_empty() || key.contains('=') {
                return Err(format!("attribute `env` of rule `oci_image`: `{key}` is not a variable name"));
            }
        }
        check_epoch("oci_image", attrs.epoch)?;
        Ok(())
    }

    fn analyze(
        &self,
        target: &Target,
        attrs: &Attrs,
        ctx: &mut AnalysisContext<'_>,
    ) -> Result<Provided, AnalysisError> {
        let err = |m: String| AnalysisError(m);
        let mut inputs: Vec<Input> = Vec::new();
        let mut archs: Vec<(String, Arch)> = Vec::new();
        let mut blobs = Vec::new();
        let base = match &attrs.base {
            Some(label) => {
                let image = ctx
                    .provided(label)?
                    .get::<ImageInfo>()
                    .cloned()
                    .ok_or_else(|| err(format!("attribute `base`: `{label}` is not an `oci_image` target")))?;
                archs.push((format!("base `{label}`"), image.arch));
                inputs.push(Input::new("base/layout", image.layout.clone()));
                inputs.push(Input::new("base/meta", image.meta.clone()));
                // A shallow base stays shallow: its layers' blobs are not inputs here.
                blobs = image.blobs.clone();
                true
            }
            None => false,
        };
        let (mut layer_tars, mut layer_metas) = (Vec::new(), Vec::new());
        let layer_labels = &attrs.layers;
        for label in layer_labels {
            let provided = ctx.provided(label)?;
            let layer = provided
                .get::<crate::LayerInfo>()
                .cloned()
                .ok_or_else(|| err(format!("attribute `layers`: `{label}` is not a `layer` target")))?;
            if let Some(arch) = layer.arch {
                archs.push((format!("layer `{label}`"), arch));
            }
            layer_tars.push(layer.tar);
            layer_metas.push(layer.meta);
        }
        let arch = match &attrs.arch {
            Some(a) => Arch::parse(a).map_err(|e| err(e.to_string()))?,
            None => match archs.first() {
                Some((_, a)) => *a,
                None => return Err(err(
                    "set `arch`: neither a base image nor a layer of packages says which platform this image is for"
                        .into(),
                )),
            },
        };
        if let Some((what, other)) = archs.iter().find(|(_, a)| *a != arch) {
            return Err(err(format!("{what} is for `{other}`, but this image is for `{arch}`")));
        }
        inputs.extend(Input::list("layers", &layer_tars));
        inputs.extend(Input::list("layer_metas", &layer_metas));
        let spec = ImageSpec {
            arch,
            has_base: base,
            base_name: attrs.base.as_ref().map(ToString::to_string),
            layers: layer_labels.len(),
            entrypoint: attrs.entrypoint.clone(),
            cmd: attrs.cmd.clone(),
            env: attrs.env.clone(),
            user: attrs.user.clone(),
            workdir: attrs.workdir.clone().unwrap_or_default(),
            labels: attrs.labels.clone(),
            annotations: crate::stamped(ctx.env, &attrs.annotations),
            epoch: attrs.epoch.and_then(|e| u64::try_from(e).ok()),
            tag: IMAGE_TAG.into(),
            sbom_name: attrs.sbom.then(|| sbom_image_name(name_of(target))),
            distro: attrs.distro.clone(),
        };
        let name = target.label.name.as_str();
        let path = |suffix: &str| output_path(&target.label, &format!("{name}{suffix}"));
        let mut outputs = vec![
            OutputSpec { path: path(""), kind: OutputKind::Dir },
            OutputSpec { path: path(".image.json"), kind: OutputKind::File { executable: false } },
        ];
        if spec.sbom_name.is_some() {
            outputs.push(OutputSpec { path: path(".spdx.json"), kind: OutputKind::File { executable: false } });
        }
        let outs =
            ctx.graph.add(Action { owner: target.label.clone(), inputs, outputs, exec: Arc::new(ImageExec { spec }) });
        let image = ImageInfo { layout: outs[0].clone(), meta: outs[1].clone(), arch, blobs };
        Ok(Provided::files(outs).with(image))
    }
}

fn name_of(target: &Target) -> &str {
    target.label.name.as_str()
}

/// The image's name in its SBOM (`pkg:oci/<name>@...`): the target's name, with characters
/// an image name may not hold as `-`.
fn sbom_image_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' }).collect()
}

/// Reads a JSON file an earlier action wrote.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ActionError> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| ActionError(format!("cannot read `{}`: {e}", path.display())))
}

/// Checks `user` against the image's accounts: a name must exist; numbers are accepted.
fn check_user(user: &str, users: &BTreeMap<String, (u32, u32)>) -> Result<(), ActionError> {
    let name = user.split(':').next().unwrap_or_default();
    if user.is_empty() || name.parse::<u32>().is_ok() || users.contains_key(name) {
        return Ok(());
    }
    let known: Vec<String> = users.keys().map(|k| format!("`{k}`")).collect();
    let hint = crate::target::did_you_mean(name, users.keys().map(String::as_str));
    Err(ActionError(format!(
        "user `{name}` does not exist in the image{hint} (its /etc/passwd has {})\n  fix: add the account to a layer (`users = [\"{name}:UID:GID:/home/{name}:/sbin/nologin\"]`) or use a numeric uid",
        if known.is_empty() { "no accounts".to_owned() } else { known.join(", ") }
    )))
}

#[derive(Debug, Serialize)]
#[serde(transparent)]
struct ImageExec {
    spec: ImageSpec,
}

impl ActionExec for ImageExec {
    fn mnemonic(&self) -> &'static str {
        "OciImage"
    }
    fn version(&self) -> u32 {
        2
    }
    fn run(&self, ctx: &ActionContext<'_>) -> Result<(), ActionError> {
        let spec = &self.spec;
        let fail = |m: String| ActionError(m);
        let mut users = BTreeMap::new();
        let mut packages = Vec::new();
        let mut epoch = 0u64;
        let mut os_release_id = None;
        let mut base_digest = None;
        let mut remote_blobs = BTreeMap::new();
        let mut pulled_base = None;
        let base = if spec.has_base {
            let (layout, meta) = (ctx.input("base/layout")?, ctx.input("base/meta")?);
            let meta: ImageMeta = read_json(meta)?;
            base_digest = Some(meta.digest);
            remote_blobs = meta.remote_blobs.clone();
            pulled_base = meta.pulled_base.clone();
            users.extend(meta.users.clone());
            packages.extend(meta.packages.clone());
            epoch = epoch.max(meta.epoch);
            os_release_id = meta.os_release_id.clone();
            let image = oci::read_layout_image(layout, Some(&spec.tag), spec.arch).map_err(|e| fail(e.to_string()))?;
            // A blob the base's layout lacks must be one it says where to read from.
            let missing = image.missing();
            if let Some(missing) = missing.iter().find(|d| !remote_blobs.contains_key(d)) {
                return Err(fail(format!(
                    "the base's layout `{}` lacks the layer blob {missing}, and its description names no registry to read it from",
                    layout.display()
                )));
            }
            remote_blobs.retain(|d, _| missing.contains(d));
            Some(image)
        } else {
            None
        };
        let mut layers: Vec<(LayerInfo, std::path::PathBuf)> = Vec::new();
        let (tars, metas) = (ctx.input_list("layers"), ctx.input_list("layer_metas"));
        if tars.len() != spec.layers || metas.len() != spec.layers {
            return Err(fail("internal error: a layer without its description".into()));
        }
        for (position, (tar, meta)) in tars.into_iter().zip(metas).enumerate() {
            let meta: LayerMeta = read_json(meta)?;
            // A layer with an `/etc/passwd` replaces the one below it in the union file
            // system: accounts below that it lacks would vanish from the image.
            if !meta.users.is_empty() {
                let hidden: Vec<&str> =
                    users.keys().filter(|u| !meta.users.contains_key(*u)).map(String::as_str).collect();
                if !hidden.is_empty() {
                    return Err(fail(format!(
                        "layer {} of `layers` has an `/etc/passwd` without {}, which the base or the layers below it have: the image would lose them\n  fix: set `base` on that layer to the image it goes on, so its accounts extend the base's",
                        position + 1,
                        hidden.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", ")
                    )));
                }
            }
            users.extend(meta.users.clone());
            packages.extend(meta.packages.clone());
            epoch = epoch.max(meta.epoch);
            if meta.os_release_id.is_some() {
                os_release_id = meta.os_release_id.clone();
            }
            if meta.parts.is_empty() {
                let info = LayerInfo {
                    diff_id: meta.diff_id,
                    digest: meta.digest,
                    size: meta.size,
                    created_by: meta.created_by.clone(),
                    comment: None,
                };
                layers.push((info, tar.to_owned()));
            } else {
                // A layered target: its directory's layers, bottom first.
                for part in &meta.parts {
                    let info = LayerInfo {
                        diff_id: part.diff_id,
                        digest: part.digest,
                        size: part.size,
                        created_by: part.created_by.clone(),
                        comment: None,
                    };
                    layers.push((info, tar.join(&part.file)));
                }
            }
        }
        // A pulled base's accounts are unknown to a shallow build.
        if pulled_base.is_none() {
            check_user(&spec.user, &users)?;
        }
        let epoch = spec.epoch.unwrap_or(epoch);
        let settings = ImageSettings {
            arch: spec.arch,
            entrypoint: spec.entrypoint.clone(),
            cmd: spec.cmd.clone(),
            env: spec.env.clone(),
            user: spec.user.clone(),
            workdir: spec.workdir.clone(),
            labels: spec.labels.clone(),
            annotations: spec.annotations.clone(),
            created: epoch,
        };
        let infos: Vec<LayerInfo> = layers.iter().map(|(i, _)| i.clone()).collect();
        let config =
            oci::image_config(base.as_ref().map(|b| &b.config), &settings, &infos).map_err(|e| fail(e.to_string()))?;
        let mut descriptors: Vec<LayerDescriptor> = base.as_ref().map(|b| b.layer_descriptors()).unwrap_or_default();
        descriptors.extend(infos.iter().map(LayerInfo::descriptor));
        // An image on a base says which (as ko does), unless the target says otherwise.
        let mut annotations = spec.annotations.clone();
        if let Some(digest) = &base_digest {
            annotations.entry(ANNOTATION_BASE_DIGEST.to_owned()).or_insert_with(|| digest.to_string());
            if let Some(name) = &spec.base_name {
                annotations.entry(ANNOTATION_BASE_NAME.to_owned()).or_insert_with(|| name.clone());
            }
        }
        let manifest = oci::image_manifest(config.digest, config.size(), &descriptors, &annotations)
            .map_err(|e| fail(e.to_string()))?;
        let mut blobs: Vec<(Digest, BlobSource<'_>)> = vec![(config.digest, BlobSource::Bytes(&config.bytes))];
        if let Some(b) = &base {
            blobs.extend(b.layer_blobs());
        }
        blobs.extend(layers.iter().map(|(i, p)| (i.digest, BlobSource::File(p))));
        let absent = remote_blobs.keys().copied().collect();
        oci::write_shallow_image_layout(&ctx.outputs[0], &manifest, spec.arch, blobs, &spec.tag, &absent)
            .map_err(|e| fail(e.to_string()))?;
        let sbom = match &spec.sbom_name {
            Some(image_name) => {
                let distro = spec.distro.clone().or_else(|| os_release_id.clone()).unwrap_or_else(|| "unknown".into());
                let input = SbomInput {
                    image_name: image_name.clone(),
                    arch: spec.arch,
                    manifest_digest: manifest.digest,
                    epoch,
                    distro_namespace: distro.clone(),
                    packages: packages.iter().map(SbomPackage::from).collect(),
                    base: pulled_base
                        .as_ref()
                        .map(|(repository, digest)| SbomBase { repository: repository.clone(), digest: *digest }),
                };
                let document = spdx_document(&input).map_err(|e| fail(e.to_string()))?;
                attach_sbom(&ctx.outputs[0], &spec.tag, spec.arch, &document, epoch)
                    .map_err(|e| fail(e.to_string()))?;
                std::fs::write(&ctx.outputs[2], &document.bytes)?;
                Some(SbomMeta { digest: document.digest, size: document.size(), distro })
            }
            None => None,
        };
        let meta = ImageMeta {
            arch: spec.arch,
            digest: manifest.digest,
            size: manifest.size(),
            config: config.digest,
            epoch,
            users,
            packages,
            os_release_id,
            sbom,
            remote_blobs,
            pulled_base,
        };
        std::fs::write(&ctx.outputs[1], serde_json::to_vec_pretty(&meta).map_err(|e| fail(e.to_string()))?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::check_user;
    use std::collections::BTreeMap;

    #[test]
    fn users_must_exist_unless_numeric() {
        let users = BTreeMap::from([("root".to_owned(), (0, 0)), ("nonroot".to_owned(), (65532, 65532))]);
        assert!(check_user("nonroot", &users).is_ok());
        assert!(check_user("65532:65532", &users).is_ok());
        assert!(check_user("", &users).is_ok());
        let err = check_user("nonrot", &users).expect_err("unknown").0;
        assert!(err.starts_with("user `nonrot` does not exist in the image, did you mean `nonroot`?"), "{err}");
    }
}

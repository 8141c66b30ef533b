//! `oci_index`: a multi-arch image index over per-platform `oci_image`s, written as an OCI
//! image layout directory whose `index.json` tags the index.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::action::{Action, ActionContext, ActionError, ActionExec, Artifact, Input, OutputKind, OutputSpec};
use crate::check_epoch;
use crate::digest::Digest;
use crate::label::Label;
use crate::oci::{self, BlobSource, IndexEntry};
use crate::oci_image::{read_json, ImageMeta, IMAGE_TAG};
use crate::platform::Arch;
use crate::rules::{output_path, AnalysisContext, AnalysisError, Provided, Rule};
use crate::sbom::attach_sboms;
use crate::target::{AttrSpec, AttrType, Target};
use crate::{ImageInfo, IndexInfo};

/// The `oci_index` rule.
pub struct OciIndex;

/// The attributes of an `oci_index` target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    /// One image per platform.
    pub images: Vec<Label>,
    /// Index annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The ref name in `index.json`.
    #[serde(default)]
    pub tag: Option<String>,
    /// `created`, unix seconds.
    #[serde(default)]
    pub epoch: Option<i64>,
}

/// What an index action reports (`<name>.index.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexMeta {
    /// The image index's digest: what a registry serves for the tag.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// The tag in `index.json`.
    pub tag: String,
    /// Per platform, the image's manifest digest.
    pub images: BTreeMap<String, Digest>,
    /// Per platform, the digest of the image's SPDX SBOM, where it has one.
    #[serde(default)]
    pub sboms: BTreeMap<String, Digest>,
    /// The layer blobs the layout lacks (shallow images), and the repository (`HOST/REPO`)
    /// each can be read from.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub remote_blobs: BTreeMap<Digest, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IndexSpec {
    archs: Vec<Arch>,
    annotations: BTreeMap<String, String>,
    tag: String,
    epoch: Option<u64>,
}

impl Rule for OciIndex {
    type Attrs = Attrs;
    const KIND: &'static str = "oci_index";
    const DOC: &'static str = "A multi-arch OCI image index over `images`, as an OCI image layout directory.";
    const ATTRS: &'static [AttrSpec] = &[
        AttrSpec {
            name: "images",
            ty: AttrType::LabelList,
            mandatory: true,
            doc: "`oci_image` targets, one per platform.",
        },
        AttrSpec { name: "annotations", ty: AttrType::StringDict, mandatory: false, doc: "Index annotations." },
        AttrSpec {
            name: "tag",
            ty: AttrType::String,
            mandatory: false,
            doc: "The `org.opencontainers.image.ref.name` of the index in `index.json` (default `latest`).",
        },
        AttrSpec {
            name: "epoch",
            ty: AttrType::Int,
            mandatory: false,
            doc: "`org.opencontainers.image.created`, unix seconds (default: the newest image's).",
        },
    ];
    fn check(&self, attrs: &Attrs) -> Result<(), String> {
        if attrs.images.is_empty() {
            return Err("attribute `images` of rule `oci_index` must not be empty".into());
        }
        check_epoch("oci_index", attrs.epoch)?;
        Ok(())
    }

    fn analyze(
        &self,
        target: &Target,
        attrs: &Attrs,
        ctx: &mut AnalysisContext<'_>,
    ) -> Result<Provided, AnalysisError> {
        let err = |m: String| AnalysisError(m);
        let (mut layouts, mut metas): (Vec<Artifact>, Vec<Artifact>) = (Vec::new(), Vec::new());
        let mut seen: BTreeMap<Arch, String> = BTreeMap::new();
        let mut archs = Vec::new();
        // `--platforms`: only those images (and so only their actions) make the index.
        let wanted = ctx.env.state.get::<crate::rules::BuildSettings>().and_then(|s| s.platforms.clone());
        let mut skipped = Vec::new();
        let mut blobs = BTreeMap::new();
        for label in &attrs.images {
            let image = ctx
                .provided(label)?
                .get::<ImageInfo>()
                .cloned()
                .ok_or_else(|| err(format!("attribute `images`: `{label}` is not an `oci_image` target")))?;
            if wanted.as_ref().is_some_and(|w| !w.contains(&image.arch.oci_platform())) {
                skipped.push(image.arch.oci_platform());
                continue;
            }
            if let Some(first) = seen.insert(image.arch, label.to_string()) {
                return Err(err(format!(
                    "attribute `images`: `{first}` and `{label}` are both for `{}`; an index holds one image per platform",
                    image.arch.oci_platform()
                )));
            }
            archs.push(image.arch);
            if !image.blobs.is_empty() {
                blobs.insert(image.arch, image.blobs.clone());
            }
            layouts.push(image.layout);
            metas.push(image.meta);
        }
        if archs.is_empty() {
            return Err(err(format!(
                "none of its platforms ({}) is in `--platforms` ({})\n  fix: name one of its platforms, or build it without `--platforms`",
                skipped.join(", "),
                wanted.unwrap_or_default().join(", ")
            )));
        }
        let tag = attrs.tag.clone().unwrap_or_else(|| "latest".to_owned());
        let spec = IndexSpec {
            archs: archs.clone(),
            annotations: crate::stamped(ctx.env, &attrs.annotations),
            tag,
            epoch: attrs.epoch.and_then(|e| u64::try_from(e).ok()),
        };
        let name = target.label.name.as_str();
        let path = |suffix: &str| output_path(&target.label, &format!("{name}{suffix}"));
        let mut inputs = Input::list("layouts", &layouts);
        inputs.extend(Input::list("metas", &metas));
        let outs = ctx.graph.add(Action {
            owner: target.label.clone(),
            inputs,
            outputs: vec![
                OutputSpec { path: path(""), kind: OutputKind::Dir },
                OutputSpec { path: path(".index.json"), kind: OutputKind::File { executable: false } },
            ],
            exec: Arc::new(IndexExec { spec }),
        });
        let index = IndexInfo { layout: outs[0].clone(), meta: outs[1].clone(), archs, blobs };
        Ok(Provided::files(outs).with(index))
    }
}

#[derive(Debug, Serialize)]
#[serde(transparent)]
struct IndexExec {
    spec: IndexSpec,
}

impl ActionExec for IndexExec {
    fn mnemonic(&self) -> &'static str {
        "OciIndex"
    }
    fn version(&self) -> u32 {
        3
    }
    fn run(&self, ctx: &ActionContext<'_>) -> Result<(), ActionError> {
        let fail = |m: String| ActionError(m);
        let mut entries = Vec::new();
        let mut images = Vec::new();
        let mut epoch = 0;
        let (layouts, metas) = (ctx.input_list("layouts"), ctx.input_list("metas"));
        if layouts.len() != self.spec.archs.len() || metas.len() != self.spec.archs.len() {
            return Err(fail("internal error: an image without its layout or description".into()));
        }
        for ((layout, meta), arch) in layouts.into_iter().zip(metas).zip(&self.spec.archs) {
            let meta: ImageMeta = read_json(meta)?;
            epoch = epoch.max(meta.epoch);
            let image = oci::read_layout_image(layout, Some(IMAGE_TAG), *arch).map_err(|e| fail(e.to_string()))?;
            let manifest_path = layout.join("blobs/sha256").join(image.manifest_digest.hex());
            let config_path = layout.join("blobs/sha256").join(meta.config.hex());
            entries.push(IndexEntry { arch: *arch, digest: meta.digest, size: meta.size });
            let sbom = match &meta.sbom {
                Some(sbom) => {
                    let path = layout.join("blobs/sha256").join(sbom.digest.hex());
                    let bytes = std::fs::read(&path)?;
                    let digest = Digest::of(&bytes);
                    if digest != sbom.digest {
                        return Err(fail(format!(
                            "the SBOM `{}` has sha256 {digest}, but its image says {}",
                            path.display(),
                            sbom.digest
                        )));
                    }
                    Some(oci::JsonBlob { bytes, digest })
                }
                None => None,
            };
            images.push((image, manifest_path, config_path, meta, sbom));
        }
        let created = self.spec.epoch.unwrap_or(epoch);
        let index = oci::image_index(&entries, created, &self.spec.annotations).map_err(|e| fail(e.to_string()))?;
        let mut blobs: Vec<(Digest, BlobSource<'_>)> = Vec::new();
        let mut remote_blobs = BTreeMap::new();
        for (image, manifest, config, meta, _) in &images {
            blobs.push((meta.digest, BlobSource::File(manifest)));
            blobs.push((meta.config, BlobSource::File(config)));
            blobs.extend(image.layer_blobs());
            for missing in image.missing() {
                let source = meta.remote_blobs.get(&missing).ok_or_else(|| {
                    fail(format!(
                        "the {} image lacks the layer blob {missing}, and its description names no registry to read it from",
                        meta.arch.oci_platform()
                    ))
                })?;
                remote_blobs.insert(missing, source.clone());
            }
        }
        let absent = remote_blobs.keys().copied().collect();
        oci::write_shallow_layout(&ctx.outputs[0], &index, blobs, &self.spec.tag, &absent)
            .map_err(|e| fail(e.to_string()))?;
        // Each image's SBOM, attached again in this layout: the same artifact manifests, now
        // listed under `<tag>.sbom`.
        let sboms: Vec<(Arch, &oci::JsonBlob, u64)> =
            images.iter().filter_map(|(_, _, _, meta, sbom)| Some((meta.arch, sbom.as_ref()?, meta.epoch))).collect();
        if !sboms.is_empty() {
            attach_sboms(&ctx.outputs[0], &self.spec.tag, &sboms).map_err(|e| fail(e.to_string()))?;
        }
        let meta = IndexMeta {
            digest: index.digest,
            size: index.size(),
            tag: self.spec.tag.clone(),
            images: images.iter().map(|(_, _, _, m, _)| (m.arch.oci_platform(), m.digest)).collect(),
            sboms: images
                .iter()
                .filter_map(|(_, _, _, m, _)| m.sbom.as_ref().map(|s| (m.arch.oci_platform(), s.digest)))
                .collect(),
            remote_blobs,
        };
        std::fs::write(&ctx.outputs[1], serde_json::to_vec_pretty(&meta).map_err(|e| fail(e.to_string()))?)?;
        Ok(())
    }
}

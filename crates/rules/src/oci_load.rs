//! `oci_load`: one platform's image as a docker-archive tarball (`<name>.tar`), for
//! `docker load`, `podman load` and `skopeo copy docker-archive:...`, tagged `repo_tags`.
//! See [`crate::docker_archive`] for the format.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::action::{Action, ActionContext, ActionError, ActionExec, Input, OutputKind, OutputSpec};
use crate::docker_archive::{valid_repo_tag, write_docker_archive};
use crate::label::Label;
use crate::oci_image::IMAGE_TAG;
use crate::oci_index::IndexMeta;
use crate::platform::Arch;
use crate::rules::{output_path, AnalysisContext, AnalysisError, Provided, Rule};
use crate::target::{AttrSpec, AttrType, Target};
use crate::{ImageInfo, IndexInfo};

/// The `oci_load` rule.
pub struct OciLoad;

/// The attributes of an `oci_load` target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    /// An `oci_image` or `oci_index`.
    pub image: Label,
    /// Which image of an index.
    #[serde(default)]
    pub platform: Option<String>,
    /// `name:tag` references.
    #[serde(default)]
    pub repo_tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LoadSpec {
    arch: Arch,
    /// Whether the input is an index (its tag is read from its description).
    from_index: bool,
    repo_tags: Vec<String>,
}

impl Rule for OciLoad {
    type Attrs = Attrs;
    const KIND: &'static str = "oci_load";
    const DOC: &'static str = "One platform's image as a docker-archive tarball for `docker load` / `podman load`.";
    const ATTRS: &'static [AttrSpec] = &[
        AttrSpec {
            name: "image",
            ty: AttrType::Label,
            mandatory: true,
            doc: "An `oci_image`, or an `oci_index` together with `platform`.",
        },
        AttrSpec {
            name: "platform",
            ty: AttrType::String,
            mandatory: false,
            doc: "Which image of an `oci_index` (`linux/amd64`, `linux/arm/v7` or an APK arch like `x86_64`).",
        },
        AttrSpec {
            name: "repo_tags",
            ty: AttrType::StringList,
            mandatory: false,
            doc: "`name:tag` references the loaded image gets (`example.com/team/app:1.0`); none: untagged.",
        },
    ];
    fn check(&self, attrs: &Attrs) -> Result<(), String> {
        if let Some(p) = &attrs.platform {
            Arch::parse(p).map_err(|e| format!("attribute `platform` of rule `oci_load`: {e}"))?;
        }
        for tag in &attrs.repo_tags {
            if !valid_repo_tag(tag) {
                return Err(format!(
                    "attribute `repo_tags` of rule `oci_load`: `{tag}` is not `name:tag` like `example.com/team/app:1.0` (lowercase name, and a tag)"
                ));
            }
        }
        Ok(())
    }

    fn analyze(
        &self,
        target: &Target,
        attrs: &Attrs,
        ctx: &mut AnalysisContext<'_>,
    ) -> Result<Provided, AnalysisError> {
        let err = |m: String| AnalysisError(m);
        let label = &attrs.image;
        let platform = match &attrs.platform {
            Some(p) => Some(Arch::parse(p).map_err(|e| err(e.to_string()))?),
            None => None,
        };
        let provided = ctx.provided(label)?;
        let (inputs, arch, from_index) = match (provided.get::<ImageInfo>(), provided.get::<IndexInfo>()) {
            (Some(image), _) => {
                if let Some(p) = platform.filter(|p| *p != image.arch) {
                    return Err(err(format!(
                        "attribute `platform`: `{label}` is the `{}` image, not `{}`",
                        image.arch.oci_platform(),
                        p.oci_platform()
                    )));
                }
                let mut inputs =
                    vec![Input::new("layout", image.layout.clone()), Input::new("meta", image.meta.clone())];
                // A docker-archive holds every layer: a shallow image's are fetched for it.
                inputs.extend(Input::list("blobs", &image.blobs));
                (inputs, image.arch, false)
            }
            (None, Some(index)) => {
                let Some(arch) = platform else {
                    return Err(err(format!(
                        "`{label}` is a multi-platform `oci_index`: set `platform` (like `linux/amd64`) to the image to export"
                    )));
                };
                if !index.archs.contains(&arch) {
                    let have: Vec<String> = index.archs.iter().map(|a| format!("`{}`", a.oci_platform())).collect();
                    return Err(err(format!(
                        "attribute `platform`: `{label}` has no `{}` image (it has {})",
                        arch.oci_platform(),
                        have.join(", ")
                    )));
                }
                let mut inputs =
                    vec![Input::new("layout", index.layout.clone()), Input::new("meta", index.meta.clone())];
                inputs.extend(Input::list("blobs", index.blobs.get(&arch).map_or(&[][..], Vec::as_slice)));
                (inputs, arch, true)
            }
            (None, None) => {
                return Err(err(format!("attribute `image`: `{label}` is not an `oci_image` or `oci_index` target")))
            }
        };
        let spec = LoadSpec { arch, from_index, repo_tags: attrs.repo_tags.clone() };
        let name = target.label.name.as_str();
        let out = output_path(&target.label, &format!("{name}.tar"));
        let outs = ctx.graph.add(Action {
            owner: target.label.clone(),
            inputs,
            outputs: vec![OutputSpec { path: out, kind: OutputKind::File { executable: false } }],
            exec: Arc::new(LoadExec { spec }),
        });
        Ok(Provided::files(outs))
    }
}

#[derive(Debug, Serialize)]
#[serde(transparent)]
struct LoadExec {
    spec: LoadSpec,
}

impl ActionExec for LoadExec {
    fn mnemonic(&self) -> &'static str {
        "OciLoad"
    }
    fn version(&self) -> u32 {
        1
    }
    fn run(&self, ctx: &ActionContext<'_>) -> Result<(), ActionError> {
        let (layout, meta) = (ctx.input("layout")?, ctx.input("meta")?);
        let tag = if self.spec.from_index {
            let meta: IndexMeta = crate::oci_image::read_json(meta)?;
            if !meta.images.contains_key(&self.spec.arch.oci_platform()) {
                let have: Vec<&str> = meta.images.keys().map(String::as_str).collect();
                return Err(ActionError(format!(
                    "the index has no `{}` image (it has: {})",
                    self.spec.arch.oci_platform(),
                    have.join(", ")
                )));
            }
            meta.tag
        } else {
            IMAGE_TAG.to_owned()
        };
        let blob_dirs = ctx.input_list("blobs");
        write_docker_archive(layout, Some(&tag), self.spec.arch, &self.spec.repo_tags, &blob_dirs, &ctx.outputs[0])
            .map_err(|e| ActionError(e.to_string()))?;
        Ok(())
    }
}

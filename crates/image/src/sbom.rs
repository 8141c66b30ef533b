//! Software bills of materials: one SPDX 2.3 JSON document per platform image, listing
//! every installed APK package, and its attachment to the image as an OCI 1.1 artifact.
//!
//! Vocabulary:
//! - **SBOM**: the SPDX document of one platform's image ([`spdx_document`]).
//! - **SBOM artifact**: the image manifest (`artifactType: application/spdx+json`) whose
//!   one layer is the SBOM and whose `subject` is the image's manifest
//!   ([`sbom_artifact_manifest`], [`attach_sbom`]).
//!
//! Decisions:
//! - **Deterministic**: `creationInfo.created` is the image's epoch; `documentNamespace` is
//!   `https://executor.invalid/spdx/<image>/<arch>/<manifest hex>` (`.invalid` is a
//!   reserved TLD: the namespace is a unique name, not a location); packages are sorted
//!   and exact duplicates (a package in a base image and a layer) listed once; SPDX ids are
//!   built from names, with a hash suffix only where two names sanitize to the same id.
//!   The document is [`canonical_json`](crate::oci::canonical_json).
//! - **Every installed package is listed** (apko drops packages that ship no SBOM of
//!   their own), with a `pkg:apk/<distro>/<name>@<version>?arch=<arch>` purl.
//! - **Checksums claim only what they are**: the `.apk` file's SHA256 when the caller has
//!   it (the lockfile pins it); the `Q1` identity is SHA-1 of the control member, not of
//!   the file, so it goes to the package `comment`, never to `checksums`.
//! - **Supplier** is the APK maintainer (`Person: Name (email)`); the originator (upstream
//!   author) is never in APK metadata, so it is `NOASSERTION`.
//! - **Download location** is the `.apk` URL (`<repository>/<arch>/<name>-<version>.apk`)
//!   when the repository is an `http(s)`/`ftp` URL; a local repository gives
//!   `NOASSERTION`.
//! - **Licenses**: module `license` maps APK `L:` text; what is not SPDX becomes a
//!   `LicenseRef-` with the text in `hasExtractedLicensingInfos`.
//! - **Purpose**: `CONTAINER` for the image, `OPERATING-SYSTEM` for a package that ships
//!   `os-release` (it defines the distribution), `LIBRARY` for the others.
//! - **Relationships**: the document `DESCRIBES` the image, the image `CONTAINS` each
//!   package, and a package `DEPENDS_ON` every listed package whose name or provides
//!   matches one of its `depends` (conflicts `!x` ignored).

mod artifact;
mod error;
mod license;
mod spdx;

use std::collections::{BTreeMap, BTreeSet};

use crate::apk::{Dependency, Provide};
use crate::digest::Digest;
use crate::install::InstalledSummary;
use crate::oci::{rfc3339_utc, JsonBlob};
use crate::platform::Arch;
use crate::sbom::license::Declared;

pub use crate::sbom::artifact::{
    attach_sbom, attach_sboms, sbom_artifact_manifest, sbom_ref_name, AttachedSbom, EMPTY_JSON, EMPTY_JSON_MEDIA_TYPE,
};
pub use crate::sbom::error::SbomError;
/// The SPDX license and exception identifiers the SBOM knows (for validators in tests).
pub use crate::sbom::license::{EXCEPTIONS, LICENSES};

/// The media type of an SPDX JSON document (the artifact type and layer media type).
pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";

/// `NOASSERTION`: SPDX for "not known".
const NOASSERTION: &str = "NOASSERTION";

/// What an SBOM is made from: one platform image and its installed packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomInput {
    /// The image's name: `static`, or a repository like `ghcr.io/acme/static` (its last
    /// component becomes the purl name, the whole the purl's `repository_url`).
    pub image_name: String,
    /// The image's platform.
    pub arch: Arch,
    /// The image manifest's digest: the image's identity.
    pub manifest_digest: Digest,
    /// The image's `created`, unix seconds.
    pub epoch: u64,
    /// The purl namespace of the packages: `alpine`, `wolfi`, `executor`.
    pub distro_namespace: String,
    /// The installed packages, in any order (base image first, as `ImageMeta` has them).
    pub packages: Vec<SbomPackage>,
    /// A base image whose packages are not listed (pulled, its layers never read): the
    /// document names it, and the image is its `DESCENDANT_OF`.
    pub base: Option<SbomBase>,
}

/// A base image an SBOM names by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomBase {
    /// Where it was pulled from: `HOST/REPOSITORY`.
    pub repository: String,
    /// Its manifest's digest (this platform's).
    pub digest: Digest,
}

/// One installed APK package, as an SBOM lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SbomPackage {
    pub name: String,
    pub version: String,
    /// The package's `arch` (`noarch` stays `noarch`).
    pub arch: String,
    /// `Q1...`: SHA-1 of the control member (apk's `C:`).
    pub identity: Option<String>,
    /// sha256 of the `.apk` file, when known (the lockfile pins it).
    pub sha256: Option<Digest>,
    /// `L:`, free text.
    pub license: Option<String>,
    pub origin: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
    pub commit: Option<String>,
    /// `Name <email>`.
    pub maintainer: Option<String>,
    /// Unix seconds.
    pub build_date: Option<u64>,
    /// The repository URL or tag the package came from.
    pub repository: String,
    /// Dependency atoms (`so:libc.musl-x86_64.so.1`, `busybox>=1.35`, `!x`).
    pub depends: Vec<String>,
    /// Provides atoms (`cmd:sh=1.36.1-r0`).
    pub provides: Vec<String>,
    /// Whether the package ships `etc/os-release` or `usr/lib/os-release`.
    pub os_release: bool,
}

impl From<&InstalledSummary> for SbomPackage {
    fn from(s: &InstalledSummary) -> Self {
        SbomPackage {
            name: s.name.clone(),
            version: s.version.clone(),
            arch: s.arch.clone(),
            identity: s.identity.clone(),
            sha256: s.sha256,
            license: s.license.clone(),
            origin: s.origin.clone(),
            description: s.description.clone(),
            url: s.url.clone(),
            commit: s.commit.clone(),
            maintainer: s.maintainer.clone(),
            build_date: s.build_date,
            repository: s.repository.clone(),
            depends: s.depends.clone(),
            provides: s.provides.clone(),
            os_release: s.files.iter().any(|f| f == "etc/os-release" || f == "usr/lib/os-release"),
        }
    }
}

/// Builds the SPDX 2.3 JSON document of `input`'s image.
pub fn spdx_document(input: &SbomInput) -> Result<JsonBlob, SbomError> {
    let (purl_name, _) = image_purl_parts(&input.image_name)?;
    if !valid_namespace(&input.distro_namespace) {
        return Err(SbomError::InvalidNamespace { namespace: input.distro_namespace.clone() });
    }
    let created = rfc3339_utc(input.epoch)?;
    let hex = input.manifest_digest.hex();

    let mut packages = input.packages.clone();
    packages.sort();
    packages.dedup();
    let ids = package_ids(&packages);

    let declared: Vec<Declared> = packages.iter().map(|p| license::declared(p.license.as_deref())).collect();
    let license_refs = license_ref_ids(&declared);

    let image_id = format!("SPDXRef-Image-{}", idstring(&purl_name));
    let mut spdx_packages = vec![container_package(
        &input.image_name,
        &image_id,
        input.manifest_digest,
        input.arch,
        format!("OCI image for {}", input.arch.oci_platform()),
        Some(created.clone()),
    )?];
    for ((p, id), declared) in packages.iter().zip(&ids).zip(&declared) {
        spdx_packages.push(apk_package(p, id, declared, &license_refs, input)?);
    }
    let base_id = "SPDXRef-BaseImage".to_owned();
    if let Some(base) = &input.base {
        spdx_packages.push(container_package(
            &base.repository,
            &base_id,
            base.digest,
            input.arch,
            "the base image, pulled by digest; its packages are in its own SBOM".to_owned(),
            None,
        )?);
    }

    let mut relationships = vec![spdx::Relationship {
        spdx_element_id: "SPDXRef-DOCUMENT".to_owned(),
        relationship_type: "DESCRIBES",
        related_spdx_element: image_id.clone(),
    }];
    let mut contained: Vec<&String> = ids.iter().collect();
    contained.sort();
    for id in contained {
        relationships.push(spdx::Relationship {
            spdx_element_id: image_id.clone(),
            relationship_type: "CONTAINS",
            related_spdx_element: id.clone(),
        });
    }
    if input.base.is_some() {
        relationships.push(spdx::Relationship {
            spdx_element_id: image_id.clone(),
            relationship_type: "DESCENDANT_OF",
            related_spdx_element: base_id,
        });
    }
    for (from, to) in depends_on(&packages, &ids) {
        relationships.push(spdx::Relationship {
            spdx_element_id: from,
            relationship_type: "DEPENDS_ON",
            related_spdx_element: to,
        });
    }

    let mut extracted: Vec<spdx::ExtractedLicense> = license_refs
        .iter()
        .map(|(text, id)| spdx::ExtractedLicense {
            license_id: id.clone(),
            extracted_text: text.clone(),
            name: text.clone(),
            comment: "the APK package's license field (L:) verbatim; not an SPDX license expression",
        })
        .collect();
    extracted.sort_by(|a, b| a.license_id.cmp(&b.license_id));

    let document = spdx::Document {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: "SPDXRef-DOCUMENT",
        name: format!("{} {}", input.image_name, input.arch.oci_platform()),
        document_namespace: format!(
            "https://executor.invalid/spdx/{}/{}/{hex}",
            idstring(&input.image_name),
            input.arch.apk()
        ),
        creation_info: spdx::CreationInfo {
            created,
            creators: vec![format!("Tool: executor-{}", env!("CARGO_PKG_VERSION"))],
            license_list_version: "3.21",
        },
        packages: spdx_packages,
        relationships,
        has_extracted_licensing_infos: extracted,
    };
    JsonBlob::of(&document).map_err(SbomError::serialize("SPDX document"))
}

/// The SPDX package of an OCI image `name` (`static` or `HOST/REPO`) by its manifest
/// digest, with its `pkg:oci` purl for `arch`.
fn container_package(
    name: &str,
    spdx_id: &str,
    digest: Digest,
    arch: Arch,
    description: String,
    built_date: Option<String>,
) -> Result<spdx::Package, SbomError> {
    let (purl_name, repository_url) = image_purl_parts(name)?;
    let mut purl =
        format!("pkg:oci/{}@sha256%3A{}?arch={}", percent(&purl_name), digest.hex(), arch.oci_architecture());
    if let Some(url) = &repository_url {
        purl.push_str(&format!("&repository_url={}", percent(url)));
    }
    Ok(spdx::Package {
        name: name.to_owned(),
        spdx_id: spdx_id.to_owned(),
        version_info: digest.to_string(),
        supplier: NOASSERTION.to_owned(),
        originator: NOASSERTION.to_owned(),
        download_location: NOASSERTION.to_owned(),
        files_analyzed: false,
        license_concluded: NOASSERTION.to_owned(),
        license_declared: NOASSERTION.to_owned(),
        copyright_text: NOASSERTION.to_owned(),
        checksums: vec![spdx::Checksum { algorithm: "SHA256", checksum_value: digest.hex() }],
        external_refs: vec![purl_ref(purl)],
        primary_package_purpose: "CONTAINER",
        description: Some(description),
        homepage: None,
        source_info: None,
        built_date,
        comment: None,
    })
}

fn apk_package(
    p: &SbomPackage,
    id: &str,
    declared: &Declared,
    license_refs: &BTreeMap<String, String>,
    input: &SbomInput,
) -> Result<spdx::Package, SbomError> {
    let license_declared = match declared {
        Declared::NoAssertion => NOASSERTION.to_owned(),
        Declared::Expression(e) => e.clone(),
        Declared::Other(text) => license_refs.get(text).cloned().unwrap_or_else(|| NOASSERTION.to_owned()),
    };
    let mut purl = format!(
        "pkg:apk/{}/{}@{}?arch={}",
        input.distro_namespace,
        percent(&p.name),
        percent(&p.version),
        percent(&p.arch)
    );
    if let Some(origin) = p.origin.as_ref().filter(|o| **o != p.name) {
        purl.push_str(&format!("&upstream={}", percent(origin)));
    }
    let source_info = match (&p.origin, &p.commit) {
        (Some(origin), Some(commit)) => Some(format!("built from origin `{origin}` at commit {commit}")),
        (Some(origin), None) => Some(format!("built from origin `{origin}`")),
        (None, Some(commit)) => Some(format!("built at commit {commit}")),
        (None, None) => None,
    };
    let built_date = match p.build_date {
        Some(seconds) => Some(rfc3339_utc(seconds)?),
        None => None,
    };
    Ok(spdx::Package {
        name: p.name.clone(),
        spdx_id: id.to_owned(),
        version_info: p.version.clone(),
        supplier: p.maintainer.as_deref().and_then(person).unwrap_or_else(|| NOASSERTION.to_owned()),
        originator: NOASSERTION.to_owned(),
        download_location: download_location(p, input.arch),
        files_analyzed: false,
        license_concluded: NOASSERTION.to_owned(),
        license_declared,
        copyright_text: NOASSERTION.to_owned(),
        checksums: p.sha256.iter().map(|d| spdx::Checksum { algorithm: "SHA256", checksum_value: d.hex() }).collect(),
        external_refs: vec![purl_ref(purl)],
        primary_package_purpose: if p.os_release { "OPERATING-SYSTEM" } else { "LIBRARY" },
        description: p.description.clone().filter(|d| !d.trim().is_empty()),
        homepage: p.url.clone().filter(|u| is_remote_url(u)),
        source_info,
        built_date,
        comment: p
            .identity
            .as_ref()
            .map(|q| format!("apk identity (C:) {q}: SHA-1 of the package's control member, not of the .apk file")),
    })
}

fn purl_ref(locator: String) -> spdx::ExternalRef {
    spdx::ExternalRef { reference_category: "PACKAGE-MANAGER", reference_type: "purl", reference_locator: locator }
}

/// One SPDX id per package (packages sorted and deduplicated): `SPDXRef-Package-apk-`
/// + name + `-` + version, sanitized; where two packages would share an id, each gets a
///   suffix of the sha256 of its name, version, arch and identity.
fn package_ids(packages: &[SbomPackage]) -> Vec<String> {
    let base: Vec<String> = packages
        .iter()
        .map(|p| format!("SPDXRef-Package-apk-{}-{}", idstring(&p.name), idstring(&p.version)))
        .collect();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &base {
        *count.entry(id).or_default() += 1;
    }
    packages
        .iter()
        .zip(&base)
        .map(|(p, id)| {
            if count.get(id.as_str()).copied().unwrap_or(0) > 1 {
                let key = format!(
                    "{}\0{}\0{}\0{}\0{}",
                    p.name,
                    p.version,
                    p.arch,
                    p.identity.as_deref().unwrap_or(""),
                    p.sha256.map(|d| d.hex()).unwrap_or_default()
                );
                format!("{id}-{}", &Digest::of(key.as_bytes()).hex()[..12])
            } else {
                id.clone()
            }
        })
        .collect()
}

/// `LicenseRef-` ids for the non-SPDX license texts: text -> id. A sanitized text shared
/// by several texts gets a hash suffix on each, so the choice does not depend on order.
fn license_ref_ids(declared: &[Declared]) -> BTreeMap<String, String> {
    let texts: BTreeSet<&str> = declared
        .iter()
        .filter_map(|d| match d {
            Declared::Other(text) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let mut by_id: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for text in &texts {
        by_id.entry(format!("LicenseRef-{}", idstring(text))).or_default().push(text);
    }
    let mut out = BTreeMap::new();
    for (id, texts) in by_id {
        for text in &texts {
            let id =
                if texts.len() > 1 { format!("{id}-{}", &Digest::of(text.as_bytes()).hex()[..12]) } else { id.clone() };
            out.insert((*text).to_owned(), id);
        }
    }
    out
}

/// `DEPENDS_ON` pairs (from id, to id), sorted, without self-dependencies.
fn depends_on(packages: &[SbomPackage], ids: &[String]) -> BTreeSet<(String, String)> {
    // Name or provided name -> ids of the packages answering to it.
    let mut providers: BTreeMap<String, BTreeSet<&String>> = BTreeMap::new();
    for (p, id) in packages.iter().zip(ids) {
        providers.entry(p.name.clone()).or_default().insert(id);
        for provide in &p.provides {
            if let Ok(provide) = Provide::parse(provide) {
                providers.entry(provide.name.as_str().to_owned()).or_default().insert(id);
            }
        }
    }
    let mut pairs = BTreeSet::new();
    for (p, id) in packages.iter().zip(ids) {
        for atom in &p.depends {
            let Ok(dep) = Dependency::parse(atom) else { continue };
            if dep.conflict {
                continue;
            }
            for to in providers.get(dep.name.as_str()).into_iter().flatten() {
                if *to != id {
                    pairs.insert((id.clone(), (*to).clone()));
                }
            }
        }
    }
    pairs
}

/// `Name <email>` -> `Person: Name (email)`; a bare name -> `Person: Name`.
fn person(maintainer: &str) -> Option<String> {
    let text = maintainer.trim();
    // melange writes `unknown` when no maintainer is configured.
    if text.is_empty() || text.eq_ignore_ascii_case("unknown") {
        return None;
    }
    let clean = |s: &str| s.replace(['(', ')', '\n', '\r'], " ").trim().to_owned();
    Some(match text.strip_suffix('>').and_then(|t| t.rsplit_once('<')) {
        Some((name, email)) if !email.trim().is_empty() => format!("Person: {} ({})", clean(name), clean(email)),
        _ => format!("Person: {}", clean(text)),
    })
}

fn download_location(p: &SbomPackage, arch: Arch) -> String {
    if !is_remote_url(&p.repository) {
        return NOASSERTION.to_owned();
    }
    format!("{}/{}/{}-{}.apk", p.repository.trim_end_matches('/'), arch.apk(), p.name, p.version)
}

/// Whether `text` is an `http(s)` or `ftp` URL with a host and no whitespace.
fn is_remote_url(text: &str) -> bool {
    ["https://", "http://", "ftp://"]
        .iter()
        .any(|scheme| text.strip_prefix(scheme).is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/')))
        && !text.contains(char::is_whitespace)
        && !text.contains('#')
}

/// The purl name (last component, lower case) and `repository_url` (the whole name, when
/// it has several components) of an image name.
fn image_purl_parts(name: &str) -> Result<(String, Option<String>), SbomError> {
    let ok = !name.is_empty()
        && name.split('/').all(|c| !c.is_empty())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/:".contains(&b));
    let invalid = || SbomError::InvalidImageName { name: name.to_owned() };
    if !ok {
        return Err(invalid());
    }
    let last = name.rsplit('/').next().ok_or_else(invalid)?;
    // A tag or port in the last component is not part of the purl name.
    let last = last.split(':').next().filter(|l| !l.is_empty()).ok_or_else(invalid)?;
    let repository = name.contains('/').then(|| name.to_ascii_lowercase());
    Ok((last.to_ascii_lowercase(), repository))
}

/// A purl namespace: lowercase letters, digits, `.` and `-`.
pub fn valid_namespace(namespace: &str) -> bool {
    !namespace.is_empty()
        && namespace.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b))
}

/// `text` as an SPDX `idstring` (`[A-Za-z0-9.-]+`): other characters become `-`, runs of
/// `-` collapse, and an empty result is `x`.
pub(crate) fn idstring(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() {
        "x".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (purl components).
fn percent(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

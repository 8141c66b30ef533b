//! The SPDX 2.3 JSON document, as serde types: only the fields this module writes.
//!
//! Field names follow the SPDX 2.3 JSON schema (`spdx-schema.json`). Optional fields are
//! omitted when `None`, never written as `null`.

use serde::Serialize;

/// The document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Document {
    /// Always `SPDX-2.3`.
    pub spdx_version: &'static str,
    /// Always `CC0-1.0` (required by the specification).
    pub data_license: &'static str,
    #[serde(rename = "SPDXID")]
    pub spdx_id: &'static str,
    pub name: String,
    pub document_namespace: String,
    pub creation_info: CreationInfo,
    pub packages: Vec<Package>,
    pub relationships: Vec<Relationship>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub has_extracted_licensing_infos: Vec<ExtractedLicense>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreationInfo {
    /// RFC 3339 UTC, the build epoch.
    pub created: String,
    /// `Tool: executor-<version>`.
    pub creators: Vec<String>,
    pub license_list_version: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Package {
    pub name: String,
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    pub version_info: String,
    pub supplier: String,
    pub originator: String,
    pub download_location: String,
    pub files_analyzed: bool,
    pub license_concluded: String,
    pub license_declared: String,
    pub copyright_text: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checksums: Vec<Checksum>,
    pub external_refs: Vec<ExternalRef>,
    pub primary_package_purpose: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub built_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Checksum {
    /// `SHA256`, `SHA1`, ...
    pub algorithm: &'static str,
    /// Lowercase hex.
    pub checksum_value: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExternalRef {
    /// `PACKAGE-MANAGER` for purls.
    pub reference_category: &'static str,
    /// `purl`.
    pub reference_type: &'static str,
    pub reference_locator: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Relationship {
    pub spdx_element_id: String,
    pub relationship_type: &'static str,
    pub related_spdx_element: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExtractedLicense {
    /// `LicenseRef-...`.
    pub license_id: String,
    /// The APK `L:` text, verbatim.
    pub extracted_text: String,
    pub name: String,
    pub comment: &'static str,
}

//! Reading what a registry's tag names: the digest of the manifest or index it serves,
//! for checking a release against a rebuild.

use crate::digest::Digest;
use crate::registry::auth::Credentials;
use crate::registry::client::Client;
use crate::registry::error::RegistryError;
use crate::registry::push::{check_digest_header, PushOptions, MANIFEST_ACCEPT};
use crate::registry::reference::Reference;

/// The digest of what `target`'s first tag names, computed over the bytes served (a
/// `Docker-Content-Digest` that disagrees is an error). Asks only for pull access.
pub fn resolve_digest(
    target: &Reference,
    opts: &PushOptions,
    creds: Option<Credentials>,
) -> Result<Digest, RegistryError> {
    let tag = target.tags.first().map(String::as_str).unwrap_or("latest");
    let client = Client::new(target, opts, creds).pull_only();
    let url = client.repo_url(&format!("/manifests/{tag}"));
    client.with_retries(|| {
        let resp = client.request("GET", &url, &[("Accept", MANIFEST_ACCEPT)], None)?;
        match resp.status {
            200 => {
                let digest = Digest::of(&resp.body);
                check_digest_header(&resp, "GET", &url, digest)?;
                Ok(digest)
            }
            404 => Err(RegistryError::NotFound {
                host: target.host.clone(),
                method: "GET",
                url: url.clone(),
                registry_says: String::new(),
                hint: format!("`{}/{}` has no tag `{tag}`", target.host, target.repository),
            }),
            _ => Err(client.fail("GET", &url, &resp)),
        }
    })
}

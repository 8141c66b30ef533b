//! The one error type of the `registry` module.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::digest::Digest;
use crate::oci::OciError;
use crate::registry::reference::ReferenceError;

/// Everything that can go wrong pushing to a registry. Messages are lowercase, name the
/// host, repository, URL or file involved, and never contain a password or token (URLs
/// built here carry none; credentials are [`Secret`](crate::registry::Secret)s).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The push target does not parse.
    #[error(transparent)]
    Reference(#[from] ReferenceError),

    /// `$REGISTRY_AUTH_FILE` names a file that does not exist.
    #[error("auth file `{}` (from `$REGISTRY_AUTH_FILE`) does not exist", path.display())]
    AuthFileMissing {
        /// The file.
        path: PathBuf,
    },

    /// The auth file cannot be read.
    #[error("cannot read auth file `{}`: {source}", path.display())]
    AuthFileRead {
        /// The file.
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The auth file is not a docker-style `config.json`.
    #[error("invalid auth file `{}`: {detail}", path.display())]
    AuthFileInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (never the secret itself).
        detail: String,
    },

    /// The layout could not be read, or a blob in it is not what its descriptor says.
    #[error(transparent)]
    Layout(#[from] OciError),

    /// A layout blob's bytes changed between being checked and being uploaded.
    #[error(
        "blob `{}` changed while it was being pushed: expected {expected}, got {actual}; \
         nothing was committed for it",
        path.display()
    )]
    BlobChanged {
        /// The blob file.
        path: PathBuf,
        /// The digest it is named by.
        expected: Digest,
        /// The digest of the bytes read.
        actual: Digest,
    },

    /// The registry rejected the credentials.
    #[error("authentication failed for `{host}`: check the credentials in {source_name}")]
    AuthFailed {
        /// The registry host.
        host: String,
        /// Where the credentials came from (an auth file's path in backticks).
        source_name: String,
    },

    /// A credential helper named by the auth file cannot give the credentials.
    #[error("`{}` names the credential helper `{helper}` for `{host}`, but {detail}", file.display())]
    CredentialHelper {
        /// The auth file naming the helper.
        file: PathBuf,
        /// `docker-credential-<name>`.
        helper: String,
        /// The registry host.
        host: String,
        /// What went wrong, and the fix.
        detail: String,
    },

    /// The registry wants credentials and there are none for it.
    #[error(
        "`{host}` requires authentication and there are no credentials for it{searched}; add \
         `auths.\"{host}\"` to the auth file (`$REGISTRY_AUTH_FILE` or `~/.docker/config.json`)"
    )]
    AuthRequired {
        /// The registry host.
        host: String,
        /// ` in `<file>`` when an auth file was consulted.
        searched: String,
    },

    /// A `WWW-Authenticate` header that cannot be followed.
    #[error("cannot authenticate to `{host}`: {detail}")]
    Challenge {
        /// The registry host.
        host: String,
        /// The parse failure, quoting the header.
        detail: String,
    },

    /// The token endpoint's answer is not a token.
    #[error("invalid token response from `{realm}`: {detail}")]
    Token {
        /// The token endpoint (no query, so no credentials).
        realm: String,
        /// What is wrong.
        detail: String,
    },

    /// 403: authenticated, but not allowed.
    #[error("access denied (http 403) to `{name}` for {method} `{url}`{registry_says}: {hint}")]
    Denied {
        /// `host/repository`.
        name: String,
        /// The request method.
        method: &'static str,
        /// The URL.
        url: String,
        /// `: CODE: message` from the registry's error body, if any.
        registry_says: String,
        /// The fix.
        hint: String,
    },

    /// 404 on something that should exist (the registry, the repository, an upload).
    #[error("not found (http 404) on `{host}` for {method} `{url}`{registry_says}: {hint}")]
    NotFound {
        /// The registry host.
        host: String,
        /// The request method.
        method: &'static str,
        /// The URL.
        url: String,
        /// `: CODE: message` from the registry's error body, if any.
        registry_says: String,
        /// The fix.
        hint: String,
    },

    /// Any other unexpected status.
    #[error("http {status}{} for {method} `{url}`{registry_says}: {}", reason_suffix(*status), status_hint(*status))]
    Status {
        /// The request method.
        method: &'static str,
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// `: CODE: message` from the registry's error body, if any.
        registry_says: String,
    },

    /// No progress within the configured timeout.
    #[error(
        "timed out {during} `{url}` ({method}) after {limit:?} without progress; a slow registry may need a \
         longer `--fetch-timeout SECONDS`"
    )]
    Timeout {
        /// The request method.
        method: &'static str,
        /// The URL.
        url: String,
        /// `connecting to` or `waiting for`.
        during: &'static str,
        /// The timeout.
        limit: Duration,
    },

    /// Connecting failed or the connection broke.
    #[error("{method} `{url}` failed: {detail}; check the host and that the registry is up")]
    Request {
        /// The request method.
        method: &'static str,
        /// The URL.
        url: String,
        /// The failure.
        detail: String,
        /// Whether another attempt may succeed.
        transient: bool,
    },

    /// A response body shorter than its `Content-Length`.
    #[error("truncated response to {method} `{url}`: expected {expected} bytes, got {received}")]
    Truncated {
        /// The request method.
        method: &'static str,
        /// The URL.
        url: String,
        /// The announced length.
        expected: u64,
        /// The bytes received.
        received: u64,
    },

    /// The registry named a different digest than the bytes sent.
    #[error(
        "the registry answered {method} `{url}` with digest `{got}`, expected `{expected}`: the registry (or a \
         proxy in between) does not hold the bytes that were sent; nothing was tagged"
    )]
    WrongDigest {
        /// The request method.
        method: &'static str,
        /// The URL.
        url: String,
        /// The digest of what was sent.
        expected: Digest,
        /// The `Docker-Content-Digest` header's value.
        got: String,
    },

    /// An artifact attached to the image in the layout cannot be pushed as its referrer.
    #[error("cannot push the SBOMs of `{}`: {detail}", dir.display())]
    BadReferrer {
        /// The layout.
        dir: PathBuf,
        /// What is wrong.
        detail: String,
    },

    /// The registry broke the upload protocol (no `Location`, a wrong `Range`, ...).
    #[error("unexpected answer to {method} `{url}`: {detail}")]
    Protocol {
        /// The request method.
        method: &'static str,
        /// The URL.
        url: String,
        /// What was wrong.
        detail: String,
    },

    /// A registry served bytes other than the digest it was asked for names.
    #[error(
        "`{url}` served {what} whose digest is {actual}, not {expected}: the registry (or a proxy in between) \
         serves other content than the digest pins; nothing of it was used\n  fix: check that the digest \
         names an image of this repository; a tag that was moved needs `executor lock` again"
    )]
    Served {
        /// What was asked for (`the manifest`, `the blob`).
        what: &'static str,
        /// The URL.
        url: String,
        /// The digest asked for.
        expected: Digest,
        /// The digest of the bytes served.
        actual: Digest,
    },

    /// A registry served more bytes than the descriptor's size, or more than any manifest may have.
    #[error("`{url}` served more than {limit} bytes for {what}; nothing of it was used")]
    TooLarge {
        /// What was asked for.
        what: &'static str,
        /// The URL.
        url: String,
        /// The most accepted.
        limit: u64,
    },

    /// Transient failures used up the retries.
    #[error("giving up after {attempts} attempts: {last}")]
    GaveUp {
        /// How many attempts were made.
        attempts: u32,
        /// The last failure.
        #[source]
        last: Box<RegistryError>,
    },
}

impl RegistryError {
    /// Whether another attempt may succeed: 408, 429 and 5xx statuses, timeouts, broken
    /// connections and truncated responses. Never a 4xx verdict on the request itself.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Status { status, .. } => is_transient_status(*status),
            RegistryError::Request { transient, .. } => *transient,
            RegistryError::Timeout { .. } | RegistryError::Truncated { .. } => true,
            _ => false,
        }
    }
}

pub(crate) fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

fn reason_suffix(status: u16) -> String {
    ureq::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" ({})", r.to_ascii_lowercase()))
        .unwrap_or_default()
}

fn status_hint(status: u16) -> &'static str {
    match status {
        400 => "the registry rejected the request; is the image valid and are its blobs pushed?",
        s if is_transient_status(s) => "the registry is failing or overloaded; try again later",
        _ => "unexpected response from the registry",
    }
}

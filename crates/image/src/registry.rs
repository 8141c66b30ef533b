//! Pushing image layouts to registries (OCI distribution spec v1.1).
//!
//! Vocabulary (distribution spec):
//! - **registry**: an HTTP server speaking the `/v2/` API, named by its host
//!   (`registry.example.com`, `127.0.0.1:5000`).
//! - **repository**: a name inside a registry (`team/app`) holding blobs and manifests.
//! - **reference**: where a push goes, `HOST[:PORT]/REPOSITORY[:TAG]` ([`Reference`]).
//! - **blob**: a config or layer, addressed by its [`Digest`](crate::digest::Digest); a
//!   **mount** links a blob the registry already holds in another repository.
//! - **tag**: a name pointing at a manifest or index in a repository.
//!
//! A push is split like everything else: the `plan` module decides what to send from the layout
//! (disk only, every manifest checked against its digest), then [`push_layout`] sends it:
//! blobs first (skipped when the registry has them, mounted when it offers, otherwise
//! uploaded a few at a time), then manifests children first, then the image by digest and
//! by each tag. Every blob is hashed as it is read for upload, and an upload whose bytes do
//! not match is cancelled, never committed. The registry's `Docker-Content-Digest` answers
//! are checked against what was sent.
//!
//! Authentication (the `auth` module) follows the registry's `WWW-Authenticate` challenge: none,
//! `Basic`, or `Bearer` tokens from the realm it names, cached per scope for the push.
//! Credentials come from a docker-style auth file located by [`AuthEnv`]; they are never
//! printed.

mod auth;
mod client;
mod error;
mod plan;
mod pull;
mod push;
pub mod reference;
mod resolve;
mod signatures;

pub use crate::registry::auth::{
    load_credentials, parse_auth_file, parse_challenge, AuthEnv, Challenge, Credentials, Secret,
};
pub use crate::registry::error::RegistryError;
pub use crate::registry::pull::{
    PulledManifest, Puller, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MAX_MANIFEST, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST,
};
pub use crate::registry::push::{
    push_attestations, push_layout, push_shallow_layout, push_signatures, Attestation, PushOptions, PushReport,
    RemoteBlobs, SignReport,
};
pub use crate::registry::reference::{Reference, ReferenceError};
pub use crate::registry::resolve::resolve_digest;
pub use crate::registry::signatures::{verified_attestations, verify_signatures, Attestations, SignatureCheck};

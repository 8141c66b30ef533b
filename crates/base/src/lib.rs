//! What every executor crate shares: content digests ([`digest`]), canonical JSON
//! ([`canonical`]), the one HTTP client with
//! its limits, retries and error classification ([`fetch`]), CPU architectures and OCI
//! platforms ([`platform`]), "did you mean" hints ([`hints`]), and the one error for a failed
//! operation on a path ([`io::PathError`]).

pub mod canonical;
pub mod digest;
pub mod fetch;
pub mod hints;
pub mod io;
pub mod platform;

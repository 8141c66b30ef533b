//! What every executor crate shares: content digests ([`digest`]), canonical JSON
//! ([`canonical`]), the one HTTP client with
//! its limits, retries and error classification ([`fetch`]), CPU architectures and OCI
//! platforms ([`platform`]), and "did you mean" hints ([`hints`]).

pub mod canonical;
pub mod digest;
pub mod fetch;
pub mod hints;
pub mod platform;

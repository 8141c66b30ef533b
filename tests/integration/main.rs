//! Integration tests: whole workspaces built by the real `executor` binary.

mod harness;

mod apk_http;
mod apk_lock;
mod apko;
mod bombs;
mod core_build;
mod core_errors;
mod core_limits;
mod core_robustness;
mod examples;
mod image_errors;
mod images;
mod layering;
mod pull;
mod push;
mod push_faults;
mod release;
mod remote_cache;
mod scanners;
mod signing;
mod trust;

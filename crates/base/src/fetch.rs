//! Fetching: transferring the bytes a URL names into a file or into memory.
//!
//! What is fetched is always pinned elsewhere by digest (a lockfile, an index), so this
//! module only transfers: it never decides whether bytes are right. It does compute the
//! sha256 and size while streaming, so callers verify without reading the file again.
//!
//! Supported schemes:
//! - `file:///abs/path`: an absolute path;
//! - `file://rel/path` (no `/` after `file://`): a path relative to the workspace root. The
//!   path is taken literally: no host part, no percent-decoding;
//! - `http://` and `https://` (rustls), following redirects. Bodies are stored raw: no
//!   `Accept-Encoding` is negotiated and no `Content-Encoding` is undone, because digests
//!   pin the bytes as published.
//!
//! Transient network failures (refused or reset connections, timeouts, truncated bodies,
//! HTTP 408, 429 and 5xx) are retried with doubling backoff; every other failure is final
//! at once. Network access sits behind the [`Fetcher`] trait so that most tests need none.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::digest::{Digest, HashingWriter};

/// Bytes moved per read and write. Large enough that per-call overhead (syscalls, hasher
/// dispatch) is small next to hashing, small enough to stay in cache.
const BUFFER_SIZE: usize = 256 * 1024;

/// The longest pause between two attempts, however many retries are configured.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The schemes [`UrlFetcher`] understands, as listed in error messages.
const SUPPORTED_SCHEMES: &str = "`file://`, `http://` and `https://`";

/// What a completed fetch wrote: its size and sha256, computed while streaming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetched {
    /// Number of bytes written.
    pub size: u64,
    /// SHA-256 of exactly the bytes written.
    pub sha256: Digest,
}

/// Why a fetch failed. Every message names the URL.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The text has no `scheme://`.
    #[error("`{url}` is not a url: expected one of {SUPPORTED_SCHEMES} followed by a path")]
    NotAUrl { url: String },
    /// A scheme this fetcher does not speak.
    #[error("unsupported scheme `{scheme}` in `{url}`: supported schemes are {SUPPORTED_SCHEMES}")]
    UnsupportedScheme { url: String, scheme: String },
    /// `file://` with nothing after it.
    #[error("`{url}` names no file: write `file:///absolute/path` or `file://path/relative/to/workspace`")]
    EmptyFilePath { url: String },
    /// A `file://` URL whose file does not exist.
    #[error(
        "`{url}`: no such file `{}`{}",
        path.display(),
        if url.starts_with("file:///") { "" } else { "; a `file://` url without a leading `/` is relative to the workspace root" }
    )]
    FileNotFound { url: String, path: PathBuf },
    /// A `file://` URL naming a directory or other non-file.
    #[error("`{url}`: `{}` is not a regular file", path.display())]
    NotAFile { url: String, path: PathBuf },
    /// A `file://` URL whose file cannot be read.
    #[error("cannot read `{}` for `{url}`: {source}", path.display())]
    ReadFile {
        url: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The destination file cannot be created or written.
    #[error("cannot write `{}` while fetching `{url}`: {source}", path.display())]
    WriteFile {
        url: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The server answered with a status other than 2xx (after following redirects).
    #[error("http {status}{} from `{url}`: {}", reason_suffix(*status), status_hint(*status))]
    Status { url: String, status: u16 },
    /// The host name does not resolve.
    #[error("cannot resolve the host of `{url}`: check the url and the network's dns")]
    HostNotFound { url: String },
    /// Connecting or sending the request failed, or the connection broke before the
    /// response headers arrived.
    #[error("request to `{url}` failed: {detail}; check the url and that the server is up")]
    Request {
        url: String,
        detail: String,
        /// Whether another attempt may succeed (refused, reset, ...).
        transient: bool,
    },
    /// No progress within the configured timeout.
    #[error("timed out {during} `{url}` after {limit:?} without progress")]
    Timeout {
        url: String,
        /// `connecting to` or `reading from`.
        during: &'static str,
        limit: Duration,
    },
    /// The connection broke while the body was being received.
    #[error("connection to `{url}` broke after {received} bytes of the body: {detail}")]
    Transfer { url: String, received: u64, detail: String },
    /// The body ended before the announced `Content-Length`.
    #[error(
        "truncated body from `{url}`: the server announced {expected} bytes (content-length) \
         but closed the connection after {received}"
    )]
    Truncated { url: String, expected: u64, received: u64 },
    /// The body is larger than the caller allows.
    #[error("`{url}` is larger than the limit of {limit} bytes; is it the right url?")]
    TooLarge { url: String, limit: u64 },
    /// The whole transfer took longer than the overall deadline (a server dripping bytes
    /// defeats the per-read timeout).
    #[error(
        "`{url}` took longer than {limit:?} in all and was abandoned after {received} bytes; the server \
         is too slow (or dripping bytes): raise `--fetch-deadline` if the link is genuinely slow"
    )]
    Deadline { url: String, limit: Duration, received: u64 },
    /// Any other HTTP client failure (TLS, protocol, redirects, malformed URL).
    #[error("cannot fetch `{url}`: {source}")]
    Http {
        url: String,
        #[source]
        source: ureq::Error,
    },
    /// The last failure after more than one attempt, or after transient failures ran out of
    /// retries.
    #[error("giving up on `{url}` after {attempts} {}: {last}", attempt_noun(*attempts))]
    GaveUp {
        url: String,
        attempts: u32,
        #[source]
        last: Box<FetchError>,
    },
}

impl FetchError {
    /// True when the server (or the file system) says there is nothing at the URL: a 404 or
    /// 410, or a missing `file://` file.
    pub fn is_not_found(&self) -> bool {
        matches!(self, FetchError::FileNotFound { .. } | FetchError::Status { status: 404 | 410, .. })
    }

    /// Whether another attempt may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => is_transient_status(*status),
            FetchError::Request { transient, .. } => *transient,
            FetchError::Timeout { .. } | FetchError::Transfer { .. } => true,
            FetchError::Truncated { .. } => true,
            _ => false,
        }
    }
}

/// ` (not found)` for 404: the standard reason phrase, if there is one.
fn reason_suffix(status: u16) -> String {
    ureq::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" ({})", r.to_ascii_lowercase()))
        .unwrap_or_default()
}

/// The fix for a failing HTTP status.
fn status_hint(status: u16) -> &'static str {
    match status {
        404 | 410 => "the file is not on the server; check the url",
        401 | 403 => "the server refused access; check the url and whether it needs credentials",
        s if is_transient_status(s) => "the server is failing or overloaded; try again later",
        _ => "unexpected response; check the url",
    }
}

fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

fn attempt_noun(attempts: u32) -> &'static str {
    if attempts == 1 {
        "attempt"
    } else {
        "attempts"
    }
}

/// Transfers the resource a URL names. Implementations only move bytes; callers compare
/// [`Fetched::sha256`] against their pin.
pub trait Fetcher: Send + Sync {
    /// Writes the resource to `dest`, creating or truncating it; a retry starts over from an
    /// empty file. Stops as soon as more than `limit` bytes arrive (the pinned size, when the
    /// caller knows it). On error `dest` may hold a partial download.
    fn fetch_to_file(&self, url: &str, dest: &Path, limit: u64) -> Result<Fetched, FetchError>;

    /// [`fetch_to_file`](Self::fetch_to_file), telling `progress` how many bytes of the
    /// current attempt have arrived, as they arrive (for progress bars). Fetchers that cannot
    /// tell fetch without reporting.
    fn fetch_to_file_reporting(
        &self,
        url: &str,
        dest: &Path,
        limit: u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Fetched, FetchError> {
        let _ = progress;
        self.fetch_to_file(url, dest, limit)
    }

    /// Reads the whole resource into memory, refusing bodies over `limit` bytes. For small
    /// things such as indexes.
    fn fetch_bytes(&self, url: &str, limit: u64) -> Result<Vec<u8>, FetchError>;

    /// The timeouts and retry policy it works with, for other clients (a registry's) that
    /// should behave alike.
    fn options(&self) -> FetchOptions {
        FetchOptions::default()
    }
}

/// Timeouts and retry policy for [`UrlFetcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// Longest time to resolve a host and establish a connection (including TLS).
    pub connect_timeout: Duration,
    /// Longest time without receiving any data once connected, so a server that stalls
    /// mid-body fails after about this long instead of hanging the build.
    pub read_timeout: Duration,
    /// How many times a transient failure is retried (so at most `retries + 1` attempts).
    pub retries: u32,
    /// Pause before the first retry; it doubles for each further retry.
    pub backoff_initial: Duration,
    /// Longest time one attempt may take in all, however steadily bytes arrive.
    pub deadline: Duration,
}

/// The largest package fetched when no size is pinned (an index without `S:`, an apko lock).
pub const MAX_UNPINNED_PACKAGE: u64 = 4 << 30;

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            retries: 3,
            backoff_initial: Duration::from_millis(200),
            deadline: Duration::from_secs(600),
        }
    }
}

/// The real [`Fetcher`]: `file://` from disk, `http(s)://` over the network.
pub struct UrlFetcher {
    /// The workspace root; relative `file://` URLs resolve against it.
    root: PathBuf,
    opts: FetchOptions,
    /// One agent for all fetches so connections are pooled across them.
    agent: ureq::Agent,
}

/// Where a URL points, once its scheme is understood.
enum Location {
    File(PathBuf),
    Http,
}

impl UrlFetcher {
    /// A fetcher resolving relative `file://` URLs against `root` (the workspace root).
    pub fn new(root: PathBuf, opts: FetchOptions) -> Self {
        let agent = agent(AgentOptions {
            host: None,
            connect_timeout: opts.connect_timeout,
            read_timeout: opts.read_timeout,
            follow_redirects: true,
            idle_per_host: None,
        });
        UrlFetcher { root, opts, agent }
    }

    /// The options this fetcher was built with.
    pub fn options(&self) -> &FetchOptions {
        &self.opts
    }

    fn locate(&self, url: &str) -> Result<Location, FetchError> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(FetchError::NotAUrl { url: url.into() });
        };
        let valid_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !valid_scheme {
            return Err(FetchError::NotAUrl { url: url.into() });
        }
        if scheme.eq_ignore_ascii_case("file") {
            if rest.is_empty() {
                return Err(FetchError::EmptyFilePath { url: url.into() });
            }
            let path = if rest.starts_with('/') { PathBuf::from(rest) } else { self.root.join(rest) };
            Ok(Location::File(path))
        } else if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
            Ok(Location::Http)
        } else {
            Err(FetchError::UnsupportedScheme { url: url.into(), scheme: scheme.into() })
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or transient failures use up the
    /// retries. The final error says how many attempts were made whenever there was more
    /// than one, or when a transient failure was the last straw.
    fn with_retries<T>(&self, url: &str, mut attempt: impl FnMut() -> Result<T, FetchError>) -> Result<T, FetchError> {
        let mut delay = self.opts.backoff_initial;
        let mut attempts: u32 = 0;
        loop {
            attempts += 1;
            let err = match attempt() {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            if err.is_transient() && attempts <= self.opts.retries {
                std::thread::sleep(delay);
                delay = delay.saturating_mul(2).min(MAX_BACKOFF);
                continue;
            }
            if attempts > 1 || err.is_transient() {
                return Err(FetchError::GaveUp { url: url.into(), attempts, last: Box::new(err) });
            }
            return Err(err);
        }
    }

    /// One attempt: streams the resource through `out`, refusing more than `limit` bytes.
    /// `write_err` names the destination when writing fails.
    fn attempt<W: Write>(
        &self,
        url: &str,
        location: &Location,
        limit: u64,
        out: &mut W,
        write_err: &dyn Fn(io::Error) -> FetchError,
    ) -> Result<(), FetchError> {
        match location {
            Location::File(path) => copy_file(url, path, limit, out, write_err),
            Location::Http => self.copy_http(url, limit, out, write_err),
        }
    }

    fn copy_http<W: Write>(
        &self,
        url: &str,
        limit: u64,
        out: &mut W,
        write_err: &dyn Fn(io::Error) -> FetchError,
    ) -> Result<(), FetchError> {
        let response = self.agent.get(url).call().map_err(|e| self.request_error(url, e))?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Err(FetchError::Status { url: url.into(), status });
        }
        let body = response.into_body();
        // Checked here, not only by the transfer, because ureq stops at Content-Length and
        // reports a short body as a plain EOF that must not pass for success.
        let expected = body.content_length();
        if expected.is_some_and(|len| len > limit) {
            return Err(FetchError::TooLarge { url: url.into(), limit });
        }
        let mut reader = body.into_reader();
        let mut received = 0;
        let deadline = std::time::Instant::now() + self.opts.deadline;
        match copy_stream(&mut reader, out, limit, &mut received, Some(deadline)) {
            Ok(()) => {}
            Err(CopyError::Write(e)) => return Err(write_err(e)),
            Err(CopyError::OverLimit) => return Err(FetchError::TooLarge { url: url.into(), limit }),
            Err(CopyError::Deadline) => {
                return Err(FetchError::Deadline { url: url.into(), limit: self.opts.deadline, received })
            }
            Err(CopyError::Read(e)) => {
                return Err(self.body_error(url, e, expected, received));
            }
        }
        match expected {
            Some(expected) if received != expected => {
                Err(FetchError::Truncated { url: url.into(), expected, received })
            }
            _ => Ok(()),
        }
    }

    /// Classifies a failure before the response headers arrived.
    fn request_error(&self, url: &str, err: ureq::Error) -> FetchError {
        match err {
            ureq::Error::Timeout(which) => self.timeout(url, which),
            ureq::Error::HostNotFound => FetchError::HostNotFound { url: url.into() },
            // std reports a failed getaddrinfo as an uncategorized I/O error; its text is the
            // only way to tell it from other connection failures.
            ureq::Error::Io(e) if e.to_string().contains("failed to lookup address") => {
                FetchError::HostNotFound { url: url.into() }
            }
            ureq::Error::Io(e) => FetchError::Request {
                url: url.into(),
                transient: is_transient_io(e.kind()),
                detail: lowercase_first(&e.to_string()),
            },
            ureq::Error::ConnectionFailed => {
                FetchError::Request { url: url.into(), transient: true, detail: "connection failed".into() }
            }
            other => FetchError::Http { url: url.into(), source: other },
        }
    }

    /// Classifies a failure while the body streamed in.
    fn body_error(&self, url: &str, err: io::Error, expected: Option<u64>, received: u64) -> FetchError {
        // ureq hands its own errors (timeouts) through `io::Error`; this unwraps them.
        match ureq::Error::from(err) {
            ureq::Error::Timeout(which) => self.timeout(url, which),
            ureq::Error::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => match expected {
                Some(expected) => FetchError::Truncated { url: url.into(), expected, received },
                None => FetchError::Transfer { url: url.into(), received, detail: lowercase_first(&e.to_string()) },
            },
            ureq::Error::Io(e) => {
                FetchError::Transfer { url: url.into(), received, detail: lowercase_first(&e.to_string()) }
            }
            // Malformed chunking and the like: the stream is unusable, but another attempt
            // over a new connection may fare better.
            other => FetchError::Transfer { url: url.into(), received, detail: other.to_string() },
        }
    }

    fn timeout(&self, url: &str, which: ureq::Timeout) -> FetchError {
        let (during, limit) = match which {
            ureq::Timeout::Resolve | ureq::Timeout::Connect => ("connecting to", self.opts.connect_timeout),
            _ => ("reading from", self.opts.read_timeout),
        };
        FetchError::Timeout { url: url.into(), during, limit }
    }
}

impl Fetcher for UrlFetcher {
    fn options(&self) -> FetchOptions {
        self.opts.clone()
    }

    fn fetch_to_file(&self, url: &str, dest: &Path, limit: u64) -> Result<Fetched, FetchError> {
        self.fetch_to_file_reporting(url, dest, limit, &|_| {})
    }

    fn fetch_to_file_reporting(
        &self,
        url: &str,
        dest: &Path,
        limit: u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Fetched, FetchError> {
        let location = self.locate(url)?;
        let write_err = |source| FetchError::WriteFile { url: url.into(), path: dest.to_path_buf(), source };
        self.with_retries(url, || {
            let file = File::create(dest).map_err(write_err)?;
            let counted = crate::io::ProgressWriter::new(file, progress);
            let mut out = HashingWriter::new(BufWriter::with_capacity(BUFFER_SIZE, counted));
            self.attempt(url, &location, limit, &mut out, &write_err)?;
            let (sha256, size, buffered) = out.finish();
            buffered.into_inner().map_err(|e| write_err(e.into_error()))?;
            Ok(Fetched { size, sha256 })
        })
    }

    fn fetch_bytes(&self, url: &str, limit: u64) -> Result<Vec<u8>, FetchError> {
        let location = self.locate(url)?;
        // Writing to a `Vec` cannot fail; the mapping exists only to satisfy the signature.
        let write_err = |source| FetchError::Transfer {
            url: url.into(),
            received: 0,
            detail: format!("cannot buffer the body in memory: {source}"),
        };
        self.with_retries(url, || {
            let mut out = Vec::new();
            self.attempt(url, &location, limit, &mut out, &write_err)?;
            Ok(out)
        })
    }
}

/// Copies a local file, with the same limit and error naming as downloads.
fn copy_file<W: Write>(
    url: &str,
    path: &Path,
    limit: u64,
    out: &mut W,
    write_err: &dyn Fn(io::Error) -> FetchError,
) -> Result<(), FetchError> {
    let read_err = |source: io::Error| {
        if source.kind() == io::ErrorKind::NotFound {
            FetchError::FileNotFound { url: url.into(), path: path.to_path_buf() }
        } else {
            FetchError::ReadFile { url: url.into(), path: path.to_path_buf(), source }
        }
    };
    let mut file = File::open(path).map_err(read_err)?;
    let metadata = file.metadata().map_err(read_err)?;
    if !metadata.is_file() {
        return Err(FetchError::NotAFile { url: url.into(), path: path.to_path_buf() });
    }
    if metadata.len() > limit {
        return Err(FetchError::TooLarge { url: url.into(), limit });
    }
    let mut received = 0;
    copy_stream(&mut file, out, limit, &mut received, None).map_err(|e| match e {
        CopyError::Read(e) => read_err(e),
        CopyError::Write(e) => write_err(e),
        // The file grew after the size check.
        CopyError::OverLimit => FetchError::TooLarge { url: url.into(), limit },
        CopyError::Deadline => FetchError::Deadline { url: url.into(), limit: Duration::ZERO, received },
    })
}

/// Why [`copy_stream`] stopped early.
enum CopyError {
    Read(io::Error),
    Write(io::Error),
    OverLimit,
    Deadline,
}

/// Copies `reader` to `out` until EOF, keeping `received` up to date so callers can say
/// how far a broken transfer got. Fails as soon as more than `limit` bytes arrive.
fn copy_stream<R: Read + ?Sized, W: Write>(
    reader: &mut R,
    out: &mut W,
    limit: u64,
    received: &mut u64,
    deadline: Option<std::time::Instant>,
) -> Result<(), CopyError> {
    let mut buf = vec![0u8; BUFFER_SIZE];
    loop {
        // Every read returns within the per-read timeout, so this bounds the whole transfer.
        if deadline.is_some_and(|d| std::time::Instant::now() > d) {
            return Err(CopyError::Deadline);
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        *received += n as u64;
        if *received > limit {
            return Err(CopyError::OverLimit);
        }
        out.write_all(&buf[..n]).map_err(CopyError::Write)?;
    }
}

/// OS error texts start with a capital ("Connection refused"); messages here are lowercase.
pub fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// I/O failures worth another attempt: the network or the peer, not the request.
pub fn is_transient_io(kind: io::ErrorKind) -> bool {
    use io::ErrorKind as K;
    matches!(
        kind,
        K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::BrokenPipe
            | K::TimedOut
            | K::WouldBlock
            | K::UnexpectedEof
            | K::Interrupted
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::NetworkDown
    )
}

/// How an HTTP client of executor behaves besides its timeouts.
#[derive(Debug, Clone, Copy)]
pub struct AgentOptions<'a> {
    /// The host every request goes to (`name[:port]`), when there is one: an IP literal
    /// then needs no resolve timeout (see [`resolve_timeout`]).
    pub host: Option<&'a str>,
    pub connect_timeout: std::time::Duration,
    /// Per read or write, and for the response head.
    pub read_timeout: std::time::Duration,
    /// Follow redirects (downloads) or not (registries, which answer with their own).
    pub follow_redirects: bool,
    /// Idle connections kept per host (parallel uploads), or ureq's default.
    pub idle_per_host: Option<usize>,
}

/// The one HTTP client setup of executor (downloads, registries, the remote cache): statuses
/// come back as responses, to be classified by the caller (retry, miss, refusal), never as
/// opaque errors; bodies are asked for as published (`identity`), since digests pin those
/// bytes and not a re-encoding; every wait is bounded by the timeouts.
pub fn agent(opts: AgentOptions<'_>) -> ureq::Agent {
    let resolve = match opts.host {
        Some(host) => resolve_timeout(host, opts.connect_timeout),
        None => Some(opts.connect_timeout),
    };
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_resolve(resolve)
        .timeout_connect(Some(opts.connect_timeout))
        .timeout_per_read(Some(opts.read_timeout))
        .timeout_per_write(Some(opts.read_timeout))
        .timeout_recv_response(Some(opts.read_timeout))
        .accept_encoding("identity")
        .user_agent(concat!("executor/", env!("CARGO_PKG_VERSION")))
        .input_buffer_size(BUFFER_SIZE);
    if !opts.follow_redirects {
        config = config.max_redirects(0);
    }
    if let Some(idle) = opts.idle_per_host {
        config = config.max_idle_connections_per_host(idle);
    }
    config.build().new_agent()
}

/// The resolve timeout for a client of `host` (`name[:port]`, `[v6]:port`): none for an IP
/// literal, which needs no lookup (with a timeout, ureq resolves on a new thread each time).
pub fn resolve_timeout(host: &str, timeout: std::time::Duration) -> Option<std::time::Duration> {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host
            .rsplit_once(':')
            .map_or(host, |(name, port)| if port.bytes().all(|b| b.is_ascii_digit()) { name } else { host }),
    };
    match name.parse::<std::net::IpAddr>() {
        Ok(_) => None,
        Err(_) => Some(timeout),
    }
}

#[cfg(test)]
mod resolve_tests {
    use super::resolve_timeout;
    use std::time::Duration;

    #[test]
    fn ip_literals_need_no_resolve_timeout() {
        let t = Duration::from_secs(5);
        for ip in ["127.0.0.1", "127.0.0.1:8090", "[::1]:5000", "[::1]", "10.0.0.7:443"] {
            assert_eq!(resolve_timeout(ip, t), None, "{ip}");
        }
        for name in ["localhost", "localhost:5000", "cache.example.com", "registry.example.com:443"] {
            assert_eq!(resolve_timeout(name, t), Some(t), "{name}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetcher(root: &Path) -> UrlFetcher {
        UrlFetcher::new(root.to_path_buf(), FetchOptions { retries: 0, ..FetchOptions::default() })
    }

    fn temp() -> tempfile::TempDir {
        tempfile::tempdir().expect("temp dir")
    }

    #[test]
    fn file_url_absolute() {
        let dir = temp();
        let src = dir.path().join("blob.bin");
        std::fs::write(&src, b"hello").expect("write");
        let dest = dir.path().join("out.bin");
        let url = format!("file://{}", src.display());
        let fetched = fetcher(Path::new("/nonexistent-root")).fetch_to_file(&url, &dest, u64::MAX).expect("fetch");
        assert_eq!(fetched, Fetched { size: 5, sha256: Digest::of(b"hello") });
        assert_eq!(std::fs::read(&dest).expect("read"), b"hello");
    }

    #[test]
    fn file_url_relative_to_root_and_truncates_dest() {
        let dir = temp();
        std::fs::create_dir_all(dir.path().join("third_party/repo")).expect("mkdir");
        std::fs::write(dir.path().join("third_party/repo/x.apk"), b"apk").expect("write");
        let dest = dir.path().join("out.bin");
        std::fs::write(&dest, b"much longer old content").expect("write");
        let fetched =
            fetcher(dir.path()).fetch_to_file("file://third_party/repo/x.apk", &dest, u64::MAX).expect("fetch");
        assert_eq!(fetched.size, 3);
        assert_eq!(fetched.sha256, Digest::of(b"apk"));
        assert_eq!(std::fs::read(&dest).expect("read"), b"apk");
    }

    #[test]
    fn file_url_large_file_hash_matches() {
        let dir = temp();
        let data: Vec<u8> = (0..3 * BUFFER_SIZE + 17).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("big"), &data).expect("write");
        let f = fetcher(dir.path());
        let fetched = f.fetch_to_file("file://big", &dir.path().join("copy"), u64::MAX).expect("fetch");
        assert_eq!(fetched.size, data.len() as u64);
        assert_eq!(fetched.sha256, Digest::of(&data));
        assert_eq!(f.fetch_bytes("file://big", u64::MAX).expect("bytes"), data);
    }

    #[test]
    fn file_url_errors() {
        let dir = temp();
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("five"), b"12345").expect("write");
        let f = fetcher(dir.path());
        let root = dir.path().display().to_string();
        let dest = dir.path().join("out");
        let cases: &[(&str, String)] = &[
            (
                "file://missing/x.apk",
                format!(
                    "`file://missing/x.apk`: no such file `{root}/missing/x.apk`; a `file://` url \
                     without a leading `/` is relative to the workspace root"
                ),
            ),
            // An absolute url gets no hint about relative ones.
            (
                "file:///definitely/not/here",
                "`file:///definitely/not/here`: no such file `/definitely/not/here`".into(),
            ),
            ("file://sub", format!("`file://sub`: `{root}/sub` is not a regular file")),
            (
                "file://",
                "`file://` names no file: write `file:///absolute/path` or \
                 `file://path/relative/to/workspace`"
                    .into(),
            ),
        ];
        for (url, want) in cases {
            let err = f.fetch_to_file(url, &dest, u64::MAX).expect_err(url);
            assert_eq!(err.to_string(), *want, "{url}");
            assert!(!err.is_transient(), "{url}");
        }
        let err = f.fetch_bytes("file://five", 4).expect_err("over limit");
        assert_eq!(err.to_string(), "`file://five` is larger than the limit of 4 bytes; is it the right url?");
        assert_eq!(f.fetch_bytes("file://five", 5).expect("at limit"), b"12345");
    }

    #[test]
    fn unwritable_destination_names_the_path() {
        let dir = temp();
        std::fs::write(dir.path().join("a"), b"a").expect("write");
        let dest = dir.path().join("no/such/dir/out");
        let err = fetcher(dir.path()).fetch_to_file("file://a", &dest, u64::MAX).expect_err("unwritable");
        let text = err.to_string();
        assert!(text.starts_with(&format!("cannot write `{}` while fetching `file://a`: ", dest.display())), "{text}");
    }

    #[test]
    fn scheme_errors() {
        let f = fetcher(Path::new("/"));
        let cases = [
            (
                "ftp://example.org/x",
                "unsupported scheme `ftp` in `ftp://example.org/x`: supported schemes are \
                 `file://`, `http://` and `https://`",
            ),
            (
                "s3://bucket/key",
                "unsupported scheme `s3` in `s3://bucket/key`: supported schemes are \
                 `file://`, `http://` and `https://`",
            ),
            (
                "example.org/x.apk",
                "`example.org/x.apk` is not a url: expected one of `file://`, `http://` and \
                 `https://` followed by a path",
            ),
            (
                "://x",
                "`://x` is not a url: expected one of `file://`, `http://` and `https://` \
                 followed by a path",
            ),
        ];
        for (url, want) in cases {
            let err = f.fetch_bytes(url, 10).expect_err(url);
            assert_eq!(err.to_string(), want, "{url}");
            let err = f.fetch_to_file(url, Path::new("/nonexistent/out"), u64::MAX).expect_err(url);
            assert_eq!(err.to_string(), want, "{url}");
        }
    }

    #[test]
    fn scheme_is_case_insensitive() {
        let dir = temp();
        std::fs::write(dir.path().join("a"), b"a").expect("write");
        let f = fetcher(dir.path());
        assert_eq!(f.fetch_bytes("FILE://a", 1).expect("fetch"), b"a");
    }

    #[test]
    fn status_messages_and_retry_classes() {
        let cases = [
            (404, "http 404 (not found) from `u`: the file is not on the server; check the url", false),
            (403, "http 403 (forbidden) from `u`: the server refused access; check the url and whether it needs credentials", false),
            (400, "http 400 (bad request) from `u`: unexpected response; check the url", false),
            (408, "http 408 (request timeout) from `u`: the server is failing or overloaded; try again later", true),
            (429, "http 429 (too many requests) from `u`: the server is failing or overloaded; try again later", true),
            (503, "http 503 (service unavailable) from `u`: the server is failing or overloaded; try again later", true),
            (599, "http 599 from `u`: the server is failing or overloaded; try again later", true),
        ];
        for (status, want, transient) in cases {
            let err = FetchError::Status { url: "u".into(), status };
            assert_eq!(err.to_string(), want);
            assert_eq!(err.is_transient(), transient, "{status}");
        }
    }

    #[test]
    fn errors_and_fetcher_cross_threads() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<FetchError>();
        assert_send_sync::<UrlFetcher>();
    }

    #[test]
    fn default_options() {
        let o = FetchOptions::default();
        assert_eq!(o.connect_timeout, Duration::from_secs(10));
        assert_eq!(o.read_timeout, Duration::from_secs(30));
        assert_eq!(o.retries, 3);
        assert_eq!(o.backoff_initial, Duration::from_millis(200));
    }
}

#[cfg(test)]
mod bound_tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    use super::*;

    /// A one-connection HTTP server on loopback that answers with `head`, then calls `body`
    /// with the stream until it returns false or the client goes away.
    fn serve(head: &'static str, mut body: impl FnMut(&mut std::net::TcpStream) -> bool + Send + 'static) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/x.apk", listener.local_addr().expect("addr"));
        std::thread::spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            // Bounded either way: the client hangs up, or 60 s pass.
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(60) && body(&mut stream) {}
        });
        url
    }

    fn fetcher(read_timeout: Duration, deadline: Duration) -> UrlFetcher {
        UrlFetcher::new(
            std::env::temp_dir(),
            FetchOptions { retries: 0, read_timeout, deadline, ..FetchOptions::default() },
        )
    }

    #[test]
    fn an_endless_body_stops_at_the_limit() {
        let url = serve("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", |s| s.write_all(&[7u8; 65536]).is_ok());
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("x.apk");
        let err = fetcher(Duration::from_secs(10), Duration::from_secs(60))
            .fetch_to_file(&url, &dest, 100_000)
            .expect_err("endless");
        assert_eq!(err.to_string(), format!("`{url}` is larger than the limit of 100000 bytes; is it the right url?"));
        assert!(std::fs::metadata(&dest).expect("partial file").len() <= 100_000 + BUFFER_SIZE as u64);
    }

    #[test]
    fn a_dripping_server_is_abandoned_at_the_deadline() {
        // One byte every 200 ms: each read is well within the per-read timeout.
        let url = serve("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n", |s| {
            std::thread::sleep(Duration::from_millis(200));
            s.write_all(b"x").and_then(|()| s.flush()).is_ok()
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let start = Instant::now();
        let err = fetcher(Duration::from_secs(5), Duration::from_secs(1))
            .fetch_to_file(&url, &dir.path().join("x.apk"), u64::MAX)
            .expect_err("deadline");
        let elapsed = start.elapsed();
        assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
        let text = err.to_string();
        assert!(text.starts_with(&format!("`{url}` took longer than 1s in all and was abandoned after ")), "{text}");
        assert!(text.ends_with("raise `--fetch-deadline` if the link is genuinely slow"), "{text}");
        assert!(!err.is_transient());
    }
}

//! A small in-memory OCI registry for tests, on std only: the distribution-spec endpoints
//! that `executor push` and `executor verify` use, injectable faults, and a log of every
//! request.
//!
//! Served: `GET /v2/`; blob `HEAD`/`GET`; uploads (`POST .../blobs/uploads/`, also with
//! `?mount=&from=` or a monolithic `?digest=`; chunked `PATCH`es; the closing
//! `PUT ...?digest=`; `GET` status; `DELETE`); manifest `PUT`/`GET`/`HEAD` by tag or digest;
//! and, when switched on, the referrers API (`OCI-Subject` on manifest puts,
//! `GET /v2/<name>/referrers/<digest>`).
//!
//! It checks what a careful registry checks, so a test can trust what it holds: a blob is
//! committed only when its bytes hash to the digest the client named (otherwise
//! `400 DIGEST_INVALID` and the upload is dropped), a manifest put by digest must hash to
//! it, and a manifest may reference only blobs and manifests the repository already holds.
//!
//! Authentication ([`Auth`]): none, HTTP Basic, or Bearer tokens from its own `/token`
//! endpoint, which checks Basic credentials and grants the scopes asked for.
//!
//! Bounded like [`crate::http`]: every connection has socket timeouts, a stall lasts
//! at most [`STALL_MAX`], and dropping the [`FakeRegistry`] stops the accept loop and joins
//! every thread. One thread per connection; every response carries `Connection: close`.

// Test modules use different parts of it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use executor_base::digest::Digest;

/// Longest a [`Fault::Stall`] lasts; longer than any client timeout a test uses, short
/// enough that a forgotten client cannot hold a test run hostage.
const STALL_MAX: Duration = Duration::from_secs(60);

/// How long a connection waits for the client to send or take data.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest request head accepted.
const MAX_REQUEST_HEAD: usize = 64 * 1024;

/// Largest request body accepted (the test images' blobs are a few hundred KB).
const MAX_REQUEST_BODY: u64 = 256 * 1024 * 1024;

/// The `Docker-Content-Digest` a [`Fault::WrongDigest`] answers: a valid digest of other bytes.
pub fn wrong_digest() -> String {
    Digest::of(b"not the bytes that were sent").to_string()
}

/// How clients must authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Anyone may pull and push.
    Anonymous,
    /// Every `/v2/` request needs `Authorization: Basic` with these credentials.
    Basic { user: String, password: String },
    /// Every `/v2/` request needs a token from `/token`, which wants these credentials.
    Bearer { user: String, password: String },
}

/// What the registry does instead of serving a request normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status with an OCI error body (`DENIED` for 403, ...); nothing changes.
    Status(u16),
    /// Handle the request, but answer a `Docker-Content-Digest` of other bytes
    /// ([`wrong_digest`]).
    WrongDigest,
    /// Handle the request, then announce a longer body than is sent and close.
    Truncate,
    /// Read the request and send nothing, until [`STALL_MAX`] passes or the registry is
    /// dropped; nothing changes.
    Stall,
    /// The inner fault for the next N matching requests, then normal service.
    FailTimes(u32, Box<Fault>),
    /// Normal service for the next N matching requests, then the inner fault (e.g. to let
    /// an authentication challenge through and fault the authenticated retry).
    AfterTimes(u32, Box<Fault>),
}

/// One request as the registry received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query (without `?`), percent-encoded as sent.
    pub query: String,
}

/// A stored manifest or index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The `Content-Type` it was put with.
    pub media_type: String,
    /// Its bytes, as put.
    pub bytes: Vec<u8>,
}

/// A running registry on 127.0.0.1; stops and joins its threads when dropped.
pub struct FakeRegistry {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// The accept loop; `None` only during drop.
    acceptor: Option<JoinHandle<()>>,
}

/// State shared by the accept loop and the connection threads.
struct Shared {
    addr: SocketAddr,
    auth: Auth,
    /// Whether manifest puts answer `OCI-Subject` and `/referrers/` is served.
    referrers_api: AtomicBool,
    /// Set once on drop; every loop and sleep checks it.
    shutdown: AtomicBool,
    /// Never held while waiting on a socket.
    state: Mutex<State>,
    /// Connection threads not yet joined.
    connections: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Default)]
struct State {
    /// Committed blobs by digest. Invariant: each one's bytes hash to its key.
    blobs: BTreeMap<String, Vec<u8>>,
    repositories: BTreeMap<String, Repository>,
    /// Open upload sessions by id.
    uploads: BTreeMap<String, Upload>,
    /// Numbers the upload sessions.
    uploads_started: u64,
    /// Granted scopes by token: repository name -> actions.
    tokens: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// Every request, in arrival order.
    requests: Vec<Request>,
    /// Faults by (method, path), first match wins; checked before `global_fault`.
    rules: Vec<Rule>,
    global_fault: Option<Fault>,
}

#[derive(Default)]
struct Repository {
    /// Digests of the committed blobs linked into this repository.
    blobs: BTreeSet<String>,
    /// Manifests by digest. Invariant: each one's bytes hash to its key, and everything it
    /// references was in the repository when it was put.
    manifests: BTreeMap<String, Manifest>,
    /// Tag -> manifest digest (a key of `manifests`).
    tags: BTreeMap<String, String>,
}

struct Upload {
    /// The repository the session was opened in.
    name: String,
    /// The bytes received so far.
    bytes: Vec<u8>,
}

struct Rule {
    /// `None` matches every method.
    method: Option<String>,
    path: String,
    /// Whether `path` is a prefix rather than the whole path.
    prefix: bool,
    fault: Fault,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FakeRegistry {
    /// An empty registry wanting `auth`.
    pub fn start(auth: Auth) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address of the listener");
        let shared = Arc::new(Shared {
            addr,
            auth,
            referrers_api: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            connections: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("fake-registry-accept".into())
                .spawn(move || accept_loop(&listener, &shared))
                .expect("spawn the accept thread")
        };
        FakeRegistry { addr, shared, acceptor: Some(acceptor) }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Switches the referrers API (`OCI-Subject`, `/referrers/`) on or off (the default).
    pub fn set_referrers_api(&self, on: bool) {
        self.shared.referrers_api.store(on, Ordering::SeqCst);
    }

    /// Injects `fault` for `method` (`*` for any) requests whose path starts with `prefix`.
    pub fn fault(&self, method: &str, prefix: &str, fault: Fault) {
        self.add_rule(method, prefix, true, fault);
    }

    /// Injects `fault` for `method` (`*` for any) requests of exactly `path`.
    pub fn fault_exact(&self, method: &str, path: &str, fault: Fault) {
        self.add_rule(method, path, false, fault);
    }

    fn add_rule(&self, method: &str, path: &str, prefix: bool, fault: Fault) {
        let method = (method != "*").then(|| method.to_owned());
        lock(&self.shared.state).rules.push(Rule { method, path: path.to_owned(), prefix, fault });
    }

    /// Injects `fault` for every request no other fault matches.
    pub fn global_fault(&self, fault: Fault) {
        lock(&self.shared.state).global_fault = Some(fault);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        let mut state = lock(&self.shared.state);
        state.rules.clear();
        state.global_fault = None;
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.state).requests.clone()
    }

    /// How many `method` (`*` for any) requests had a path starting with `prefix`.
    pub fn count(&self, method: &str, prefix: &str) -> usize {
        lock(&self.shared.state)
            .requests
            .iter()
            .filter(|r| (method == "*" || r.method == method) && r.path.starts_with(prefix))
            .count()
    }

    /// The tags of repository `name`: tag -> manifest digest.
    pub fn tags(&self, name: &str) -> BTreeMap<String, String> {
        lock(&self.shared.state).repositories.get(name).map(|r| r.tags.clone()).unwrap_or_default()
    }

    /// The manifests of repository `name` by digest.
    pub fn manifests(&self, name: &str) -> BTreeMap<String, Manifest> {
        lock(&self.shared.state).repositories.get(name).map(|r| r.manifests.clone()).unwrap_or_default()
    }

    /// The manifest `reference` (a tag or a digest) names in repository `name`.
    pub fn manifest(&self, name: &str, reference: &str) -> Option<Manifest> {
        let state = lock(&self.shared.state);
        let repo = state.repositories.get(name)?;
        let digest = repo.tags.get(reference).map(String::as_str).unwrap_or(reference);
        repo.manifests.get(digest).cloned()
    }

    /// The digests of the blobs linked into repository `name`.
    pub fn blob_digests(&self, name: &str) -> BTreeSet<String> {
        lock(&self.shared.state).repositories.get(name).map(|r| r.blobs.clone()).unwrap_or_default()
    }

    /// Every committed blob by digest.
    pub fn blobs(&self) -> BTreeMap<String, Vec<u8>> {
        lock(&self.shared.state).blobs.clone()
    }

    /// **An attack**: serves `bytes` for blob `digest` from now on (they need not hash to it).
    pub fn tamper_blob(&self, digest: &str, bytes: Vec<u8>) {
        lock(&self.shared.state).blobs.insert(digest.to_owned(), bytes);
    }

    /// **An attack**: serves `bytes` for manifest `digest` of repository `name` from now on
    /// (they need not hash to it).
    pub fn tamper_manifest(&self, name: &str, digest: &str, bytes: Vec<u8>) {
        if let Some(repo) = lock(&self.shared.state).repositories.get_mut(name) {
            if let Some(manifest) = repo.manifests.get_mut(digest) {
                manifest.bytes = bytes;
            }
        }
    }

    /// **An attack**: points `tag` of repository `name` at the manifest another tag names.
    pub fn retag(&self, name: &str, tag: &str, from_tag: &str) {
        let mut state = lock(&self.shared.state);
        let Some(repo) = state.repositories.get_mut(name) else { return };
        if let Some(digest) = repo.tags.get(from_tag).cloned() {
            repo.tags.insert(tag.to_owned(), digest);
        }
    }

    /// **An attack**: forgets tag `tag` of repository `name` (a registry that drops it).
    pub fn untag(&self, name: &str, tag: &str) {
        if let Some(repo) = lock(&self.shared.state).repositories.get_mut(name) {
            repo.tags.remove(tag);
        }
    }

    /// How many upload sessions are open (neither committed nor cancelled).
    pub fn open_uploads(&self) -> usize {
        lock(&self.shared.state).uploads.len()
    }

    /// Panics unless everything held is sound: every blob and manifest hashes to its digest,
    /// every tag names a manifest, and every manifest's blobs and children are there.
    #[track_caller]
    pub fn assert_consistent(&self) {
        let state = lock(&self.shared.state);
        for (digest, bytes) in &state.blobs {
            assert_eq!(&Digest::of(bytes).to_string(), digest, "a stored blob does not match its digest");
        }
        for (name, repo) in &state.repositories {
            for digest in &repo.blobs {
                assert!(state.blobs.contains_key(digest), "{name}: linked blob {digest} is not stored");
            }
            for (digest, manifest) in &repo.manifests {
                assert_eq!(&Digest::of(&manifest.bytes).to_string(), digest, "{name}: manifest digest");
                if let Err(missing) = references_present(repo, &manifest.bytes) {
                    panic!("{name}: manifest {digest} references {missing}, which the repository lacks");
                }
            }
            for (tag, digest) in &repo.tags {
                assert!(repo.manifests.contains_key(digest), "{name}: tag {tag} names a missing manifest");
            }
        }
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        // Wake the blocking accept; if this fails the listener is already gone.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let connections = std::mem::take(&mut *lock(&self.shared.connections));
        for handle in connections {
            let _ = handle.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.shutdown.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let conn_shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new().name("fake-registry-conn".into()).spawn(move || {
            // A client that went away is not the registry's failure.
            let _ = handle_connection(stream, &conn_shared);
        });
        let mut connections = lock(&shared.connections);
        connections.retain(|h| !h.is_finished());
        if let Ok(handle) = spawned {
            connections.push(handle);
        }
    }
}

/// What to do with one request, after faults are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Serve,
    Status(u16),
    WrongDigest,
    Truncate,
    Stall,
}

/// The action for the next request under `fault`, counting down `FailTimes`.
fn next_action(fault: &mut Fault) -> Action {
    match fault {
        Fault::Status(code) => Action::Status(*code),
        Fault::WrongDigest => Action::WrongDigest,
        Fault::Truncate => Action::Truncate,
        Fault::Stall => Action::Stall,
        Fault::FailTimes(0, _) => Action::Serve,
        Fault::FailTimes(n, inner) => {
            *n -= 1;
            next_action(inner)
        }
        Fault::AfterTimes(0, inner) => next_action(inner),
        Fault::AfterTimes(n, _) => {
            *n -= 1;
            Action::Serve
        }
    }
}

/// A parsed request.
struct Incoming {
    method: String,
    path: String,
    query: String,
    /// Header names lowercased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Incoming {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The first value of query parameter `name`, percent-decoded.
    fn param(&self, name: &str) -> Option<String> {
        params(&self.query).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// A response to send.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn new(status: u16) -> Reply {
        Reply { status, headers: Vec::new(), body: Vec::new() }
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    fn body(mut self, body: Vec<u8>) -> Reply {
        self.body = body;
        self
    }

    /// A distribution-spec error: `{"errors":[{"code":..,"message":..}]}`.
    fn error(status: u16, code: &str, message: &str) -> Reply {
        let body = serde_json::json!({ "errors": [{ "code": code, "message": message, "detail": null }] });
        Reply::new(status)
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(&body).expect("serialize an error body"))
    }
}

fn handle_connection(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_read_timeout(Some(SOCKET_TIMEOUT))?;
    stream.set_write_timeout(Some(SOCKET_TIMEOUT))?;
    let Some(request) = read_request(&mut stream)? else {
        return Ok(());
    };
    let action = {
        let mut state = lock(&shared.state);
        state.requests.push(Request {
            method: request.method.clone(),
            path: request.path.clone(),
            query: request.query.clone(),
        });
        let State { rules, global_fault, .. } = &mut *state;
        let rule = rules.iter_mut().find(|r| {
            r.method.as_deref().is_none_or(|m| m == request.method)
                && if r.prefix { request.path.starts_with(&r.path) } else { request.path == r.path }
        });
        match rule {
            Some(rule) => next_action(&mut rule.fault),
            None => global_fault.as_mut().map_or(Action::Serve, next_action),
        }
    };
    let head_only = request.method == "HEAD";
    match action {
        Action::Stall => {
            let start = Instant::now();
            while start.elapsed() < STALL_MAX && !shared.shutdown.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        }
        Action::Status(code) => {
            let (error, message) = error_code(code);
            let mut reply = Reply::error(code, error, message);
            if code == 401 {
                reply = reply.header("WWW-Authenticate", challenge(shared, &request, None));
            }
            send(&mut stream, &reply, head_only, false)
        }
        Action::Serve | Action::WrongDigest | Action::Truncate => {
            let mut reply = route(shared, &request);
            if action == Action::WrongDigest {
                reply.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("docker-content-digest"));
                reply.headers.push(("Docker-Content-Digest".into(), wrong_digest()));
            }
            send(&mut stream, &reply, head_only, action == Action::Truncate)
        }
    }
}

/// The distribution-spec error code and message for a status.
fn error_code(status: u16) -> (&'static str, &'static str) {
    match status {
        401 => ("UNAUTHORIZED", "authentication required"),
        403 => ("DENIED", "requested access to the resource is denied"),
        404 => ("NAME_UNKNOWN", "repository name not known to registry"),
        405 => ("UNSUPPORTED", "the operation is unsupported"),
        429 => ("TOOMANYREQUESTS", "too many requests"),
        _ => ("UNKNOWN", "unknown error"),
    }
}

/// Reads one request: the head, then a body by `Content-Length` or chunked encoding.
/// `None` if the client sent nothing (e.g. the wake-up connection made on drop).
fn read_request(stream: &mut TcpStream) -> io::Result<Option<Incoming>> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_REQUEST_HEAD {
            return Err(invalid("request head too large"));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut words = lines.next().unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or("").to_owned(), words.next().unwrap_or("").to_owned());
    if target.is_empty() {
        return Err(invalid("no request target"));
    }
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    if header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let chunked = header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length: u64 = match header("content-length") {
        Some(v) => v.parse().map_err(|_| invalid("bad content-length"))?,
        None => 0,
    };
    if length > MAX_REQUEST_BODY {
        return Err(invalid("request body too large"));
    }
    let mut reader = BufReader::new(io::Cursor::new(buf[head_end..].to_vec()).chain(&mut *stream));
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Err(invalid("chunked body ended early"));
            }
            let size_text = line.trim().split(';').next().unwrap_or("");
            let size = u64::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                // Trailers, up to the blank line.
                loop {
                    line.clear();
                    if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            if body.len() as u64 + size > MAX_REQUEST_BODY {
                return Err(invalid("request body too large"));
            }
            let start = body.len();
            body.resize(start + size as usize, 0);
            reader.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf)?;
        }
    } else {
        (&mut reader).take(length).read_to_end(&mut body)?;
        if (body.len() as u64) < length {
            return Err(invalid("request body ended early"));
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
    Ok(Some(Incoming { method, path: path.to_owned(), query: query.to_owned(), headers, body }))
}

/// Writes `reply` and half-closes. `head_only` sends no body (but its length); `truncate`
/// announces more than it sends (the whole body, or 64 bytes when it is empty), sends half.
fn send(stream: &mut TcpStream, reply: &Reply, head_only: bool, truncate: bool) -> io::Result<()> {
    let announced = if truncate && reply.body.is_empty() { 64 } else { reply.body.len() };
    let sent = match (head_only, truncate) {
        (true, _) => 0,
        (false, true) => reply.body.len() / 2,
        (false, false) => reply.body.len(),
    };
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {announced}\r\nConnection: close\r\n\r\n"));
    stream.write_all(head.as_bytes())?;
    stream.write_all(&reply.body[..sent])?;
    stream.flush()?;
    stream.shutdown(Shutdown::Write)
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// `key=value` pairs of a query, percent-decoded.
fn params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a `/v2/<name>/...` path addresses.
enum Route<'a> {
    /// `GET /v2/`.
    Base,
    /// `/v2/<name>/blobs/uploads/<id>` (`id` empty to start one).
    Upload {
        name: &'a str,
        id: &'a str,
    },
    Blob {
        name: &'a str,
        digest: &'a str,
    },
    Manifest {
        name: &'a str,
        reference: &'a str,
    },
    Referrers {
        name: &'a str,
        digest: &'a str,
    },
}

fn parse_route(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix("/v2/")?;
    if rest.is_empty() {
        return Some(Route::Base);
    }
    if let Some((name, id)) = rest.split_once("/blobs/uploads/") {
        return Some(Route::Upload { name, id });
    }
    if let Some((name, digest)) = rest.split_once("/blobs/") {
        return Some(Route::Blob { name, digest });
    }
    if let Some((name, reference)) = rest.split_once("/manifests/") {
        return Some(Route::Manifest { name, reference });
    }
    let (name, digest) = rest.split_once("/referrers/")?;
    Some(Route::Referrers { name, digest })
}

/// The `WWW-Authenticate` challenge for `request` (for repository `name`, if any).
fn challenge(shared: &Shared, request: &Incoming, name: Option<&str>) -> String {
    match &shared.auth {
        Auth::Bearer { .. } => {
            let mut value = format!("Bearer realm=\"http://{}/token\",service=\"fake\"", shared.addr);
            if let Some(name) = name {
                let actions = if matches!(request.method.as_str(), "GET" | "HEAD") { "pull" } else { "pull,push" };
                value.push_str(&format!(",scope=\"repository:{name}:{actions}\""));
            }
            value
        }
        Auth::Anonymous | Auth::Basic { .. } => "Basic realm=\"fake\"".to_owned(),
    }
}

fn basic_header(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// `Ok` if `request` may go on to repository `name` (or to `/v2/` itself), else the `401`.
fn authorize(shared: &Shared, state: &State, request: &Incoming, name: Option<&str>) -> Result<(), Reply> {
    let allowed = match &shared.auth {
        Auth::Anonymous => true,
        Auth::Basic { user, password } => {
            request.header("authorization") == Some(basic_header(user, password).as_str())
        }
        Auth::Bearer { .. } => {
            let granted = request
                .header("authorization")
                .and_then(|h| h.strip_prefix("Bearer "))
                .and_then(|t| state.tokens.get(t));
            match (granted, name) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(grants), Some(name)) => {
                    let action = if matches!(request.method.as_str(), "GET" | "HEAD") { "pull" } else { "push" };
                    grants.get(name).is_some_and(|actions| actions.contains(action))
                }
            }
        }
    };
    if allowed {
        return Ok(());
    }
    Err(Reply::error(401, "UNAUTHORIZED", "authentication required")
        .header("WWW-Authenticate", challenge(shared, request, name)))
}

/// Serves one request without faults.
fn route(shared: &Shared, request: &Incoming) -> Reply {
    let mut guard = lock(&shared.state);
    let state = &mut *guard;
    if request.path == "/token" {
        return token(shared, state, request);
    }
    let Some(route) = parse_route(&request.path) else {
        return Reply::error(404, "NOT_FOUND", "no such endpoint");
    };
    let name = match route {
        Route::Base => None,
        Route::Upload { name, .. }
        | Route::Blob { name, .. }
        | Route::Manifest { name, .. }
        | Route::Referrers { name, .. } => Some(name),
    };
    if let Err(reply) = authorize(shared, state, request, name) {
        return reply;
    }
    let method = request.method.as_str();
    match (method, route) {
        ("GET" | "HEAD", Route::Base) => Reply::new(200)
            .header("Content-Type", "application/json")
            .header("Docker-Distribution-API-Version", "registry/2.0")
            .body(b"{}".to_vec()),
        ("GET" | "HEAD", Route::Blob { name, digest }) => {
            let linked = state.repositories.get(name).is_some_and(|r| r.blobs.contains(digest));
            match state.blobs.get(digest) {
                Some(bytes) if linked => Reply::new(200)
                    .header("Content-Type", "application/octet-stream")
                    .header("Docker-Content-Digest", digest)
                    .body(bytes.clone()),
                _ => Reply::error(404, "BLOB_UNKNOWN", "blob unknown to registry"),
            }
        }
        ("POST", Route::Upload { name, id: "" }) => start_upload(state, request, name),
        (_, Route::Upload { name, id }) => {
            match state.uploads.get(id) {
                Some(upload) if upload.name == name => {}
                _ => return Reply::error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry"),
            }
            match method {
                "PATCH" => patch_upload(state, request, name, id),
                "PUT" => finish_upload(state, request, name, id),
                "GET" => {
                    let len = state.uploads[id].bytes.len();
                    Reply::new(204)
                        .header("Location", format!("/v2/{name}/blobs/uploads/{id}"))
                        .header("Range", format!("0-{}", len.saturating_sub(1)))
                        .header("Docker-Upload-UUID", id)
                }
                "DELETE" => {
                    state.uploads.remove(id);
                    Reply::new(204)
                }
                _ => Reply::error(405, "UNSUPPORTED", "the operation is unsupported"),
            }
        }
        ("PUT", Route::Manifest { name, reference }) => put_manifest(shared, state, request, name, reference),
        ("GET" | "HEAD", Route::Manifest { name, reference }) => {
            let repo = state.repositories.get(name);
            let digest = repo.and_then(|r| r.tags.get(reference)).map(String::as_str).unwrap_or(reference);
            match repo.and_then(|r| r.manifests.get(digest)) {
                Some(m) => Reply::new(200)
                    .header("Content-Type", m.media_type.clone())
                    .header("Docker-Content-Digest", digest)
                    .body(m.bytes.clone()),
                None => Reply::error(404, "MANIFEST_UNKNOWN", "manifest unknown"),
            }
        }
        ("GET", Route::Referrers { name, digest }) if shared.referrers_api.load(Ordering::SeqCst) => {
            referrers(state, name, digest)
        }
        _ => Reply::error(405, "UNSUPPORTED", "the operation is unsupported"),
    }
}

/// `GET /token?service=..&scope=..`: checks the Basic credentials, grants every scope asked.
fn token(shared: &Shared, state: &mut State, request: &Incoming) -> Reply {
    let Auth::Bearer { user, password } = &shared.auth else {
        return Reply::error(404, "NOT_FOUND", "no token service");
    };
    if request.header("authorization") != Some(basic_header(user, password).as_str()) {
        return Reply::error(401, "UNAUTHORIZED", "invalid username or password")
            .header("WWW-Authenticate", "Basic realm=\"fake-token\"");
    }
    let mut grants: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (key, value) in params(&request.query) {
        if key != "scope" {
            continue;
        }
        for scope in value.split(' ') {
            let mut parts = scope.splitn(3, ':');
            if let (Some("repository"), Some(name), Some(actions)) = (parts.next(), parts.next(), parts.next()) {
                grants.entry(name.to_owned()).or_default().extend(actions.split(',').map(str::to_owned));
            }
        }
    }
    let token = format!("fake-token-{}", state.tokens.len() + 1);
    state.tokens.insert(token.clone(), grants);
    let body = serde_json::json!({ "token": token, "access_token": token, "expires_in": 300 });
    Reply::new(200).header("Content-Type", "application/json").body(serde_json::to_vec(&body).expect("json"))
}

/// `POST /v2/<name>/blobs/uploads/`: a mount, a monolithic upload, or a new session.
fn start_upload(state: &mut State, request: &Incoming, name: &str) -> Reply {
    if let (Some(digest), Some(from)) = (request.param("mount"), request.param("from")) {
        let there = state.repositories.get(&from).is_some_and(|r| r.blobs.contains(&digest));
        if there {
            state.repositories.entry(name.to_owned()).or_default().blobs.insert(digest.clone());
            return Reply::new(201)
                .header("Location", format!("/v2/{name}/blobs/{digest}"))
                .header("Docker-Content-Digest", digest);
        }
    } else if let Some(digest) = request.param("digest") {
        return commit_blob(state, name, &digest, request.body.clone());
    }
    state.uploads_started += 1;
    let id = format!("upload-{}", state.uploads_started);
    state.uploads.insert(id.clone(), Upload { name: name.to_owned(), bytes: Vec::new() });
    Reply::new(202)
        .header("Location", format!("/v2/{name}/blobs/uploads/{id}"))
        .header("Range", "0-0")
        .header("Docker-Upload-UUID", id)
}

/// `PATCH` on a session: appends a chunk, which must start where the last one ended.
fn patch_upload(state: &mut State, request: &Incoming, name: &str, id: &str) -> Reply {
    let Some(upload) = state.uploads.get_mut(id) else {
        return Reply::error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry");
    };
    if let Some(range) = request.header("content-range") {
        let start = range.split('-').next().and_then(|s| s.trim().parse::<usize>().ok());
        if start != Some(upload.bytes.len()) {
            return Reply::error(416, "BLOB_UPLOAD_INVALID", "the chunk does not start where the upload ends")
                .header("Location", format!("/v2/{name}/blobs/uploads/{id}"))
                .header("Range", format!("0-{}", upload.bytes.len().saturating_sub(1)));
        }
    }
    upload.bytes.extend_from_slice(&request.body);
    Reply::new(202)
        .header("Location", format!("/v2/{name}/blobs/uploads/{id}"))
        .header("Range", format!("0-{}", upload.bytes.len().saturating_sub(1)))
        .header("Docker-Upload-UUID", id)
}

/// `PUT ...?digest=` on a session: the last bytes (if any), then the commit.
fn finish_upload(state: &mut State, request: &Incoming, name: &str, id: &str) -> Reply {
    let Some(mut upload) = state.uploads.remove(id) else {
        return Reply::error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry");
    };
    let Some(digest) = request.param("digest") else {
        return Reply::error(400, "DIGEST_INVALID", "the upload names no digest");
    };
    upload.bytes.extend_from_slice(&request.body);
    commit_blob(state, name, &digest, upload.bytes)
}

/// Stores `bytes` as blob `digest` of `name` if they hash to it, else `400 DIGEST_INVALID`.
fn commit_blob(state: &mut State, name: &str, digest: &str, bytes: Vec<u8>) -> Reply {
    if Digest::of(&bytes).to_string() != digest {
        return Reply::error(400, "DIGEST_INVALID", "provided digest did not match uploaded content");
    }
    state.blobs.insert(digest.to_owned(), bytes);
    state.repositories.entry(name.to_owned()).or_default().blobs.insert(digest.to_owned());
    Reply::new(201).header("Location", format!("/v2/{name}/blobs/{digest}")).header("Docker-Content-Digest", digest)
}

/// `Err(the digest)` of the first blob or child manifest `bytes` names that `repo` lacks.
fn references_present(repo: &Repository, bytes: &[u8]) -> Result<(), String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| "(not JSON)".to_owned())?;
    let digest_of = |d: &serde_json::Value| d["digest"].as_str().unwrap_or_default().to_owned();
    for child in value["manifests"].as_array().into_iter().flatten() {
        let digest = digest_of(child);
        if !repo.manifests.contains_key(&digest) {
            return Err(digest);
        }
    }
    let blobs = value.get("config").into_iter().chain(value["layers"].as_array().into_iter().flatten());
    for blob in blobs {
        let digest = digest_of(blob);
        if !repo.blobs.contains(&digest) {
            return Err(digest);
        }
    }
    Ok(())
}

/// `PUT /v2/<name>/manifests/<reference>`.
fn put_manifest(shared: &Shared, state: &mut State, request: &Incoming, name: &str, reference: &str) -> Reply {
    let digest = Digest::of(&request.body).to_string();
    if reference.starts_with("sha256:") && reference != digest {
        return Reply::error(400, "DIGEST_INVALID", "provided digest did not match uploaded content");
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&request.body) else {
        return Reply::error(400, "MANIFEST_INVALID", "manifest invalid");
    };
    let repo = state.repositories.entry(name.to_owned()).or_default();
    if let Err(missing) = references_present(repo, &request.body) {
        return Reply::error(400, "MANIFEST_BLOB_UNKNOWN", &format!("manifest references unknown {missing}"));
    }
    let media_type = match request.header("content-type") {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => value["mediaType"].as_str().unwrap_or_default().to_owned(),
    };
    repo.manifests.insert(digest.clone(), Manifest { media_type, bytes: request.body.clone() });
    if !reference.starts_with("sha256:") {
        repo.tags.insert(reference.to_owned(), digest.clone());
    }
    let mut reply = Reply::new(201)
        .header("Location", format!("/v2/{name}/manifests/{digest}"))
        .header("Docker-Content-Digest", digest);
    if let Some(subject) = value["subject"]["digest"].as_str() {
        if shared.referrers_api.load(Ordering::SeqCst) {
            reply = reply.header("OCI-Subject", subject);
        }
    }
    reply
}

/// `GET /v2/<name>/referrers/<digest>`: an index of the manifests whose subject is `digest`.
fn referrers(state: &State, name: &str, digest: &str) -> Reply {
    let mut descriptors = Vec::new();
    for (d, manifest) in state.repositories.get(name).map(|r| &r.manifests).into_iter().flatten() {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&manifest.bytes) else { continue };
        if value["subject"]["digest"].as_str() != Some(digest) {
            continue;
        }
        let artifact_type = value.get("artifactType").cloned().unwrap_or_else(|| value["config"]["mediaType"].clone());
        let mut descriptor = serde_json::json!({
            "mediaType": manifest.media_type,
            "digest": d,
            "size": manifest.bytes.len(),
            "artifactType": artifact_type,
        });
        if let Some(annotations) = value.get("annotations") {
            descriptor["annotations"] = annotations.clone();
        }
        descriptors.push(descriptor);
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": descriptors,
    });
    Reply::new(200)
        .header("Content-Type", "application/vnd.oci.image.index.v1+json")
        .body(serde_json::to_vec(&index).expect("json"))
}

//! The remote cache: the action cache and content-addressed store shared over HTTP, in the
//! layout of Bazel's HTTP remote cache protocol.
//!
//! ```text
//! GET/HEAD/PUT <base>/cas/<64 hex>   a blob, named by the sha256 of its bytes
//! GET/PUT      <base>/ac/<64 hex>    an action result, named by the action key
//! ```
//!
//! Any server that stores what it is PUT and serves it back works; a plain WebDAV server
//! (nginx) is enough. The `/ac/` bodies are our own [`ActionResult`] JSON, **not** Bazel's
//! protobuf `ActionResult`: the layout is Bazel's, so one server can hold both, but only
//! executor understands executor's entries (and a Bazel entry read by executor is a miss
//! with a warning, because it does not parse).
//!
//! Trust: the server is never trusted for bytes. Every blob is streamed into a store
//! temporary file while hashed and committed only if its sha256 is the one asked for, so a
//! lying or corrupt server cannot poison the local store; such a blob is a miss, reported
//! once per digest. Blobs are verified again before they are uploaded, so a corrupt local
//! blob is never shared.
//!
//! Nor is it trusted to map an action key to a result (it could answer the x86_64 layer's
//! key with the aarch64 layer's result, every blob intact). [`ResultTrust`] decides:
//! - **signed** (`--remote-cache-key PUB`): an `/ac/` entry is used only if it carries an
//!   Ed25519 signature, by one of the given keys, over the action key and the exact result
//!   bytes ([`signed_message`]). Writers sign with `--remote-cache-signing-key KEY`. A result
//!   served under another key, unsigned, or signed by another key is a miss with a warning.
//! - **blobs only** (the default): `/ac/` is never read. The cache still serves blobs whose
//!   digest the build already knows and checks completely (packages pinned by the lockfile).
//! - **the server** (`--remote-cache-trust`): any well-formed entry is used, as Bazel does;
//!   whoever can write to the server can then put any bytes into outputs.
//!
//! `/ac/` bodies are [`SignedEntry`] JSON: the result as a JSON string (the signed bytes),
//! and the signature if the writer had a key.
//!
//! Degrading: the remote cache only ever saves work. A server that is down, refuses the
//! connection, times out, breaks a transfer or answers 5xx disables the remote cache for the
//! rest of the command (after [`RemoteCacheOptions::max_failures_before_disable`] such
//! failures), with one warning line, and the build goes on locally. A 404 is a plain miss.
//! A server that refuses uploads (401, 403, 405) keeps serving downloads. No method returns
//! a network error.
//!
//! Every method takes `&self`: one [`RemoteCache`] serves all worker threads of a build.

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::action::OutputKind;
use crate::digest::{hash_reader, Digest, HashingWriter};
use crate::fetch::lowercase_first;
use crate::store::{ActionResult, OutputRecord, Store, StoreError};

/// Bytes moved per read; as in [`crate::fetch`].
const BUFFER_SIZE: usize = 256 * 1024;

/// The largest action-cache entry accepted. Ours are a few hundred bytes; anything near this
/// is not ours.
const MAX_ACTION_RESULT: u64 = 16 * 1024 * 1024;

/// Timeouts and tolerance of [`RemoteCache`]. Short by default: a cache that answers slowly
/// is worse than none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCacheOptions {
    /// Longest time to resolve the host and connect.
    pub connect_timeout: Duration,
    /// Longest time without receiving (or sending) any data once connected.
    pub read_timeout: Duration,
    /// Failures (down, refused, timeout, 5xx, broken transfer) after which the remote cache
    /// is off for the rest of the command. At least 1.
    pub max_failures_before_disable: u32,
}

impl Default for RemoteCacheOptions {
    fn default() -> Self {
        RemoteCacheOptions {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(10),
            max_failures_before_disable: 1,
        }
    }
}

/// The `--remote-cache` URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteCacheError {
    /// Not `http(s)://host[:port][/prefix]`.
    #[error("`{url}` is not a remote cache url: expected `http://HOST[:PORT][/PREFIX]` or `https://...`")]
    InvalidUrl { url: String },
    /// Credentials would be printed in every warning, so they are not accepted in the URL.
    #[error("remote cache url `{url}` holds credentials: put the cache behind a local proxy instead; urls are printed in warnings")]
    Credentials { url: String },
}

/// Counters of one command's use of the remote cache.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RemoteCacheStats {
    /// Actions whose result and every output blob were downloaded and verified.
    pub hits: u64,
    /// Actions asked for and not (fully) served while the cache was enabled.
    pub misses: u64,
    /// Action results uploaded (after all their blobs).
    pub uploads: u64,
    /// Blobs uploaded (blobs the server already held are not counted).
    pub blobs_uploaded: u64,
    /// Verified blob bytes downloaded into the store.
    pub bytes_downloaded: u64,
    /// Blob bytes uploaded.
    pub bytes_uploaded: u64,
    /// Whether the remote cache was disabled by a failure.
    pub disabled: bool,
}

/// Where warnings go: stderr by default, a collector in tests.
/// Where the remote cache's warning lines go.
pub type Reporter = Box<dyn Fn(&str) + Send + Sync>;

/// Which action results from the server may be used. See the module documentation.
#[derive(Debug, Clone, Default)]
pub enum ResultTrust {
    /// No action result is read; blobs are fetched only by a digest the build knows.
    #[default]
    BlobsOnly,
    /// Results signed by one of these keys.
    Signed(Vec<ed25519_dalek::VerifyingKey>),
    /// Any well-formed result (`--remote-cache-trust`).
    Server,
}

/// An `/ac/` entry: the result JSON as a string (exactly the bytes signed) and the writer's
/// signature, if it signs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedEntry {
    /// Always [`ENTRY_FORMAT`].
    pub format: String,
    /// The [`ActionResult`] as JSON.
    pub result: String,
    /// Base64 of the writer's 32-byte Ed25519 public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Base64 of the Ed25519 signature over [`signed_message`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// The `format` of an [`SignedEntry`].
pub const ENTRY_FORMAT: &str = "executor-action-result-v1";

/// What a writer signs for action `key`: a domain prefix, the key's 32 bytes and the result
/// bytes, so a signature cannot be moved to another action or another result.
pub fn signed_message(key: &Digest, result: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(64 + result.len());
    message.extend_from_slice(b"executor remote cache action result v1\0");
    message.extend_from_slice(&key.bytes());
    message.extend_from_slice(result);
    message
}

/// Reads an Ed25519 public key: PEM `PUBLIC KEY` (as `openssl pkey -pubout` writes it).
pub fn read_verifying_key(path: &std::path::Path) -> Result<ed25519_dalek::VerifyingKey, String> {
    use ed25519_dalek::pkcs8::DecodePublicKey as _;
    let pem = fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    ed25519_dalek::VerifyingKey::from_public_key_pem(pem.trim()).map_err(|_| {
        format!(
            "`{}` is not an Ed25519 public key in PEM (`-----BEGIN PUBLIC KEY-----`); make one with `openssl pkey -in cache.key -pubout -out cache.pub`",
            path.display()
        )
    })
}

/// Reads an Ed25519 private key: PEM `PRIVATE KEY` (PKCS#8, as `openssl genpkey -algorithm
/// ed25519` writes it). The key is never printed.
pub fn read_signing_key(path: &std::path::Path) -> Result<ed25519_dalek::SigningKey, String> {
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    let pem = fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim()).map_err(|_| {
        format!(
            "`{}` is not an unencrypted Ed25519 private key in PEM (PKCS#8); make one with `openssl genpkey -algorithm ed25519 -out cache.key`",
            path.display()
        )
    })
}

/// A client of one remote cache. See the module documentation.
pub struct RemoteCache {
    /// The URL without a trailing `/`; `<base>/cas/<hex>` names a blob.
    base: String,
    /// The options it was built with.
    opts: RemoteCacheOptions,
    /// One agent, so connections are pooled across requests and threads.
    agent: ureq::Agent,
    /// Set once, by the failure that turns the cache off; never cleared.
    disabled: AtomicBool,
    /// Set once, when the server refuses an upload; downloads go on.
    uploads_refused: AtomicBool,
    /// Failures so far (only the count matters, not which requests).
    failures: AtomicU32,
    hits: AtomicU64,
    misses: AtomicU64,
    uploads: AtomicU64,
    blobs_uploaded: AtomicU64,
    bytes_downloaded: AtomicU64,
    bytes_uploaded: AtomicU64,
    /// Blobs known to be on the server during this command: not asked about again.
    present: Mutex<HashSet<Digest>>,
    /// Blobs and entries already reported as corrupt: each is reported once.
    reported: Mutex<HashSet<Digest>>,
    /// Receives each warning line, without a trailing newline.
    reporter: Mutex<Reporter>,
    /// Which action results may be used.
    trust: ResultTrust,
    /// Signs uploaded action results, when given.
    signer: Option<ed25519_dalek::SigningKey>,
}

impl fmt::Debug for RemoteCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteCache").field("base", &self.base).field("stats", &self.stats()).finish()
    }
}

/// Why one request did not return what was asked for.
#[derive(Debug)]
enum Failure {
    /// 404: the server does not hold it. Not a failure of the server.
    Missing,
    /// The server holds something under `digest` (a blob or an action key), but not what
    /// was asked for: wrong bytes, a malformed entry.
    Corrupt { digest: Digest, what: String },
    /// The server refused an upload (401, 403, 405).
    Refused(String),
    /// Down, refused connection, timeout, broken transfer, 5xx, unexpected status.
    Unavailable(String),
    /// The local store could not be read or written.
    Local(StoreError),
}

/// The `/ac/` body for action `key`: the result, signed when `signer` is given.
pub fn encode_entry(
    key: &Digest,
    result: &ActionResult,
    signer: Option<&ed25519_dalek::SigningKey>,
) -> Result<Vec<u8>, serde_json::Error> {
    use base64::Engine as _;
    use ed25519_dalek::Signer as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let result = serde_json::to_string(result)?;
    let (key_b64, signature) = match signer {
        Some(signer) => {
            let signature = signer.sign(&signed_message(key, result.as_bytes()));
            (Some(b64.encode(signer.verifying_key().as_bytes())), Some(b64.encode(signature.to_bytes())))
        }
        None => (None, None),
    };
    serde_json::to_vec(&SignedEntry { format: ENTRY_FORMAT.to_owned(), result, key: key_b64, signature })
}

/// How a command uses a remote cache: `--remote-cache` and the flags that say whose action
/// results to trust and how to sign uploads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteCacheConfig {
    /// `--remote-cache URL`.
    pub url: String,
    /// `--remote-cache-key PUB`, each a PEM Ed25519 public key.
    pub keys: Vec<std::path::PathBuf>,
    /// `--remote-cache-signing-key KEY`.
    pub signing_key: Option<std::path::PathBuf>,
    /// `--remote-cache-trust`.
    pub trust_server: bool,
}

impl RemoteCacheConfig {
    /// The client: the URL checked, the keys read. Errors are usage errors.
    pub fn open(&self, opts: RemoteCacheOptions) -> Result<RemoteCache, String> {
        if self.trust_server && !self.keys.is_empty() {
            return Err("`--remote-cache-trust` accepts every result, so `--remote-cache-key` would not be checked: pass one or the other".into());
        }
        let mut cache = RemoteCache::new(&self.url, opts).map_err(|e| format!("--remote-cache: {e}"))?;
        let trust = if self.trust_server {
            ResultTrust::Server
        } else if self.keys.is_empty() {
            ResultTrust::BlobsOnly
        } else {
            let keys = self
                .keys
                .iter()
                .map(|p| read_verifying_key(p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("--remote-cache-key: {e}"))?;
            ResultTrust::Signed(keys)
        };
        cache = cache.with_trust(trust);
        if let Some(path) = &self.signing_key {
            cache = cache.with_signer(read_signing_key(path).map_err(|e| format!("--remote-cache-signing-key: {e}"))?);
        }
        Ok(cache)
    }
}

/// `host[:port]` of `url` (`scheme://host[:port][/path]`).
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or_default()
}

impl RemoteCache {
    /// A client for the cache at `base_url` (`http(s)://host[:port][/prefix]`). Nothing is
    /// sent until the first lookup.
    pub fn new(base_url: &str, opts: RemoteCacheOptions) -> Result<Self, RemoteCacheError> {
        let base = validate_url(base_url)?;
        // Statuses come back as responses: a miss, a refusal or a failure.
        let agent = crate::fetch::agent(crate::fetch::AgentOptions {
            host: Some(host_of(&base)),
            connect_timeout: opts.connect_timeout,
            read_timeout: opts.read_timeout,
            follow_redirects: true,
            idle_per_host: None,
        });
        Ok(RemoteCache {
            base,
            opts: RemoteCacheOptions { max_failures_before_disable: opts.max_failures_before_disable.max(1), ..opts },
            agent,
            disabled: AtomicBool::new(false),
            uploads_refused: AtomicBool::new(false),
            failures: AtomicU32::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            uploads: AtomicU64::new(0),
            blobs_uploaded: AtomicU64::new(0),
            bytes_downloaded: AtomicU64::new(0),
            bytes_uploaded: AtomicU64::new(0),
            present: Mutex::new(HashSet::new()),
            reported: Mutex::new(HashSet::new()),
            reporter: Mutex::new(Box::new(|line| eprintln!("{line}"))),
            trust: ResultTrust::default(),
            signer: None,
        })
    }

    /// Sets which action results may be used (default: none, blobs only).
    pub fn with_trust(mut self, trust: ResultTrust) -> Self {
        self.trust = trust;
        self
    }

    /// Signs the action results this client uploads.
    pub fn with_signer(mut self, key: ed25519_dalek::SigningKey) -> Self {
        self.signer = Some(key);
        self
    }

    /// Whether action results are read at all (not [`ResultTrust::BlobsOnly`]).
    pub fn reads_results(&self) -> bool {
        !matches!(self.trust, ResultTrust::BlobsOnly)
    }

    /// Sends warning lines to `reporter` instead of stderr (a progress bar's `println`, or a
    /// collector in tests).
    pub fn with_reporter(self, reporter: impl Fn(&str) + Send + Sync + 'static) -> Self {
        drop(self.replace_reporter(Box::new(reporter)));
        self
    }

    /// Like [`with_reporter`](Self::with_reporter), on a shared cache, returning the reporter
    /// it replaces: the builder sends the warnings of a build above its progress bar, then
    /// puts the previous reporter back.
    pub fn replace_reporter(&self, reporter: Reporter) -> Reporter {
        std::mem::replace(&mut *self.reporter.lock().unwrap_or_else(|e| e.into_inner()), reporter)
    }

    /// The base URL, without a trailing `/`.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The options in use.
    pub fn options(&self) -> &RemoteCacheOptions {
        &self.opts
    }

    /// False once a failure turned the cache off for the rest of the command.
    pub fn is_enabled(&self) -> bool {
        !self.disabled.load(Ordering::Relaxed)
    }

    /// Whether results are still being uploaded (enabled, and uploads not refused).
    pub fn uploads_enabled(&self) -> bool {
        self.is_enabled() && !self.uploads_refused.load(Ordering::Relaxed)
    }

    /// The counters so far.
    pub fn stats(&self) -> RemoteCacheStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RemoteCacheStats {
            hits: get(&self.hits),
            misses: get(&self.misses),
            uploads: get(&self.uploads),
            blobs_uploaded: get(&self.blobs_uploaded),
            bytes_downloaded: get(&self.bytes_downloaded),
            bytes_uploaded: get(&self.bytes_uploaded),
            disabled: !self.is_enabled(),
        }
    }

    // ---- The pair the builder calls -------------------------------------------------------

    /// The result of action `key` with every output blob downloaded, verified and committed
    /// into `store`, or `None` (a miss, or the cache is off). `expected` are the action's
    /// declared output kinds: an entry of another shape is not used. Blobs the store already
    /// holds are not downloaded again (the builder verifies them as it materializes).
    pub fn fetch_action(&self, key: &Digest, expected: &[OutputKind], store: &Store) -> Option<ActionResult> {
        if !self.is_enabled() || !self.reads_results() {
            return None;
        }
        let result = match self.try_fetch_action(key, expected, store) {
            Ok(result) => Some(result),
            Err(failure) => {
                self.absorb(failure);
                None
            }
        };
        // A failure that turned the cache off is not a miss: the cache was not asked.
        if result.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        } else if self.is_enabled() {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Uploads the outputs of action `key` (every file blob, and for a directory every file
    /// of its tree and then the tree blob), then the action result, so the server never
    /// holds an entry whose blobs it lacks. Returns whether the entry was uploaded. Never
    /// fails the build: problems become warnings (or a miss next time).
    pub fn upload_action(&self, key: &Digest, result: &ActionResult, store: &Store) -> bool {
        if !self.uploads_enabled() {
            return false;
        }
        match self.try_upload_action(key, result, store) {
            Ok(()) => {
                self.uploads.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(failure) => {
                self.absorb(failure);
                false
            }
        }
    }

    // ---- Single requests ------------------------------------------------------------------

    /// `GET /ac/<key>`: the recorded result of an action, if the server holds a well-formed
    /// one.
    pub fn get_action(&self, key: &Digest) -> Option<ActionResult> {
        if !self.is_enabled() || !self.reads_results() {
            return None;
        }
        self.try_get_action(key).map_err(|f| self.absorb(f)).ok()
    }

    /// `PUT /ac/<key>`. Call only after every blob the result names is on the server
    /// ([`RemoteCache::upload_action`] does both).
    pub fn put_action(&self, key: &Digest, result: &ActionResult) -> bool {
        if !self.uploads_enabled() {
            return false;
        }
        self.try_put_action(key, result).map_err(|f| self.absorb(f)).is_ok()
    }

    /// `HEAD /cas/<digest>`: whether the server holds the blob (with `size` bytes, when
    /// given: a short blob there is as good as none and gets overwritten by an upload).
    pub fn has_blob(&self, digest: &Digest, size: Option<u64>) -> bool {
        if !self.is_enabled() {
            return false;
        }
        self.try_has_blob(digest, size).map_err(|f| self.absorb(f)).unwrap_or(false)
    }

    /// `GET /cas/<digest>` into `store`: streamed to a temporary file while hashed, and
    /// committed only if the bytes are the ones `digest` names (and `size_hint` long, when
    /// given). `Ok(false)` for a miss, a corrupt blob or an unavailable server; `Err` only
    /// when the local store cannot be written.
    pub fn get_blob_into_store(
        &self,
        digest: &Digest,
        size_hint: Option<u64>,
        store: &Store,
    ) -> Result<bool, StoreError> {
        if !self.is_enabled() {
            return Ok(false);
        }
        match self.try_get_blob(digest, size_hint, store) {
            Ok(()) => Ok(true),
            Err(Failure::Local(e)) => Err(e),
            Err(failure) => {
                self.absorb(failure);
                Ok(false)
            }
        }
    }

    /// `PUT /cas/<digest>` from `store`, unless `HEAD` says the server holds it already. The
    /// local blob is verified first. `Ok(true)` when the server holds the blob afterwards;
    /// `Err` only when the local store cannot be read.
    pub fn put_blob_from_store(&self, digest: &Digest, store: &Store) -> Result<bool, StoreError> {
        if !self.uploads_enabled() {
            return Ok(false);
        }
        match self.try_put_blob(digest, store) {
            Ok(()) => Ok(true),
            Err(Failure::Local(e)) => Err(e),
            Err(failure) => {
                self.absorb(failure);
                Ok(false)
            }
        }
    }

    // ---- Implementation -------------------------------------------------------------------

    fn try_fetch_action(&self, key: &Digest, expected: &[OutputKind], store: &Store) -> Result<ActionResult, Failure> {
        let result = self.try_get_action(key)?;
        if !shape_matches(&result, expected) {
            return Err(Failure::Corrupt {
                digest: *key,
                what: format!("action result {key} does not match the action's declared outputs; ignoring it"),
            });
        }
        for output in &result.outputs {
            match output {
                OutputRecord::File { digest, size, .. } => self.ensure_blob(digest, Some(*size), store)?,
                OutputRecord::Dir { digest } => {
                    if !store.blob_path(digest).is_file() {
                        self.try_get_blob(digest, None, store)?;
                    }
                    // A tree that does not verify or parse is evicted by the store's read.
                    let tree = store.get_tree(digest).map_err(Failure::Local)?.ok_or_else(|| Failure::Corrupt {
                        digest: *digest,
                        what: format!("tree {digest} does not parse as a directory listing; ignoring it"),
                    })?;
                    for entry in &tree.entries {
                        if let Some(d) = &entry.digest {
                            self.ensure_blob(d, Some(entry.size), store)?;
                        }
                    }
                }
            }
        }
        Ok(result)
    }

    /// Downloads a blob unless the store holds it with the right size.
    fn ensure_blob(&self, digest: &Digest, size: Option<u64>, store: &Store) -> Result<(), Failure> {
        match size {
            Some(size) if store.has_blob(digest, size) => Ok(()),
            _ => self.try_get_blob(digest, size, store),
        }
    }

    fn try_upload_action(&self, key: &Digest, result: &ActionResult, store: &Store) -> Result<(), Failure> {
        for output in &result.outputs {
            match output {
                OutputRecord::File { digest, .. } => self.try_put_blob(digest, store)?,
                OutputRecord::Dir { digest } => {
                    let tree = store.get_tree(digest).map_err(Failure::Local)?.ok_or_else(|| {
                        Failure::Local(StoreError::Io(executor_base::io::PathError::new(
                            "cannot upload the directory listing",
                            store.blob_path(digest),
                            io::Error::other("missing or corrupt in the local cache"),
                        )))
                    })?;
                    for d in tree.entries.iter().filter_map(|e| e.digest.as_ref()) {
                        self.try_put_blob(d, store)?;
                    }
                    self.try_put_blob(digest, store)?;
                }
            }
        }
        self.try_put_action(key, result)
    }

    fn try_get_action(&self, key: &Digest) -> Result<ActionResult, Failure> {
        let path = format!("/ac/{}", key.hex());
        let response = self.agent.get(self.url_of(&path)).call().map_err(|e| self.request_failure("GET", &path, e))?;
        match response.status().as_u16() {
            200 => {}
            404 => return Err(Failure::Missing),
            status => return Err(Failure::Unavailable(format!("GET {path}: {}", describe_status(status)))),
        }
        let body = response.into_body();
        let expected = body.content_length();
        let mut bytes = Vec::new();
        let received = copy_body(body.into_reader(), &mut bytes, MAX_ACTION_RESULT)
            .map_err(|e| self.body_failure(&path, key, e))?;
        check_length(&path, expected, received)?;
        let corrupt = |what: String| Failure::Corrupt { digest: *key, what };
        let entry: SignedEntry = serde_json::from_slice(&bytes).map_err(|e| {
            corrupt(format!(
                "action result {key} is not executor's json (a bazel entry, or an older executor's?): {e}; ignoring it"
            ))
        })?;
        if entry.format != ENTRY_FORMAT {
            return Err(corrupt(format!(
                "action result {key} has format `{}`, not `{ENTRY_FORMAT}`; ignoring it",
                entry.format
            )));
        }
        if let ResultTrust::Signed(keys) = &self.trust {
            self.check_signature(key, &entry, keys)
                .map_err(|why| corrupt(format!("action result {key} {why}; ignoring it")))?;
        }
        serde_json::from_str(&entry.result)
            .map_err(|e| corrupt(format!("action result {key} does not parse: {e}; ignoring it")))
    }

    /// Whether `entry` is signed by one of `keys` for action `key`.
    fn check_signature(
        &self,
        key: &Digest,
        entry: &SignedEntry,
        keys: &[ed25519_dalek::VerifyingKey],
    ) -> Result<(), String> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let (Some(public), Some(signature)) = (&entry.key, &entry.signature) else {
            return Err("is not signed (the writer has no --remote-cache-signing-key; pass --remote-cache-trust to accept unsigned results)".into());
        };
        let public: [u8; 32] =
            b64.decode(public).ok().and_then(|b| b.try_into().ok()).ok_or("names a malformed signing key")?;
        let Some(verifier) = keys.iter().find(|k| k.as_bytes() == &public) else {
            return Err("is signed by a key not given with --remote-cache-key".into());
        };
        let signature: [u8; 64] =
            b64.decode(signature).ok().and_then(|b| b.try_into().ok()).ok_or("has a malformed signature")?;
        verifier
            .verify_strict(
                &signed_message(key, entry.result.as_bytes()),
                &ed25519_dalek::Signature::from_bytes(&signature),
            )
            .map_err(|_| {
                "has a signature that does not verify: it was made for another action or another result".to_owned()
            })
    }

    fn try_put_action(&self, key: &Digest, result: &ActionResult) -> Result<(), Failure> {
        let path = format!("/ac/{}", key.hex());
        let bytes = encode_entry(key, result, self.signer.as_ref()).map_err(|e| {
            Failure::Local(StoreError::Io(executor_base::io::PathError::new(
                "cannot encode the action result for",
                std::path::PathBuf::from(path.clone()),
                io::Error::other(e),
            )))
        })?;
        let response =
            self.agent.put(self.url_of(&path)).send(&bytes[..]).map_err(|e| self.request_failure("PUT", &path, e))?;
        put_status(&path, response.status().as_u16())
    }

    fn try_has_blob(&self, digest: &Digest, size: Option<u64>) -> Result<bool, Failure> {
        if self.known_present(digest) {
            return Ok(true);
        }
        let path = format!("/cas/{}", digest.hex());
        let response =
            self.agent.head(self.url_of(&path)).call().map_err(|e| self.request_failure("HEAD", &path, e))?;
        match response.status().as_u16() {
            200 => {}
            404 => return Ok(false),
            status => return Err(Failure::Unavailable(format!("HEAD {path}: {}", describe_status(status)))),
        }
        // The header itself: ureq reports no body length for a HEAD.
        let length = response
            .headers()
            .get(ureq::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let present = match (size, length) {
            (Some(want), Some(got)) => want == got,
            _ => true,
        };
        if present {
            self.note_present(digest);
        }
        Ok(present)
    }

    fn try_get_blob(&self, digest: &Digest, size_hint: Option<u64>, store: &Store) -> Result<(), Failure> {
        let path = format!("/cas/{}", digest.hex());
        let response = self.agent.get(self.url_of(&path)).call().map_err(|e| self.request_failure("GET", &path, e))?;
        match response.status().as_u16() {
            200 => {}
            404 => return Err(Failure::Missing),
            status => return Err(Failure::Unavailable(format!("GET {path}: {}", describe_status(status)))),
        }
        let body = response.into_body();
        let expected = body.content_length();
        if let (Some(want), Some(announced)) = (size_hint, expected) {
            if want != announced {
                return Err(Failure::Corrupt {
                    digest: *digest,
                    what: format!("blob {digest} is {announced} bytes on the server, expected {want}; ignoring it"),
                });
            }
        }
        let tmp = store.temp_path("remote");
        let write_err = |source| {
            Failure::Local(StoreError::Io(executor_base::io::PathError::new("cannot write", tmp.clone(), source)))
        };
        let file = File::create(&tmp).map_err(write_err)?;
        let mut out = HashingWriter::new(BufWriter::with_capacity(BUFFER_SIZE, file));
        // A blob longer than its recorded size is wrong; stop reading it there.
        let limit = size_hint.map_or(u64::MAX, |s| s.saturating_add(1));
        let copied = copy_body(body.into_reader(), &mut out, limit);
        let (got, received, buffered) = out.finish();
        let flushed = buffered.into_inner().map_err(|e| e.into_error());
        let outcome = match (copied, flushed) {
            (Err(CopyError::Write(e)), _) | (Ok(_), Err(e)) => Err(write_err(e)),
            (Err(e), _) => Err(self.body_failure(&path, digest, e)),
            (Ok(_), Ok(_)) => check_length(&path, expected, received).and_then(|()| {
                if got != *digest || size_hint.is_some_and(|s| s != received) {
                    Err(Failure::Corrupt {
                        digest: *digest,
                        what: format!(
                            "blob {digest} does not match its digest (got {got}, {received} bytes); ignoring it"
                        ),
                    })
                } else {
                    Ok(())
                }
            }),
        };
        if let Err(failure) = outcome {
            let _ = fs::remove_file(&tmp);
            return Err(failure);
        }
        if store.has_blob(digest, received) {
            // Another thread or process committed it meanwhile: same bytes.
            let _ = fs::remove_file(&tmp);
        } else {
            store.commit_blob(&tmp, digest).map_err(Failure::Local)?;
        }
        self.bytes_downloaded.fetch_add(received, Ordering::Relaxed);
        self.note_present(digest);
        Ok(())
    }

    fn try_put_blob(&self, digest: &Digest, store: &Store) -> Result<(), Failure> {
        let local = store.blob_path(digest);
        let read_err = |source| {
            Failure::Local(StoreError::Io(executor_base::io::PathError::new("cannot read", local.clone(), source)))
        };
        // Never share bytes that do not match their name.
        let (got, size) = File::open(&local).and_then(hash_reader).map_err(read_err)?;
        if got != *digest {
            store.evict(digest);
            return Err(Failure::Local(StoreError::Io(executor_base::io::PathError::new(
                "not uploading corrupt blob",
                local.clone(),
                io::Error::other(format!("its bytes hash to {got}; evicted")),
            ))));
        }
        // A blob this command found corrupt on the server is overwritten without asking: its
        // size may be right, so `HEAD` would call it present and the server would stay wrong.
        let corrupt_there = self.reported.lock().map(|set| set.contains(digest)).unwrap_or(false);
        if !corrupt_there && self.try_has_blob(digest, Some(size))? {
            return Ok(());
        }
        let path = format!("/cas/{}", digest.hex());
        let file = File::open(&local).map_err(read_err)?;
        let response =
            self.agent.put(self.url_of(&path)).send(&file).map_err(|e| self.request_failure("PUT", &path, e))?;
        put_status(&path, response.status().as_u16())?;
        self.blobs_uploaded.fetch_add(1, Ordering::Relaxed);
        self.bytes_uploaded.fetch_add(size, Ordering::Relaxed);
        self.note_present(digest);
        Ok(())
    }

    fn url_of(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn known_present(&self, digest: &Digest) -> bool {
        self.present.lock().map(|set| set.contains(digest)).unwrap_or(false)
    }

    fn note_present(&self, digest: &Digest) {
        if let Ok(mut set) = self.present.lock() {
            set.insert(*digest);
        }
    }

    /// Turns a failure into its effect: nothing for a miss, a warning per corrupt item, or a
    /// failure that may disable the cache.
    fn absorb(&self, failure: Failure) {
        match failure {
            Failure::Missing => {}
            Failure::Corrupt { digest, what } => {
                let first = self.reported.lock().map(|mut set| set.insert(digest)).unwrap_or(true);
                if first {
                    self.warn(&format!("warning: remote cache {}: {what}", self.base));
                }
            }
            Failure::Refused(reason) => {
                if !self.uploads_refused.swap(true, Ordering::Relaxed) {
                    self.warn(&format!("warning: remote cache {}: {reason}; not uploading", self.base));
                }
            }
            Failure::Unavailable(reason) => {
                let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if failures >= self.opts.max_failures_before_disable && !self.disabled.swap(true, Ordering::Relaxed) {
                    self.warn(&format!("warning: remote cache {}: {reason}; building locally", self.base));
                }
            }
            Failure::Local(e) => self.warn(&format!("warning: remote cache {}: {e}; building locally", self.base)),
        }
    }

    fn warn(&self, line: &str) {
        (self.reporter.lock().unwrap_or_else(|e| e.into_inner()))(line);
    }

    /// Classifies a failure before the response headers arrived.
    fn request_failure(&self, method: &str, path: &str, err: ureq::Error) -> Failure {
        let reason = match err {
            ureq::Error::Timeout(which) => self.describe_timeout(which),
            ureq::Error::HostNotFound => "cannot resolve the host".to_owned(),
            ureq::Error::Io(e) if e.to_string().contains("failed to lookup address") => {
                "cannot resolve the host".to_owned()
            }
            ureq::Error::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            ureq::Error::Io(e) => lowercase_first(&e.to_string()),
            ureq::Error::ConnectionFailed => "connection failed".to_owned(),
            other => lowercase_first(&other.to_string()),
        };
        Failure::Unavailable(format!("{method} {path}: {reason}"))
    }

    /// Classifies a failure while the body of `GET path` (naming `digest`) streamed in.
    fn body_failure(&self, path: &str, digest: &Digest, err: CopyError) -> Failure {
        let reason = match err {
            CopyError::OverLimit(limit) => {
                return Failure::Corrupt {
                    digest: *digest,
                    what: format!("GET {path}: the body is longer than {} bytes; ignoring it", limit - 1),
                }
            }
            CopyError::Write(e) => lowercase_first(&e.to_string()),
            CopyError::Read(e, received) => match ureq::Error::from(e) {
                ureq::Error::Timeout(which) => self.describe_timeout(which),
                ureq::Error::Io(e) => {
                    format!("connection broke after {received} bytes of the body: {}", lowercase_first(&e.to_string()))
                }
                other => format!("connection broke after {received} bytes of the body: {other}"),
            },
        };
        Failure::Unavailable(format!("GET {path}: {reason}"))
    }

    fn describe_timeout(&self, which: ureq::Timeout) -> String {
        match which {
            ureq::Timeout::Resolve | ureq::Timeout::Connect => {
                format!("cannot connect within {:?}", self.opts.connect_timeout)
            }
            _ => format!("timed out after {:?} without progress", self.opts.read_timeout),
        }
    }
}

/// Whether an entry's outputs have the kinds the action declares, in order.
fn shape_matches(result: &ActionResult, expected: &[OutputKind]) -> bool {
    result.outputs.len() == expected.len()
        && result.outputs.iter().zip(expected).all(|(record, kind)| match (record, kind) {
            (OutputRecord::File { executable, .. }, OutputKind::File { executable: want }) => executable == want,
            (OutputRecord::Dir { .. }, OutputKind::Dir) => true,
            _ => false,
        })
}

/// The accepted status of a PUT (nginx: 201 new, 204 overwritten).
fn put_status(path: &str, status: u16) -> Result<(), Failure> {
    match status {
        200..=299 => Ok(()),
        401 | 403 | 405 => Err(Failure::Refused(format!("PUT {path}: {}", describe_status(status)))),
        _ => Err(Failure::Unavailable(format!("PUT {path}: {}", describe_status(status)))),
    }
}

/// A short body under a `Content-Length` is a broken transfer (ureq reports it as a plain
/// end of body).
fn check_length(path: &str, expected: Option<u64>, received: u64) -> Result<(), Failure> {
    match expected {
        Some(expected) if expected != received => Err(Failure::Unavailable(format!(
            "GET {path}: truncated body: the server announced {expected} bytes but sent {received}"
        ))),
        _ => Ok(()),
    }
}

/// `http 503 (service unavailable)`.
fn describe_status(status: u16) -> String {
    let reason = ureq::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" ({})", r.to_ascii_lowercase()))
        .unwrap_or_default();
    format!("http {status}{reason}")
}

/// Why [`copy_body`] stopped early.
enum CopyError {
    /// Reading failed after this many bytes.
    Read(io::Error, u64),
    Write(io::Error),
    /// More than `limit - 1` bytes arrived (the value is the limit).
    OverLimit(u64),
}

/// Copies a body to its end; fails once `limit` bytes have arrived. Returns the byte count.
fn copy_body(mut reader: impl Read, out: &mut impl Write, limit: u64) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; BUFFER_SIZE];
    let mut received = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(received),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e, received)),
        };
        received += n as u64;
        if received >= limit {
            return Err(CopyError::OverLimit(limit));
        }
        out.write_all(&buf[..n]).map_err(CopyError::Write)?;
    }
}

/// Checks and normalizes the base URL: `http(s)://host[:port][/prefix]`, no trailing `/`.
fn validate_url(url: &str) -> Result<String, RemoteCacheError> {
    let invalid = || RemoteCacheError::InvalidUrl { url: url.to_owned() };
    let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(invalid());
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if let Some((_, host)) = rest.split_once('@').filter(|_| authority.contains('@')) {
        // The error is printed too: it must not show the secret either.
        return Err(RemoteCacheError::Credentials { url: format!("{scheme}://***@{host}") });
    }
    if authority.is_empty() || rest.contains(['?', '#']) || rest.chars().any(char::is_whitespace) {
        return Err(invalid());
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests;

//! Tests of [`RemoteCache`] against a tiny in-process HTTP server (one thread per
//! connection, `Connection: close`), which can store, lie, truncate, refuse and stall.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

/// What the fake server does with one request.
enum Reply {
    /// A status and a body, with a correct `Content-Length`.
    Status(u16, Vec<u8>),
    /// These bytes as the whole response, then the connection closes.
    Raw(Vec<u8>),
    /// Never answer (the connection stays open for a minute).
    Stall,
}

type Handler = dyn Fn(&Request, &mut BTreeMap<String, Vec<u8>>) -> Option<Reply> + Send + Sync;

/// A Bazel-protocol cache in memory: PUT stores, GET and HEAD serve, unknown paths are 404.
/// `handler` may answer a request first (to lie, truncate, stall or refuse).
struct FakeServer {
    url: String,
    /// Every request, in arrival order.
    log: Arc<Mutex<Vec<Request>>>,
    /// Path -> body, as stored by PUTs (or seeded by a test).
    data: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl FakeServer {
    fn plain() -> Self {
        Self::with(|_, _| None)
    }

    fn with(
        handler: impl Fn(&Request, &mut BTreeMap<String, Vec<u8>>) -> Option<Reply> + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let data = Arc::new(Mutex::new(BTreeMap::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (log2, data2) = (log.clone(), data.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (log, data, handler) = (log2.clone(), data2.clone(), handler.clone());
                std::thread::spawn(move || serve(stream, &log, &data, &*handler));
            }
        });
        FakeServer { url, log, data }
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().expect("log").iter().map(|r| format!("{} {}", r.method, r.path)).collect()
    }

    fn seed(&self, path: &str, body: &[u8]) {
        self.data.lock().expect("data").insert(path.to_owned(), body.to_vec());
    }

    fn get(&self, path: &str) -> Option<Vec<u8>> {
        self.data.lock().expect("data").get(path).cloned()
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Request>>, data: &Mutex<BTreeMap<String, Vec<u8>>>, handler: &Handler) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let request = Request { method, path, body };
    log.lock().expect("log").push(request.clone());
    let reply = {
        let mut data = data.lock().expect("data");
        handler(&request, &mut data).unwrap_or_else(|| match request.method.as_str() {
            "PUT" => {
                let existed = data.insert(request.path.clone(), request.body.clone()).is_some();
                Reply::Status(if existed { 204 } else { 201 }, Vec::new())
            }
            "GET" | "HEAD" => match data.get(&request.path) {
                Some(body) => Reply::Status(200, body.clone()),
                None => Reply::Status(404, b"not found".to_vec()),
            },
            _ => Reply::Status(405, Vec::new()),
        })
    };
    let mut stream = reader.into_inner();
    let bytes = match reply {
        Reply::Status(status, body) => {
            let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
                .into_bytes();
            if request.method != "HEAD" {
                out.extend(body);
            }
            out
        }
        Reply::Raw(bytes) => bytes,
        Reply::Stall => {
            std::thread::sleep(Duration::from_secs(60));
            return;
        }
    };
    let _ = stream.write_all(&bytes);
    let _ = stream.flush();
}

/// The writer key of the tests' team cache.
fn team_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])
}

/// A remote cache whose warnings are collected: it signs what it uploads with
/// [`team_key`] and uses results signed by it.
fn client(url: &str, opts: RemoteCacheOptions) -> (RemoteCache, Arc<Mutex<Vec<String>>>) {
    client_with(url, opts, ResultTrust::Signed(vec![team_key().verifying_key()]), Some(team_key()))
}

fn client_with(
    url: &str,
    opts: RemoteCacheOptions,
    trust: ResultTrust,
    signer: Option<ed25519_dalek::SigningKey>,
) -> (RemoteCache, Arc<Mutex<Vec<String>>>) {
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let sink = warnings.clone();
    let mut cache = RemoteCache::new(url, opts)
        .expect("valid url")
        .with_trust(trust)
        .with_reporter(move |line| sink.lock().expect("warnings").push(line.to_owned()));
    if let Some(signer) = signer {
        cache = cache.with_signer(signer);
    }
    (cache, warnings)
}

/// The `/ac/` body a team member would upload for `key`.
fn signed_entry(key: &Digest, result: &ActionResult) -> Vec<u8> {
    encode_entry(key, result, Some(&team_key())).expect("encode")
}

/// Options for a server on loopback that answers: timeouts long enough for a loaded machine
/// (the test that wants a timeout sets its own), and the first failure disables the cache.
fn quick() -> RemoteCacheOptions {
    RemoteCacheOptions {
        connect_timeout: Duration::from_secs(10),
        read_timeout: Duration::from_secs(10),
        max_failures_before_disable: 1,
    }
}

fn store(dir: &Path, name: &str) -> Store {
    Store::open(&dir.join(name)).expect("store")
}

fn warnings_of(w: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    w.lock().expect("warnings").clone()
}

/// An action with one file output and one directory output, committed to `store`.
fn sample_action(dir: &Path, store: &Store) -> (Digest, ActionResult, Vec<OutputKind>) {
    let file = store.put_bytes(b"the file output").expect("put");
    let tree_dir = dir.join("tree-src");
    fs::create_dir_all(tree_dir.join("blobs/sha256")).expect("mkdir");
    fs::write(tree_dir.join("index.json"), b"{\"schemaVersion\":2}").expect("write");
    fs::write(tree_dir.join("blobs/sha256/abc"), vec![7u8; 300_000]).expect("write");
    let tree = store.put_tree(&tree_dir).expect("tree");
    let result = ActionResult {
        outputs: vec![
            OutputRecord::File { digest: file, size: 15, executable: false },
            OutputRecord::Dir { digest: tree },
        ],
    };
    (Digest::of(b"action key"), result, vec![OutputKind::File { executable: false }, OutputKind::Dir])
}

/// Every blob `result` needs, read from `store`.
fn all_blobs(store: &Store, result: &ActionResult) -> BTreeMap<Digest, Vec<u8>> {
    let mut out = BTreeMap::new();
    for output in &result.outputs {
        let d = output.digest();
        out.insert(d, store.read_blob(&d).expect("read").expect("present"));
        if let OutputRecord::Dir { digest } = output {
            for e in store.get_tree(digest).expect("tree").expect("present").entries {
                if let Some(d) = e.digest {
                    out.insert(d, store.read_blob(&d).expect("read").expect("present"));
                }
            }
        }
    }
    out
}

#[test]
fn upload_then_fetch_into_an_empty_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = FakeServer::plain();
    let (a, b) = (store(dir.path(), "a"), store(dir.path(), "b"));
    let (key, result, kinds) = sample_action(dir.path(), &a);
    let (cache, warnings) = client(&server.url, quick());

    assert!(cache.upload_action(&key, &result, &a));
    // Blobs first, the entry last: a reader never sees an entry whose blobs are missing.
    let log = server.requests();
    assert_eq!(log.last().map(String::as_str), Some(format!("PUT /ac/{}", key.hex()).as_str()));
    assert_eq!(log.iter().filter(|r| r.starts_with("PUT /cas/")).count(), 4, "{log:#?}");

    let fetched = cache.fetch_action(&key, &kinds, &b).expect("hit");
    assert_eq!(fetched, result);
    assert_eq!(all_blobs(&b, &result), all_blobs(&a, &result));
    assert_eq!(warnings_of(&warnings), Vec::<String>::new());
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.uploads, stats.blobs_uploaded), (1, 0, 1, 4));
    assert_eq!(stats.bytes_uploaded, stats.bytes_downloaded);
    assert!(!stats.disabled);

    // A second upload asks nothing about blobs this command already knows are there.
    let before = server.requests().len();
    assert!(cache.upload_action(&key, &result, &a));
    assert_eq!(server.requests()[before..], [format!("PUT /ac/{}", key.hex())]);
}

#[test]
fn upload_skips_blobs_the_server_holds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = FakeServer::plain();
    let a = store(dir.path(), "a");
    let d = a.put_bytes(b"shared").expect("put");
    server.seed(&format!("/cas/{}", d.hex()), b"shared");
    let (cache, _) = client(&server.url, quick());
    assert!(cache.put_blob_from_store(&d, &a).expect("local ok"));
    assert_eq!(server.requests(), [format!("HEAD /cas/{}", d.hex())]);
    // A blob of the wrong length there is overwritten.
    let e = a.put_bytes(b"longer blob").expect("put");
    server.seed(&format!("/cas/{}", e.hex()), b"short");
    let (cache, _) = client(&server.url, quick());
    assert!(cache.put_blob_from_store(&e, &a).expect("local ok"));
    assert_eq!(server.get(&format!("/cas/{}", e.hex())).as_deref(), Some(&b"longer blob"[..]));
}

#[test]
fn a_miss_is_quiet_and_keeps_the_cache_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = FakeServer::plain();
    let b = store(dir.path(), "b");
    let (cache, warnings) = client(&server.url, quick());
    let key = Digest::of(b"nobody built this");
    assert_eq!(cache.fetch_action(&key, &[OutputKind::Dir], &b), None);
    assert_eq!(cache.get_action(&key), None);
    assert!(!cache.get_blob_into_store(&key, None, &b).expect("local ok"));
    assert!(!cache.has_blob(&key, None));
    assert!(cache.is_enabled());
    assert_eq!(cache.stats().misses, 1);
    assert_eq!(warnings_of(&warnings), Vec::<String>::new());
}

#[test]
fn a_lying_server_cannot_poison_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (store(dir.path(), "a"), store(dir.path(), "b"));
    let good = a.put_bytes(b"good bytes").expect("put");
    let key = Digest::of(b"key");
    let result = ActionResult { outputs: vec![OutputRecord::File { digest: good, size: 10, executable: true }] };
    let server = FakeServer::plain();
    server.seed(&format!("/ac/{}", key.hex()), &signed_entry(&key, &result));
    // Same length, other bytes.
    server.seed(&format!("/cas/{}", good.hex()), b"evil bytes");
    let (cache, warnings) = client(&server.url, quick());
    let kinds = [OutputKind::File { executable: true }];

    assert_eq!(cache.fetch_action(&key, &kinds, &b), None);
    assert_eq!(cache.fetch_action(&key, &kinds, &b), None);
    assert!(!b.blob_path(&good).exists());
    assert_eq!(fs::read_dir(b.root().join("tmp")).expect("tmp").count(), 0, "no temporary file left behind");
    assert_eq!(
        warnings_of(&warnings),
        [format!(
            "warning: remote cache {}: blob {good} does not match its digest (got {}, 10 bytes); ignoring it",
            server.url,
            Digest::of(b"evil bytes")
        )],
        "reported once"
    );
    assert!(cache.is_enabled(), "a corrupt blob is a miss, not a failure of the server");
    assert_eq!(cache.stats().misses, 2);

    // A longer lie is cut off at the recorded size.
    server.seed(&format!("/cas/{}", good.hex()), &vec![b'x'; 1 << 20]);
    assert!(!cache.get_blob_into_store(&good, Some(10), &b).expect("local ok"));
    assert!(!b.blob_path(&good).exists());
}

#[test]
fn entries_of_the_wrong_shape_or_format_are_misses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = store(dir.path(), "b");
    let server = FakeServer::plain();
    let (k1, k2) = (Digest::of(b"1"), Digest::of(b"2"));
    let file =
        ActionResult { outputs: vec![OutputRecord::File { digest: Digest::of(b""), size: 0, executable: false }] };
    server.seed(&format!("/ac/{}", k1.hex()), &signed_entry(&k1, &file));
    server.seed(&format!("/ac/{}", k2.hex()), b"\x0a\x20bazel protobuf");
    let (cache, warnings) = client(&server.url, quick());
    assert_eq!(cache.fetch_action(&k1, &[OutputKind::Dir], &b), None);
    assert_eq!(cache.fetch_action(&k2, &[OutputKind::Dir], &b), None);
    let w = warnings_of(&warnings);
    assert_eq!(w.len(), 2, "{w:#?}");
    assert_eq!(
        w[0],
        format!(
            "warning: remote cache {}: action result {k1} does not match the action's declared outputs; ignoring it",
            server.url
        )
    );
    assert!(w[1].contains(&format!("action result {k2} is not executor's json (a bazel entry")), "{}", w[1]);
    assert!(cache.is_enabled());
}

#[test]
fn a_truncated_body_is_not_committed_and_disables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = store(dir.path(), "b");
    let blob = vec![5u8; 100];
    let digest = Digest::of(&blob);
    let half = blob[..50].to_vec();
    let server = FakeServer::with(move |req, _| {
        let mut raw = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n".to_vec();
        raw.extend(&half);
        req.path.starts_with("/cas/").then_some(Reply::Raw(raw))
    });
    let (cache, warnings) = client(&server.url, quick());
    assert!(!cache.get_blob_into_store(&digest, Some(100), &b).expect("local ok"));
    assert!(!b.blob_path(&digest).exists());
    assert_eq!(fs::read_dir(b.root().join("tmp")).expect("tmp").count(), 0);
    let w = warnings_of(&warnings);
    assert_eq!(w.len(), 1, "{w:#?}");
    let prefix = format!("warning: remote cache {}: GET /cas/{}: ", server.url, digest.hex());
    assert!(w[0].starts_with(&prefix) && w[0].ends_with("; building locally"), "{}", w[0]);
    assert!(w[0].contains("truncated") || w[0].contains("broke after 50 bytes"), "{}", w[0]);
    assert!(!cache.is_enabled());
}

#[test]
fn a_short_body_without_length_is_a_corrupt_blob() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = store(dir.path(), "b");
    let digest = Digest::of(&[5u8; 100]);
    let server = FakeServer::with(move |_, _| {
        let mut raw = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
        raw.extend([5u8; 50]);
        Some(Reply::Raw(raw))
    });
    let (cache, warnings) = client(&server.url, quick());
    assert!(!cache.get_blob_into_store(&digest, Some(100), &b).expect("local ok"));
    assert!(!b.blob_path(&digest).exists());
    let w = warnings_of(&warnings);
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(w[0].contains(&format!("blob {digest} does not match its digest")), "{}", w[0]);
}

#[test]
fn a_server_that_is_down_warns_once_and_is_disabled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (store(dir.path(), "a"), store(dir.path(), "b"));
    let url = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/cache/", listener.local_addr().expect("addr"))
    };
    let (cache, warnings) = client(&url, quick());
    let (key, result, kinds) = sample_action(dir.path(), &a);
    // Many threads at once, as the builder's workers would: still one warning.
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                assert_eq!(cache.fetch_action(&key, &kinds, &b), None);
                assert!(!cache.upload_action(&key, &result, &a));
            });
        }
    });
    let base = url.trim_end_matches('/');
    assert_eq!(
        warnings_of(&warnings),
        [format!("warning: remote cache {base}: GET /ac/{}: connection refused; building locally", key.hex())]
    );
    let stats = cache.stats();
    assert!(stats.disabled);
    assert_eq!((stats.hits, stats.uploads), (0, 0));
    assert!(stats.misses <= 7, "misses while disabled are not counted: {stats:?}");
}

#[test]
fn a_stalling_server_is_disabled_quickly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = store(dir.path(), "b");
    let server = FakeServer::with(|_, _| Some(Reply::Stall));
    let opts = RemoteCacheOptions { read_timeout: Duration::from_millis(300), ..quick() };
    let (cache, warnings) = client(&server.url, opts);
    let start = Instant::now();
    let key = Digest::of(b"k");
    assert_eq!(cache.fetch_action(&key, &[OutputKind::Dir], &b), None);
    assert_eq!(cache.fetch_action(&key, &[OutputKind::Dir], &b), None);
    assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
    assert_eq!(
        warnings_of(&warnings),
        [format!(
            "warning: remote cache {}: GET /ac/{}: timed out after 300ms without progress; building locally",
            server.url,
            key.hex()
        )]
    );
    assert_eq!(server.requests().len(), 1, "nothing is sent once disabled");
}

#[test]
fn server_errors_disable_after_the_configured_failures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = store(dir.path(), "b");
    let server = FakeServer::with(|_, _| Some(Reply::Status(503, Vec::new())));
    let (cache, warnings) = client(&server.url, RemoteCacheOptions { max_failures_before_disable: 2, ..quick() });
    let key = Digest::of(b"k");
    assert_eq!(cache.get_action(&key), None);
    assert!(cache.is_enabled());
    assert_eq!(warnings_of(&warnings), Vec::<String>::new());
    assert_eq!(cache.get_action(&key), None);
    assert!(!cache.is_enabled());
    assert_eq!(
        warnings_of(&warnings),
        [format!(
            "warning: remote cache {}: GET /ac/{}: http 503 (service unavailable); building locally",
            server.url,
            key.hex()
        )]
    );
    assert!(!cache.get_blob_into_store(&key, None, &b).expect("local ok"));
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn refused_uploads_stop_uploading_but_downloads_go_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (store(dir.path(), "a"), store(dir.path(), "b"));
    let (key, result, kinds) = sample_action(dir.path(), &a);
    let seeding = FakeServer::plain();
    let (seeder, _) = client(&seeding.url, quick());
    assert!(seeder.upload_action(&key, &result, &a));
    let seeded = seeding.data.lock().expect("data").clone();
    let server = FakeServer::with(|req, _| (req.method == "PUT").then(|| Reply::Status(403, Vec::new())));
    server.data.lock().expect("data").extend(seeded);

    let (cache, warnings) = client(&server.url, quick());
    let other = a.put_bytes(b"not on the server").expect("put");
    let other_result =
        ActionResult { outputs: vec![OutputRecord::File { digest: other, size: 17, executable: false }] };
    assert!(!cache.upload_action(&Digest::of(b"other"), &other_result, &a));
    assert!(!cache.upload_action(&Digest::of(b"other"), &other_result, &a));
    assert_eq!(cache.fetch_action(&key, &kinds, &b), Some(result));
    assert_eq!(
        warnings_of(&warnings),
        [format!(
            "warning: remote cache {}: PUT /cas/{}: http 403 (forbidden); not uploading",
            server.url,
            other.hex()
        )]
    );
    assert!(cache.is_enabled() && !cache.uploads_enabled());
}

#[test]
fn a_corrupt_local_blob_is_never_uploaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = store(dir.path(), "a");
    let d = a.put_bytes(b"hello").expect("put");
    let path = a.blob_path(&d);
    let mut perms = fs::metadata(&path).expect("meta").permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    fs::set_permissions(&path, perms).expect("chmod");
    fs::write(&path, b"hellp").expect("corrupt");
    let server = FakeServer::plain();
    let (cache, _) = client(&server.url, quick());
    let err = cache.put_blob_from_store(&d, &a).expect_err("corrupt");
    assert!(err.to_string().starts_with("not uploading corrupt blob `"), "{err}");
    assert!(!path.exists(), "evicted");
    assert_eq!(server.requests(), Vec::<String>::new());
}

#[test]
fn urls() {
    let ok = [
        ("http://127.0.0.1:8090", "http://127.0.0.1:8090"),
        ("http://cache.example/prefix/", "http://cache.example/prefix"),
        ("HTTPS://cache.example", "HTTPS://cache.example"),
    ];
    for (url, base) in ok {
        assert_eq!(RemoteCache::new(url, RemoteCacheOptions::default()).expect(url).url(), base);
    }
    let bad = [
        (
            "grpc://cache:9092",
            "`grpc://cache:9092` is not a remote cache url: expected `http://HOST[:PORT][/PREFIX]` or `https://...`",
        ),
        ("cache:8080", "`cache:8080` is not a remote cache url: expected `http://HOST[:PORT][/PREFIX]` or `https://...`"),
        ("http://", "`http://` is not a remote cache url: expected `http://HOST[:PORT][/PREFIX]` or `https://...`"),
        ("http://h/?x=1", "`http://h/?x=1` is not a remote cache url: expected `http://HOST[:PORT][/PREFIX]` or `https://...`"),
        (
            "http://u:secret@h",
            "remote cache url `http://***@h` holds credentials: put the cache behind a local proxy instead; urls are printed in warnings",
        ),
    ];
    for (url, want) in bad {
        assert_eq!(RemoteCache::new(url, RemoteCacheOptions::default()).expect_err(url).to_string(), want);
    }
}

#[test]
fn the_cache_crosses_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RemoteCache>();
    let o = RemoteCacheOptions::default();
    assert_eq!(
        (o.connect_timeout, o.read_timeout, o.max_failures_before_disable),
        (Duration::from_secs(5), Duration::from_secs(10), 1)
    );
}

/// Two actions with one file output each, uploaded signed by the team: the server then holds
/// a valid, signed entry for each key.
fn two_signed_actions(dir: &Path, server: &FakeServer) -> (Digest, ActionResult, Digest, ActionResult) {
    let a = store(dir, "writer");
    let (x86, arm) = (a.put_bytes(b"x86_64 layer").expect("put"), a.put_bytes(b"aarch64 layer").expect("put"));
    let file = |digest, size| ActionResult { outputs: vec![OutputRecord::File { digest, size, executable: false }] };
    let (k_x86, r_x86) = (Digest::of(b"x86_64 layer key"), file(x86, 12));
    let (k_arm, r_arm) = (Digest::of(b"aarch64 layer key"), file(arm, 13));
    let (writer, _) = client(&server.url, quick());
    assert!(writer.upload_action(&k_x86, &r_x86, &a));
    assert!(writer.upload_action(&k_arm, &r_arm, &a));
    (k_x86, r_x86, k_arm, r_arm)
}

#[test]
fn signed_results_are_used_and_anything_else_is_a_miss_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = FakeServer::plain();
    let (k_x86, r_x86, k_arm, _) = two_signed_actions(dir.path(), &server);
    let kinds = [OutputKind::File { executable: false }];
    let ac = |k: &Digest| format!("/ac/{}", k.hex());
    let served = |k: &Digest| server.data.lock().expect("data")[&ac(k)].clone();
    // Honest: the signed result is used.
    let (reader, warnings) = client(&server.url, quick());
    let fresh = store(dir.path(), "honest");
    assert_eq!(reader.fetch_action(&k_x86, &kinds, &fresh), Some(r_x86.clone()));
    assert_eq!(warnings_of(&warnings), Vec::<String>::new());

    // 1. Another valid result: the x86_64 key answered with the aarch64 entry (signed,
    //    every blob intact). 2. A replay: an entry signed for the same key by an older
    //    build whose result differed (re-signed bytes cannot be made without the key, so
    //    the attacker edits the result text). 3. Unsigned. 4. Signed by another key.
    let arm_entry = served(&k_arm);
    let mut replay: SignedEntry = serde_json::from_slice(&served(&k_x86)).expect("entry");
    replay.result = replay.result.replace("\"size\":12", "\"size\":13");
    let unsigned = encode_entry(&k_x86, &r_x86, None).expect("encode");
    let stranger = encode_entry(&k_x86, &r_x86, Some(&ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]))).expect("x");
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("another action's result", arm_entry, "has a signature that does not verify: it was made for another action or another result"),
        ("an altered result", serde_json::to_vec(&replay).expect("json"), "has a signature that does not verify: it was made for another action or another result"),
        ("an unsigned result", unsigned, "is not signed (the writer has no --remote-cache-signing-key; pass --remote-cache-trust to accept unsigned results)"),
        ("a stranger's result", stranger, "is signed by a key not given with --remote-cache-key"),
    ];
    for (what, body, why) in cases {
        server.seed(&ac(&k_x86), &body);
        let (reader, warnings) = client(&server.url, quick());
        let fresh = store(dir.path(), &what.replace(' ', "-"));
        assert_eq!(reader.fetch_action(&k_x86, &kinds, &fresh), None, "{what}");
        assert_eq!(
            warnings_of(&warnings),
            [format!("warning: remote cache {}: action result {k_x86} {why}; ignoring it", server.url)],
            "{what}"
        );
        assert!(reader.is_enabled(), "{what}: a bad entry is a miss, not a failure of the server");
    }
    // `--remote-cache-trust` takes the server's word, as Bazel does: the unsigned entry.
    server.seed(&ac(&k_x86), &encode_entry(&k_x86, &r_x86, None).expect("encode"));
    let (trusting, warnings) = client_with(&server.url, quick(), ResultTrust::Server, None);
    assert_eq!(trusting.fetch_action(&k_x86, &kinds, &store(dir.path(), "trusting")), Some(r_x86));
    assert_eq!(warnings_of(&warnings), Vec::<String>::new());
}

#[test]
fn without_a_key_no_action_result_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = FakeServer::plain();
    let (k_x86, _, _, _) = two_signed_actions(dir.path(), &server);
    let before = server.log.lock().expect("log").len();
    let (blobs_only, warnings) = client_with(&server.url, quick(), ResultTrust::BlobsOnly, None);
    let kinds = [OutputKind::File { executable: false }];
    assert_eq!(blobs_only.fetch_action(&k_x86, &kinds, &store(dir.path(), "b")), None);
    assert_eq!(blobs_only.get_action(&k_x86), None);
    let requests = server.log.lock().expect("log")[before..].to_vec();
    assert!(requests.iter().all(|r| !r.path.starts_with("/ac/")), "{requests:#?}");
    assert_eq!(warnings_of(&warnings), Vec::<String>::new());
    // Blobs by digest are still served (and verified).
    let b = store(dir.path(), "blobs");
    let digest = Digest::of(b"x86_64 layer");
    assert!(blobs_only.get_blob_into_store(&digest, Some(12), &b).expect("local ok"));
    assert_eq!(b.read_blob(&digest).expect("read"), Some(b"x86_64 layer".to_vec()));
}

#[test]
fn configuration_errors_are_usage_errors_that_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_a_key = dir.path().join("cache.pub");
    fs::write(&not_a_key, "not a key").expect("write");
    let config = |keys: Vec<std::path::PathBuf>, signing: Option<std::path::PathBuf>, trust| RemoteCacheConfig {
        url: "http://127.0.0.1:1".into(),
        keys,
        signing_key: signing,
        trust_server: trust,
    };
    let err = |c: RemoteCacheConfig| c.open(quick()).expect_err("an error");
    assert_eq!(
        err(config(vec![not_a_key.clone()], None, false)),
        format!(
            "--remote-cache-key: `{}` is not an Ed25519 public key in PEM (`-----BEGIN PUBLIC KEY-----`); make one with `openssl pkey -in cache.key -pubout -out cache.pub`",
            not_a_key.display()
        )
    );
    assert_eq!(
        err(config(Vec::new(), Some(not_a_key.clone()), false)),
        format!(
            "--remote-cache-signing-key: `{}` is not an unencrypted Ed25519 private key in PEM (PKCS#8); make one with `openssl genpkey -algorithm ed25519 -out cache.key`",
            not_a_key.display()
        )
    );
    assert_eq!(
        err(config(vec![not_a_key], None, true)),
        "`--remote-cache-trust` accepts every result, so `--remote-cache-key` would not be checked: pass one or the other"
    );
    // Keys in the PEM forms openssl writes are read.
    use ed25519_dalek::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
    let (private, public) = (dir.path().join("k.key"), dir.path().join("k.pub"));
    let key = team_key();
    fs::write(&private, key.to_pkcs8_pem(Default::default()).expect("pem").as_bytes()).expect("write");
    fs::write(&public, key.verifying_key().to_public_key_pem(Default::default()).expect("pem")).expect("write");
    assert!(config(vec![public], Some(private), false).open(quick()).is_ok());
}

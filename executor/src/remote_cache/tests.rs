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

/// A remote cache whose warnings are collected.
fn client(url: &str, opts: RemoteCacheOptions) -> (RemoteCache, Arc<Mutex<Vec<String>>>) {
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let sink = warnings.clone();
    let cache = RemoteCache::new(url, opts)
        .expect("valid url")
        .with_reporter(move |line| sink.lock().expect("warnings").push(line.to_owned()));
    (cache, warnings)
}

fn quick() -> RemoteCacheOptions {
    RemoteCacheOptions {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_millis(500),
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
    server.seed(&format!("/ac/{}", key.hex()), &serde_json::to_vec(&result).expect("json"));
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
    server.seed(&format!("/ac/{}", k1.hex()), &serde_json::to_vec(&file).expect("json"));
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
    assert!(w[1].contains(&format!("action result {k2} is not executor's json (a bazel entry?)")), "{}", w[1]);
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

//! A registry's HTTP answers, as `executor push` and `executor verify` read them: status
//! lines and headers (ureq), `WWW-Authenticate` challenges, bearer token JSON, distribution
//! error bodies, `Docker-Content-Digest`, upload `Location`s, `OCI-Subject`, and an
//! existing referrers index under the referrers tag. The parsing functions for these are
//! private to `registry::client` and `registry::push`; the public entry points that reach
//! them are `registry::resolve_digest` (verify) and `registry::push_layout` (push), driven
//! here against a fake registry on loopback that answers with the input.
//!
//! `registry::Puller` (oci_pull's reads: a manifest by digest, then a blob into a file) is
//! driven the same way.
//!
//! Input: the first byte picks the command (0xF0 and above: pull; else even: resolve the tag
//! `latest`, odd: push a small fixed layout with an SBOM referrer); the rest is raw HTTP responses separated by
//! lines `%%`, served in request order (connections are kept open; one closes when the
//! responses run out or the client is idle for 100 ms). `@HOST` in a response stands for
//! the fake registry's `127.0.0.1:PORT`.
//!
//! Safety: every URL a response could make the client follow (token realm, upload
//! `Location`) must be `http://@HOST/...`; inputs naming any other `scheme://` are skipped,
//! so no request leaves the fake registry. The fuzz scripts also run targets in a network
//! namespace with only loopback when `unshare` is available.
#![no_main]

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use executor::registry::{push_layout, resolve_digest, Puller, PushOptions, Reference};
use libfuzzer_sys::fuzz_target;

/// The responses still to serve in this run.
static QUEUE: Mutex<VecDeque<Vec<u8>>> = Mutex::new(VecDeque::new());

/// The fake registry's `127.0.0.1:PORT`; its accept loop runs for the whole process.
static HOST: LazyLock<String> = LazyLock::new(|| {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let host = listener.local_addr().expect("address").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    host
});

/// A small valid layout (image `latest` and its SBOM list `latest.sbom`), written once.
static LAYOUT: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = executor_fuzz::scratch_dir("registry_http");
    let spec: &[&[u8]] = &[
        br#"{"imageLayoutVersion":"1.0.0"}"#,
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"@D0","size":@S0,"annotations":{"org.opencontainers.image.ref.name":"latest"}},{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"@D3","size":@S3,"annotations":{"org.opencontainers.image.ref.name":"latest.sbom"}}]}"#,
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"@D1","size":@S1},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"@D2","size":@S2}]}"#,
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
        b"layer",
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"@D4","size":@S4}]}"#,
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/spdx+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"@D5","size":@S5},"layers":[{"mediaType":"application/spdx+json","digest":"@D6","size":@S6}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"@D0","size":@S0}}"#,
        b"{}",
        br#"{"spdxVersion":"SPDX-2.3"}"#,
    ];
    executor_fuzz::write_layout(&dir, spec);
    dir
});

/// Answers requests on `stream` with the queued responses, in order, until the client
/// closes it or the queue is empty. After the first answer the server waits only briefly
/// for another request: a response without a length is read by the client until the
/// connection closes, and must not cost a whole read timeout.
fn serve(mut stream: TcpStream) {
    let mut wait = Duration::from_secs(2);
    let mut request = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let _ = stream.set_read_timeout(Some(wait));
        // The head, then as many body bytes as Content-Length says.
        let head_end = loop {
            if let Some(pos) = executor_fuzz::find(&request, b"\r\n\r\n") {
                break pos + 4;
            }
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
            if request.len() > 1 << 20 {
                return;
            }
        };
        let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while request.len() < head_end + length {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        request.drain(..head_end + length);
        let response = QUEUE.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
        let Some(response) = response else {
            return;
        };
        if stream.write_all(&response).is_err() {
            return;
        }
        wait = Duration::from_millis(100);
    }
}

/// Whether every `scheme://` in `response` is `http://` or `https://` to the fake registry.
fn stays_on_loopback(response: &[u8], host: &str) -> bool {
    let lower = response.to_ascii_lowercase();
    let allowed = format!("://{host}/");
    let mut rest = &lower[..];
    while let Some(pos) = executor_fuzz::find(rest, b"://") {
        let before = &rest[..pos];
        if !(before.ends_with(b"http") || before.ends_with(b"https")) || !rest[pos..].starts_with(allowed.as_bytes()) {
            return false;
        }
        rest = &rest[pos + 3..];
    }
    true
}

fuzz_target!(|data: &[u8]| {
    let Some((&command, rest)) = data.split_first() else {
        return;
    };
    let host = HOST.as_str();
    let responses: Vec<Vec<u8>> = executor_fuzz::sections(rest)
        .into_iter()
        .map(|r| {
            let mut out = Vec::with_capacity(r.len());
            let mut i = 0;
            while i < r.len() {
                if r[i..].starts_with(b"@HOST") {
                    out.extend_from_slice(host.as_bytes());
                    i += 5;
                } else {
                    out.push(r[i]);
                    i += 1;
                }
            }
            out
        })
        .collect();
    if !responses.iter().all(|r| stays_on_loopback(r, host)) {
        return;
    }
    *QUEUE.lock().unwrap_or_else(|p| p.into_inner()) = responses.into();

    let target = Reference::parse(&format!("{host}/fuzz/app:latest")).expect("valid reference");
    let opts = PushOptions {
        jobs: 1,
        retries: 0,
        chunk_threshold: 64,
        chunk_size: 32,
        connect_timeout: Duration::from_secs(1),
        read_timeout: Duration::from_secs(1),
        ..PushOptions::default()
    };
    let creds = Some(executor::registry::Credentials {
        username: "fuzz".to_owned(),
        password: executor::registry::Secret::new("secret"),
        source: "the fuzz target".to_owned(),
    });
    let outcome = if command >= 0xF0 {
        // What a pull reads, each checked against its digest: a manifest, then a blob.
        let puller = Puller::new(&target, &opts, creds);
        static PULL_DIR: LazyLock<PathBuf> = LazyLock::new(|| executor_fuzz::scratch_dir("registry_http_pull"));
        let dest = PULL_DIR.join("blob");
        puller
            .manifest(executor::digest::Digest::of(b"{}"))
            .map(|m| m.media_type)
            .and_then(|_| puller.blob_to_file(executor::digest::Digest::of(b"layer"), 5, &dest).map(|()| String::new()))
    } else if command % 2 == 0 {
        resolve_digest(&target, &opts, creds).map(|d| d.to_string())
    } else {
        push_layout(&LAYOUT, "latest", &target, &opts, creds).map(|r| format!("{r:?}"))
    };
    if std::env::var_os("FUZZ_DEBUG").is_some() {
        eprintln!("registry_http: {outcome:?}");
    }
    QUEUE.lock().unwrap_or_else(|p| p.into_inner()).clear();
});

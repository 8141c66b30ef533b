//! A tiny HTTP/1.1 server for tests, on std only: serves a directory on 127.0.0.1 with
//! injectable faults, and records the paths it was asked for.
//!
//! Bounded by construction: every connection has socket timeouts, a stalled response sleeps
//! at most [`STALL_MAX`], and dropping the [`TestServer`] stops the accept loop and joins
//! every thread. One thread per connection; every response carries `Connection: close`.

// Test binaries include this file with `mod`; not every one uses every item.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest a [`Fault::Stall`] response sleeps; long next to any client read timeout a test
/// uses, short enough that a forgotten client cannot hold a test run hostage.
const STALL_MAX: Duration = Duration::from_secs(60);

/// How long a connection waits for a request or for the client to take data.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest request head accepted; tests send tiny GETs.
const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// What the server does instead of (or before) serving a file normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer 404.
    NotFound,
    /// Answer 500.
    ServerError,
    /// Answer with this status and an empty body (e.g. 403, 429, 503).
    Status(u16),
    /// Send the headers and half the body, then go silent (until [`STALL_MAX`] or the
    /// server is dropped) without closing the connection.
    Stall,
    /// Announce the full `Content-Length`, send half the body, close.
    Truncate,
    /// Serve bytes of the same length that are not the file's (every byte XOR 0x5a).
    WrongBody,
    /// Apply the inner fault to the first N requests for the path, then serve normally.
    FailTimes(u32, Box<Fault>),
}

/// A running server; stops and joins its threads when dropped.
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// The accept loop; `None` only during drop.
    acceptor: Option<JoinHandle<()>>,
}

/// State shared by the accept loop and the connection threads.
struct Shared {
    /// Directory the request paths resolve against.
    root: PathBuf,
    /// Set once on drop; every loop and sleep checks it.
    shutdown: AtomicBool,
    /// Faults by request path (without query), consumed as `FailTimes` counts down.
    faults: Mutex<BTreeMap<String, Fault>>,
    /// Applied to paths without a fault of their own.
    global_fault: Mutex<Option<Fault>>,
    /// Request paths in arrival order.
    requests: Mutex<Vec<String>>,
    /// Connection threads not yet joined.
    connections: Mutex<Vec<JoinHandle<()>>>,
}

/// Locks a mutex even if a connection thread panicked while holding it: the data stays
/// usable for assertions, and the panic itself shows up in the test output.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl TestServer {
    /// Serves the files below `root` at `/<relative path>`.
    pub fn serve_dir(root: PathBuf) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address of the listener");
        let shared = Arc::new(Shared {
            root,
            shutdown: AtomicBool::new(false),
            faults: Mutex::new(BTreeMap::new()),
            global_fault: Mutex::new(None),
            requests: Mutex::new(Vec::new()),
            connections: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("test-http-accept".into())
                .spawn(move || accept_loop(&listener, &shared))
                .expect("spawn the accept thread")
        };
        TestServer { addr, shared, acceptor: Some(acceptor) }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Injects `fault` for requests of `path` (e.g. `/repo/x.apk`), replacing any earlier one.
    pub fn set_fault(&self, path: &str, fault: Fault) {
        lock(&self.shared.faults).insert(path.to_owned(), fault);
    }

    /// Injects `fault` for every path without a fault of its own.
    pub fn set_global_fault(&self, fault: Fault) {
        *lock(&self.shared.global_fault) = Some(fault);
    }

    /// Removes all faults, per path and global.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
        *lock(&self.shared.global_fault) = None;
    }

    /// The request paths seen so far (with any query), in arrival order.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared.requests).clone()
    }
}

impl Drop for TestServer {
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

/// A URL on 127.0.0.1 where nothing listens, so connecting is refused.
pub fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address of the listener");
    drop(listener);
    format!("http://{addr}")
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.shutdown.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let conn_shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new().name("test-http-conn".into()).spawn(move || {
            // A client that went away is not the server's failure.
            let _ = handle_connection(stream, &conn_shared);
        });
        let mut connections = lock(&shared.connections);
        connections.retain(|h| !h.is_finished());
        if let Ok(handle) = spawned {
            connections.push(handle);
        }
    }
}

/// What to send, after faults are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Serve,
    Status(u16),
    Stall,
    Truncate,
    WrongBody,
}

/// The action for the next request under `fault`, counting down `FailTimes`.
fn next_action(fault: &mut Fault) -> Action {
    match fault {
        Fault::NotFound => Action::Status(404),
        Fault::ServerError => Action::Status(500),
        Fault::Status(code) => Action::Status(*code),
        Fault::Stall => Action::Stall,
        Fault::Truncate => Action::Truncate,
        Fault::WrongBody => Action::WrongBody,
        Fault::FailTimes(0, _) => Action::Serve,
        Fault::FailTimes(n, inner) => {
            *n -= 1;
            next_action(inner)
        }
    }
}

fn handle_connection(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_read_timeout(Some(SOCKET_TIMEOUT))?;
    stream.set_write_timeout(Some(SOCKET_TIMEOUT))?;
    let Some(head) = read_head(&mut stream)? else {
        return Ok(());
    };
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if target.is_empty() {
        return respond_status(&mut stream, 400, false);
    }
    lock(&shared.requests).push(target.to_owned());
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return respond_status(&mut stream, 405, false),
    };
    let path = target.split(['?', '#']).next().unwrap_or("");
    let action = {
        let mut faults = lock(&shared.faults);
        match faults.get_mut(path) {
            Some(fault) => next_action(fault),
            None => lock(&shared.global_fault).as_mut().map_or(Action::Serve, next_action),
        }
    };
    if let Action::Status(code) = action {
        return respond_status(&mut stream, code, head_only);
    }
    let Some(file_path) = resolve(&shared.root, path) else {
        return respond_status(&mut stream, 404, head_only);
    };
    let Ok(mut file) = File::open(&file_path) else {
        return respond_status(&mut stream, 404, head_only);
    };
    let len = match file.metadata() {
        Ok(m) if m.is_file() => m.len(),
        _ => return respond_status(&mut stream, 404, head_only),
    };
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\n\
         Connection: close\r\n\r\n"
    )?;
    if head_only {
        return close(stream);
    }
    match action {
        Action::Serve => {
            // `io::copy` from a file to a socket uses sendfile on Linux.
            io::copy(&mut file, &mut stream)?;
        }
        Action::Truncate => {
            io::copy(&mut (&mut file).take(len / 2), &mut stream)?;
        }
        Action::Stall => {
            io::copy(&mut (&mut file).take(len / 2), &mut stream)?;
            stream.flush()?;
            let start = Instant::now();
            while start.elapsed() < STALL_MAX && !shared.shutdown.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Action::WrongBody => {
            let mut body = Vec::new();
            file.read_to_end(&mut body)?;
            body.iter_mut().for_each(|b| *b ^= 0x5a);
            stream.write_all(&body)?;
        }
        Action::Status(_) => {}
    }
    close(stream)
}

/// Reads up to the blank line ending the request head; `None` if the client sent nothing
/// (e.g. the wake-up connection made on drop).
fn read_head(stream: &mut TcpStream) -> io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_REQUEST_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "request head too large"));
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(Some(String::from_utf8_lossy(&head).into_owned()))
}

/// Maps a request path onto `root`, refusing anything that could leave it.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let relative = Path::new(path.strip_prefix('/')?);
    relative.components().all(|c| matches!(c, Component::Normal(_))).then(|| root.join(relative))
}

fn respond_status(stream: &mut TcpStream, code: u16, head_only: bool) -> io::Result<()> {
    let body = format!("status {code}\n");
    write!(
        stream,
        "HTTP/1.1 {code} {}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\
         Connection: close\r\n\r\n",
        reason(code),
        body.len()
    )?;
    if !head_only {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()?;
    stream.shutdown(Shutdown::Write)
}

/// Finishes a response: flushes and half-closes so the client sees EOF right away.
fn close(mut stream: TcpStream) -> io::Result<()> {
    stream.flush()?;
    stream.shutdown(Shutdown::Write)
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

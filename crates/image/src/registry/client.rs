//! One registry connection: requests with authentication, retries and error mapping.
//!
//! A [`Client`] is made per push and shared by its upload threads. It owns the auth state
//! (the scheme the registry asked for and the bearer tokens fetched, by scope), so nothing
//! is cached across pushes or held in globals.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::sync::Mutex;

use crate::fetch::{is_transient_io, lowercase_first};
use crate::registry::auth::{parse_challenge, Challenge, Credentials, Secret};
use crate::registry::error::RegistryError;
use crate::registry::reference::Reference;
use crate::registry::PushOptions;

/// The most response body read into memory: error documents, tokens, nothing large.
const MAX_RESPONSE: u64 = 4 * 1024 * 1024;

/// The most redirects one download follows.
const MAX_REDIRECTS: usize = 5;

/// The longest pause between two attempts.
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(30);

/// A response, its body read in full.
pub(crate) struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The headers.
    pub headers: ureq::http::HeaderMap,
    /// The body (empty for `HEAD`).
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// How requests are authenticated, as the registry's challenge decided.
enum Scheme {
    Anonymous,
    Basic,
    /// `current` is the key in [`AuthState::tokens`] of the token in use.
    Bearer {
        current: String,
    },
}

struct AuthState {
    scheme: Scheme,
    /// Bearer tokens by scope set (sorted scopes joined by spaces).
    tokens: BTreeMap<String, Secret>,
}

/// Talks to one registry for one repository.
pub(crate) struct Client {
    agent: ureq::Agent,
    /// `http://host` or `https://host`; every URL of this registry starts with it.
    base: String,
    /// `HOST[:PORT]`.
    pub host: String,
    /// The repository pushed to.
    pub repository: String,
    opts: PushOptions,
    creds: Option<Credentials>,
    /// The scopes a token must cover: push to `repository`, pull from a mount source.
    scopes: BTreeSet<String>,
    auth: Mutex<AuthState>,
}

impl Client {
    pub fn new(target: &Reference, opts: &PushOptions, creds: Option<Credentials>) -> Self {
        let agent = crate::fetch::agent(crate::fetch::AgentOptions {
            host: Some(&target.host),
            connect_timeout: opts.connect_timeout,
            read_timeout: opts.read_timeout,
            follow_redirects: false,
            idle_per_host: Some(opts.jobs.max(1) * 2),
        });
        let scheme = if opts.insecure || target.is_loopback() { "http" } else { "https" };
        let mut scopes = BTreeSet::from([format!("repository:{}:pull,push", target.repository)]);
        if let Some(from) = &opts.mount_from {
            scopes.insert(format!("repository:{from}:pull"));
        }
        Client {
            agent,
            base: format!("{scheme}://{}", target.host),
            host: target.host.clone(),
            repository: target.repository.clone(),
            opts: opts.clone(),
            creds,
            scopes,
            auth: Mutex::new(AuthState { scheme: Scheme::Anonymous, tokens: BTreeMap::new() }),
        }
    }

    /// The same client asking tokens for pull access only (reading, not pushing).
    pub fn pull_only(mut self) -> Self {
        self.scopes = BTreeSet::from([format!("repository:{}:pull", self.repository)]);
        self
    }

    /// The same client also asking tokens for pull access to `repositories` (of this
    /// registry), to mount blobs from them.
    pub fn also_pull(mut self, repositories: &std::collections::BTreeSet<String>) -> Self {
        self.scopes.extend(repositories.iter().map(|r| format!("repository:{r}:pull")));
        self
    }

    /// `base` + `/v2/<repository>` + `rest`.
    pub fn repo_url(&self, rest: &str) -> String {
        format!("{}/v2/{}{rest}", self.base, self.repository)
    }

    /// Makes `location` (a `Location` header) absolute.
    pub fn resolve(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            format!("{}/{location}", self.base)
        }
    }

    /// Checks the registry's API version endpoint, learning how it wants to be
    /// authenticated (and fetching a token) before uploads start in parallel.
    pub fn ping(&self) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base);
        self.with_retries(|| {
            let resp = self.request("GET", &url, &[], None)?;
            match resp.status {
                200..=299 => Ok(()),
                404 => Err(RegistryError::NotFound {
                    host: self.host.clone(),
                    method: "GET",
                    url: url.clone(),
                    registry_says: String::new(),
                    hint: "the host does not serve the registry api (`/v2/`); check the host and port".into(),
                }),
                _ => Err(self.fail("GET", &url, &resp)),
            }
        })
    }

    /// Runs `attempt` until it succeeds, fails for good, or transient failures use up
    /// the retries, pausing with doubling backoff in between.
    pub fn with_retries<T>(&self, mut attempt: impl FnMut() -> Result<T, RegistryError>) -> Result<T, RegistryError> {
        let mut delay = self.opts.backoff_initial;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match attempt() {
                Ok(value) => return Ok(value),
                Err(err) if err.is_transient() && attempts <= self.opts.retries => {
                    std::thread::sleep(delay);
                    delay = delay.saturating_mul(2).min(MAX_BACKOFF);
                }
                Err(err) if attempts > 1 => return Err(RegistryError::GaveUp { attempts, last: Box::new(err) }),
                Err(err) => return Err(err),
            }
        }
    }

    /// One request, answering a `401` challenge once (Basic, or a bearer token for the
    /// push's scopes). Any other status is returned for the caller to judge; transient
    /// failures are errors for [`Client::with_retries`].
    pub fn request(
        &self,
        method: &'static str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, RegistryError> {
        // Credentials go only to this registry, never to another host a Location names.
        let ours = url.starts_with(&format!("{}/", self.base));
        let mut challenged = false;
        loop {
            let authorization = if ours { self.authorization() } else { None };
            let resp = self.exchange(method, url, headers, body, authorization.as_deref())?;
            if resp.status != 401 || !ours {
                return Ok(resp);
            }
            if challenged {
                return Err(self.auth_error());
            }
            challenged = true;
            let Some(header) = resp.header("www-authenticate") else {
                return Err(self.auth_error());
            };
            let challenge = parse_challenge(header)
                .map_err(|detail| RegistryError::Challenge { host: self.host.clone(), detail })?;
            self.answer(challenge)?;
        }
    }

    /// The `Authorization` header for this registry, as the auth state stands.
    fn authorization(&self) -> Option<String> {
        let state = self.auth.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match &state.scheme {
            Scheme::Anonymous => None,
            Scheme::Basic => self.creds.as_ref().map(Credentials::basic_header),
            Scheme::Bearer { current, .. } => state.tokens.get(current).map(|t| format!("Bearer {}", t.expose())),
        }
    }

    /// Updates the auth state to answer `challenge`.
    fn answer(&self, challenge: Challenge) -> Result<(), RegistryError> {
        match challenge {
            Challenge::Basic => {
                if self.creds.is_none() {
                    return Err(self.auth_error());
                }
                self.auth.lock().unwrap_or_else(|p| p.into_inner()).scheme = Scheme::Basic;
                Ok(())
            }
            Challenge::Bearer { realm, service, scope } => {
                let mut scopes = self.scopes.clone();
                scopes.extend(scope.into_iter().flat_map(|s| s.split(' ').map(str::to_owned).collect::<Vec<_>>()));
                let key = scopes.iter().cloned().collect::<Vec<_>>().join(" ");
                let token = self.fetch_token(&realm, service.as_deref(), &scopes)?;
                let mut state = self.auth.lock().unwrap_or_else(|p| p.into_inner());
                state.tokens.insert(key.clone(), token);
                state.scheme = Scheme::Bearer { current: key };
                Ok(())
            }
        }
    }

    /// GETs a token from `realm` (with the Basic credentials, if any).
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &BTreeSet<String>,
    ) -> Result<Secret, RegistryError> {
        let mut query = Vec::new();
        if let Some(service) = service {
            query.push(format!("service={}", percent_encode(service)));
        }
        query.extend(scopes.iter().map(|s| format!("scope={}", percent_encode(s))));
        let sep = if realm.contains('?') { '&' } else { '?' };
        let url = format!("{realm}{sep}{}", query.join("&"));
        let basic = self.creds.as_ref().map(Credentials::basic_header);
        let resp = self.with_retries(|| {
            let resp = self.exchange("GET", &url, &[], None, basic.as_deref())?;
            match resp.status {
                200..=299 => Ok(resp),
                401 => Err(self.auth_error()),
                _ => Err(self.fail("GET", &url, &resp)),
            }
        })?;
        let bad = |detail: &str| RegistryError::Token { realm: realm.to_owned(), detail: detail.to_owned() };
        let value: serde_json::Value = serde_json::from_slice(&resp.body).map_err(|_| bad("not JSON"))?;
        let token = ["token", "access_token"]
            .iter()
            .find_map(|k| value.get(k).and_then(|t| t.as_str()).filter(|t| !t.is_empty()))
            .ok_or_else(|| bad("no `token` or `access_token` field"))?;
        Ok(Secret::new(token))
    }

    /// The error for a `401` that answering the challenge did not cure.
    fn auth_error(&self) -> RegistryError {
        match &self.creds {
            Some(creds) => {
                RegistryError::AuthFailed { host: self.host.clone(), source_name: format!("`{}`", creds.source) }
            }
            None => RegistryError::AuthRequired {
                host: self.host.clone(),
                searched: self.opts.auth_file.as_ref().map(|p| format!(" in `{}`", p.display())).unwrap_or_default(),
            },
        }
    }

    /// The error for an unexpected status, with the registry's own error codes.
    pub fn fail(&self, method: &'static str, url: &str, resp: &Response) -> RegistryError {
        let registry_says = registry_errors(&resp.body);
        match resp.status {
            401 => self.auth_error(),
            403 => RegistryError::Denied {
                name: format!("{}/{}", self.host, self.repository),
                method,
                url: url.to_owned(),
                registry_says,
                hint: {
                    let access =
                        if self.scopes.iter().any(|s| s.ends_with(",push")) { "pushing to" } else { "reading" };
                    match &self.creds {
                        Some(c) => format!("the credentials in `{}` may not allow {access} this repository", c.source),
                        None => format!("the registry may need credentials that allow {access} this repository"),
                    }
                },
            },
            404 => RegistryError::NotFound {
                host: self.host.clone(),
                method,
                url: url.to_owned(),
                registry_says,
                hint: format!("check that `{}` is a repository name this registry accepts", self.repository),
            },
            status => RegistryError::Status { method, url: url.to_owned(), status, registry_says },
        }
    }

    /// One HTTP exchange, no retries and no auth handling.
    fn exchange(
        &self,
        method: &'static str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        authorization: Option<&str>,
    ) -> Result<Response, RegistryError> {
        let mut builder = ureq::http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        if let Some(auth) = authorization {
            builder = builder.header("Authorization", auth);
        }
        let protocol = |detail: String| RegistryError::Protocol { method, url: url.to_owned(), detail };
        let result = match body {
            Some(bytes) => self.agent.run(builder.body(bytes).map_err(|e| protocol(e.to_string()))?),
            None => self.agent.run(builder.body(()).map_err(|e| protocol(e.to_string()))?),
        };
        let response = result.map_err(|e| self.request_error(method, url, e))?;
        let (parts, body) = response.into_parts();
        let expected = body.content_length();
        let mut data = Vec::new();
        let mut reader = body.into_reader().take(MAX_RESPONSE);
        if method != "HEAD" {
            if let Err(e) = reader.read_to_end(&mut data) {
                return Err(match expected {
                    Some(expected) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        RegistryError::Truncated { method, url: url.to_owned(), expected, received: data.len() as u64 }
                    }
                    _ => self.broke_off(method, url, e),
                });
            }
            // ureq stops at Content-Length and reports a short body as a plain EOF.
            if let Some(expected) = expected.filter(|&n| n <= MAX_RESPONSE && n != data.len() as u64) {
                return Err(RegistryError::Truncated {
                    method,
                    url: url.to_owned(),
                    expected,
                    received: data.len() as u64,
                });
            }
        }
        Ok(Response { status: parts.status.as_u16(), headers: parts.headers, body: data })
    }

    /// GETs `url` into `out`, streaming: answers one `401` challenge, follows up to
    /// [`MAX_REDIRECTS`] redirects (registries send blob reads to their storage; credentials
    /// stay with the registry), and refuses more than `limit` bytes. Returns the bytes
    /// written. `out` may have been written to when this fails: the caller starts over.
    pub fn download(
        &self,
        url: &str,
        accept: Option<&str>,
        what: &'static str,
        limit: u64,
        out: &mut dyn io::Write,
    ) -> Result<u64, RegistryError> {
        let mut url = url.to_owned();
        let mut challenged = false;
        let mut redirects = 0;
        loop {
            let ours = url.starts_with(&format!("{}/", self.base));
            let mut builder = ureq::http::Request::builder().method("GET").uri(&url);
            if let Some(accept) = accept {
                builder = builder.header("Accept", accept);
            }
            if let Some(auth) = if ours { self.authorization() } else { None } {
                builder = builder.header("Authorization", auth);
            }
            let request = builder.body(()).map_err(|e| RegistryError::Protocol {
                method: "GET",
                url: url.clone(),
                detail: e.to_string(),
            })?;
            let response = self.agent.run(request).map_err(|e| self.request_error("GET", &url, e))?;
            let status = response.status().as_u16();
            match status {
                200 => {
                    let mut reader = response.into_body().into_reader().take(limit.saturating_add(1));
                    let mut written: u64 = 0;
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match reader.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) => return Err(self.broke_off("GET", &url, e)),
                        };
                        written += n as u64;
                        if written > limit {
                            return Err(RegistryError::TooLarge { what, url, limit });
                        }
                        out.write_all(&buf[..n]).map_err(|e| RegistryError::Request {
                            method: "GET",
                            url: url.clone(),
                            detail: format!("cannot keep what was received: {}", lowercase_first(&e.to_string())),
                            transient: false,
                        })?;
                    }
                    return Ok(written);
                }
                301 | 302 | 303 | 307 | 308 if redirects < MAX_REDIRECTS => {
                    redirects += 1;
                    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("");
                    if location.is_empty() {
                        return Err(RegistryError::Protocol {
                            method: "GET",
                            url,
                            detail: format!("http {status} without a `Location` header"),
                        });
                    }
                    url = absolute(&url, location);
                }
                401 if ours && !challenged => {
                    challenged = true;
                    let header = response.headers().get("www-authenticate").and_then(|v| v.to_str().ok());
                    let Some(header) = header else { return Err(self.auth_error()) };
                    let challenge = parse_challenge(header)
                        .map_err(|detail| RegistryError::Challenge { host: self.host.clone(), detail })?;
                    self.answer(challenge)?;
                }
                _ => {
                    let (parts, body) = response.into_parts();
                    let mut data = Vec::new();
                    let _ = body.into_reader().take(MAX_RESPONSE).read_to_end(&mut data);
                    let resp = Response { status, headers: parts.headers, body: data };
                    return Err(self.fail("GET", &url, &resp));
                }
            }
        }
    }

    /// The error for a response body that could not be read to its end: a timeout, or a
    /// connection that broke (both worth another attempt).
    fn broke_off(&self, method: &'static str, url: &str, err: io::Error) -> RegistryError {
        match ureq::Error::from(err) {
            ureq::Error::Timeout(which) => self.timeout(method, url, which),
            other => RegistryError::Request {
                method,
                url: url.to_owned(),
                detail: format!("the response broke off: {}", lowercase_first(&other.to_string())),
                transient: true,
            },
        }
    }

    fn request_error(&self, method: &'static str, url: &str, err: ureq::Error) -> RegistryError {
        match err {
            ureq::Error::Timeout(which) => self.timeout(method, url, which),
            ureq::Error::HostNotFound => RegistryError::Request {
                method,
                url: url.to_owned(),
                detail: "the host name does not resolve".into(),
                transient: false,
            },
            ureq::Error::Io(e) => RegistryError::Request {
                method,
                url: url.to_owned(),
                transient: is_transient_io(e.kind()),
                detail: lowercase_first(&e.to_string()),
            },
            ureq::Error::ConnectionFailed => RegistryError::Request {
                method,
                url: url.to_owned(),
                detail: "connection failed".into(),
                transient: true,
            },
            other => RegistryError::Request {
                method,
                url: url.to_owned(),
                detail: lowercase_first(&other.to_string()),
                transient: false,
            },
        }
    }

    fn timeout(&self, method: &'static str, url: &str, which: ureq::Timeout) -> RegistryError {
        let (during, limit) = match which {
            ureq::Timeout::Resolve | ureq::Timeout::Connect => ("connecting to", self.opts.connect_timeout),
            _ => ("waiting for", self.opts.read_timeout),
        };
        RegistryError::Timeout { method, url: url.to_owned(), during, limit }
    }
}

/// `location` (a `Location` header of a response to `url`) as an absolute URL.
fn absolute(url: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_owned();
    }
    // The origin of `url`: scheme and authority.
    let origin_end = url.find("://").map(|i| i + 3).and_then(|start| url[start..].find('/').map(|j| start + j));
    let origin = origin_end.map_or(url, |end| &url[..end]);
    if location.starts_with('/') {
        format!("{origin}{location}")
    } else {
        let dir = url.rsplit_once('/').map_or(url, |(dir, _)| dir);
        format!("{dir}/{location}")
    }
}

/// `: CODE: message; CODE: message` from a distribution error body, or nothing.
fn registry_errors(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let Some(errors) = value.get("errors").and_then(|e| e.as_array()) else {
        return String::new();
    };
    let texts: Vec<String> = errors
        .iter()
        .map(|e| {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("UNKNOWN");
            match e.get("message").and_then(|m| m.as_str()) {
                Some(message) => format!("{code}: {message}"),
                None => code.to_owned(),
            }
        })
        .collect();
    if texts.is_empty() {
        String::new()
    } else {
        format!(" (registry says {})", texts.join("; "))
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_error_bodies() {
        let body =
            br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{}}]}"#;
        assert_eq!(registry_errors(body), " (registry says NAME_UNKNOWN: repository name not known to registry)");
        assert_eq!(registry_errors(b"<html>"), "");
        assert_eq!(percent_encode("repository:a/b:pull,push"), "repository%3Aa%2Fb%3Apull%2Cpush");
    }
}

//! Registry credentials and `WWW-Authenticate` challenges.
//!
//! Credentials come from a docker-style auth file: `$REGISTRY_AUTH_FILE` when set, else
//! `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. For a host, the file's
//! `credHelpers` entry wins, then an `auths` entry with credentials, then `credsStore`: a
//! credential helper is docker's protocol, `docker-credential-<name> get` with the host on
//! stdin answering `{"Username": ..., "Secret": ...}` (identity tokens, user `<token>`, are
//! not supported). [`load_credentials`] takes the environment values as parameters
//! ([`AuthEnv`]) so tests need no process state.
//!
//! Secrets (passwords, tokens) live in [`Secret`], whose `Debug` prints `<redacted>` and
//! which has no `Display`: no message, log or `{:?}` can show one.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;

use crate::registry::error::RegistryError;

/// A password or token. Never printed: `Debug` shows `<redacted>`, and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Secret(text.into())
    }

    /// The secret itself, for building an `Authorization` header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A user name and password for one registry, and the file they were read from (so an
/// authentication failure can say which file to fix).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (not secret; shown in `Debug`).
    pub username: String,
    /// The password or identity token.
    pub password: Secret,
    /// The auth file they came from, or a description such as `the command line`.
    pub source: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password)
            .field("source", &self.source)
            .finish()
    }
}

impl Credentials {
    /// The value of a `Basic` `Authorization` header.
    pub(crate) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password.expose());
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

/// The environment values that locate the auth file. Only [`AuthEnv::from_process`] reads
/// the process environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthEnv {
    /// `$REGISTRY_AUTH_FILE`: the auth file to use (podman, skopeo); must exist when set.
    pub registry_auth_file: Option<PathBuf>,
    /// `$DOCKER_CONFIG`: the directory holding `config.json`.
    pub docker_config: Option<PathBuf>,
    /// `$HOME`, for `~/.docker/config.json`.
    pub home: Option<PathBuf>,
    /// `$PATH`, where credential helpers are looked for.
    pub path: Option<OsString>,
}

impl AuthEnv {
    /// The values of this process's environment (empty values count as unset).
    pub fn from_process() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        AuthEnv {
            registry_auth_file: var("REGISTRY_AUTH_FILE"),
            docker_config: var("DOCKER_CONFIG"),
            home: var("HOME"),
            path: std::env::var_os("PATH"),
        }
    }

    /// The auth file to read, and whether it must exist (it must when named explicitly by
    /// `$REGISTRY_AUTH_FILE`).
    pub fn auth_file(&self) -> Option<(PathBuf, bool)> {
        if let Some(file) = &self.registry_auth_file {
            return Some((file.clone(), true));
        }
        if let Some(dir) = &self.docker_config {
            return Some((dir.join("config.json"), false));
        }
        self.home.as_ref().map(|home| (home.join(".docker").join("config.json"), false))
    }
}

/// The credentials for `host` (`HOST[:PORT]`) from the auth file [`AuthEnv`] locates, or
/// `None` when there is no such file or it has no entry for the host (anonymous access).
///
/// An entry matches when its key, with any `http://`/`https://` prefix and path removed,
/// is `host`. It holds either `auth` (base64 of `user:password`) or `username` and
/// `password`. A file that is not valid JSON, or an entry that decodes to nothing usable,
/// is an error naming the file.
pub fn load_credentials(host: &str, env: &AuthEnv) -> Result<Option<Credentials>, RegistryError> {
    let Some((path, required)) = env.auth_file() else {
        return Ok(None);
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !required => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(RegistryError::AuthFileMissing { path });
        }
        Err(source) => return Err(RegistryError::AuthFileRead { path, source }),
    };
    match read_entry(&bytes, host, &path)? {
        Entry::Credentials(creds) => Ok(Some(creds)),
        Entry::Helper(name) => run_helper(&name, host, &path, env.path.as_deref()),
        Entry::Nothing => Ok(None),
    }
}

/// What an auth file says about one host.
enum Entry {
    Credentials(Credentials),
    /// Ask the credential helper `docker-credential-<name>`.
    Helper(String),
    Nothing,
}

/// [`load_credentials`] on the bytes of `path`, without running a credential helper (a host
/// that has one gets `None`).
pub fn parse_auth_file(bytes: &[u8], host: &str, path: &Path) -> Result<Option<Credentials>, RegistryError> {
    match read_entry(bytes, host, path)? {
        Entry::Credentials(creds) => Ok(Some(creds)),
        Entry::Helper(_) | Entry::Nothing => Ok(None),
    }
}

fn read_entry(bytes: &[u8], host: &str, path: &Path) -> Result<Entry, RegistryError> {
    let bad = |detail: String| RegistryError::AuthFileInvalid { path: path.to_owned(), detail };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let Some(root) = value.as_object() else {
        return Err(bad("expected a JSON object with an `auths` object".into()));
    };
    match root.get("credHelpers") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(helpers)) => {
            if let Some(key) = key_for_host(helpers, host) {
                return match helpers[key].as_str() {
                    Some(name) if is_helper_name(name) => Ok(Entry::Helper(name.to_owned())),
                    _ => Err(bad(format!("`credHelpers.\"{key}\"` is not a credential helper name"))),
                };
            }
        }
        Some(_) => return Err(bad("`credHelpers` is not an object".into())),
    }
    let store = match root.get("credsStore") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(name)) if name.is_empty() => None,
        Some(serde_json::Value::String(name)) if is_helper_name(name) => Some(name.clone()),
        Some(serde_json::Value::String(name)) => {
            return Err(bad(format!("`credsStore` names `{name}`, which is not a credential helper name")))
        }
        Some(_) => return Err(bad("`credsStore` is not a string".into())),
    };
    let auths = match root.get("auths") {
        None | Some(serde_json::Value::Null) => return Ok(store.map_or(Entry::Nothing, Entry::Helper)),
        Some(serde_json::Value::Object(auths)) => auths,
        Some(_) => return Err(bad("`auths` is not an object".into())),
    };
    let Some(key) = key_for_host(auths, host) else {
        return Ok(store.map_or(Entry::Nothing, Entry::Helper));
    };
    let Some(entry) = auths[key].as_object() else {
        return Err(bad(format!("`auths.{key}` is not an object")));
    };
    let has_credentials = ["auth", "username", "password"]
        .iter()
        .any(|f| entry.get(*f).is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty())));
    if !has_credentials {
        // docker writes `{}` here when the credentials are in its `credsStore`.
        if let Some(name) = store {
            return Ok(Entry::Helper(name));
        }
    }
    let text = |field: &str| entry.get(field).and_then(|v| v.as_str()).filter(|s| !s.is_empty());
    let source = path.display().to_string();
    if let Some(auth) = text("auth") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad(format!("`auths.{key}.auth` is not base64")))?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad(format!("`auths.{key}.auth` is not UTF-8")))?;
        let Some((username, password)) = decoded.split_once(':') else {
            return Err(bad(format!("`auths.{key}.auth` does not decode to `user:password`")));
        };
        return Ok(Entry::Credentials(Credentials {
            username: username.to_owned(),
            password: Secret::new(password),
            source,
        }));
    }
    match (text("username"), text("password")) {
        (Some(username), Some(password)) => Ok(Entry::Credentials(Credentials {
            username: username.to_owned(),
            password: Secret::new(password),
            source,
        })),
        _ => Err(bad(format!("`auths.{key}` has neither `auth` nor `username` and `password`"))),
    }
}

/// Runs `docker-credential-<name> get` (found on `search_path`) for `host`: its
/// credentials, or `None` when it has none for the host.
fn run_helper(
    name: &str,
    host: &str,
    file: &Path,
    search_path: Option<&std::ffi::OsStr>,
) -> Result<Option<Credentials>, RegistryError> {
    let helper = format!("docker-credential-{name}");
    let fail = |detail: String| RegistryError::CredentialHelper {
        file: file.to_owned(),
        helper: helper.clone(),
        host: host.to_owned(),
        detail,
    };
    let program = search_path
        .into_iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(&helper))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            fail(format!(
                "it is not on PATH: install it, or point `$REGISTRY_AUTH_FILE` at an auth file with credentials for `{host}`"
            ))
        })?;
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("it cannot be run: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is judged by its exit status below.
        let _ = stdin.write_all(host.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| fail(format!("it cannot be run: {e}")))?;
    let said = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().lines().next().unwrap_or_default().to_owned();
    if !out.status.success() {
        let message = if out.stdout.is_empty() { said(&out.stderr) } else { said(&out.stdout) };
        // docker-credential-helpers' answer for an unknown host.
        if message.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(format!("it failed ({}): {message}", out.status)));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let answer: Answer = serde_json::from_slice(&out.stdout)
        .map_err(|e| fail(format!("its answer is not `{{\"Username\": ..., \"Secret\": ...}}`: {e}")))?;
    if answer.username == "<token>" {
        return Err(fail(
            "it gave an identity token, which executor does not support; log in with a user name and password or token"
                .into(),
        ));
    }
    if answer.username.is_empty() && answer.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: answer.username,
        password: Secret::new(answer.secret),
        source: format!("{helper} (named by {})", file.display()),
    }))
}

/// The key of `map` for `host`: exact keys first, so `host` beats `https://host/v1/` when
/// both are present.
fn key_for_host<'a>(map: &'a serde_json::Map<String, serde_json::Value>, host: &str) -> Option<&'a str> {
    map.keys().filter(|k| auth_key_host(k) == host).min_by_key(|k| (k.as_str() != host, k.as_str())).map(String::as_str)
}

/// Whether `name` can be the `<name>` of `docker-credential-<name>` (no path, no space).
fn is_helper_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// `https://host:5000/v1/` -> `host:5000`.
fn auth_key_host(key: &str) -> &str {
    let rest = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// A parsed `WWW-Authenticate` header: what the registry wants before it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="..."`: send the user name and password with every request.
    Basic,
    /// `Bearer realm="...",service="...",scope="..."`: get a token from `realm`.
    Bearer {
        /// The token endpoint URL.
        realm: String,
        /// The `service` to ask the token for, if given.
        service: Option<String>,
        /// The `scope` the registry asked for, if given.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value (RFC 7235: a scheme, then `key=value` or
/// `key="quoted value"` pairs separated by commas). Only the first challenge is read.
pub fn parse_challenge(header: &str) -> Result<Challenge, String> {
    let header = header.trim();
    let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
    let mut realm = None;
    let mut service = None;
    let mut scope = None;
    let mut rest = params.trim_start();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            return Err(format!("expected `key=value` in `{header}`"));
        };
        let key = key.trim().to_ascii_lowercase();
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            let Some(end) = end else {
                return Err(format!("unterminated quoted value in `{header}`"));
            };
            (value, &quoted[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        match key.as_str() {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            "scope" => scope = Some(value),
            _ => {}
        }
        let after = after.trim_start();
        rest = match after.strip_prefix(',') {
            Some(next) => next.trim_start(),
            None if after.is_empty() => after,
            None => return Err(format!("expected `,` between parameters in `{header}`")),
        };
    }
    if scheme.eq_ignore_ascii_case("basic") {
        Ok(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        match realm {
            Some(realm) if !realm.is_empty() => Ok(Challenge::Bearer { realm, service, scope }),
            _ => Err(format!("a `Bearer` challenge without a `realm` in `{header}`")),
        }
    } else {
        Err(format!("unsupported authentication scheme `{scheme}` (expected `Basic` or `Bearer`)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn parse(json: &str, host: &str) -> Result<Option<Credentials>, String> {
        parse_auth_file(json.as_bytes(), host, Path::new("/home/u/.docker/config.json")).map_err(|e| e.to_string())
    }

    #[test]
    fn challenges() {
        let table = [
            (r#"Basic realm="Registry Realm""#, Ok(Challenge::Basic)),
            ("basic", Ok(Challenge::Basic)),
            (
                r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#,
                Ok(Challenge::Bearer {
                    realm: "https://auth.example.com/token".into(),
                    service: Some("registry.example.com".into()),
                    scope: Some("repository:a/b:pull,push".into()),
                }),
            ),
            (
                r#"Bearer realm=https://h/t, service="a \"q\" b", error="insufficient_scope""#,
                Ok(Challenge::Bearer { realm: "https://h/t".into(), service: Some(r#"a "q" b"#.into()), scope: None }),
            ),
            (
                r#"Bearer service="x""#,
                Err(r#"a `Bearer` challenge without a `realm` in `Bearer service="x"`"#.to_owned()),
            ),
            (r#"Bearer realm="x"#, Err(r#"unterminated quoted value in `Bearer realm="x`"#.to_owned())),
            (r#"Bearer realm"#, Err("expected `key=value` in `Bearer realm`".to_owned())),
            (
                r#"Negotiate abc=1"#,
                Err("unsupported authentication scheme `Negotiate` (expected `Basic` or `Bearer`)".to_owned()),
            ),
        ];
        for (header, want) in table {
            assert_eq!(parse_challenge(header), want, "{header}");
        }
    }

    #[test]
    fn auth_file_entries() {
        let host = "127.0.0.1:5000";
        let creds = parse(&format!(r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{}"}}}}}}"#, b64("alice:p:w")), host)
            .expect("valid")
            .expect("found");
        assert_eq!((creds.username.as_str(), creds.password.expose()), ("alice", "p:w"));
        assert_eq!(creds.source, "/home/u/.docker/config.json");

        let fields = parse(r#"{"auths":{"https://127.0.0.1:5000/v1/":{"username":"bob","password":"pw"}}}"#, host)
            .expect("valid")
            .expect("found");
        assert_eq!((fields.username.as_str(), fields.password.expose()), ("bob", "pw"));

        // The exact key wins over a URL form of the same host.
        let both = format!(
            r#"{{"auths":{{"https://127.0.0.1:5000":{{"auth":"{}"}},"127.0.0.1:5000":{{"auth":"{}"}}}}}}"#,
            b64("url:x"),
            b64("exact:y")
        );
        assert_eq!(parse(&both, host).expect("valid").expect("found").username, "exact");

        assert_eq!(parse(r#"{"auths":{"other:5000":{"auth":"eDp5"}}}"#, host), Ok(None));
        assert_eq!(parse(r#"{"credsStore":"desktop"}"#, host), Ok(None));
    }

    #[test]
    fn auth_file_errors_name_the_file() {
        let host = "h";
        let table = [
            ("{", "invalid auth file `/home/u/.docker/config.json`: not valid JSON: EOF while parsing an object at line 1 column 1"),
            ("[]", "invalid auth file `/home/u/.docker/config.json`: expected a JSON object with an `auths` object"),
            (r#"{"auths":[]}"#, "invalid auth file `/home/u/.docker/config.json`: `auths` is not an object"),
            (r#"{"auths":{"h":1}}"#, "invalid auth file `/home/u/.docker/config.json`: `auths.h` is not an object"),
            (r#"{"auths":{"h":{"auth":"!!"}}}"#, "invalid auth file `/home/u/.docker/config.json`: `auths.h.auth` is not base64"),
            (
                r#"{"auths":{"h":{"auth":"bm9jb2xvbg=="}}}"#,
                "invalid auth file `/home/u/.docker/config.json`: `auths.h.auth` does not decode to `user:password`",
            ),
            (
                r#"{"auths":{"h":{"username":"u"}}}"#,
                "invalid auth file `/home/u/.docker/config.json`: `auths.h` has neither `auth` nor `username` and `password`",
            ),
        ];
        for (json, message) in table {
            assert_eq!(parse(json, host).expect_err(json), message);
        }
    }

    #[test]
    fn auth_file_location_from_env() {
        let dir = tempfile::tempdir().expect("temp dir");
        let env = AuthEnv { home: Some(dir.path().to_owned()), ..AuthEnv::default() };
        // No ~/.docker/config.json: anonymous.
        assert_eq!(load_credentials("h", &env).expect("ok"), None);
        std::fs::create_dir_all(dir.path().join(".docker")).expect("mkdir");
        std::fs::write(
            dir.path().join(".docker/config.json"),
            format!(r#"{{"auths":{{"h":{{"auth":"{}"}}}}}}"#, b64("u:p")),
        )
        .expect("write");
        assert_eq!(load_credentials("h", &env).expect("ok").expect("found").username, "u");

        let missing = dir.path().join("nope.json");
        let env = AuthEnv { registry_auth_file: Some(missing.clone()), ..env };
        let err = load_credentials("h", &env).expect_err("missing").to_string();
        assert_eq!(
            err.replace(&dir.path().display().to_string(), "<dir>"),
            "auth file `<dir>/nope.json` (from `$REGISTRY_AUTH_FILE`) does not exist"
        );
    }

    /// A `docker-credential-<name>` script in `dir` that knows `h` (and prints what it was
    /// asked to stderr), says "not found" for other hosts, or prints `answer` for `h`.
    fn helper_script(dir: &Path, name: &str, answer: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(format!("docker-credential-{name}"));
        let script = format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nhost=$(cat)\nif [ \"$host\" = h ]; then echo '{answer}'; exit 0; fi\necho 'credentials not found in native keychain'; exit 1\n"
        );
        std::fs::write(&path, script).expect("write helper");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    #[test]
    fn credential_helpers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir");
        helper_script(&bin, "store", r#"{"ServerURL":"h","Username":"from-store","Secret":"s1"}"#);
        helper_script(&bin, "special", r#"{"ServerURL":"h","Username":"from-helper","Secret":"s2"}"#);
        helper_script(&bin, "token", r#"{"ServerURL":"h","Username":"<token>","Secret":"t"}"#);
        helper_script(&bin, "garbage", "not json");
        let file = dir.path().join("auth.json");
        let env = AuthEnv {
            registry_auth_file: Some(file.clone()),
            path: Some(std::env::join_paths([dir.path().join("empty"), bin.clone()]).expect("path")),
            ..AuthEnv::default()
        };
        let load = |json: &str, host: &str| {
            std::fs::write(&file, json).expect("write");
            load_credentials(host, &env).map(|c| c.map(|c| (c.username, c.password.expose().to_owned())))
        };
        let user = |name: &str, secret: &str| Ok(Some((name.to_owned(), secret.to_owned())));
        // docker's `{}` entry plus `credsStore`.
        assert_eq!(
            load(r#"{"auths":{"h":{}},"credsStore":"store"}"#, "h").map_err(|e| e.to_string()),
            user("from-store", "s1")
        );
        assert_eq!(load(r#"{"credsStore":"store"}"#, "h").map_err(|e| e.to_string()), user("from-store", "s1"));
        // `credHelpers` wins over everything; explicit `auths` credentials over `credsStore`.
        let all = format!(
            r#"{{"auths":{{"h":{{"auth":"{}"}}}},"credsStore":"store","credHelpers":{{"h":"special"}}}}"#,
            b64("file:f")
        );
        assert_eq!(load(&all, "h").map_err(|e| e.to_string()), user("from-helper", "s2"));
        let file_first = format!(r#"{{"auths":{{"h":{{"auth":"{}"}}}},"credsStore":"store"}}"#, b64("file:f"));
        assert_eq!(load(&file_first, "h").map_err(|e| e.to_string()), user("file", "f"));
        // A host the helper does not know: anonymous.
        assert_eq!(load(r#"{"credsStore":"store"}"#, "other").map_err(|e| e.to_string()), Ok(None));
        // The source names the helper and the file.
        std::fs::write(&file, r#"{"credsStore":"store"}"#).expect("write");
        let creds = load_credentials("h", &env).expect("ok").expect("found");
        assert_eq!(creds.source, format!("docker-credential-store (named by {})", file.display()));

        let err = |json: &str| {
            load(json, "h").expect_err(json).to_string().replace(&dir.path().display().to_string(), "<dir>")
        };
        assert_eq!(
            err(r#"{"credsStore":"desktop"}"#),
            "`<dir>/auth.json` names the credential helper `docker-credential-desktop` for `h`, but it is not on PATH: \
             install it, or point `$REGISTRY_AUTH_FILE` at an auth file with credentials for `h`"
        );
        assert_eq!(
            err(r#"{"credHelpers":{"h":"token"}}"#),
            "`<dir>/auth.json` names the credential helper `docker-credential-token` for `h`, but it gave an identity \
             token, which executor does not support; log in with a user name and password or token"
        );
        assert!(err(r#"{"credHelpers":{"h":"garbage"}}"#)
            .contains("its answer is not `{\"Username\": ..., \"Secret\": ...}`"));
        assert_eq!(
            err(r#"{"credHelpers":{"h":"../x"}}"#),
            "invalid auth file `<dir>/auth.json`: `credHelpers.\"h\"` is not a credential helper name"
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let creds = Credentials { username: "alice".into(), password: Secret::new("hunter2"), source: "f".into() };
        let debug = format!("{creds:?}");
        assert_eq!(debug, r#"Credentials { username: "alice", password: <redacted>, source: "f" }"#);
        assert!(!creds.basic_header().contains("hunter2"));
    }
}

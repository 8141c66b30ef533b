//! Where an image is pushed: `HOST[:PORT]/REPOSITORY[:TAG]`.

use std::fmt;
use std::str::FromStr;

/// The longest tag the distribution spec allows.
const MAX_TAG_LEN: usize = 128;

/// The longest repository name (with the host) the distribution spec advises.
const MAX_NAME_LEN: usize = 255;

/// A push target: a registry host, a repository in it and the tags to point at the image.
///
/// Invariants (checked by [`Reference::parse`]): `host` is a DNS name or IPv4 address with
/// an optional numeric port; `repository` is one or more lowercase path components
/// (`[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`); every tag matches
/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `registry.example.com` or `127.0.0.1:5000`.
    pub host: String,
    /// `team/app`: the `<name>` of `/v2/<name>/...`.
    pub repository: String,
    /// The tags to push, in order; empty pushes by digest only.
    pub tags: Vec<String>,
}

/// Text that is not a `HOST[:PORT]/REPOSITORY[:TAG]` reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference `{text}`: {reason}")]
pub struct ReferenceError {
    /// The text as given.
    pub text: String,
    /// What is wrong and how to write it.
    pub reason: String,
}

impl Reference {
    /// Parses `HOST[:PORT]/REPOSITORY[:TAG]`. The host is always explicit (there is no
    /// default registry); a missing tag means `latest`, as with `docker push`.
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let fail = |reason: String| ReferenceError { text: text.to_owned(), reason };
        if text.contains('@') {
            return Err(fail(
                "a push target names a tag, not a digest (the digest is the image's own); \
                 write `HOST/REPOSITORY:TAG`"
                    .into(),
            ));
        }
        let Some((host, rest)) = text.split_once('/') else {
            return Err(fail("expected `HOST[:PORT]/REPOSITORY[:TAG]`, like `127.0.0.1:5000/app:v1`".into()));
        };
        check_host(host).map_err(fail)?;
        // A `:` after the last `/` starts the tag; one before it would be in the host.
        let (repository, tag) = match rest.rsplit_once(':') {
            Some((repo, tag)) => (repo, tag),
            None => (rest, "latest"),
        };
        check_repository(repository).map_err(fail)?;
        if host.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(fail(format!("the name is longer than {MAX_NAME_LEN} characters")));
        }
        check_tag(tag).map_err(fail)?;
        Ok(Reference { host: host.to_owned(), repository: repository.to_owned(), tags: vec![tag.to_owned()] })
    }

    /// Whether the host is this machine (`localhost`, `127.0.0.1`, `[::1]`, any port), which
    /// is spoken to over plain HTTP.
    pub fn is_loopback(&self) -> bool {
        let name = match self.host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => self.host.split(':').next().unwrap_or(""),
        };
        matches!(name, "localhost" | "127.0.0.1" | "::1")
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl fmt::Display for Reference {
    /// `host/repository` and the first tag, if any: the text [`Reference::parse`] accepts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.repository)?;
        match self.tags.first() {
            Some(tag) => write!(f, ":{tag}"),
            None => Ok(()),
        }
    }
}

fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the registry host is empty; expected `HOST[:PORT]/REPOSITORY[:TAG]`".into());
    }
    let (name, port) = if let Some(v6) = host.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return Err(format!("unclosed `[` in host `{host}`"));
        };
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(format!("invalid IPv6 address `[{addr}]` in host `{host}`"));
        }
        match after {
            "" => (addr, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (addr, Some(port)),
                None => return Err(format!("unexpected `{after}` after the address in host `{host}`")),
            },
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if !host.starts_with('[') {
        let labels_ok = !name.is_empty()
            && name.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !labels_ok {
            return Err(format!(
                "invalid registry host `{name}`: use a DNS name or IP address, like `registry.example.com`"
            ));
        }
    }
    if let Some(port) = port {
        if port.is_empty()
            || port.len() > 5
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u16>().is_err()
        {
            return Err(format!("invalid port `{port}` in host `{host}`: expected a number from 1 to 65535"));
        }
    }
    Ok(())
}

pub fn check_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("the repository is empty; expected `HOST[:PORT]/REPOSITORY[:TAG]`".into());
    }
    for component in repository.split('/') {
        if !valid_component(component) {
            return Err(format!(
                "invalid repository component `{component}`: use lowercase letters and digits, \
                 separated by `.`, `_`, `__` or `-`"
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`: one component of a repository name (the
/// distribution spec's grammar, also used for docker-archive `RepoTags`).
pub(crate) fn valid_component(component: &str) -> bool {
    let b = component.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        if b[i..].starts_with(b"__") {
            i += 2;
        } else if b[i] == b'.' || b[i] == b'_' {
            i += 1;
        } else if b[i] == b'-' {
            while i < b.len() && b[i] == b'-' {
                i += 1;
            }
        } else {
            return false;
        }
    }
}

pub fn check_tag(tag: &str) -> Result<(), String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let ok = tag.len() <= MAX_TAG_LEN && tag.starts_with(word) && tag.chars().all(|c| word(c) || c == '.' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid tag `{tag}`: use up to {MAX_TAG_LEN} letters, digits, `_`, `.` and `-`, \
             not starting with `.` or `-`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted() {
        let table = [
            ("127.0.0.1:5000/app:v1", "127.0.0.1:5000", "app", "v1", true),
            ("localhost/team/app", "localhost", "team/app", "latest", true),
            ("registry.example.com/a.b/c__d/e--f:1.0_rc-2", "registry.example.com", "a.b/c__d/e--f", "1.0_rc-2", false),
            ("[::1]:5000/app:x", "[::1]:5000", "app", "x", true),
            ("ghcr.io/org/app:latest", "ghcr.io", "org/app", "latest", false),
        ];
        for (text, host, repo, tag, loopback) in table {
            let r = Reference::parse(text).expect(text);
            assert_eq!(
                (r.host.as_str(), r.repository.as_str(), r.tags.as_slice()),
                (host, repo, &[tag.to_owned()][..])
            );
            assert_eq!(r.is_loopback(), loopback, "{text}");
        }
        assert_eq!(Reference::parse("localhost/app").expect("valid").to_string(), "localhost/app:latest");
    }

    #[test]
    fn rejected_with_exact_texts() {
        let table = [
            ("app", "invalid image reference `app`: expected `HOST[:PORT]/REPOSITORY[:TAG]`, like `127.0.0.1:5000/app:v1`"),
            ("/app", "invalid image reference `/app`: the registry host is empty; expected `HOST[:PORT]/REPOSITORY[:TAG]`"),
            (
                "localhost:99999/app",
                "invalid image reference `localhost:99999/app`: invalid port `99999` in host `localhost:99999`: \
                 expected a number from 1 to 65535",
            ),
            (
                "reg_istry/app",
                "invalid image reference `reg_istry/app`: invalid registry host `reg_istry`: use a DNS name or IP \
                 address, like `registry.example.com`",
            ),
            ("localhost/", "invalid image reference `localhost/`: the repository is empty; expected `HOST[:PORT]/REPOSITORY[:TAG]`"),
            (
                "localhost/App:v1",
                "invalid image reference `localhost/App:v1`: invalid repository component `App`: use lowercase \
                 letters and digits, separated by `.`, `_`, `__` or `-`",
            ),
            (
                "localhost/a//b",
                "invalid image reference `localhost/a//b`: invalid repository component ``: use lowercase letters \
                 and digits, separated by `.`, `_`, `__` or `-`",
            ),
            (
                "localhost/app:.v1",
                "invalid image reference `localhost/app:.v1`: invalid tag `.v1`: use up to 128 letters, digits, \
                 `_`, `.` and `-`, not starting with `.` or `-`",
            ),
            (
                "localhost/app:",
                "invalid image reference `localhost/app:`: invalid tag ``: use up to 128 letters, digits, `_`, `.` \
                 and `-`, not starting with `.` or `-`",
            ),
            (
                "localhost/app@sha256:00",
                "invalid image reference `localhost/app@sha256:00`: a push target names a tag, not a digest (the \
                 digest is the image's own); write `HOST/REPOSITORY:TAG`",
            ),
        ];
        for (text, message) in table {
            assert_eq!(Reference::parse(text).expect_err(text).to_string(), message);
        }
    }
}

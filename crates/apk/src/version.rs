//! [`Version`]: an apk package version, parsed once and ordered exactly as
//! apk-tools orders versions.
//!
//! The grammar is the one current apk-tools (2.14 and 3.x, `src/version.c`)
//! accepts:
//!
//! ```text
//! digits {"." digits} [letter] {"_" suffix [digits]} ["~" hexdigits] ["-r" digits]
//! suffix = alpha | beta | pre | rc | cvs | svn | git | hg | p
//! ```
//!
//! Ordering, token by token from the left:
//! - the first number and suffix/revision numbers compare as numbers
//!   (`006` = `6`, `_p10 > _p9`, `-r10 > -r9`);
//! - later `.N` numbers compare as numbers, unless either side starts with
//!   `0`, then as strings (`1.10 > 1.9`, `8.2.0 < 8.2.001`);
//! - letters compare as characters (`1.0a < 1.0b`), suffixes in the order
//!   `alpha < beta < pre < rc < (none) < cvs < svn < git < hg < p`, commit
//!   hashes as strings;
//! - when one version runs out first, the longer one is greater unless the
//!   extra token is a pre-release suffix (`1.0_rc1 < 1.0 < 1.0_p1 < 1.0.1`,
//!   `1.0 < 1.0-r1`).
//!
//! Older apk-tools (2.12, used to build Alpine 3.17) also accepted a few
//! irregular strings such as `0.99f7` (digits after a letter) or `5.3.0_`
//! (empty suffix). Current apk-tools and apko reject them, and so does
//! [`Version::parse`]; [`crate::index`] reports such entries instead of
//! failing the whole index.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// A version string that failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("empty version: an apk version looks like `1.2.3_rc1-r0`")]
    Empty,
    #[error(
        "invalid version `{version}` at byte {position}: {reason}; \
         an apk version looks like `1.2.3_rc1-r0`"
    )]
    Invalid { version: String, position: usize, reason: &'static str },
    #[error("invalid version `{version}`: the number `{number}` does not fit in 64 bits")]
    NumberTooLarge { version: String, number: String },
}

/// Kinds of version tokens. The declaration order is significant: it is the
/// order apk-tools uses both to decide which token may follow which and to
/// break ties when one version is a prefix of the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNumber,
    CommitHash,
    Revision,
    End,
}

/// Suffix values as apk-tools numbers them: pre-release suffixes sort below
/// [`SUFFIX_NONE`], post-release ones above.
const SUFFIXES: [(&str, u8); 9] =
    [("alpha", 1), ("beta", 2), ("pre", 3), ("rc", 4), ("cvs", 6), ("svn", 7), ("git", 8), ("hg", 9), ("p", 10)];
const SUFFIX_NONE: u8 = 5;

/// One token: its kind, the byte range of its value in the version text
/// (without the leading `.`, `_`, `~` or `-r`), and the numeric value for
/// number tokens or the suffix value for suffix tokens.
#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    start: u32,
    end: u32,
    /// Number for digit tokens, suffix value for [`Kind::Suffix`], 0 otherwise.
    value: u64,
}

/// A parsed apk version such as `2023c-r0` or `1.35.0_git20230101-r29`.
///
/// Invariant: `text` matches the grammar in the module docs and `tokens` is
/// its tokenization. Equality follows the apk ordering, so `006` equals `6`;
/// [`Version::as_str`] keeps the original text.
#[derive(Clone)]
pub struct Version {
    text: Box<str>,
    tokens: Box<[Token]>,
}

impl Version {
    /// Parses and validates `text`.
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        if text.is_empty() {
            return Err(VersionError::Empty);
        }
        if text.len() > u32::MAX as usize {
            return Err(invalid(text, 0, "the version is too long"));
        }
        let bytes = text.as_bytes();
        let mut tokens = Vec::with_capacity(8);
        let mut pos = 0usize;
        let (number, end) = digits(text, pos)?;
        if end == pos {
            return Err(invalid(text, pos, "a version starts with a digit"));
        }
        tokens.push(token(Kind::InitialDigit, pos, end, number));
        pos = end;
        let mut last = Kind::InitialDigit;
        while pos < bytes.len() {
            let c = bytes[pos];
            let next = match c {
                b'a'..=b'z' => {
                    if last > Kind::Digit {
                        return Err(invalid(text, pos, "a letter may only follow a number"));
                    }
                    let t = token(Kind::Letter, pos, pos + 1, 0);
                    pos += 1;
                    t
                }
                b'.' => {
                    if last > Kind::Digit {
                        return Err(invalid(
                            text,
                            pos,
                            "`.` may only follow a number (not a letter, suffix or revision)",
                        ));
                    }
                    let (number, end) = digits(text, pos + 1)?;
                    if end == pos + 1 {
                        return Err(invalid(text, pos, "`.` must be followed by a number"));
                    }
                    let t = token(Kind::Digit, pos + 1, end, number);
                    pos = end;
                    t
                }
                b'0'..=b'9' => {
                    // Digits directly after a suffix name: `_rc1`. Anywhere
                    // else (`1.0a1`) apk-tools rejects them.
                    if last != Kind::Suffix {
                        return Err(invalid(text, pos, "digits may not follow a letter without a `.`"));
                    }
                    let (number, end) = digits(text, pos)?;
                    let t = token(Kind::SuffixNumber, pos, end, number);
                    pos = end;
                    t
                }
                b'_' => {
                    if last > Kind::SuffixNumber {
                        return Err(invalid(text, pos, "a `_` suffix may not follow a commit hash or revision"));
                    }
                    let start = pos + 1;
                    let end = start + bytes[start..].iter().take_while(|b| b.is_ascii_lowercase()).count();
                    let name = &text[start..end];
                    let Some(&(_, value)) = SUFFIXES.iter().find(|(s, _)| *s == name) else {
                        return Err(invalid(
                            text,
                            pos,
                            "unknown suffix: expected one of `_alpha`, `_beta`, `_pre`, `_rc`, \
                             `_cvs`, `_svn`, `_git`, `_hg`, `_p`",
                        ));
                    };
                    pos = end;
                    token(Kind::Suffix, start, end, u64::from(value))
                }
                b'~' => {
                    if last >= Kind::CommitHash {
                        return Err(invalid(text, pos, "a `~` commit hash may appear once, before the revision"));
                    }
                    let start = pos + 1;
                    let end = start + bytes[start..].iter().take_while(|b| b.is_ascii_hexdigit()).count();
                    if end == start {
                        return Err(invalid(text, pos, "`~` must be followed by a hex commit hash"));
                    }
                    pos = end;
                    token(Kind::CommitHash, start, end, 0)
                }
                b'-' => {
                    if last >= Kind::Revision {
                        return Err(invalid(text, pos, "only one `-r` revision is allowed"));
                    }
                    if bytes.get(pos + 1) != Some(&b'r') {
                        return Err(invalid(text, pos, "`-` may only start a `-rN` revision"));
                    }
                    let (number, end) = digits(text, pos + 2)?;
                    if end == pos + 2 {
                        return Err(invalid(text, pos, "`-r` must be followed by a number"));
                    }
                    let t = token(Kind::Revision, pos + 2, end, number);
                    pos = end;
                    t
                }
                _ => return Err(invalid(text, pos, "unexpected character")),
            };
            last = next.kind;
            tokens.push(next);
        }
        Ok(Version { text: text.into(), tokens: tokens.into_boxed_slice() })
    }

    /// The version text exactly as parsed.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Compares as apk-tools does. With `fuzzy`, `self` also counts as equal
    /// when `other` is a token prefix of it (`1.2.3` fuzzy-equals `1.2`, but
    /// `1.20` does not): the `~` dependency operator.
    pub fn compare_fuzzy(&self, other: &Version, fuzzy: bool) -> Ordering {
        let mut i = 0;
        let (ka, kb) = loop {
            let ka = self.kind_at(i);
            let kb = other.kind_at(i);
            if ka != kb || ka == Kind::End {
                break (ka, kb);
            }
            let r = self.token_cmp(other, i);
            if r != Ordering::Equal {
                return r;
            }
            i += 1;
        };
        if ka == kb || (kb == Kind::End && fuzzy) {
            return Ordering::Equal;
        }
        if ka == Kind::Suffix && self.is_pre_release_suffix(i) {
            return Ordering::Less;
        }
        if kb == Kind::Suffix && other.is_pre_release_suffix(i) {
            return Ordering::Greater;
        }
        // The version whose next token kind comes later in `Kind` has run
        // out of significant parts first: it is the smaller one.
        if ka > kb {
            Ordering::Less
        } else {
            Ordering::Greater
        }
    }

    fn kind_at(&self, i: usize) -> Kind {
        self.tokens.get(i).map_or(Kind::End, |t| t.kind)
    }

    fn is_pre_release_suffix(&self, i: usize) -> bool {
        self.tokens.get(i).is_some_and(|t| t.value < u64::from(SUFFIX_NONE))
    }

    fn raw(&self, t: &Token) -> &[u8] {
        &self.text.as_bytes()[t.start as usize..t.end as usize]
    }

    /// Compares token `i` of both versions; both have the same kind.
    fn token_cmp(&self, other: &Version, i: usize) -> Ordering {
        let (a, b) = (&self.tokens[i], &other.tokens[i]);
        match a.kind {
            Kind::Digit => {
                let (ra, rb) = (self.raw(a), other.raw(b));
                if ra.first() == Some(&b'0') || rb.first() == Some(&b'0') {
                    ra.cmp(rb)
                } else {
                    a.value.cmp(&b.value)
                }
            }
            Kind::InitialDigit | Kind::SuffixNumber | Kind::Revision | Kind::Suffix => a.value.cmp(&b.value),
            Kind::Letter | Kind::CommitHash | Kind::End => self.raw(a).cmp(other.raw(b)),
        }
    }
}

fn token(kind: Kind, start: usize, end: usize, value: u64) -> Token {
    // `parse` rejects texts longer than `u32::MAX`, so positions fit.
    Token { kind, start: start as u32, end: end as u32, value }
}

fn invalid(text: &str, position: usize, reason: &'static str) -> VersionError {
    VersionError::Invalid { version: text.to_owned(), position, reason }
}

/// Reads the run of ASCII digits at `start`: its value and its end.
fn digits(text: &str, start: usize) -> Result<(u64, usize), VersionError> {
    let bytes = text.as_bytes();
    let len = bytes.get(start..).map_or(0, |rest| rest.iter().take_while(|b| b.is_ascii_digit()).count());
    let end = start + len;
    let mut value: u64 = 0;
    for &b in &bytes[start..end] {
        value = value.checked_mul(10).and_then(|v| v.checked_add(u64::from(b - b'0'))).ok_or_else(|| {
            VersionError::NumberTooLarge { version: text.to_owned(), number: text[start..end].to_owned() }
        })?;
    }
    Ok((value, end))
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.compare_fuzzy(other, false)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl Hash for Version {
    /// Consistent with `Eq`: number tokens hash by value (`006` = `6`), the
    /// others by text (`.N` numbers compare equal only when their text is).
    fn hash<H: Hasher>(&self, state: &mut H) {
        for t in self.tokens.iter() {
            t.kind.hash(state);
            match t.kind {
                Kind::InitialDigit | Kind::SuffixNumber | Kind::Revision | Kind::Suffix => t.value.hash(state),
                Kind::Digit | Kind::Letter | Kind::CommitHash | Kind::End => self.raw(t).hash(state),
            }
        }
    }
}

impl FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({:?})", &*self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("`{s}` should parse: {e}"))
    }

    /// Rows from apk-tools `test/unit/version.data` (a selection covering
    /// every rule) plus the cases named in FORMATS.md.
    const ORDERED: &[(&str, char, &str)] = &[
        ("1.10", '>', "1.9"),
        ("1.0_rc1", '<', "1.0"),
        ("1.0", '<', "1.0_p1"),
        ("1.0-r2", '>', "1.0-r1"),
        ("2.34", '>', "0.1.0_alpha"),
        ("0.1.0_alpha", '=', "0.1.0_alpha"),
        ("0.1.0_alpha2", '>', "0.1.0_alpha"),
        ("1.1", '>', "1.1_alpha1"),
        ("1.2.1", '>', "1.2"),
        ("1.2", '<', "1.3_alpha"),
        ("1.3_alpha2", '<', "1.3_alpha3"),
        ("0.8_beta4", '<', "4.8-r1"),
        ("3.10.18-r1", '>', "2.3.0b-r1"),
        ("2.3.0b-r1", '<', "2.3.0b-r2"),
        ("0.12.3", '>', "0.12"),
        ("0.12", '<', "0.13_beta1"),
        ("1.2.12.1", '<', "1.2.13"),
        ("3.1_p16", '<', "3.1_p17"),
        ("1.06-r6", '<', "006"),
        ("006", '>', "1.0.0"),
        ("1.2.2-r1", '>', "1.2.2"),
        ("20050718-r2", '>', "3.9.8-r5"),
        ("3.9.8-r5", '>', "2.01.01_alpha10"),
        ("0.94", '<', "1.0"),
        ("1.0", '>', "0.99.3.20040818"),
        ("1.39", '>', "1.00_beta2"),
        ("4.2.52_p2-r1", '<', "4.2.52_p4-r2"),
        ("1.02.07", '<', "1.02.10-r1"),
        ("2.18.3-r10", '>', "1.05-r18"),
        ("20060720", '>', "3.0.20060720"),
        ("2.5.1-r8", '<', "2.5.1a-r1"),
        ("1.3.5-r10", '>', "1.3.5-r8"),
        ("20040401", '>', "2.0.0_rc3-r1"),
        ("3.0.0-r2", '<', "021109-r3"),
        ("0.9.16-r1", '<', "3.9_pre20060124"),
        ("0.01", '<', "0.06"),
        ("1.1.7", '<', "6b-r7"),
        ("0.10.0", '<', "0.10.1_rc1"),
        ("1.1a", '<', "1.3a"),
        ("0.15.1b-r2", '>', "0.15.1b"),
        ("2.10.1", '>', "02.08.01b"),
        ("1.6d", '>', "1.2.07.8"),
        ("1.2.07.8", '<', "1.2.12.04"),
        ("1.2.12.04", '<', "1.2.12.05"),
        ("0.59s-r11", '<', "0.65"),
        ("4.20", '>', "0.20070118"),
        ("0.20070118", '<', "0.20070207_rc1"),
        ("0.20070207_rc1", '<', "1.0"),
        ("4.5_p1-r1", '>', "4.5_p1"),
        ("0.9.8c-r1", '<', "0.9.8d"),
        ("2.2.3-r2", '<', "013"),
        ("1.7", '<', "1.7b"),
        ("1.8.5", '<', "1.8.5_p2"),
        ("2.9.11_pre20051101-r3", '>', "2.9.11_pre20051101"),
        ("1.6.8_p12-r1", '>', "1.6.8_p9-r2"),
        ("0.9.28-r2", '<', "0.9.28.1"),
        ("0.9.28.1", '<', "087-r1"),
        ("104-r11", '>', "104-r9"),
        ("2.12r-r4", '<', "2.12r-r5"),
        ("7.0.17", '<', "7.0.174"),
        ("1.3-r0", '<', "1.3.1-r0"),
        ("1.3_pre1-r1", '<', "1.3.2"),
        ("1.0_p10-r0", '>', "1.0_p9-r0"),
        ("0.1.0_alpha_pre2", '<', "0.1.0_alpha"),
        ("1.0.0_pre20191002222144-r0", '<', "1.0.0_pre20210530193627-r0"),
        ("6.0_pre1", '<', "6.0"),
        ("6.0_p1", '>', "6.0"),
        ("8.2.0", '<', "8.2.001"),
        ("8.2.0015", '<', "8.2.002"),
        ("1.0~1234", '<', "1.0~2345"),
        ("1.0~1234-r1", '<', "1.0~2345-r0"),
        ("1.0~1234-r1", '>', "1.0~1234-r0"),
        // Alpine versions seen in the fixtures.
        ("2023c-r0", '>', "2023b-r1"),
        ("20230506-r0", '>', "20220614-r1"),
        ("1.35.0-r29", '>', "1.35.0-r3"),
        ("1.0_alpha", '<', "1.0_beta"),
        ("1.0_beta", '<', "1.0_pre"),
        ("1.0_pre", '<', "1.0_rc"),
        ("1.0_cvs", '<', "1.0_svn"),
        ("1.0_svn", '<', "1.0_git"),
        ("1.0_git", '<', "1.0_hg"),
        ("1.0_hg", '<', "1.0_p"),
        ("1.0_p1", '<', "1.0.1"),
        ("1.0-r1", '<', "1.0.1"),
        ("1.0", '<', "1.0-r0"),
        ("1.0_p1", '>', "1.0-r1"),
    ];

    #[test]
    fn orders_like_apk_tools() {
        for &(a, op, b) in ORDERED {
            let (va, vb) = (v(a), v(b));
            let expected = match op {
                '<' => Ordering::Less,
                '>' => Ordering::Greater,
                _ => Ordering::Equal,
            };
            assert_eq!(va.cmp(&vb), expected, "{a} {op} {b}");
            assert_eq!(vb.cmp(&va), expected.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn equal_versions_hash_alike() {
        use std::collections::hash_map::DefaultHasher;
        let hash = |s: &str| {
            let mut h = DefaultHasher::new();
            v(s).hash(&mut h);
            h.finish()
        };
        assert_eq!(v("006"), v("6"));
        assert_eq!(hash("006"), hash("6"));
        assert_eq!(hash("1.2-r01"), hash("1.2-r1"));
        assert_ne!(v("1.05"), v("1.5"));
        assert_eq!(v("006").as_str(), "006");
    }

    #[test]
    fn fuzzy_matches_token_prefixes() {
        // From apk-tools `test/unit/version.data` (`~` rows).
        let fuzzy_equal =
            [("3.6.0", "3.6"), ("3.6.9", "3.6"), ("3.6_pre1", "3.6"), ("3.6.0_pre1", "3.6"), ("3.6.0", "3.6.0")];
        for (a, b) in fuzzy_equal {
            assert_eq!(v(a).compare_fuzzy(&v(b), true), Ordering::Equal, "{a} ~ {b}");
        }
        let not_fuzzy_equal = [
            ("3.6.0", "3.8"),
            ("3.8", "3.8.1"),
            ("3.8.0", "3.8.1"),
            ("3.8.0.1", "3.8.1"),
            ("3.6_pre1", "3.8"),
            ("1.20", "1.2"),
        ];
        for (a, b) in not_fuzzy_equal {
            assert_ne!(v(a).compare_fuzzy(&v(b), true), Ordering::Equal, "{a} !~ {b}");
        }
        assert_eq!(v("3.5").compare_fuzzy(&v("3.6"), true), Ordering::Less);
        assert_eq!(v("3.7").compare_fuzzy(&v("3.6"), true), Ordering::Greater);
    }

    #[test]
    fn accepts_valid_versions() {
        for s in [
            "1.2",
            "0.1_pre2",
            "0.1_pre2~1234abcd",
            "0.1_p1_pre2",
            "0.1_alpha1_pre2",
            "0.1_git20240101_pre1",
            "2023c-r0",
            "18446744073709551615",
        ] {
            assert_eq!(v(s).to_string(), s);
        }
    }

    #[test]
    fn rejects_invalid_versions() {
        // From apk-tools `test/unit/version.data` (`!` rows), plus the two
        // irregular versions found in the Alpine v3.17 index.
        for s in [
            "0.1bc",
            "0.1bc1",
            "0.1a1",
            "0.1a.1",
            "0.1_pre2~",
            "0.1_pre2~1234xbcd",
            "0.1_pre2~1234abcd_pre1",
            "0.1_pre2-r1~1234xbcd",
            "0.1_foobar",
            "0.1_foobar1",
            "0.1-pre1.1",
            "0.1-r",
            "0.1-r2_pre1",
            "0.1-r2_p3_pre1",
            "0.1-r2-r3",
            "0.1-r2.1",
            ".1",
            "a",
            "_pre1",
            "-r1",
            "0.1_",
            "0.1_-r0",
            "0.1__alpha",
            "0.1_1_alpha",
            "1.0 ",
            "1..0",
            "1.",
            "0.99f7-r1",
            "5.3.0_",
        ] {
            assert!(Version::parse(s).is_err(), "`{s}` should be rejected");
        }
    }

    #[test]
    fn error_texts() {
        assert_eq!(
            Version::parse("").map_err(|e| e.to_string()),
            Err("empty version: an apk version looks like `1.2.3_rc1-r0`".to_owned())
        );
        assert_eq!(
            Version::parse("1.0bc").map_err(|e| e.to_string()),
            Err("invalid version `1.0bc` at byte 4: a letter may only follow a number; \
                 an apk version looks like `1.2.3_rc1-r0`"
                .to_owned())
        );
        assert_eq!(
            Version::parse("1.0_foo").map_err(|e| e.to_string()),
            Err("invalid version `1.0_foo` at byte 3: unknown suffix: expected one of \
                 `_alpha`, `_beta`, `_pre`, `_rc`, `_cvs`, `_svn`, `_git`, `_hg`, `_p`; \
                 an apk version looks like `1.2.3_rc1-r0`"
                .to_owned())
        );
        assert_eq!(
            Version::parse("1.99999999999999999999").map_err(|e| e.to_string()),
            Err("invalid version `1.99999999999999999999`: the number \
                 `99999999999999999999` does not fit in 64 bits"
                .to_owned())
        );
    }

    #[test]
    fn sorting_is_deterministic() {
        let mut versions: Vec<Version> =
            ["1.10", "1.9", "1.0_rc1", "1.0", "1.0_p1", "1.0-r1"].iter().map(|s| v(s)).collect();
        versions.sort();
        let texts: Vec<&str> = versions.iter().map(Version::as_str).collect();
        assert_eq!(texts, ["1.0_rc1", "1.0", "1.0-r1", "1.0_p1", "1.9", "1.10"]);
    }
}

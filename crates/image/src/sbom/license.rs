//! APK `L:` text -> SPDX `licenseDeclared`.
//!
//! `L:` is free text. Alpine mostly writes SPDX expressions (`MIT AND BSD-2-Clause`), but
//! also lowercase operators, deprecated identifiers (`GPL-2.0`) and words that are not SPDX
//! at all (`custom`, `Public-Domain`, `MIT, BSD`). A text that parses as an SPDX 2.3
//! license expression over [`LICENSES`] and [`EXCEPTIONS`] is passed through in canonical
//! form (operators upper case, identifiers in the SPDX list's case, deprecated GNU
//! identifiers replaced by their `-only`/`-or-later` forms); anything else becomes one
//! `LicenseRef-` whose extracted text is the `L:` text verbatim, so nothing is guessed.
//!
//! The identifier tables are the licenses seen in distribution packages, not the whole
//! SPDX list: an SPDX identifier missing from them costs precision (a `LicenseRef-` where
//! the identifier would do), never validity. A test checks every entry against the real
//! SPDX validator's list. `MPL-2.0-no-copyleft-exception` is left out on purpose: it is an
//! SPDX license id, but the reference validator (spdx-tools 0.8) takes it for an exception
//! and rejects it on its own.

/// SPDX license identifiers accepted as such, in the SPDX list's spelling.
pub const LICENSES: &[&str] = &[
    "0BSD",
    "AFL-2.1",
    "AFL-3.0",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "APSL-2.0",
    "Apache-1.1",
    "Apache-2.0",
    "Artistic-1.0",
    "Artistic-1.0-Perl",
    "Artistic-2.0",
    "BSD-1-Clause",
    "BSD-2-Clause",
    "BSD-2-Clause-Patent",
    "BSD-3-Clause",
    "BSD-3-Clause-Clear",
    "BSD-3-Clause-LBNL",
    "BSD-4-Clause",
    "BSD-4-Clause-UC",
    "BSD-Source-Code",
    "BSL-1.0",
    "Beerware",
    "BitTorrent-1.1",
    "BlueOak-1.0.0",
    "CC-BY-3.0",
    "CC-BY-4.0",
    "CC-BY-SA-3.0",
    "CC-BY-SA-4.0",
    "CC-PDDC",
    "CC0-1.0",
    "CDDL-1.0",
    "CDDL-1.1",
    "CECILL-2.1",
    "EPL-1.0",
    "EPL-2.0",
    "EUPL-1.1",
    "EUPL-1.2",
    "FSFAP",
    "FSFUL",
    "FSFULLR",
    "FTL",
    "GFDL-1.1-only",
    "GFDL-1.1-or-later",
    "GFDL-1.2-only",
    "GFDL-1.2-or-later",
    "GFDL-1.3-only",
    "GFDL-1.3-or-later",
    "GPL-1.0-only",
    "GPL-1.0-or-later",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "HPND",
    "HPND-sell-variant",
    "ICU",
    "IJG",
    "IPA",
    "ISC",
    "Imlib2",
    "Info-ZIP",
    "JSON",
    "LGPL-2.0-only",
    "LGPL-2.0-or-later",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "LPPL-1.3c",
    "Libpng",
    "MIT",
    "MIT-0",
    "MIT-CMU",
    "MIT-Modern-Variant",
    "MIT-feh",
    "MIT-open-group",
    "MPL-1.0",
    "MPL-1.1",
    "MPL-2.0",
    "MS-PL",
    "MS-RL",
    "MirOS",
    "NCSA",
    "NTP",
    "OFL-1.1",
    "OLDAP-2.8",
    "OSL-3.0",
    "OpenSSL",
    "PHP-3.01",
    "PSF-2.0",
    "PostgreSQL",
    "Python-2.0",
    "Ruby",
    "SGI-B-2.0",
    "SMLNJ",
    "SSPL-1.0",
    "Sendmail",
    "Sleepycat",
    "Spencer-94",
    "Spencer-99",
    "TCL",
    "TCP-wrappers",
    "UPL-1.0",
    "Unicode-3.0",
    "Unicode-DFS-2015",
    "Unicode-DFS-2016",
    "Unlicense",
    "Vim",
    "W3C",
    "WTFPL",
    "X11",
    "XFree86-1.1",
    "Xnet",
    "ZPL-2.1",
    "Zlib",
    "blessing",
    "bzip2-1.0.6",
    "curl",
    "libpng-2.0",
    "libtiff",
    "zlib-acknowledgement",
];

/// SPDX license exception identifiers (the right-hand side of `WITH`).
pub const EXCEPTIONS: &[&str] = &[
    "389-exception",
    "Autoconf-exception-2.0",
    "Autoconf-exception-3.0",
    "Bison-exception-2.2",
    "Classpath-exception-2.0",
    "FLTK-exception",
    "Font-exception-2.0",
    "GCC-exception-2.0",
    "GCC-exception-3.1",
    "GPL-3.0-linking-exception",
    "GStreamer-exception-2008",
    "LGPL-3.0-linking-exception",
    "LLVM-exception",
    "Libtool-exception",
    "Linux-syscall-note",
    "OCaml-LGPL-linking-exception",
    "OpenJDK-assembly-exception-1.0",
    "Qt-LGPL-exception-1.1",
    "Qwt-exception-1.0",
    "Universal-FOSS-exception-1.0",
    "WxWindows-exception-3.1",
    "eCos-exception-2.0",
    "freertos-exception-2.0",
    "i2p-gpl-java-exception",
    "mif-exception",
    "openvpn-openssl-exception",
    "u-boot-exception-2.0",
];

/// Deprecated GNU identifiers (lower case, `+` included) and what replaces them.
const DEPRECATED: &[(&str, &str)] = &[
    ("agpl-3.0", "AGPL-3.0-only"),
    ("agpl-3.0+", "AGPL-3.0-or-later"),
    ("gfdl-1.1", "GFDL-1.1-only"),
    ("gfdl-1.1+", "GFDL-1.1-or-later"),
    ("gfdl-1.2", "GFDL-1.2-only"),
    ("gfdl-1.2+", "GFDL-1.2-or-later"),
    ("gfdl-1.3", "GFDL-1.3-only"),
    ("gfdl-1.3+", "GFDL-1.3-or-later"),
    ("gpl-1.0", "GPL-1.0-only"),
    ("gpl-1.0+", "GPL-1.0-or-later"),
    ("gpl-2.0", "GPL-2.0-only"),
    ("gpl-2.0+", "GPL-2.0-or-later"),
    ("gpl-3.0", "GPL-3.0-only"),
    ("gpl-3.0+", "GPL-3.0-or-later"),
    ("lgpl-2.0", "LGPL-2.0-only"),
    ("lgpl-2.0+", "LGPL-2.0-or-later"),
    ("lgpl-2.1", "LGPL-2.1-only"),
    ("lgpl-2.1+", "LGPL-2.1-or-later"),
    ("lgpl-3.0", "LGPL-3.0-only"),
    ("lgpl-3.0+", "LGPL-3.0-or-later"),
];

/// What one package's `L:` becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Declared {
    /// No `L:`, or an empty one.
    NoAssertion,
    /// A valid SPDX expression, canonical.
    Expression(String),
    /// Not SPDX: the text, to be named by a `LicenseRef-` (chosen over the whole document,
    /// so that two texts never share an id).
    Other(String),
}

/// Maps an `L:` text.
pub(crate) fn declared(text: Option<&str>) -> Declared {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Declared::NoAssertion;
    };
    match parse(text) {
        Some(expression) => Declared::Expression(expression),
        None => Declared::Other(text.to_owned()),
    }
}

/// A parsed expression. Precedence, tightest first: `WITH`, `AND`, `OR`.
#[derive(Debug)]
enum Expr {
    /// A license id (with `+` if given) and an optional exception.
    License(String, Option<String>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl Expr {
    fn render(&self, out: &mut String, parent_is_and: bool) {
        match self {
            Expr::License(id, None) => out.push_str(id),
            Expr::License(id, Some(exception)) => {
                out.push_str(id);
                out.push_str(" WITH ");
                out.push_str(exception);
            }
            Expr::And(items) => join(out, items, " AND ", true),
            Expr::Or(items) if parent_is_and => {
                out.push('(');
                join(out, items, " OR ", false);
                out.push(')');
            }
            Expr::Or(items) => join(out, items, " OR ", false),
        }
    }
}

fn join(out: &mut String, items: &[Expr], separator: &str, is_and: bool) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(separator);
        }
        item.render(out, is_and);
    }
}

/// Parses `text` as an SPDX license expression (operators in any case); `None` if it is
/// not one or names an identifier outside the tables.
fn parse(text: &str) -> Option<String> {
    let mut tokens = Vec::new();
    for word in text.split_ascii_whitespace() {
        let mut rest = word;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('(') {
                tokens.push("(");
                rest = r;
            } else if let Some(r) = rest.strip_prefix(')') {
                tokens.push(")");
                rest = r;
            } else {
                let end = rest.find(['(', ')']).unwrap_or(rest.len());
                tokens.push(&rest[..end]);
                rest = &rest[end..];
            }
        }
    }
    let mut parser = Parser { tokens, at: 0 };
    let expr = parser.or()?;
    if parser.at != parser.tokens.len() {
        return None;
    }
    let mut out = String::new();
    expr.render(&mut out, false);
    Some(out)
}

struct Parser<'a> {
    tokens: Vec<&'a str>,
    /// Index of the next unread token.
    at: usize,
}

impl Parser<'_> {
    fn peek_is(&self, keyword: &str) -> bool {
        self.tokens.get(self.at).is_some_and(|t| t.eq_ignore_ascii_case(keyword))
    }

    fn or(&mut self) -> Option<Expr> {
        let mut items = vec![self.and()?];
        while self.peek_is("OR") {
            self.at += 1;
            items.push(self.and()?);
        }
        Some(if items.len() == 1 { items.remove(0) } else { Expr::Or(items) })
    }

    fn and(&mut self) -> Option<Expr> {
        let mut items = vec![self.primary()?];
        while self.peek_is("AND") {
            self.at += 1;
            items.push(self.primary()?);
        }
        Some(if items.len() == 1 { items.remove(0) } else { Expr::And(items) })
    }

    fn primary(&mut self) -> Option<Expr> {
        let token = *self.tokens.get(self.at)?;
        self.at += 1;
        if token == "(" {
            let inner = self.or()?;
            if self.tokens.get(self.at) != Some(&")") {
                return None;
            }
            self.at += 1;
            return Some(inner);
        }
        let id = license_id(token)?;
        let exception = if self.peek_is("WITH") {
            let exception = *self.tokens.get(self.at + 1)?;
            self.at += 2;
            Some(lookup(EXCEPTIONS, exception)?.to_owned())
        } else {
            None
        };
        Some(Expr::License(id, exception))
    }
}

/// A license token in canonical spelling: a known id, optionally with `+`, or a deprecated
/// GNU id replaced.
fn license_id(token: &str) -> Option<String> {
    let lower = token.to_ascii_lowercase();
    if let Some((_, replacement)) = DEPRECATED.iter().find(|(old, _)| *old == lower) {
        return Some((*replacement).to_owned());
    }
    match token.strip_suffix('+') {
        // `GPL-2.0-only+` and the like contradict themselves.
        Some(base) if !lower.contains("-only") && !lower.contains("-or-later") => {
            Some(format!("{}+", lookup(LICENSES, base)?))
        }
        Some(_) => None,
        None => lookup(LICENSES, token).map(str::to_owned),
    }
}

fn lookup(table: &'static [&'static str], token: &str) -> Option<&'static str> {
    table.iter().copied().find(|id| id.eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_license_texts() {
        let expr = |s: &str| Declared::Expression(s.to_owned());
        let other = |s: &str| Declared::Other(s.to_owned());
        let table = [
            (None, Declared::NoAssertion),
            (Some("  "), Declared::NoAssertion),
            (Some("MIT"), expr("MIT")),
            (Some("mit"), expr("MIT")),
            (Some("MIT AND BSD-2-Clause"), expr("MIT AND BSD-2-Clause")),
            (Some("mit and bsd-2-clause"), expr("MIT AND BSD-2-Clause")),
            (Some("GPL-2.0"), expr("GPL-2.0-only")),
            (Some("GPL-2.0+"), expr("GPL-2.0-or-later")),
            (Some("Apache-2.0+"), expr("Apache-2.0+")),
            (Some("GPL-2.0-only+"), other("GPL-2.0-only+")),
            (Some("(MIT OR Apache-2.0) AND Zlib"), expr("(MIT OR Apache-2.0) AND Zlib")),
            (Some("MIT OR Apache-2.0 AND Zlib"), expr("MIT OR Apache-2.0 AND Zlib")),
            (Some("((MIT))"), expr("MIT")),
            (Some("Apache-2.0 WITH LLVM-exception"), expr("Apache-2.0 WITH LLVM-exception")),
            (Some("GPL-2.0-only with linux-syscall-note"), expr("GPL-2.0-only WITH Linux-syscall-note")),
            (Some("(MIT OR Apache-2.0) WITH LLVM-exception"), other("(MIT OR Apache-2.0) WITH LLVM-exception")),
            (Some("MIT WITH Zlib"), other("MIT WITH Zlib")),
            (Some("custom"), other("custom")),
            (Some("Public-Domain"), other("Public-Domain")),
            (Some("MIT, BSD"), other("MIT, BSD")),
            (Some("MIT AND"), other("MIT AND")),
            (Some("(MIT"), other("(MIT")),
            (Some("MIT)"), other("MIT)")),
            (Some("LicenseRef-foo"), other("LicenseRef-foo")),
        ];
        for (text, want) in table {
            assert_eq!(declared(text), want, "{text:?}");
        }
    }

    #[test]
    fn tables_sorted_without_duplicates() {
        for table in [LICENSES, EXCEPTIONS] {
            let mut sorted = table.to_vec();
            sorted.sort_by_key(|id| id.to_ascii_lowercase());
            sorted.dedup_by_key(|id| id.to_ascii_lowercase());
            assert_eq!(sorted.len(), table.len());
        }
    }
}

//! How much evaluating one Starlark file may take, and the checks that keep it within that.
//!
//! Every `WORKSPACE`, `BUILD` and `.bzl` file is evaluated under [`Limits`]: steps (loop
//! iterations and function calls), memory and wall time, each with a default that no real
//! file comes near and a command-line flag to raise it. Two more bounds are fixed, because
//! the native stack the evaluation runs on is sized for them: how deeply the syntax of a
//! file may nest ([`MAX_NESTING`], checked here before the file is parsed) and how deeply
//! function calls may nest ([`MAX_CALL_DEPTH`]). [`super::sandbox`] enforces the rest.

use std::time::Duration;

use starlark::environment::GlobalsBuilder;
use starlark::starlark_module;
use starlark::values::range::Range;
use starlark::values::{Heap, Value};

use super::sandbox;
use super::LoadError;

/// What evaluating one Starlark file may take. A file that goes past a limit fails to load
/// with an error naming the file, the line and the flag that raises the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Steps: loop iterations and function calls (`--starlark-max-steps`). Also the
    /// longest `range()` a file may create, since a longer one cannot be iterated over.
    pub max_steps: u64,
    /// Bytes the evaluation may allocate and hold at once: its Starlark values and
    /// everything the interpreter allocates for it (`--starlark-max-memory`, in MiB).
    pub max_memory: u64,
    /// Wall time (`--starlark-timeout`, in seconds).
    pub timeout: Duration,
}

impl Limits {
    /// The defaults: far above what real files take (a `BUILD` file declaring 100,000
    /// targets with a comprehension takes 200,000 steps and 190 MiB), low enough that a
    /// runaway file fails within a second or two and a few hundred MiB.
    pub const DEFAULT: Limits =
        Limits { max_steps: 10_000_000, max_memory: 512 << 20, timeout: Duration::from_secs(60) };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// How deeply the syntax of a file may nest: brackets, operators, `lambda`s, blocks and
/// `elif` chains, counted conservatively by [`check_nesting`]. Parsing and compiling
/// recurse once per level.
pub const MAX_NESTING: usize = 1000;

/// How deeply function calls may nest (Starlark has no recursion; macros calling macros
/// stay far below this).
pub const MAX_CALL_DEPTH: usize = 100;

/// Rejects a file whose syntax nests deeper than [`MAX_NESTING`], before the parser, which
/// would overflow the native stack on it, sees it.
///
/// The count is an upper bound of the depth of the syntax tree, read from the characters:
/// every operator character, keyword operator (`and`, `if`, `lambda`, ...), `.` and opening
/// bracket adds a level to the bracket it is in; a comma starts a sibling (except after a
/// `lambda`, whose body may follow it); a block adds two levels per column of indentation,
/// and an `elif` one per `elif` before it in its chain.
pub(super) fn check_nesting(display: &str, source: &str) -> Result<(), LoadError> {
    match nesting(source.as_bytes()) {
        None => Ok(()),
        Some(offset) => {
            let (line, col) = line_col(source, offset);
            Err(LoadError::Diagnostic(format!(
                "{display}:{line}:{col}: the syntax nests more than {MAX_NESTING} levels deep here (brackets, \
                 operators, blocks)\n  fix: split the expression: name its parts with variables, or build long \
                 lists and strings with comprehensions and `\"\".join(...)`"
            )))
        }
    }
}

/// 1-based line and column of a byte offset.
fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

/// The byte offset where the conservative depth of [`check_nesting`] first goes past
/// [`MAX_NESTING`], if it does.
fn nesting(src: &[u8]) -> Option<usize> {
    /// One open bracket (the first is the statement itself).
    #[derive(Default)]
    struct Level {
        /// Operators since the last comma.
        ops: usize,
        /// `lambda`s: their bodies may extend past a comma, so commas keep them.
        lambdas: usize,
    }
    let mut levels: Vec<Level> = vec![Level::default()];
    // The sum of `ops + lambdas` over `levels`.
    let mut open = 0;
    // Per open block: (indentation, `elif`s so far in the chain at that indentation).
    let mut blocks: Vec<(usize, usize)> = Vec::new();
    let mut base = 0; // levels of the enclosing blocks and `elif` chains
    let mut at_line_start = true;
    let mut continued = false; // the previous line ended with `\`
    let mut i = 0;
    while i < src.len() {
        if at_line_start {
            at_line_start = false;
            let mut indent = 0;
            while i + indent < src.len() && matches!(src[i + indent], b' ' | b'\t') {
                indent += 1;
            }
            let rest = &src[i + indent..];
            let blank = rest.is_empty() || matches!(rest[0], b'\n' | b'\r' | b'#');
            if levels.len() == 1 && !continued && !blank {
                let starts =
                    |word: &[u8]| rest.starts_with(word) && !rest.get(word.len()).is_some_and(|b| is_ident(*b));
                while blocks.last().is_some_and(|(ind, _)| *ind > indent) {
                    blocks.pop();
                }
                match blocks.last_mut() {
                    Some((ind, elifs)) if *ind == indent => {
                        if starts(b"elif") {
                            *elifs += 1;
                        } else if !starts(b"else") {
                            *elifs = 0;
                        }
                    }
                    _ => blocks.push((indent, 0)),
                }
                base = 2 * indent + blocks.iter().map(|(_, e)| e).sum::<usize>();
                levels[0] = Level::default();
                open = 0;
            }
            i += indent;
            continue;
        }
        let c = src[i];
        let mut added = 0;
        match c {
            b'\n' => {
                at_line_start = true;
                continued = i > 0 && src[i - 1] == b'\\';
                i += 1;
                continue;
            }
            b'#' => {
                while i < src.len() && src[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' => {
                i = skip_string(src, i);
                continue;
            }
            b'(' | b'[' | b'{' => {
                added = 1;
                levels.push(Level::default());
            }
            b')' | b']' | b'}' if levels.len() > 1 => {
                if let Some(l) = levels.pop() {
                    open -= l.ops + l.lambdas;
                }
            }
            b',' | b';' => {
                if let Some(top) = levels.last_mut() {
                    open -= top.ops;
                    top.ops = 0;
                }
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'&' | b'|' | b'^' | b'~' | b'<' | b'>' | b'=' | b'!' | b'.' | b'@' => {
                added = 1;
            }
            c if c.is_ascii_digit() => {
                // A number, with its `.`, exponent and sign: one operand.
                while i < src.len() && (is_ident(src[i]) || src[i] == b'.') {
                    let exponent = matches!(src[i], b'e' | b'E');
                    i += 1;
                    if exponent && i < src.len() && matches!(src[i], b'+' | b'-') {
                        i += 1;
                    }
                }
                continue;
            }
            c if is_ident(c) => {
                let start = i;
                while i < src.len() && is_ident(src[i]) {
                    i += 1;
                }
                let word = &src[start..i];
                // A string prefix (`r"..."`, `b'...'`) belongs to the string.
                if matches!(word, b"r" | b"b" | b"rb" | b"br" | b"f") && i < src.len() && matches!(src[i], b'"' | b'\'')
                {
                    i = skip_string(src, i);
                    continue;
                }
                match word {
                    b"lambda" => {
                        if let Some(top) = levels.last_mut() {
                            top.lambdas += 1;
                            open += 1;
                        }
                    }
                    b"and" | b"or" | b"not" | b"if" | b"else" | b"in" | b"is" | b"for" => added = 1,
                    _ => {}
                }
                i -= 1; // the word's last byte; stepped over below
            }
            _ => {}
        }
        if added > 0 {
            // An opening bracket counts in the level that holds it (it was pushed above).
            let at = if matches!(c, b'(' | b'[' | b'{') { levels.len() - 2 } else { levels.len() - 1 };
            levels[at].ops += added;
            open += added;
        }
        if base + open > MAX_NESTING {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// The offset just past the string literal starting at `src[i]` (a quote).
fn skip_string(src: &[u8], mut i: usize) -> usize {
    let quote = src[i];
    let triple = src.get(i..i + 3).is_some_and(|q| q.iter().all(|&b| b == quote));
    i += if triple { 3 } else { 1 };
    while i < src.len() {
        match src[i] {
            b'\\' => i += 2,
            b'\n' if !triple => return i, // unterminated: the parser reports it
            q if q == quote => {
                if !triple {
                    return i + 1;
                }
                if src.get(i..i + 3).is_some_and(|q| q.iter().all(|&b| b == quote)) {
                    return i + 3;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    i
}

/// `range()` and `*` in place of the built-in ones: the same values, but a `range` longer
/// than the step limit or a repetition (`"x" * n`, `[x] * n`) larger than the memory limit
/// fails before anything is allocated.
#[starlark_module]
pub(super) fn limited_builtins(builder: &mut GlobalsBuilder) {
    /// `range(stop)`, `range(start, stop)`, `range(start, stop, step)`, as in the Starlark
    /// specification, at most as long as the step limit.
    #[starlark(as_type = Range)]
    fn range(
        #[starlark(require = pos)] a1: i32,
        #[starlark(require = pos)] a2: Option<i32>,
        #[starlark(require = pos, default = 1)] step: i32,
    ) -> anyhow::Result<Range> {
        let (start, stop) = match a2 {
            None => (0, a1),
            Some(stop) => (a1, stop),
        };
        let Some(nonzero) = std::num::NonZeroI32::new(step) else {
            anyhow::bail!("Third argument of range (step) cannot be zero");
        };
        let (start64, stop64, step64) = (i64::from(start), i64::from(stop), i64::from(step));
        let len = if step > 0 {
            (stop64 - start64 + step64 - 1).max(0) / step64
        } else {
            (start64 - stop64 - step64 - 1).max(0) / -step64
        };
        sandbox::check_range(len.unsigned_abs())?;
        Ok(Range::new(start, stop, nonzero))
    }

    /// `a * b`, with the size of a repeated string, list or tuple checked first.
    fn executor_checked_mul<'v>(
        #[starlark(require = pos)] a: Value<'v>,
        #[starlark(require = pos)] b: Value<'v>,
        heap: Heap<'v>,
    ) -> starlark::Result<Value<'v>> {
        for (seq, n) in [(a, b), (b, a)] {
            let Some(n) = n.unpack_i32() else { continue };
            let bytes = if let Some(s) = seq.unpack_str() {
                s.len() as u64
            } else if let Some(list) = starlark::values::list::ListRef::from_value(seq) {
                8 * list.len() as u64
            } else if let Some(tuple) = starlark::values::tuple::TupleRef::from_value(seq) {
                8 * tuple.len() as u64
            } else {
                continue;
            };
            sandbox::check_allocation(bytes.saturating_mul(u64::try_from(n).unwrap_or(0)), heap.allocated_bytes())
                .map_err(starlark::Error::new_other)?;
        }
        a.mul(b, heap)
    }
}

/// The name `*` is rewritten to: the checked multiplication of [`limited_builtins`].
pub(super) const CHECKED_MUL: &str = "executor_checked_mul";

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_ok(src: &str) -> bool {
        nesting(src.as_bytes()).is_none()
    }

    #[test]
    fn nesting_accepts_real_files() {
        let build = r#"
load("//rules:defs.bzl", "distroless_image")

distroless_image(
    name = "static",
    packages = ["a", "b", "c"] + ["d"],
    archs = {"x86_64": "amd64", "aarch64": "arm64"},
    env = {"PATH": "/usr/bin:" + "/bin"},
)

def f(x, y = lambda a, b: a + b):
    if x:
        for i in range(10):
            if i % 2 == 0 and not x.y.z[i]:
                pass
            elif i > 3:
                pass
            else:
                pass
    return [x * 2 for x in y if x > 1]
"#;
        assert!(depth_ok(build));
        let wide = format!("x = [{}]\n", "\"a\", ".repeat(100_000));
        assert!(depth_ok(&wide), "siblings do not nest");
        let many_lines = "x = 1 + 2 + 3\n".repeat(100_000);
        assert!(depth_ok(&many_lines), "statements do not nest");
        assert!(depth_ok(&format!("x = \"{}\"\n", "(".repeat(5000))), "strings are skipped");
        assert!(depth_ok(&format!("# {}\nx = 1\n", "[".repeat(5000))), "comments are skipped");
        assert!(depth_ok(&format!("x = '''\n{}\n'''\n", "[".repeat(5000))), "triple-quoted strings are skipped");
        assert!(depth_ok(&format!("x = 1.5e+3 + {}\n", "1 + ".repeat(900) + "1")));
    }

    #[test]
    fn nesting_rejects_deep_syntax() {
        let n = MAX_NESTING + 1;
        for (what, src) in [
            ("brackets", format!("x = {}{}\n", "[".repeat(n), "]".repeat(n))),
            ("parentheses", format!("x = {}1{}\n", "(".repeat(n), ")".repeat(n))),
            ("binary chain", format!("x = 1{}\n", " + 1".repeat(n))),
            ("unary chain", format!("x = {}1\n", "-".repeat(n))),
            ("subscripts", format!("x = y{}\n", "[0]".repeat(n))),
            ("calls", format!("x = f{}\n", "()".repeat(n))),
            ("attributes", format!("x = y{}\n", ".a".repeat(n))),
            ("lambdas", format!("x = {}1\n", "lambda a, b: ".repeat(n))),
            ("conditionals", format!("x = 1{}\n", " if c else 1".repeat(n))),
            ("elif chain", format!("if a:\n  pass\n{}", "elif b:\n  pass\n".repeat(n))),
            ("indentation", (0..n).map(|i| format!("{}if a:\n", " ".repeat(i))).collect::<String>()),
        ] {
            assert!(!depth_ok(&src), "{what} must be rejected");
        }
    }

    #[test]
    fn nesting_error_names_the_place() {
        let src = format!("x = 1\ny = {}\n", "[".repeat(MAX_NESTING + 1));
        let err = check_nesting("p/BUILD", &src).expect_err("too deep");
        assert!(
            err.to_string().starts_with(&format!("p/BUILD:2:{}: the syntax nests more than", MAX_NESTING + 4)),
            "{}",
            err.to_string()
        );
    }
}

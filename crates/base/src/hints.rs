//! Hints for errors.

/// `, did you mean `x`?` when one candidate is close to `name`, else empty.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let best = candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| *d <= (name.len().max(c.len()) / 3).max(1))
        .min();
    match best {
        Some((_, c)) => format!(", did you mean `{c}`?"),
        None => String::new(),
    }
}

//! Rendering of object text: the inverse of `object::parse_object`, used for
//! templates the registry sends back (and the round-trip property test).
//! Values are aligned at column 16; free text too long for one line is
//! wrapped at spaces onto continuation lines (which join with one space).

use super::object::RawAttr;

/// The column where values start.
const VALUE_COLUMN: usize = 16;

/// Renders `key: value` lines; `continuable` keys may wrap within `width`; a
/// pair with the key `#` is a comment line.
pub fn render_object(
    attrs: &[(&str, &str)],
    continuable: impl Fn(&str) -> bool,
    width: usize,
) -> String {
    let mut out = String::new();
    for (key, value) in attrs {
        if *key == "#" {
            out.push_str(format!("# {value}").trim_end());
            out.push('\n');
            continue;
        }
        let head = format!("{key}:");
        let pad = VALUE_COLUMN.max(head.len() + 1);
        let mut line = format!("{head:<pad$}");
        if !continuable(key) {
            line.push_str(value);
            out.push_str(line.trim_end());
            out.push('\n');
            continue;
        }
        let mut first = true;
        for word in value.split(' ') {
            let fits = line.len() + usize::from(!first) + word.len() <= width;
            if !first && !fits {
                out.push_str(&line);
                out.push('\n');
                line = format!("{:<pad$}", " ");
                first = true;
            }
            if !first {
                line.push(' ');
            }
            line.push_str(word);
            first = false;
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A whole object text: version line, the object, the terms line.
pub fn render_body(object: &str) -> String {
    format!("Template Version: 5.0\n\n{object}\ncurrentNicAtTermsAndConditionsAccepted: Y\n")
}

/// The (key, value) pairs of parsed attributes, for comparisons.
pub fn pairs(attrs: &[RawAttr]) -> Vec<(String, String)> {
    attrs
        .iter()
        .map(|a| (a.key.clone(), a.value.clone()))
        .collect()
}

//! Rendering of object text: the inverse of `object::parse_object`, used for
//! templates the registry sends back (and the round-trip property test).
//! Values are aligned at column 16, or follow the colon after one space where
//! the aligned line would be too long; free text too long for one line is
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
            if line.trim_end().len() > width {
                // As the registrar may have written it: one space after the
                // colon (a value that fitted the template fits here).
                line = format!("{head} {value}");
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::parse_object;

    #[test]
    fn a_long_value_that_fitted_the_template_fits_the_rendering() {
        // "e-mail: " + 70 characters is a 78-column template line; aligned at
        // column 16 it would not fit (found by the roundtrip fuzz target).
        let email = format!("{}@example.at", "a".repeat(59));
        let text = render_object(&[("e-mail", &email)], |_| false, 78);
        assert_eq!(text, format!("e-mail: {email}\n"));
        let (raw, errors) = parse_object(&render_body(&text));
        assert!(errors.is_empty(), "{errors:?}");
        let raw = raw.unwrap();
        assert_eq!(raw.attrs[0].value, email);
        let short = render_object(&[("e-mail", "a@b.at")], |_| false, 78);
        assert_eq!(short, "e-mail:         a@b.at\n");
    }
}

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
        wrap_value(&mut out, line, &head, value, (pad, width));
    }
    out
}

/// Wraps a free-text value at spaces onto continuation lines aligned at
/// `pad`; a word too long for that starts right after the colon (first line)
/// or after one space (continuation), as a template may have had it.
fn wrap_value(
    out: &mut String,
    mut line: String,
    head: &str,
    value: &str,
    (pad, width): (usize, usize),
) {
    let mut first = true;
    for word in value.split(' ') {
        let fits = line.len() + usize::from(!first) + word.len() <= width;
        if !first && !fits {
            out.push_str(&line);
            out.push('\n');
            line = format!("{:<pad$}", " ");
            first = true;
        }
        if first && line.len() + word.len() > width {
            // Too long even at the start of a line: less indentation.
            line = if line.starts_with(head) {
                format!("{head} ")
            } else {
                " ".to_string()
            };
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

    #[test]
    fn a_long_word_in_free_text_gets_less_indentation() {
        let (first, next) = ("x".repeat(66), "y".repeat(70));
        let value = format!("{first} {next} z");
        let text = render_object(&[("remarks", &value)], |_| true, 78);
        assert_eq!(text, format!("remarks: {first}\n {next} z\n"));
        assert!(text.lines().all(|l| l.len() <= 78));
        let (raw, errors) = parse_object(&render_body(&text));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(raw.unwrap().attrs[0].value, value);
    }
}

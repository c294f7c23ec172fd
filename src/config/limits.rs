//! Size limits for hostile input: the envelope's XML and the object inside it.
//!
//! Input: the `[limits]` table of `regmail.toml`. Output: [`Limits`] with safe
//! defaults. Invariant: every limit is checked while reading (the reader stops
//! at the first excess), so no input makes regmail read, store or report more
//! than these bounds allow. The mail's own size and line count are `[mail]`
//! settings (`max_mail_bytes`, `max_lines`), checked before anything else.

use serde::Deserialize;

/// Limits of the envelope and the object (template.md sections 2 and 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest object text (the CDATA), in bytes (4014).
    pub max_object_bytes: usize,
    /// Most object lines (4014).
    pub max_object_lines: usize,
    /// Deepest element nesting of the envelope (5001); the envelope needs 3.
    pub max_xml_depth: usize,
    /// Most elements in the envelope (5001); a full one has 10.
    pub max_xml_elements: usize,
    /// Most attributes on one element (5001); any attribute is also 5002.
    pub max_xml_attributes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_object_bytes: 16 * 1024,
            max_object_lines: 300,
            max_xml_depth: 4,
            max_xml_elements: 32,
            max_xml_attributes: 4,
        }
    }
}

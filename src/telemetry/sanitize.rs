//! Values this server did not write, made safe to record and to print.
//!
//! - [`bounded`]: at most [`MAX_VALUE_BYTES`] of a request-derived value (a JSON-RPC id, a
//!   method or tool name, a claim) before it becomes a span attribute, a span status, a
//!   metric label or a log field: a 400 KB id must not become a 400 KB span in every export
//!   batch.
//! - [`escape`] and [`Escaping`]: control characters (newlines, carriage returns, `ESC`, C1
//!   codes, Unicode line separators and bidirectional overrides) written as visible escapes,
//!   so a value cannot start a forged log line or rewrite a terminal line. Text log lines
//!   (`fields.rs`), `mcp-obo doctor` and `mcp-obo config` use them.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// The most bytes of a request-derived value that are recorded, marker included.
pub const MAX_VALUE_BYTES: usize = 128;

/// Ends a value [`bounded`] cut short; counted within [`MAX_VALUE_BYTES`].
pub const TRUNCATED: &str = "…[truncated]";

/// `value` when it fits in [`MAX_VALUE_BYTES`]; otherwise its longest prefix (cut at a
/// character boundary) that fits with [`TRUNCATED`] appended.
pub fn bounded(value: &str) -> Cow<'_, str> {
    if value.len() <= MAX_VALUE_BYTES {
        return Cow::Borrowed(value);
    }
    let mut end = MAX_VALUE_BYTES - TRUNCATED.len();
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}{TRUNCATED}", &value[..end]))
}

/// Whether `c` must not reach a log line or a terminal as itself.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// Writes `c` escaped: `\n`, `\r`, `\t`, `\x1b` for the other C0 codes and DEL, `\u{..}` for
/// the rest.
fn write_escaped(out: &mut impl fmt::Write, c: char) -> fmt::Result {
    match c {
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        c if u32::from(c) < 0x80 => write!(out, "\\x{:02x}", u32::from(c)),
        c => write!(out, "\\u{{{:x}}}", u32::from(c)),
    }
}

/// `value` with every control character escaped (borrowed when there is none).
pub fn escape(value: &str) -> Cow<'_, str> {
    if !value.chars().any(needs_escape) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    let _ = Escaping(&mut out).write_str(value);
    Cow::Owned(out)
}

/// `value` without its control characters (and the invisible reordering ones): for text
/// other people wrote (a meeting subject) that a tool hands to a model or a terminal.
pub fn strip(value: &str) -> String {
    value.chars().filter(|c| !needs_escape(*c)).collect()
}

/// A `fmt::Write` that escapes control characters on the way to the writer it wraps.
pub struct Escaping<W>(pub W);

impl<W: fmt::Write> fmt::Write for Escaping<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some((at, c)) = rest.char_indices().find(|(_, c)| needs_escape(*c)) {
            self.0.write_str(&rest[..at])?;
            write_escaped(&mut self.0, c)?;
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_value_is_recorded_as_it_is() {
        assert!(matches!(bounded("tools/call"), Cow::Borrowed("tools/call")));
        let exact = "x".repeat(MAX_VALUE_BYTES);
        assert_eq!(bounded(&exact), exact);
    }

    #[test]
    fn a_long_value_is_cut_to_the_limit_with_the_marker_at_a_char_boundary() {
        let long = "é".repeat(400_000);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_VALUE_BYTES, "{}", cut.len());
        assert!(cut.ends_with(TRUNCATED));
        assert!(cut.trim_end_matches(TRUNCATED).chars().all(|c| c == 'é'));
        let ascii = "a".repeat(MAX_VALUE_BYTES + 1);
        assert_eq!(bounded(&ascii).len(), MAX_VALUE_BYTES);
    }

    #[test]
    fn control_characters_are_escaped_and_everything_else_kept() {
        assert!(matches!(escape("plain ünïcode"), Cow::Borrowed(_)));
        assert_eq!(
            escape("x\x1b[2K\rPASS\nnext\ttab\x07\u{9b}\u{202e}\u{2028}"),
            "x\\x1b[2K\\rPASS\\nnext\\ttab\\x07\\u{9b}\\u{202e}\\u{2028}"
        );
        let mut out = String::new();
        let tail = String::from("b\x7f");
        write!(Escaping(&mut out), "a\n{tail}").expect("write");
        assert_eq!(out, "a\\nb\\x7f");
    }
}

//! The text log format's field formatter: tracing-subscriber's layout (`name=value`, the
//! message bare, `&str` values quoted) with every control character of every value and
//! message escaped, for this crate's events and dependencies' alike.
//!
//! tracing-subscriber (0.3.20 and later) escapes `ESC` and a few other codes in messages
//! only; a newline in a `%value` field or in a formatted message still starts a new line, so
//! a JSON-RPC id of `"1\n2026-… INFO forged"` logged by rmcp would forge a log line. JSON
//! logs need none of this: serde escapes control characters in every string.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;

use super::sanitize::Escaping;

/// The field formatter of text logs (see the module docs).
pub struct EscapedFields;

impl<'w> MakeVisitor<Writer<'w>> for EscapedFields {
    type Visitor = EscapedVisitor<'w>;

    fn make_visitor(&self, target: Writer<'w>) -> Self::Visitor {
        EscapedVisitor {
            writer: target,
            empty: true,
            result: Ok(()),
        }
    }
}

/// Writes one event's (or span's) fields; see [`EscapedFields`].
pub struct EscapedVisitor<'w> {
    writer: Writer<'w>,
    empty: bool,
    result: fmt::Result,
}

impl EscapedVisitor<'_> {
    fn write(&mut self, name: &str, value: &dyn fmt::Debug) -> fmt::Result {
        if !self.empty {
            self.writer.write_char(' ')?;
        }
        self.empty = false;
        if name != "message" {
            let name = name.strip_prefix("r#").unwrap_or(name);
            if self.writer.has_ansi_escapes() {
                // tracing-subscriber's own styling: the name in italics, `=` dimmed.
                write!(self.writer, "\x1b[3m{name}\x1b[0m\x1b[2m=\x1b[0m")?;
            } else {
                write!(self.writer, "{name}=")?;
            }
        }
        write!(Escaping(&mut self.writer), "{value:?}")
    }
}

impl Visit for EscapedVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `log.*` fields carry a `log` record's metadata, which the line already shows.
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        self.result = self.write(field.name(), value);
    }
}

impl VisitOutput<fmt::Result> for EscapedVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for EscapedVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(ansi: bool, event: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(ansi)
            .with_target(false)
            .fmt_fields(EscapedFields)
            .finish();
        tracing::subscriber::with_default(subscriber, event);
        let bytes = buffer
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn a_value_with_a_newline_or_an_escape_stays_on_its_own_line() {
        let id = "1\n2026-01-01T00:00:00Z  INFO forged line\x1b[2K";
        for ansi in [false, true] {
            let text = logged(ansi, || {
                tracing::warn!(id = %id, quoted = id, error = ?id, "response {id} error");
            });
            assert_eq!(text.lines().count(), 1, "{text}");
            assert!(text.ends_with('\n'));
            assert_eq!(
                text.matches("INFO forged line").count(),
                4,
                "each value kept: {text}"
            );
            if !ansi {
                assert!(!text.contains('\x1b'), "{text}");
                assert!(text.contains(r#" id=1\n2026"#), "{text}");
                assert!(text.contains(r#" quoted="1\n2026"#), "{text}");
            }
        }
    }

    #[test]
    fn ordinary_fields_look_as_tracing_subscriber_writes_them() {
        let text = logged(false, || {
            tracing::info!(url.path = %"/mcp", status = 200, name = "a b", "request");
        });
        assert!(
            text.trim_end()
                .ends_with(r#"request url.path=/mcp status=200 name="a b""#),
            "{text}"
        );
    }
}

//! Where log lines go: stderr, with audit events (one per tool call) gathered and written
//! in batches.
//!
//! A line written straight to stderr costs a `write(2)` and, on a pipe (a container
//! runtime's, a collector's), the wake-up of its reader: with one audit line per tool call
//! that was a quarter of a warm call's CPU (BENCHMARKS.md, "Issue 22, first measurement").
//! Audit lines are appended to a buffer instead, and a thread writes the buffer every
//! [`INTERVAL`], so producers never make a system call or wake anyone. Other lines are
//! written as before, at once: they are rare, and a warning should not wait.
//!
//! Every write to stderr holds its lock, so a batch and a diagnostic line never interleave
//! inside a line. An audit line reaches stderr at most [`INTERVAL`] after its event (each
//! line carries its own timestamp); [`flush`] writes what is pending when the process
//! stops. A buffer past [`MAX_PENDING`] (stderr blocked) is written by the producer itself,
//! which then waits on stderr as it did before, rather than grow or drop lines.

use std::io;
use std::sync::{LazyLock, Mutex, Once, PoisonError};
use std::time::Duration;

use tracing::Metadata;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::EitherWriter;

/// How long an audit line may wait in the buffer.
pub const INTERVAL: Duration = Duration::from_millis(25);
/// Pending bytes beyond which the producer writes the batch itself.
const MAX_PENDING: usize = 1 << 20;

static PENDING: LazyLock<Mutex<Vec<u8>>> =
    LazyLock::new(|| Mutex::new(Vec::with_capacity(64 * 1024)));
static FLUSHER: Once = Once::new();

/// The fmt layer's writer: stderr, or the batch for events of `batched_target`.
pub struct LogWriter {
    batched_target: &'static str,
}

impl LogWriter {
    /// Batches events of `target` (the audit target), starting the thread that writes them.
    pub fn batching(target: &'static str) -> Self {
        FLUSHER.call_once(|| {
            // If no thread can be started, producers write their own lines (below).
            let _ = std::thread::Builder::new()
                .name("log-flush".into())
                .spawn(|| {
                    loop {
                        std::thread::sleep(INTERVAL);
                        flush();
                    }
                });
        });
        Self {
            batched_target: target,
        }
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = EitherWriter<Batched, io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        EitherWriter::B(io::stderr())
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        if meta.target() == self.batched_target {
            EitherWriter::A(Batched)
        } else {
            EitherWriter::B(io::stderr())
        }
    }
}

/// Appends to the pending batch.
pub struct Batched;

impl io::Write for Batched {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut pending = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
        pending.extend_from_slice(line);
        if pending.len() > MAX_PENDING {
            let batch = std::mem::take(&mut *pending);
            drop(pending);
            io::stderr().lock().write_all(&batch)?;
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes the pending batch to stderr now.
pub fn flush() {
    // Nowhere to report a failed stderr write.
    let _ = flush_to(&mut io::stderr().lock());
}

fn flush_to(out: &mut impl io::Write) -> io::Result<()> {
    let batch = {
        let mut pending = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.is_empty() {
            return Ok(());
        }
        std::mem::replace(&mut *pending, Vec::with_capacity(64 * 1024))
    };
    out.write_all(&batch)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn batched_lines_wait_until_flushed_and_come_out_whole_and_in_order() {
        let mut writer = Batched;
        writer.write_all(b"first line\n").expect("append");
        writer.write_all(b"second line\n").expect("append");
        let mut out = Vec::new();
        flush_to(&mut out).expect("flush");
        assert_eq!(out, b"first line\nsecond line\n");
        let mut again = Vec::new();
        flush_to(&mut again).expect("flush");
        assert!(again.is_empty(), "written twice");
    }
}

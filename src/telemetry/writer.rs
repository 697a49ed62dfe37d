//! Audit lines (one per tool call), gathered and written to stderr in batches.
//!
//! A line written straight to stderr costs a `write(2)` and, on a pipe (a container
//! runtime's, a collector's), the wake-up of its reader: with one audit line per tool call
//! that, and the log layer's formatting, were a quarter of a warm call's CPU (BENCHMARKS.md,
//! "Issue 22: the audit event written in batches"). Audit lines are serialised into a buffer instead, and a thread writes the
//! buffer every [`INTERVAL`], so producers never make a system call or wake anyone. Log
//! lines are written as before, at once: they are rare, and a warning should not wait.
//!
//! Every write to stderr holds its lock, so a batch and a diagnostic line never interleave
//! inside a line. An audit line reaches stderr at most [`INTERVAL`] after its event (each
//! line carries its own timestamp); [`flush`] writes what is pending when the process
//! stops. A buffer past [`MAX_PENDING`] (stderr blocked) is written by the producer itself,
//! which then waits on stderr as it did before, rather than grow or drop lines.

use std::io;
use std::sync::{LazyLock, Mutex, Once, PoisonError};
use std::time::Duration;

/// How long an audit line may wait in the buffer.
pub const INTERVAL: Duration = Duration::from_millis(25);
/// Pending bytes beyond which the producer writes the batch itself.
const MAX_PENDING: usize = 1 << 20;

static PENDING: LazyLock<Mutex<Vec<u8>>> =
    LazyLock::new(|| Mutex::new(Vec::with_capacity(64 * 1024)));
static FLUSHER: Once = Once::new();

/// Starts the thread that writes the batch every [`INTERVAL`], once. If no thread can be
/// started, the batch is written when it fills up and when the process stops.
fn start_flusher() {
    FLUSHER.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("audit-flush".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(INTERVAL);
                    flush();
                }
            });
    });
}

/// Appends `line` as one JSON line to the batch (started on first use).
pub fn write_audit(line: &impl serde::Serialize) {
    start_flusher();
    let mut pending = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
    let before = pending.len();
    if serde_json::to_writer(&mut *pending, line).is_err() {
        pending.truncate(before);
        return;
    }
    pending.push(b'\n');
    if pending.len() > MAX_PENDING {
        let batch = std::mem::take(&mut *pending);
        drop(pending);
        let _ = io::Write::write_all(&mut io::stderr().lock(), &batch);
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
    use super::*;

    #[test]
    fn audit_lines_wait_until_flushed_and_come_out_whole_and_in_order() {
        write_audit(&serde_json::json!({"n": 1}));
        write_audit(&serde_json::json!({"n": 2}));
        let mut out = Vec::new();
        flush_to(&mut out).expect("flush");
        assert_eq!(out, b"{\"n\":1}\n{\"n\":2}\n");
        let mut again = Vec::new();
        flush_to(&mut again).expect("flush");
        assert!(again.is_empty(), "written twice");
    }
}

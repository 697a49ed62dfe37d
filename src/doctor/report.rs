//! One line per check (pass / warn / fail) with the fix for anything not passing, as text
//! for a terminal or JSON for a pipeline. Nothing here ever holds a token: checks build
//! their summaries from names, URLs and claims, never from credentials.
//!
//! Summaries and fixes quote what configuration and remote servers said, so a check's text
//! has every URL password redacted when the check is made (`config::redact_credentials`),
//! and the text form escapes control characters (`telemetry::escape`): a metadata
//! `resource` of `"x\x1b[2K\rPASS …"` prints as those characters, and cannot erase or
//! overwrite its own FAIL line. JSON escapes them by construction.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::config::redact_credentials;
use crate::telemetry::escape;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
        }
    }
}

/// One check's line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable, dotted: `<step>.<what>` (e.g. `app.token_version`).
    pub id: &'static str,
    pub status: Status,
    pub summary: String,
    /// The exact command, Bicep parameter or portal step that fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
}

impl Check {
    pub fn pass(id: &'static str, summary: impl Into<String>) -> Self {
        Self {
            id,
            status: Status::Pass,
            summary: redact_credentials(&summary.into()).into_owned(),
            fix: None,
            latency_ms: None,
        }
    }

    pub fn warn(id: &'static str, summary: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: Status::Warn,
            fix: Some(redact_credentials(&fix.into()).into_owned()),
            ..Self::pass(id, summary)
        }
    }

    pub fn fail(id: &'static str, summary: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: Status::Fail,
            fix: Some(redact_credentials(&fix.into()).into_owned()),
            ..Self::pass(id, summary)
        }
    }

    #[must_use]
    pub fn took(mut self, latency: Duration) -> Self {
        self.latency_ms = Some(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// `PASS id: summary (12 ms)`, the first line of its text form (escaped).
    pub fn line(&self) -> String {
        let summary = escape(&self.summary);
        let mut line = format!("{} {}: {summary}", self.status.label(), self.id);
        if let Some(ms) = self.latency_ms {
            let _ = write!(line, " ({ms} ms)");
        }
        line
    }
}

/// Every check, in the order run.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

#[derive(Serialize)]
struct Counts {
    pass: usize,
    warn: usize,
    fail: usize,
}

impl Report {
    pub fn push(&mut self, check: Check) {
        self.checks.push(check);
    }

    pub fn extend(&mut self, checks: impl IntoIterator<Item = Check>) {
        self.checks.extend(checks);
    }

    fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// Whether nothing failed (warnings allowed): the exit code.
    pub fn ok(&self) -> bool {
        self.count(Status::Fail) == 0
    }

    /// One line per check, each fix indented under its line, then the totals.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for check in &self.checks {
            out.push_str(&check.line());
            out.push('\n');
            if let Some(fix) = &check.fix {
                for (i, line) in fix.lines().enumerate() {
                    let lead = if i == 0 { "    fix: " } else { "         " };
                    let _ = writeln!(out, "{lead}{}", escape(line));
                }
            }
        }
        let _ = writeln!(
            out,
            "{} passed, {} warnings, {} failed",
            self.count(Status::Pass),
            self.count(Status::Warn),
            self.count(Status::Fail)
        );
        out
    }

    /// `{"ok", "counts", "checks": [{id, status, summary, fix?, latency_ms?}]}`.
    pub fn json(&self) -> String {
        let doc = serde_json::json!({
            "ok": self.ok(),
            "counts": Counts {
                pass: self.count(Status::Pass),
                warn: self.count(Status::Warn),
                fail: self.count(Status::Fail),
            },
            "checks": self.checks,
        });
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_puts_each_fix_under_its_line_and_counts_the_outcomes() {
        let mut report = Report::default();
        report.push(Check::pass("a.one", "fine").took(Duration::from_millis(12)));
        report.push(Check::fail("a.two", "broken", "run this\nthen that"));
        assert_eq!(
            report.text(),
            "PASS a.one: fine (12 ms)\nFAIL a.two: broken\n    fix: run this\n         then that\n1 passed, 0 warnings, 1 failed\n"
        );
        assert!(!report.ok());
    }

    #[test]
    fn text_escapes_what_checks_quote_and_redacts_url_passwords() {
        let mut report = Report::default();
        report.push(Check::fail(
            "a.one",
            "resource x\x1b[2K\rPASS a.one: fine\nPASS a.two at https://u:pw@h/",
            "open https://u:pw@h/\x1b]8;;",
        ));
        let text = report.text();
        assert_eq!(
            text,
            "FAIL a.one: resource x\\x1b[2K\\rPASS a.one: fine\\nPASS a.two at https://u:***@h/\n    fix: open https://u:***@h/\\x1b]8;;\n0 passed, 0 warnings, 1 failed\n"
        );
        assert!(!report.json().contains("pw@"), "{}", report.json());
    }

    #[test]
    fn json_has_the_same_checks_and_the_verdict() {
        let mut report = Report::default();
        report.push(Check::warn("a.one", "hmm", "do it"));
        let doc: serde_json::Value = serde_json::from_str(&report.json()).expect("json");
        assert_eq!(doc["ok"], true);
        assert_eq!(doc["counts"]["warn"], 1);
        assert_eq!(doc["checks"][0]["id"], "a.one");
        assert_eq!(doc["checks"][0]["status"], "warn");
        assert_eq!(doc["checks"][0]["fix"], "do it");
    }
}

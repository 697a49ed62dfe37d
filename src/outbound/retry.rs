//! Retries of outgoing calls (the token exchange, Graph): how often, how long to wait, when a
//! `Retry-After` is honoured, and the client span each attempt gets.
//!
//! [`Retries`] counts a call's attempts and decides, from what an attempt's answer means
//! ([`Step`]), whether and when to try again; each dependency keeps its own rules for which
//! statuses are retryable and what the final error is, and its loop is three lines. Nothing
//! here allocates on a call that succeeds first time.

use std::time::Duration;

use http::{HeaderMap, StatusCode};

/// The longest `Retry-After` honoured within one tool call; longer means give up now.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// The first backoff when an answer names no `Retry-After`; doubled on each retry.
const BASE_BACKOFF: Duration = Duration::from_millis(200);

/// What one attempt's answer means.
pub enum Step<T, E> {
    /// The answer: the call is over.
    Done(T),
    /// A busy or broken answer (429, 5xx, no connection): try again after `retry_after` (or
    /// the backoff), unless no retry is left or the wait is too long, then fail with `error`.
    Retry {
        retry_after: Option<Duration>,
        /// For the log line; `None` when no answer arrived.
        status: Option<u16>,
        error: E,
    },
    /// Try again at once, not counted as a retry (Graph's first 401, answered with a new
    /// token).
    Again,
}

/// The attempts of one outgoing call: how many were made, and whether another may follow.
pub struct Retries {
    dependency: &'static str,
    max_retries: u32,
    retries: u32,
    resends: u32,
}

impl Retries {
    /// At most `max_retries` retries of busy answers; `dependency` names it in the log.
    pub fn new(dependency: &'static str, max_retries: u32) -> Self {
        Self {
            dependency,
            max_retries,
            retries: 0,
            resends: 0,
        }
    }

    /// Attempts made before the next one (`http.request.resend_count`).
    pub fn resends(&self) -> u32 {
        self.resends
    }

    /// Retries of busy answers made so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// What an attempt's answer means for the call: `Some` result when it is over, `None`
    /// when another attempt follows (after waiting, for a retry, as [`wait`] says).
    pub async fn after<T, E>(&mut self, step: Result<Step<T, E>, E>) -> Option<Result<T, E>> {
        let (retry_after, status, error) = match step {
            Ok(Step::Done(value)) => return Some(Ok(value)),
            Err(error) => return Some(Err(error)),
            Ok(Step::Again) => {
                self.resends += 1;
                return None;
            }
            Ok(Step::Retry {
                retry_after,
                status,
                error,
            }) => (retry_after, status, error),
        };
        let Some(wait) = wait(self.retries, self.max_retries, retry_after) else {
            return Some(Err(error));
        };
        self.retries += 1;
        self.resends += 1;
        let (dependency, retries) = (self.dependency, self.retries);
        tracing::debug!(dependency, status, ?wait, retries, "busy; retrying");
        tokio::time::sleep(wait).await;
        None
    }
}

/// How long to wait before retry number `retries + 1`: the answer's `Retry-After`, else
/// the backoff; `None` when `max_retries` are used up or the wait is over the longest
/// honoured.
pub fn wait(retries: u32, max_retries: u32, retry_after: Option<Duration>) -> Option<Duration> {
    let backoff = || BASE_BACKOFF.saturating_mul(2u32.saturating_pow(retries));
    let wait = retry_after.unwrap_or_else(backoff);
    (retries < max_retries && wait <= MAX_RETRY_AFTER).then_some(wait)
}

/// `Retry-After` in whole seconds (the form Entra and Graph send); an HTTP date is ignored.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?;
    std::str::from_utf8(value.as_bytes())
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The client span of one outgoing request, with the fields [`record_status`] and
/// [`record_failure`] fill in; more fields may follow the fixed ones. The target and the
/// method are literals: tracing keeps them in static metadata.
macro_rules! client_span {
    ($target:literal, $method:literal, $host:expr, $url:expr, $resend:expr $(, $($extra:tt)+)?) => {
        tracing::info_span!(
            target: $target,
            $method,
            otel.kind = "client",
            http.request.method = $method,
            server.address = %$host,
            url.full = %$url,
            http.request.resend_count = $resend,
            http.response.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
            $($($extra)+)?
        )
    };
}
pub(crate) use client_span;

/// Records the answer's status on a [`client_span!`]; anything but a success is an error.
pub fn record_status(span: &tracing::Span, status: StatusCode) {
    span.record("http.response.status_code", status.as_u16());
    if !status.is_success() {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", status.as_str());
    }
}

/// Records on a [`client_span!`] that no answer arrived (`kind`: `transport`, `timeout`).
pub fn record_failure(span: &tracing::Span, kind: &'static str) {
    span.record("otel.status_code", "ERROR");
    span.record("error.type", kind);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_retry_after_else_a_doubling_backoff_within_the_bounds() {
        assert_eq!(wait(0, 2, None), Some(Duration::from_millis(200)));
        assert_eq!(wait(1, 2, None), Some(Duration::from_millis(400)));
        assert_eq!(wait(2, 2, None), None, "no retry left");
        let three = Some(Duration::from_secs(3));
        assert_eq!(wait(0, 2, three), three, "Retry-After wins");
        assert_eq!(wait(0, 2, Some(Duration::from_secs(11))), None, "too long");
        assert_eq!(wait(0, 0, None), None);
        assert_eq!(wait(40, u32::MAX, None), None, "no overflow, just too long");
    }

    #[test]
    fn retry_after_reads_whole_seconds_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(http::header::RETRY_AFTER, " 7 ".parse().expect("value"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let date = "Wed, 21 Oct 2015 07:28:00 GMT".parse().expect("value");
        headers.insert(http::header::RETRY_AFTER, date);
        assert_eq!(retry_after(&headers), None);
    }

    // The waits themselves are `wait`'s (tested above); here `Retry-After: 0` keeps them
    // instant.
    #[tokio::test]
    async fn retries_count_and_resend_while_again_only_resends() {
        let mut retries = Retries::new("test", 2);
        let mut seen = Vec::new();
        let result = loop {
            let resend = retries.resends();
            seen.push(resend);
            let step = Ok::<_, &str>(match resend {
                0 => Step::Again,
                1 | 2 => Step::Retry {
                    retry_after: Some(Duration::ZERO),
                    status: Some(503),
                    error: "busy",
                },
                _ => Step::Done("answer"),
            });
            if let Some(result) = retries.after(step).await {
                break result;
            }
        };
        assert_eq!(result, Ok("answer"));
        assert_eq!(retries.retries(), 2);
        assert_eq!(seen, [0, 1, 2, 3]);
    }

    #[tokio::test]
    async fn past_the_retries_the_attempts_error_is_the_answer() {
        let mut retries = Retries::new("test", 1);
        let throttled = || {
            Ok::<Step<(), _>, _>(Step::Retry {
                retry_after: Some(Duration::ZERO),
                status: Some(429),
                error: "throttled",
            })
        };
        assert_eq!(retries.after(throttled()).await, None, "one retry");
        assert_eq!(retries.after(throttled()).await, Some(Err("throttled")));
        assert_eq!(retries.retries(), 1);
        let mut none = Retries::new("test", 3);
        assert_eq!(
            none.after(Err::<Step<(), _>, _>("refused")).await,
            Some(Err("refused"))
        );
        assert_eq!(none.retries(), 0, "a failure is not retried");
    }
}

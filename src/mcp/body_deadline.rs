//! The body deadline: a request's whole body must arrive within `server.body_timeout` of the
//! request's start, or the request gets 408 and its connection is closed.
//!
//! actix's client timeout covers only the request head. Without this, a client could
//! announce a large body and trickle it, holding its buffer and connection as long as it
//! liked. Outermost on the MCP route scopes, this layer wraps the request's payload in a
//! stream that fails at the deadline, so every reader below it (the one read in
//! `tool_access.rs` that the fast path shares, rmcp's transport) reads through the same
//! deadline without knowing about it. Whatever that reader then answers, a request whose
//! deadline fired gets 408 with a JSON-RPC error body and `Connection: close`, and what is
//! left of its body is never read.
//!
//! A body that is already there when it is read costs no timer: one is set only when the
//! payload has to wait for the network.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpResponse, ResponseError};
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

use super::body::BoxedPayload;
use super::jsonrpc_errors::{INVALID_REQUEST, error_response};
use crate::telemetry::metrics;

/// `server.body_timeout`: the state of the layer.
#[derive(Clone, Copy)]
pub struct BodyDeadline {
    timeout: Duration,
}

impl BodyDeadline {
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }

    /// The middleware, outermost on the MCP route scopes.
    pub async fn enforce(
        self: Rc<Self>,
        mut req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
        let timeout = self.timeout;
        let payload = req.take_payload();
        if matches!(payload, Payload::None) {
            return Ok(next.call(req).await?.map_into_left_body());
        }
        let expired = Rc::new(Cell::new(false));
        let body: BoxedPayload = Box::pin(Deadline {
            inner: Some(payload),
            deadline: Instant::now() + timeout,
            timer: None,
            expired: Rc::clone(&expired),
        });
        req.set_payload(Payload::from(body));
        let result = next.call(req).await;
        if !expired.get() {
            return Ok(result?.map_into_left_body());
        }
        // Whatever the reader made of the failed body, the answer is the deadline's.
        metrics::limited_request("body_timeout");
        let (req, _) = result.map_err(|_| BodyTimedOut)?.into_parts();
        Ok(ServiceResponse::new(req, BodyTimedOut.error_response()).map_into_right_body())
    }
}

/// The answer to a request whose body missed the deadline: 408, `Connection: close`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within server.body_timeout")]
struct BodyTimedOut;

impl ResponseError for BodyTimedOut {
    fn status_code(&self) -> StatusCode {
        StatusCode::REQUEST_TIMEOUT
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::RequestTimeout();
        response.force_close();
        error_response(
            response,
            None,
            INVALID_REQUEST,
            "Request Timeout: the request body did not arrive within server.body_timeout",
        )
    }
}

/// The request's payload, failing once the deadline has passed while it waits for data.
struct Deadline {
    /// `None` once the body ended or the deadline fired (dropping actix's payload).
    inner: Option<Payload>,
    deadline: Instant,
    /// Set the first time the payload has to wait.
    timer: Option<Pin<Box<Sleep>>>,
    expired: Rc<Cell<bool>>,
}

impl Deadline {
    fn expire(&mut self) -> Poll<Option<Result<Bytes, PayloadError>>> {
        self.inner = None;
        self.timer = None;
        self.expired.set(true);
        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            BodyTimedOut,
        )))))
    }
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_next(cx) {
            Poll::Ready(None) => {
                this.inner = None;
                this.timer = None;
                Poll::Ready(None)
            }
            // A client that keeps data coming is still held to the deadline.
            Poll::Ready(Some(_)) if this.timer.as_ref().is_some_and(|t| t.is_elapsed()) => {
                this.expire()
            }
            Poll::Ready(chunk) => Poll::Ready(chunk),
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match timer.as_mut().poll(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(()) => this.expire(),
                }
            }
        }
    }
}

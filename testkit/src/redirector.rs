//! A server that answers every request with a redirect, for the tests that show no outgoing
//! client follows one (the token endpoint, discovery, the issuer's keys).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

struct Shared {
    status: StatusCode,
    location: Mutex<String>,
    requests: AtomicUsize,
}

/// Answers any method on any path with `status` and `Location` (settable after start, for
/// a target that starts later), counting the requests it answered.
pub struct Redirector {
    /// `http://127.0.0.1:port`.
    pub url: String,
    shared: Arc<Shared>,
}

impl Redirector {
    pub async fn start(status: u16, location: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind redirector");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let shared = Arc::new(Shared {
            status: StatusCode::from_u16(status).expect("a status code"),
            location: Mutex::new(location.to_owned()),
            requests: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .fallback(redirect)
            .with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, shared }
    }

    /// Redirects to `location` from now on.
    pub fn set_location(&self, location: &str) {
        *self
            .shared
            .location
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = location.to_owned();
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }
}

async fn redirect(State(shared): State<Arc<Shared>>) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let location = shared
        .location
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    (shared.status, [("location", location)]).into_response()
}

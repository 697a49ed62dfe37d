//! Keeps the query string out of the HTTP server span.
//!
//! `opentelemetry_instrumentation_actix_web::RequestTracing` records `url.query` with the whole
//! query string, and a client may put a token there (`?access_token=`, `?code=`). The crate
//! has no option to leave it out, so [`QueryRedaction`] hides the query around it: `hide`,
//! wrapped just outside the tracing middleware, sets a query-less URI and stashes the original
//! in the request extensions; `restore`, wrapped just inside, puts it back, so everything
//! below (the authorization check that refuses `?access_token=`, the routes) sees the request
//! as sent.

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Uri;
use actix_web::http::uri::PathAndQuery;
use actix_web::middleware::Next;

/// The middleware pair (see the module docs).
pub struct QueryRedaction;

/// The request's URI as received, while the tracing middleware sees it without its query.
struct Stashed(Uri);

impl QueryRedaction {
    /// Outside the tracing middleware: moves the query aside.
    pub async fn hide(
        mut req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
        if req.uri().query().is_some() {
            let original = req.uri().clone();
            let Some(bare) = without_query(&original) else {
                // Unreachable for a URI actix parsed (its path alone is a valid URI); refuse
                // rather than trace the query.
                return Err(actix_web::error::ErrorBadRequest(
                    "the request target could not be parsed",
                ));
            };
            req.extensions_mut().insert(Stashed(original));
            req.head_mut().uri = bare;
        }
        next.call(req).await
    }

    /// Inside the tracing middleware: puts the query back.
    pub async fn restore(
        mut req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
        let stashed = req.extensions_mut().remove::<Stashed>();
        if let Some(Stashed(original)) = stashed {
            req.head_mut().uri = original;
        }
        next.call(req).await
    }
}

/// `uri` with its query (and the `?`) removed; scheme and authority kept.
fn without_query(uri: &Uri) -> Option<Uri> {
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(uri.path()).ok()?);
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_goes_and_the_rest_stays() {
        let uri: Uri = "/mcp?access_token=abc&x=1".parse().expect("uri");
        let bare = without_query(&uri).expect("bare");
        assert_eq!(bare.to_string(), "/mcp");
        let uri: Uri = "http://h:1/a/b?code=abc".parse().expect("uri");
        assert_eq!(
            without_query(&uri).expect("bare").to_string(),
            "http://h:1/a/b"
        );
    }
}

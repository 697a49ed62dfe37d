//! A Microsoft Graph emulator: every registered tool's endpoint (`GET /v1.0/me`,
//! `GET /v1.0/me/calendarView`), from `fixtures.rs` in the shapes of `shapes.rs`, for the dev
//! user named by a token the dev identity provider issued for Graph. Any other token —
//! including the MCP server's own inbound token, which must never be passed through — gets
//! Graph's 401; a token whose `scp` lacks the path's permission gets Graph's 403
//! `ErrorAccessDenied`.
//!
//! It also serves the dev app registration as Graph would (the application, its federated
//! credential, the service principals and the admin consent grant), in Graph's shapes, so
//! `mcp-obo doctor` against `mcp-obo dev` reads a registration that matches the server.
//!
//! A fake of its own, beside the test kit's (`testkit/src/fake_graph.rs`), because this one
//! ships in the binary: it verifies the dev provider's tokens and serves the dev users, and
//! it can neither be scripted to fail nor report what it saw, which the tests' fake must.

use actix_web::{HttpRequest, HttpResponse, web};

use super::state::{DevState, DevUser};
use super::{fixtures, shapes};
use crate::jose::verify_with;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1.0/me", web::get().to(me))
        .route("/v1.0/me/calendarView", web::get().to(calendar_view))
        .route(
            "/v1.0/applications(appId='{app_id}')",
            web::get().to(application),
        )
        .route(
            "/v1.0/applications(appId='{app_id}')/federatedIdentityCredentials",
            web::get().to(federated_credentials),
        )
        .route(
            "/v1.0/servicePrincipals(appId='{app_id}')",
            web::get().to(service_principal),
        )
        .route("/v1.0/oauth2PermissionGrants", web::get().to(grants));
}

/// Whether `req` carries a valid dev token for Graph (else Graph's 401 is the answer).
fn authorized(req: &HttpRequest, state: &DevState) -> bool {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| verify_with(&state.signing, t, &[state.graph_base.as_str()]))
        .is_some()
}

fn not_found(what: &str) -> HttpResponse {
    HttpResponse::NotFound().json(shapes::not_found(what))
}

/// The registration's `what` for `app_id`, as Graph answers it (401 without a dev Graph
/// token, 404 for another app).
fn lookup<T: serde::Serialize>(
    req: &HttpRequest,
    state: &DevState,
    app_id: &str,
    what: impl FnOnce(&super::registration::Registration, &str) -> Option<T>,
) -> HttpResponse {
    if !authorized(req, state) {
        return unauthorized();
    }
    match what(&state.registration(), app_id) {
        Some(found) => HttpResponse::Ok().json(found),
        None => not_found(app_id),
    }
}

async fn application(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<DevState>,
) -> HttpResponse {
    lookup(&req, &state, &path, |r, id| r.application(id))
}

async fn federated_credentials(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<DevState>,
) -> HttpResponse {
    lookup(&req, &state, &path, |r, id| r.federated_credentials(id))
}

async fn service_principal(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<DevState>,
) -> HttpResponse {
    lookup(&req, &state, &path, |r, id| r.service_principal(id))
}

#[derive(serde::Deserialize)]
struct GrantQuery {
    #[serde(rename = "$filter")]
    filter: Option<String>,
}

async fn grants(
    req: HttpRequest,
    query: web::Query<GrantQuery>,
    state: web::Data<DevState>,
) -> HttpResponse {
    if !authorized(&req, &state) {
        return unauthorized();
    }
    HttpResponse::Ok().json(state.registration().grants(query.filter.as_deref()))
}

fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized().json(shapes::invalid_token())
}

/// The dev user a Graph token names, when its `scp` holds the permission Graph requires for
/// the request's path; otherwise Graph's answer (401, 403 `ErrorAccessDenied`, 404).
fn user_for(req: &HttpRequest, state: &DevState) -> Result<DevUser, Box<HttpResponse>> {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(claims) =
        token.and_then(|t| verify_with(&state.signing, t, &[state.graph_base.as_str()]))
    else {
        return Err(Box::new(unauthorized()));
    };
    let granted = claims["scp"].as_str().unwrap_or_default();
    let allowed = shapes::permission_for(req.path())
        .is_some_and(|p| granted.split_whitespace().any(|s| s == p.value));
    if !allowed {
        return Err(Box::new(
            HttpResponse::Forbidden().json(shapes::access_denied()),
        ));
    }
    let oid = claims["oid"].as_str().unwrap_or_default();
    state.user(oid).ok_or_else(|| Box::new(not_found(oid)))
}

async fn me(req: HttpRequest, state: web::Data<DevState>) -> HttpResponse {
    let user = match user_for(&req, &state) {
        Ok(user) => user,
        Err(answer) => return *answer,
    };
    HttpResponse::Ok().json(shapes::me(
        &state.graph_base,
        &shapes::Profile {
            id: &user.id,
            display_name: &user.name,
            mail: Some(&user.email),
            user_principal_name: &user.email,
        },
    ))
}

#[derive(serde::Deserialize)]
struct CalendarQuery {
    #[serde(rename = "startDateTime")]
    start: Option<String>,
    #[serde(rename = "endDateTime")]
    end: Option<String>,
    #[serde(rename = "$top")]
    top: Option<usize>,
    #[serde(rename = "$skip")]
    skip: Option<usize>,
}

/// Graph's 400 for a bad query parameter.
fn invalid(message: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(shapes::invalid_parameter(message))
}

/// `GET /v1.0/me/calendarView`: the user's events overlapping the window, `$top` a page,
/// `@odata.nextLink` (on this emulator's origin) while more remain.
async fn calendar_view(
    req: HttpRequest,
    query: web::Query<CalendarQuery>,
    state: web::Data<DevState>,
) -> HttpResponse {
    let user = match user_for(&req, &state) {
        Ok(user) => user,
        Err(answer) => return *answer,
    };
    let (Some(start), Some(end)) = (query.start.as_deref(), query.end.as_deref()) else {
        return invalid(
            "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
        );
    };
    let (Ok(from), Ok(to)) = (
        humantime::parse_rfc3339_weak(start),
        humantime::parse_rfc3339_weak(end),
    ) else {
        return invalid("StartDateTime and EndDateTime must be ISO 8601 date-times.");
    };
    let top = query.top.unwrap_or(10).clamp(1, 1000);
    let skip = query.skip.unwrap_or(0);
    let within: Vec<_> = fixtures::events(&user, std::time::SystemTime::now())
        .into_iter()
        .filter(|e| e.end > from && e.start < to)
        .collect();
    let page: Vec<_> = within
        .iter()
        .skip(skip)
        .take(top)
        .map(|e| e.body.clone())
        .collect();
    let next = (skip + top < within.len()).then(|| {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("startDateTime", start)
            .append_pair("endDateTime", end)
            .append_pair("$top", &top.to_string())
            .append_pair("$skip", &(skip + top).to_string())
            .finish();
        format!("{}/v1.0/me/calendarView?{query}", state.graph_base)
    });
    let context = format!(
        "{}/v1.0/$metadata#users('{}')/calendarView",
        state.graph_base, user.id
    );
    let body = shapes::page(Some(&context), page, next.as_deref());
    HttpResponse::Ok().json(body)
}

//! Clients: RFC 7591 dynamic registration (public clients only) and client ID metadata
//! documents (the client id is the https URL of its own metadata, fetched once).

use actix_web::{HttpResponse, web};
use serde_json::json;
use url::Url;

use crate::devidp::state::{Client, DevState};
use crate::jose::random_token;

/// All the browser learns when a client metadata document cannot be used: not what was, or
/// was not, found at the URL, which may be an internal one (the detail is logged at debug).
const METADATA_UNUSABLE: &str =
    "the client metadata document could not be fetched or is not a valid client metadata document";

pub(super) async fn find_client(state: &DevState, client_id: &str) -> Result<Client, String> {
    if let Some(client) = state.client(client_id) {
        return Ok(client);
    }
    // Client ID metadata document: the client id is the URL of its own metadata.
    let url = Url::parse(client_id).map_err(|_| format!("unknown client_id {client_id}: register it first (dynamic client registration at /register)"))?;
    let allowed = url.scheme() == "https" || crate::config::is_loopback_url(&url);
    if !allowed {
        return Err(format!(
            "client metadata document {client_id} must be https"
        ));
    }
    let client = fetch_client_metadata(state, url, client_id)
        .await
        .map_err(|detail| {
            tracing::debug!(client_id, detail, "client metadata document refused");
            format!("{METADATA_UNUSABLE}: {client_id}")
        })?;
    state.clients.insert(client_id.to_owned(), client.clone());
    Ok(client)
}

/// The client a metadata document at `url` describes; the error (for the debug log only)
/// says what was wrong. Redirects are not followed: a 3xx is an answer like any other.
async fn fetch_client_metadata(
    state: &DevState,
    url: Url,
    client_id: &str,
) -> Result<Client, String> {
    let response = state
        .http
        .get(url)
        .send()
        .await
        .map_err(|e| crate::outbound::failure(&e).to_owned())?;
    if !response.status().is_success() {
        return Err(format!("answered {}", response.status()));
    }
    let doc: serde_json::Value = serde_json::from_slice(&capped_body(response).await?)
        .map_err(|_| "not a JSON document".to_owned())?;
    if doc["client_id"] != client_id {
        return Err("it names another client_id".into());
    }
    let redirect_uris = redirect_uris(&doc);
    if redirect_uris.is_empty() {
        return Err("it lists no redirect_uris".into());
    }
    Ok(Client {
        client_id: client_id.to_owned(),
        redirect_uris,
        name: doc["client_name"].as_str().map(str::to_owned),
    })
}

/// A client metadata document is a few hundred bytes; a larger answer is refused rather
/// than buffered, announced or streamed.
const MAX_CLIENT_METADATA: usize = 64 * 1024;

/// The body of `response`, at most [`MAX_CLIENT_METADATA`] bytes.
async fn capped_body(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let too_large = || "it is larger than a client metadata document can be".to_owned();
    if response
        .content_length()
        .is_some_and(|n| n > MAX_CLIENT_METADATA as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| crate::outbound::failure(&e).to_owned())?
    {
        if body.len() + chunk.len() > MAX_CLIENT_METADATA {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// RFC 7591 dynamic client registration, public clients only.
pub(super) async fn register(
    state: web::Data<DevState>,
    body: web::Json<serde_json::Value>,
) -> HttpResponse {
    let redirect_uris = redirect_uris(&body);
    if redirect_uris.is_empty() {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_redirect_uri", "error_description": "redirect_uris is required"}));
    }
    for uri in &redirect_uris {
        // RFC 8252: https, loopback http, or a private-use (reverse-DNS) app scheme.
        let ok = Url::parse(uri).is_ok_and(|u| {
            u.scheme() == "https"
                || (u.scheme() == "http" && crate::config::is_loopback_url(&u))
                || (u.scheme().contains('.') && u.fragment().is_none())
        });
        if !ok {
            return HttpResponse::BadRequest().json(json!({"error": "invalid_redirect_uri", "error_description": format!("{uri} must be https, loopback http, or a reverse-DNS app scheme such as com.example.app:/callback")}));
        }
    }
    let method = body["token_endpoint_auth_method"]
        .as_str()
        .unwrap_or("none");
    if method != "none" {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_client_metadata", "error_description": "only public clients (token_endpoint_auth_method none) can register here"}));
    }
    let client_id = format!("dev-client-{}", random_token(9));
    let name = body["client_name"].as_str().map(str::to_owned);
    state.clients.insert(
        client_id.clone(),
        Client {
            client_id: client_id.clone(),
            redirect_uris: redirect_uris.clone(),
            name: name.clone(),
        },
    );
    HttpResponse::Created().json(json!({
        "client_id": client_id,
        "client_id_issued_at": crate::devidp::state::now_secs(),
        "client_name": name,
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }))
}

/// The string entries of a client document's `redirect_uris` (none when it is absent or not a
/// list).
fn redirect_uris(doc: &serde_json::Value) -> Vec<String> {
    doc["redirect_uris"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

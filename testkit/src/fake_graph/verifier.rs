//! The fake Graph's verifying mode: a token must be a JWT the test issuer signed for Graph's
//! audience; a token for the MCP server's own audience is recorded as passed through.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mcp_obo::devidp::shapes;
use serde_json::Value;

use super::{GRAPH, GraphState, Identity, lock};

/// Verifying mode: tokens must be JWTs signed by the issuer's keys for `audience`.
pub(super) struct Verifier {
    keys: Arc<Mutex<Vec<Value>>>,
    audience: String,
    /// The MCP server's own audience: a token for it here means passthrough.
    inbound_audiences: Vec<String>,
    /// Tokens already verified (as Graph caches validated tokens), so a load run measures
    /// the MCP server rather than this fake's RSA checks: signature → (the whole token,
    /// signing kid, exp, who it is). A hit is honoured only for the identical token, while
    /// it is unexpired and its key is still published. (Keyed by the signature, a quarter of
    /// the token, to hash less per request.)
    verified: Mutex<HashMap<String, Verified>>,
}

struct Verified {
    token: String,
    kid: String,
    exp: i64,
    identity: Identity,
}

impl Verifier {
    pub(super) fn new(keys: Arc<Mutex<Vec<Value>>>, audience: &str, inbound: &[&str]) -> Self {
        Self {
            keys,
            audience: audience.to_owned(),
            inbound_audiences: inbound.iter().map(|a| (*a).to_owned()).collect(),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Who a valid downstream token is, `None` for anything else; records a passthrough of
    /// the caller's own token.
    pub(super) fn identity(&self, token: &str, state: &GraphState) -> Option<Identity> {
        {
            let memo = lock(&self.verified);
            if let Some(v) = memo.get(signature(token))
                && v.token == token
            {
                let key_published = lock(&self.keys).iter().any(|k| k["kid"] == v.kid.as_str());
                if v.exp > crate::tokens::now() && key_published {
                    return Some(v.identity.clone());
                }
            }
        }
        let keys = lock(&self.keys).clone();
        let Some(claims) =
            crate::tokens::verify(token, &keys, std::slice::from_ref(&self.audience))
        else {
            if crate::tokens::verify(token, &keys, &self.inbound_audiences).is_some() {
                state
                    .passthrough_seen
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
            return None;
        };
        // Entra names the user in `oid` and the permissions in `scp`; another issuer's
        // access token (RFC 9068: the peers' `oidc-provider`) in `sub` and `scope`.
        let user_id = claims["oid"].as_str().or(claims["sub"].as_str())?;
        let scopes = claims["scp"].as_str().or(claims["scope"].as_str());
        let upn = claims["preferred_username"].as_str().unwrap_or_default();
        let profile = shapes::me(
            GRAPH,
            &shapes::Profile {
                id: user_id,
                display_name: claims["name"].as_str().unwrap_or_default(),
                mail: Some(upn),
                user_principal_name: upn,
            },
        );
        let me = axum::body::Bytes::from(serde_json::to_vec(&profile).ok()?);
        let identity = Identity {
            user_id: user_id.to_owned(),
            scopes: scopes
                .unwrap_or_default()
                .split(' ')
                .map(str::to_owned)
                .collect(),
            me,
        };
        let kid = jsonwebtoken::decode_header(token).ok()?.kid?;
        let exp = claims["exp"].as_i64()?;
        lock(&self.verified).insert(
            signature(token).to_owned(),
            Verified {
                token: token.to_owned(),
                kid,
                exp,
                identity: identity.clone(),
            },
        );
        Some(identity)
    }
}

/// A compact JWS's last segment.
fn signature(token: &str) -> &str {
    token.rsplit('.').next().unwrap_or(token)
}

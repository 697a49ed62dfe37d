//! The tokens the dev state mints: access and ID tokens for the provider, the federated
//! assertion of the development managed identity, and the operator's Graph token, written
//! to private files as the platform and `az` would hand them over.

use std::path::Path;

use serde_json::{Value, json};

use super::{DevState, DevUser, now_secs};
use crate::devidp::files::write_private;
use crate::devidp::{DEV_MANAGED_IDENTITY, DEV_TENANT, EXCHANGE_AUDIENCE, Error};
use crate::jose::{b64url, random_token, sha256};

impl DevState {
    /// Writes a fresh federated assertion (as the platform would project it), valid 24 h.
    pub fn write_federated_token(&self, path: &Path) -> Result<(), Error> {
        let now = now_secs();
        let claims = json!({
            "iss": self.identity_issuer(),
            "sub": DEV_MANAGED_IDENTITY,
            "aud": EXCHANGE_AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + 86_400,
            "jti": random_token(12),
        });
        let token = self
            .identity_key
            .sign("JWT", json!({}), &claims)
            .map_err(|e| Error::Keys(e.to_string()))?;
        write_private(path, token.as_bytes()).map_err(|source| Error::State {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Writes a Graph token for the operator (as `az account get-access-token` would give
    /// one), valid 24 h, for `mcp-obo doctor --graph-token-file` to read the dev app
    /// registration from the Graph emulator with.
    pub fn write_operator_graph_token(&self, path: &Path) -> Result<(), Error> {
        let now = now_secs();
        let claims = json!({
            "iss": self.issuer(),
            "aud": self.graph_base,
            "iat": now,
            "nbf": now,
            "exp": now + 86_400,
            "tid": DEV_TENANT,
            "oid": "00000000-0000-4000-8000-0000000000ad",
            "scp": "Application.Read.All",
            "name": "Dev operator",
            "ver": "2.0",
            "uti": random_token(12),
        });
        let token = self
            .signing
            .sign("JWT", json!({}), &claims)
            .map_err(|e| Error::Keys(e.to_string()))?;
        write_private(path, token.as_bytes()).map_err(|source| Error::State {
            path: path.to_path_buf(),
            source,
        })
    }

    /// An Entra v2-shaped access token for `user`.
    pub fn access_token(
        &self,
        user: &DevUser,
        client_id: &str,
        audience: &str,
        scp: &str,
        lifetime: u64,
    ) -> Option<String> {
        let now = now_secs();
        let claims = json!({
            "iss": self.issuer(),
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "tid": DEV_TENANT,
            "oid": user.id,
            "sub": b64url(&sha256(format!("{}:{client_id}", user.id).as_bytes())[..16]),
            "scp": scp,
            "azp": client_id,
            "name": user.name,
            "preferred_username": user.email,
            "ver": "2.0",
            "uti": random_token(12),
        });
        self.signing.sign("JWT", json!({}), &claims).ok()
    }

    /// An OpenID Connect ID token, when `openid` was requested.
    pub fn id_token(&self, user: &DevUser, client_id: &str) -> Option<String> {
        let now = now_secs();
        let claims = json!({
            "iss": self.issuer(), "aud": client_id, "iat": now, "exp": now + 3600,
            "sub": b64url(&sha256(format!("{}:{client_id}", user.id).as_bytes())[..16]),
            "oid": user.id, "tid": DEV_TENANT, "name": user.name, "preferred_username": user.email,
            "email": user.email, "ver": "2.0",
        });
        self.signing.sign("JWT", json!({}), &claims).ok()
    }

    pub fn jwks(&self) -> Value {
        json!({"keys": [self.signing.public_jwk()]})
    }
}

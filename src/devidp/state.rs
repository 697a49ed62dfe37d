//! Dev identity provider state: users, signing keys, registered clients, codes and refresh
//! tokens. Keys persist in the state folder so tokens survive a restart; everything else
//! lives in memory.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::{DEV_APP, DEV_MANAGED_IDENTITY, DEV_TENANT, EXCHANGE_AUDIENCE, Error};
use crate::jose::{SigningKey, b64url, random_token, sha256};

/// A development user who can sign in.
#[derive(Debug, Clone)]
pub struct DevUser {
    pub id: String,
    pub name: String,
    pub email: String,
}

impl DevUser {
    pub fn new(name: &str, email: &str) -> Self {
        let digest = sha256(email.to_ascii_lowercase().as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        // A stable GUID-shaped object id per email.
        let id = format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        );
        Self {
            id,
            name: name.to_owned(),
            email: email.to_owned(),
        }
    }
}

/// Ada and Alan, unless configured otherwise.
pub fn default_users() -> Vec<DevUser> {
    vec![
        DevUser::new("Ada Lovelace", "ada@contoso.dev"),
        DevUser::new("Alan Turing", "alan@contoso.dev"),
    ]
}

/// A registered OAuth client.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub redirect_uris: Vec<String>,
    pub name: Option<String>,
}

/// An issued, not yet redeemed authorization code.
#[derive(Debug, Clone)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub user: DevUser,
    pub scope: String,
    pub audience: String,
    pub expires: Instant,
}

/// A refresh token's grant.
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub client_id: String,
    pub user: DevUser,
    pub scope: String,
    pub audience: String,
}

/// Everything the dev provider and Graph emulator share.
pub struct DevState {
    pub idp_base: String,
    pub graph_base: String,
    /// The MCP server's resource URLs (RFC 8707 `resource` values accepted as `aud`).
    pub mcp_resources: Vec<String>,
    pub users: Vec<DevUser>,
    pub signing: SigningKey,
    /// Signs the development managed identity's federated assertions.
    pub identity_key: SigningKey,
    pub clients: Mutex<HashMap<String, Client>>,
    pub codes: Mutex<HashMap<String, CodeGrant>>,
    pub refresh: Mutex<HashMap<String, RefreshGrant>>,
    pub http: reqwest::Client,
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn load_or_create_key(dir: &Path, name: &str, kid: &str) -> Result<SigningKey, Error> {
    let path = dir.join(format!("{name}.pk8"));
    if let Ok(der) = std::fs::read(&path)
        && let Ok(key) = SigningKey::rsa_from_pkcs8(kid, &der)
    {
        return Ok(key);
    }
    let key = SigningKey::generate_rsa(kid).map_err(|e| Error::Keys(e.to_string()))?;
    let der = key.to_pkcs8().map_err(|e| Error::Keys(e.to_string()))?;
    write_private(&path, &der).map_err(|source| Error::State {
        path: path.clone(),
        source,
    })?;
    Ok(key)
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

impl DevState {
    pub fn load(
        dir: &Path,
        idp_base: &str,
        graph_base: &str,
        mcp_resources: Vec<String>,
        users: Vec<DevUser>,
    ) -> Result<Self, Error> {
        let signing = load_or_create_key(dir, "idp-signing-key", "dev-idp-1")?;
        let identity_key = load_or_create_key(dir, "managed-identity-key", "dev-mi-1")?;
        let http = crate::outbound::builder()
            .map_err(|e| Error::Keys(e.to_string()))?
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| Error::Keys(e.to_string()))?;
        let mut clients = HashMap::new();
        // VS Code's well-known client id, pre-registered as Entra admins do.
        clients.insert(
            "aebc6443-996d-45c2-90f0-388ff96faa56".to_owned(),
            Client {
                client_id: "aebc6443-996d-45c2-90f0-388ff96faa56".into(),
                redirect_uris: vec![
                    "http://127.0.0.1/".into(),
                    "https://vscode.dev/redirect".into(),
                ],
                name: Some("Visual Studio Code".into()),
            },
        );
        Ok(Self {
            idp_base: idp_base.to_owned(),
            graph_base: graph_base.to_owned(),
            mcp_resources,
            users,
            signing,
            identity_key,
            clients: Mutex::new(clients),
            codes: Mutex::new(HashMap::new()),
            refresh: Mutex::new(HashMap::new()),
            http,
        })
    }

    /// `{idp}/{tenant}/v2.0`, the issuer of every token.
    pub fn issuer(&self) -> String {
        format!("{}/{DEV_TENANT}/v2.0", self.idp_base)
    }

    /// The token endpoint URL.
    pub fn token_endpoint(&self) -> String {
        format!("{}/{DEV_TENANT}/oauth2/v2.0/token", self.idp_base)
    }

    /// The issuer the development managed identity's assertions carry (as Entra's do).
    pub fn identity_issuer(&self) -> String {
        format!("{}/{DEV_TENANT}/v2.0/managed-identity", self.idp_base)
    }

    pub fn user(&self, id: &str) -> Option<DevUser> {
        self.users.iter().find(|u| u.id == id).cloned()
    }

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

    /// The dev app registration the Graph emulator serves.
    pub fn registration(&self) -> super::registration::Registration {
        super::registration::Registration {
            mcp_url: self.mcp_resources.first().cloned().unwrap_or_default(),
            identity_issuer: self.identity_issuer(),
        }
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

    /// The MCP server's app (Entra v2 `aud` for `api://{app}/...` scopes).
    pub fn app_id(&self) -> &'static str {
        DEV_APP
    }
}

//! Dev identity provider state: users, signing keys, registered clients, pending
//! authorization requests, codes and refresh tokens. Keys persist in the state folder so
//! tokens survive a restart (`files.rs` writes them private); everything else lives in
//! memory, in bounded caches whose entries expire, so a page or a client registering in a
//! loop cannot grow the process without limit.
//!
//! - `users.rs`: [`DevUser`], [`default_users`]: who can sign in, and their consents.
//! - `tokens.rs`: the tokens [`DevState`] signs (access, ID, federated, operator Graph).

mod tokens;
mod users;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moka::sync::Cache;

use super::files::{tighten, write_private};
use super::{DEV_APP, DEV_TENANT, Error};
use crate::jose::SigningKey;
pub use users::{DevUser, default_users};

/// Registered clients kept (dynamic registration and client metadata documents); the
/// least used are forgotten first and must register again.
pub const MAX_CLIENTS: u64 = 1_000;
/// Sign-in pages shown and not yet answered.
pub const MAX_PENDING: u64 = 1_000;
/// How long a sign-in page's anti-forgery token stays good.
pub const PENDING_LIFETIME: Duration = Duration::from_secs(600);
/// Issued, not yet redeemed authorization codes.
pub const MAX_CODES: u64 = 1_000;
/// How long an authorization code can be redeemed.
pub const CODE_LIFETIME: Duration = Duration::from_secs(120);
/// Refresh tokens kept.
pub const MAX_REFRESH_TOKENS: u64 = 10_000;
/// How long a refresh token works (Entra's single-page-app refresh tokens: 24 h).
pub const REFRESH_LIFETIME: Duration = Duration::from_secs(86_400);

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

/// A sign-in page's authorization request, kept under the anti-forgery token the page's
/// form carries: the POST must present the token and repeat this request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAuthorization {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub scope: String,
    pub audience: String,
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
    /// Clients registered before start-up (VS Code's), never forgotten.
    builtin_clients: HashMap<String, Client>,
    /// Clients registered since (bounded: [`MAX_CLIENTS`]).
    pub clients: Cache<String, Client>,
    /// Sign-in pages' requests by anti-forgery token (bounded, expiring).
    pub pending: Cache<String, PendingAuthorization>,
    /// Authorization codes (bounded, expiring after [`CODE_LIFETIME`]).
    pub codes: Cache<String, CodeGrant>,
    /// Refresh tokens (bounded, expiring after [`REFRESH_LIFETIME`]).
    pub refresh: Cache<String, RefreshGrant>,
    /// Fetches client metadata documents; follows no redirects.
    pub http: reqwest::Client,
    /// Consents given since start-up (user id, permission): at most users × registered
    /// permissions.
    granted: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
}

/// A cache of at most `capacity` entries, each dropped `lifetime` after it was written.
fn bounded<V: Clone + Send + Sync + 'static>(
    capacity: u64,
    lifetime: Option<Duration>,
) -> Cache<String, V> {
    let builder = Cache::builder().max_capacity(capacity);
    match lifetime {
        Some(ttl) => builder.time_to_live(ttl).build(),
        None => builder.build(),
    }
}

/// The authorization code store: [`MAX_CODES`] at most, each gone after [`CODE_LIFETIME`].
pub fn code_store() -> Cache<String, CodeGrant> {
    bounded(MAX_CODES, Some(CODE_LIFETIME))
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn load_or_create_key(dir: &Path, name: &str, kid: &str) -> Result<SigningKey, Error> {
    let path = dir.join(format!("{name}.pk8"));
    if let Ok(der) = std::fs::read(&path)
        && let Ok(key) = SigningKey::rsa_from_pkcs8(kid, &der)
    {
        tighten(&path).map_err(|source| Error::State {
            path: path.clone(),
            source,
        })?;
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
        // A redirect could send the fetch somewhere the client id does not name.
        let http = crate::outbound::builder()
            .map_err(|e| Error::Http(e.to_string()))?
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| Error::Http(e.to_string()))?;
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
            builtin_clients: clients,
            clients: bounded(MAX_CLIENTS, None),
            pending: bounded(MAX_PENDING, Some(PENDING_LIFETIME)),
            codes: code_store(),
            refresh: bounded(MAX_REFRESH_TOKENS, Some(REFRESH_LIFETIME)),
            http,
            granted: std::sync::Mutex::default(),
        })
    }

    /// A registered client: built in, or registered since start-up.
    pub fn client(&self, client_id: &str) -> Option<Client> {
        self.builtin_clients
            .get(client_id)
            .cloned()
            .or_else(|| self.clients.get(client_id))
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

    /// Whether `user` has consented to the Graph permission `value`: from the start
    /// (not `--without-consent`), or through the consent page since.
    pub fn consented(&self, user: &DevUser, value: &str) -> bool {
        user.consented(value)
            || self
                .granted
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains(&(user.id.clone(), value.to_ascii_lowercase()))
    }

    /// `user_id` consents to `permissions` (the consent page).
    pub fn grant(&self, user_id: &str, permissions: &[&str]) {
        let mut granted = self
            .granted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for permission in permissions {
            granted.insert((user_id.to_owned(), permission.to_ascii_lowercase()));
        }
    }

    pub fn user(&self, id: &str) -> Option<DevUser> {
        self.users.iter().find(|u| u.id == id).cloned()
    }

    /// The dev app registration the Graph emulator serves.
    pub fn registration(&self) -> super::registration::Registration {
        super::registration::Registration {
            mcp_url: self.mcp_resources.first().cloned().unwrap_or_default(),
            identity_issuer: self.identity_issuer(),
        }
    }

    /// The MCP server's app (Entra v2 `aud` for `api://{app}/...` scopes).
    pub fn app_id(&self) -> &'static str {
        DEV_APP
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(n: u64) -> CodeGrant {
        CodeGrant {
            client_id: format!("client-{n}"),
            redirect_uri: "http://127.0.0.1/cb".into(),
            code_challenge: "challenge".into(),
            user: DevUser::new("Ada Lovelace", "ada@contoso.dev"),
            scope: "openid".into(),
            audience: DEV_APP.into(),
            expires: Instant::now() + CODE_LIFETIME,
        }
    }

    #[test]
    fn the_code_store_holds_at_most_max_codes_and_forgets_them_after_their_lifetime() {
        let codes = code_store();
        for n in 0..MAX_CODES * 3 {
            codes.insert(format!("code-{n}"), grant(n));
        }
        codes.run_pending_tasks();
        assert!(
            codes.entry_count() <= MAX_CODES,
            "{} codes kept",
            codes.entry_count()
        );
        assert_eq!(codes.policy().time_to_live(), Some(CODE_LIFETIME));
        assert_eq!(codes.policy().max_capacity(), Some(MAX_CODES));
    }
}

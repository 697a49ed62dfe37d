//! The claims of an access token this server reads, and the [`Caller`] they make.

use serde::Deserialize;

use crate::obo::{Caller, UserAssertion};

/// `scp` is a space-separated string (Entra); some issuers send an array.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum ScopeClaim {
    Text(String),
    List(Vec<String>),
}

impl ScopeClaim {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::Text(s) => s.split_whitespace().map(str::to_owned).collect(),
            Self::List(v) => v,
        }
    }
}

/// The claims read; everything else a token carries is ignored.
#[derive(Debug, Deserialize)]
pub(super) struct Claims {
    pub iss: String,
    pub exp: u64,
    pub sub: Option<String>,
    pub oid: Option<String>,
    pub tid: Option<String>,
    pub name: Option<String>,
    pub preferred_username: Option<String>,
    pub upn: Option<String>,
    pub unique_name: Option<String>,
    pub email: Option<String>,
    pub scp: Option<ScopeClaim>,
    pub scope: Option<ScopeClaim>,
    #[serde(default)]
    pub roles: Vec<String>,
    pub azp: Option<String>,
    pub appid: Option<String>,
    pub client_id: Option<String>,
    pub idtyp: Option<String>,
    /// Entra agent identity: the acting agent's parent application (recorded only).
    pub xms_par_app_azp: Option<String>,
    /// Entra agent identity: the actor facet(s), a string, number or list (recorded only).
    pub xms_act_fct: Option<serde_json::Value>,
    /// ID-token claims (OIDC Core §2): only their presence matters.
    pub nonce: Option<serde::de::IgnoredAny>,
    pub at_hash: Option<serde::de::IgnoredAny>,
    pub c_hash: Option<serde::de::IgnoredAny>,
}

/// What validation decided about a token, beside its claims.
pub(super) struct Decided {
    pub subject: String,
    pub scopes: Vec<String>,
    pub client_app: Option<String>,
    pub app_only: bool,
}

impl Claims {
    /// The scopes granted, from `scp` or else `scope`.
    pub fn take_scopes(&mut self) -> Vec<String> {
        self.scp
            .take()
            .or(self.scope.take())
            .map(ScopeClaim::into_vec)
            .unwrap_or_default()
    }

    /// The caller a validated token names; request-chosen agent values are [bounded].
    ///
    /// [bounded]: crate::telemetry::bounded
    pub fn into_caller(self, decided: Decided, assertion: UserAssertion) -> Caller {
        Caller {
            subject: decided.subject,
            tenant_id: self.tid,
            name: self.name,
            username: self
                .preferred_username
                .or(self.upn)
                .or(self.unique_name)
                .or(self.email),
            scopes: decided.scopes,
            roles: self.roles,
            client_app: decided.client_app,
            agent_app: self
                .xms_par_app_azp
                .map(|a| crate::telemetry::bounded(&a).into_owned()),
            agent_facet: self.xms_act_fct.map(|f| {
                let text = match f {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                crate::telemetry::bounded(&text).into_owned()
            }),
            app_only: decided.app_only,
            assertion: Some(assertion),
        }
    }
}

//! Step 3: the server's own credential. The client assertion is obtained the way `serve`
//! obtains it (the same [`AssertionSource`]) and its `iss`/`sub`/`aud` are shown, never the
//! assertion itself; step 4 looks for the federated credential that trusts that identity.

use serde::Deserialize;

use super::expect::Expected;
use super::{Check, Step};
use crate::auth::AuthMode;
use crate::obo::{AssertionKind, AssertionSource};
use crate::settings::Settings;

/// The federated identity a client assertion names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Identity {
    pub iss: String,
    pub sub: String,
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

/// What step 4 compares the federated credentials with.
pub enum Found {
    /// No assertion could be had (or none is configured).
    Nothing,
    /// A federated assertion (managed or workload identity) naming this identity.
    Federated(Identity),
    /// A certificate or secret: no federated credential is involved.
    NotFederated(&'static str),
}

/// Obtains the assertion as `serve` would and shows whom it names; any step that fails is
/// the step's one line.
pub async fn check(s: &Settings, expected: &Expected, token_endpoint: Option<&str>) -> Step<Found> {
    if s.auth.mode == AuthMode::None {
        return nothing(vec![]);
    }
    let Some(kind) = s.obo.client_assertion else {
        return nothing(vec![Check::warn(
            "credential.assertion",
            "no client assertion to obtain on this machine (see config.client_assertion)",
            "run doctor where the server runs to check its managed or workload identity",
        )]);
    };
    let client_id = s
        .obo
        .client_id
        .clone()
        .unwrap_or_else(|| expected.client_id.clone());
    let fix = fix_for(kind);
    let source = match AssertionSource::from_settings(&s.obo, kind, &client_id) {
        Ok(source) => source,
        Err(e) => {
            return nothing(vec![Check::fail(
                "credential.assertion",
                format!("cannot set up the {} credential: {e}", kind.as_str()),
                fix,
            )]);
        }
    };
    let audience_for = token_endpoint.unwrap_or(&expected.authority);
    let started = std::time::Instant::now();
    let auth = match source.client_auth(audience_for).await {
        Ok(auth) => auth,
        Err(e) => return nothing(vec![unavailable(&source, &e, fix).took(started.elapsed())]),
    };
    let took = started.elapsed();
    let assertion = match auth {
        crate::obo::ClientAuth::Secret(_) => return secret_configured(),
        crate::obo::ClientAuth::Assertion(jwt) => jwt,
    };
    let Ok(identity) = jsonwebtoken::dangerous::insecure_decode_claims::<Identity>(&assertion)
    else {
        return nothing(vec![
            Check::fail(
                "credential.assertion",
                format!(
                    "the {} gave an assertion that is not a JWT with iss, sub and aud",
                    source.name()
                ),
                fix,
            )
            .took(took),
        ]);
    };
    judge(identity, kind, &source, expected, took)
}

/// The step's lines when no identity came of it.
fn nothing(checks: Vec<Check>) -> Step<Found> {
    Step {
        checks,
        found: Found::Nothing,
    }
}

fn unavailable(source: &AssertionSource, e: &crate::obo::Error, fix: String) -> Check {
    // The error already says "cannot obtain the client assertion from <source>".
    let summary = match e {
        crate::obo::Error::AssertionUnavailable { .. } => e.to_string(),
        _ => format!(
            "cannot obtain the client assertion from the {}: {e}",
            source.name()
        ),
    };
    Check::fail("credential.assertion", summary, fix)
}

fn secret_configured() -> Step<Found> {
    Step {
        checks: vec![Check::pass(
            "credential.assertion",
            "a client secret is configured (not shown); a federated credential needs no secret to rotate",
        )],
        found: Found::NotFederated("client secret"),
    }
}

/// The identity an assertion names, shown; a federated one must be for the audience the
/// cloud's Entra accepts.
fn judge(
    identity: Identity,
    kind: AssertionKind,
    source: &AssertionSource,
    expected: &Expected,
    took: std::time::Duration,
) -> Step<Found> {
    let shown = format!(
        "{} assertion: iss {}, sub {}, aud {}",
        source.name(),
        identity.iss,
        identity.sub,
        identity.aud.join(" ")
    );
    if kind == AssertionKind::Certificate {
        return Step {
            checks: vec![Check::pass("credential.assertion", shown).took(took)],
            found: Found::NotFederated("certificate"),
        };
    }
    if let Some(cloud) = expected.cloud_exchange_audience
        && !identity.aud.iter().any(|a| a == cloud)
    {
        return Step {
            checks: vec![
                Check::fail(
                    "credential.assertion",
                    format!("{shown}, but Entra at {} accepts only {cloud} (AADSTS700211)", expected.authority),
                    format!("set obo.token_exchange_audience (TOKEN_EXCHANGE_AUDIENCE; Bicep parameter tokenExchangeAudience in infra/main.parameters.json) to {cloud}"),
                )
                .took(took),
            ],
            found: Found::Federated(identity),
        };
    }
    Step {
        checks: vec![Check::pass("credential.assertion", shown).took(took)],
        found: Found::Federated(identity),
    }
}

fn fix_for(kind: AssertionKind) -> String {
    match kind {
        AssertionKind::ManagedIdentity => "run doctor where the managed identity exists (e.g. `az containerapp exec -n <app> -g <group> --command \"mcp-obo doctor\"`); set obo.managed_identity_client_id (OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID) to the user-assigned identity's client id".into(),
        AssertionKind::WorkloadIdentity => "label the pod azure.workload.identity/use: \"true\" and annotate its service account with azure.workload.identity/client-id (the chart's serviceAccount settings), so AZURE_FEDERATED_TOKEN_FILE is projected".into(),
        AssertionKind::Certificate => "set obo.certificate_file (MCP_OBO__OBO__CERTIFICATE_FILE) to a PEM with the CERTIFICATE and its PKCS#8 PRIVATE KEY".into(),
        AssertionKind::ClientSecret => "set MCP_OBO__OBO__CLIENT_SECRET or obo.client_secret_file".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    #[tokio::test]
    async fn a_missing_token_file_fails_once_naming_the_file_and_the_fix() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("federated-token");
        let env: crate::config::Env = [
            ("MCP_OBO__AUTH__MODE", "entra"),
            (
                "MCP_OBO__ENTRA__TENANT_ID",
                "11111111-1111-4111-8111-111111111111",
            ),
            (
                "MCP_OBO__ENTRA__CLIENT_ID",
                "22222222-2222-4222-8222-222222222222",
            ),
            (
                "MCP_OBO__OBO__FEDERATED_TOKEN_FILE",
                missing.to_str().expect("utf-8"),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let loaded = crate::settings::load(None, &env).expect("valid configuration");
        let expected = Expected::from_settings(&loaded.settings);
        let step = check(&loaded.settings, &expected, None).await;
        assert!(matches!(step.found, Found::Nothing));
        let [only] = step.checks.as_slice() else {
            panic!("one line: {:?}", step.checks);
        };
        assert_eq!(only.status, Status::Fail);
        assert_eq!(
            only.summary,
            format!(
                "cannot obtain the client assertion from workload identity token file: {}: No such file or directory (os error 2)",
                missing.display()
            )
        );
        assert_eq!(
            only.fix.as_deref(),
            Some(fix_for(AssertionKind::WorkloadIdentity).as_str())
        );
    }
}

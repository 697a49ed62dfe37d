//! The identity side: a federated credential trusts the server's own identity, and the app
//! has a service principal in the tenant (without one no one can sign in).

use crate::doctor::Check;
use crate::doctor::credential::{Found as Credential, Identity};
use crate::doctor::expect::Expected;
use crate::doctor::graph_shapes::FederatedIdentityCredential;

/// A federated credential trusts the identity whose assertion step 3 obtained.
pub fn federated(
    fics: &[FederatedIdentityCredential],
    credential: &Credential,
    e: &Expected,
) -> Check {
    let id = "app.federated_credential";
    let identity: &Identity = match credential {
        Credential::Federated(identity) => identity,
        Credential::NotFederated(kind) => {
            return Check::pass(
                id,
                format!("not used: the server authenticates with a {kind}"),
            );
        }
        Credential::Nothing => {
            let listed: Vec<String> = fics
                .iter()
                .map(|f| format!("{} (sub {})", f.name, f.subject))
                .collect();
            return Check::warn(
                id,
                format!(
                    "no assertion on this machine to compare with; federated credentials: {}",
                    if listed.is_empty() {
                        "none".to_owned()
                    } else {
                        listed.join(", ")
                    }
                ),
                "run doctor where the server runs (its managed or workload identity) to check the match",
            );
        }
    };
    let matches = |f: &&FederatedIdentityCredential| {
        f.issuer == identity.iss
            && f.subject == identity.sub
            && f.audiences.iter().any(|a| identity.aud.contains(a))
    };
    if let Some(fic) = fics.iter().find(matches) {
        return Check::pass(
            id,
            format!(
                "{} trusts iss {}, sub {}",
                fic.name, fic.issuer, fic.subject
            ),
        );
    }
    let audience = identity.aud.first().map_or(
        e.cloud_exchange_audience
            .unwrap_or("api://AzureADTokenExchange"),
        String::as_str,
    );
    let near = fics
        .iter()
        .find(|f| f.issuer == identity.iss && f.subject == identity.sub)
        .map(|f| format!(" ({} has audiences {})", f.name, f.audiences.join(" ")))
        .unwrap_or_default();
    Check::fail(
        id,
        format!(
            "no federated credential trusts iss {}, sub {}, aud {}{near}: the exchange fails with AADSTS700211 / AADSTS70021",
            identity.iss, identity.sub, audience
        ),
        format!(
            "az ad app federated-credential create --id {} --parameters '{{\"name\":\"mcp-obo\",\"issuer\":\"{}\",\"subject\":\"{}\",\"audiences\":[\"{}\"]}}'",
            e.client_id, identity.iss, identity.sub, audience
        ),
    )
}

pub fn service_principal_missing(e: &Expected) -> Check {
    Check::fail(
        "app.service_principal",
        format!(
            "the application {} has no service principal in this tenant: no one can sign in to it (AADSTS650052 / AADSTS7000229)",
            e.client_id
        ),
        format!("az ad sp create --id {}", e.client_id),
    )
}

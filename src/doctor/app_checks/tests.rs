use super::*;
use crate::doctor::Status;
use crate::doctor::expect::Expected;
use crate::doctor::graph_shapes::{Application, PermissionGrant, PermissionScope};

fn expected() -> Expected {
    Expected {
        client_id: "app".into(),
        scope_prefix: "api://app".into(),
        scopes: vec!["user_impersonation".into()],
        mcp_url: "https://mcp.example/mcp".into(),
        ..Expected::default()
    }
}

fn app(uris: &[&str]) -> Application {
    Application {
        identifier_uris: uris.iter().map(|s| (*s).to_owned()).collect(),
        ..Application::default()
    }
}

#[test]
fn identifier_uris_pass_warn_and_fail() {
    let e = expected();
    assert_eq!(
        identifier_uris(&app(&["api://app", "https://mcp.example/mcp"]), &e).status,
        Status::Pass
    );
    assert_eq!(
        identifier_uris(&app(&["api://app"]), &e).status,
        Status::Warn
    );
    let slashed = identifier_uris(&app(&["api://app/"]), &e);
    assert_eq!(slashed.status, Status::Fail);
    assert_eq!(
        slashed.fix.as_deref(),
        Some("az ad app update --id app --identifier-uris api://app")
    );
    assert_eq!(identifier_uris(&app(&[]), &e).status, Status::Fail);
}

#[test]
fn a_v1_registration_fails_with_the_setting_to_change() {
    let check = token_version(&app(&[]), &expected());
    assert!(
        check
            .summary
            .starts_with("api.requestedAccessTokenVersion is null")
    );
    assert!(check.fix.as_deref().is_some_and(|f| {
        f.starts_with("az ad app update --id app --set api.requestedAccessTokenVersion=2")
    }));
}

#[test]
fn without_admin_consent_each_user_consents_at_the_consent_url() {
    let mut e = expected();
    e.consent_url = "https://mcp.example/.auth/login/aad".into();
    let grant = PermissionGrant {
        consent_type: "Principal".into(),
        resource_id: "graph".into(),
        scope: "User.Read Calendars.Read".into(),
        ..PermissionGrant::default()
    };
    let check = admin_consent(std::slice::from_ref(&grant), "graph", &e);
    assert_eq!(check.status, Status::Warn);
    assert!(
        check
            .summary
            .ends_with("at https://mcp.example/.auth/login/aad")
    );
    let all = PermissionGrant {
        consent_type: "AllPrincipals".into(),
        ..grant
    };
    assert_eq!(admin_consent(&[all], "graph", &e).status, Status::Pass);
}

#[test]
fn a_scope_written_with_its_resource_is_looked_up_by_name_only_under_this_app() {
    let mut e = expected();
    let mut app = app(&["api://app"]);
    app.api.oauth2_permission_scopes = vec![PermissionScope {
        id: "s1".into(),
        value: "Files.Read".into(),
        is_enabled: true,
    }];
    e.identifier_uris = vec!["api://app".into()];
    e.scopes = vec!["api://app/Files.Read".into()];
    let (check, ids) = scopes(&app, &e);
    assert_eq!(check.status, Status::Pass, "{check:?}");
    assert_eq!(ids, vec!["s1".to_owned()]);
    // Under another resource: not this registration's scope, so no wrong "add a scope" fix.
    e.scopes = vec!["api://other-app/Files.Write".into()];
    let (check, ids) = scopes(&app, &e);
    assert_eq!(check.status, Status::Pass, "{check:?}");
    assert!(ids.is_empty());
}

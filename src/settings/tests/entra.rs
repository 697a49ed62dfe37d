//! Entra's defaults, resolved once at load: the tenancy, the identifier URIs, the developer
//! tenant.

use super::*;
use crate::auth::{MultiTenant, Tenancy};

#[test]
fn entra_without_tenant_or_identifier_uris_is_organizations_and_api_client_id() {
    let loaded = load(
        None,
        &env(&[("AZURE_CLIENT_ID", "66666666-7777-8888-9999-000000000000")]),
    )
    .expect("local mode needs no tenant");
    let entra = &loaded.settings.entra;
    assert_eq!(
        entra.tenancy,
        Tenancy::Multi {
            endpoint: MultiTenant::Organizations,
            allowed: Vec::new()
        }
    );
    assert_eq!(
        entra.identifier_uris,
        ["api://66666666-7777-8888-9999-000000000000"]
    );
    assert_eq!(
        entra.v2_endpoint(),
        "https://login.microsoftonline.com/organizations/v2.0"
    );
    assert_eq!(
        entra.developer_tenant(),
        None,
        "developer tools keep their own tenant"
    );
}

#[test]
fn a_multi_tenant_entra_app_keeps_its_endpoint_its_allow_list_lowercase_and_its_uris() {
    let loaded = load(
        None,
        &env(&[
            ("MCP_OBO__AUTH__MODE", "entra"),
            ("AZURE_TENANT_ID", "common"),
            ("AZURE_CLIENT_ID", "66666666-7777-8888-9999-000000000000"),
            (
                "MCP_OBO__AUTH__ALLOWED_TENANTS",
                "AAAAAAAA-1111-2222-3333-444444444444,bbbbbbbb-1111-2222-3333-444444444444",
            ),
            (
                "MCP_OBO__AUTH__IDENTIFIER_URIS",
                "https://mcp.example.com/mcp,api://mcp-obo",
            ),
        ]),
    )
    .expect("valid");
    let entra = &loaded.settings.entra;
    assert_eq!(
        entra.tenancy,
        Tenancy::Multi {
            endpoint: MultiTenant::Common,
            allowed: vec![
                "aaaaaaaa-1111-2222-3333-444444444444".into(),
                "bbbbbbbb-1111-2222-3333-444444444444".into()
            ]
        }
    );
    assert_eq!(
        entra.identifier_uris,
        ["https://mcp.example.com/mcp", "api://mcp-obo"]
    );
    assert_eq!(entra.developer_tenant(), Some("common"));
}

#[test]
fn a_single_tenant_entra_app_names_its_tenant_everywhere() {
    let loaded = load(None, &entra_env(&[])).expect("valid");
    let entra = &loaded.settings.entra;
    let tenant = "11111111-2222-3333-4444-555555555555";
    assert_eq!(entra.tenancy, Tenancy::Single(tenant.into()));
    assert_eq!(
        entra.v2_endpoint(),
        format!("https://login.microsoftonline.com/{tenant}/v2.0")
    );
    assert_eq!(entra.developer_tenant(), Some(tenant));
}

//! Step 3: the server's own credential.

use super::*;

#[tokio::test]
async fn a_missing_workload_identity_token_file_fails_the_credential_with_the_pod_fix() {
    let world = World::start(Broken::Nothing, &mcp_url()).await;
    let missing = world.dir.path().join("no-such-token");
    let missing = missing.to_str().expect("utf-8");
    let env = world.env_with(&[("MCP_OBO__OBO__FEDERATED_TOKEN_FILE", missing)], &[]);
    let (failures, text) = failures_in(&world, &env, true).await;
    assert_eq!(
        failures,
        failure(
            &format!(
                "FAIL credential.assertion: cannot obtain the client assertion from workload identity token file: {missing}: No such file or directory (os error 2) (N ms)"
            ),
            "label the pod azure.workload.identity/use: \"true\" and annotate its service account with azure.workload.identity/client-id (the chart's serviceAccount settings), so AZURE_FEDERATED_TOKEN_FILE is projected",
        ),
        "{text}"
    );
    // Without an assertion the federated credentials are listed, not judged.
    assert_eq!(
        lines_with(&text, "WARN "),
        vec![format!(
            "WARN app.federated_credential: no assertion on this machine to compare with; federated credentials: aks-mcp-obo (sub {WI_SUBJECT}), container-app-mi (sub {MI_PRINCIPAL_ID})\n    fix: run doctor where the server runs (its managed or workload identity) to check the match"
        )],
        "{text}"
    );
}

/// The server's settings on Container Apps: its managed identity at `imds`, detected from
/// `IDENTITY_ENDPOINT`, presenting `identity_header`.
fn managed_identity_env(
    world: &World,
    imds: &FakeImds,
    identity_header: &str,
) -> Vec<(String, String)> {
    world.env_with(
        &[
            ("IDENTITY_ENDPOINT", &imds.endpoint),
            ("IDENTITY_HEADER", identity_header),
            ("OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID", MI_CLIENT_ID),
        ],
        &[
            "MCP_OBO__OBO__CLIENT_ASSERTION",
            "MCP_OBO__OBO__FEDERATED_TOKEN_FILE",
        ],
    )
}

const FIX_MANAGED_IDENTITY: &str = "run doctor where the managed identity exists (e.g. `az containerapp exec -n <app> -g <group> --command \"mcp-obo doctor\"`); set obo.managed_identity_client_id (OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID) to the user-assigned identity's client id";

#[tokio::test]
async fn a_failing_managed_identity_endpoint_fails_the_credential_with_its_fix() {
    let world = World::start(Broken::Nothing, &mcp_url()).await;
    let imds = FakeImds::start(EXCHANGE).await;
    let env = managed_identity_env(&world, &imds, "not-the-identity-header");
    let (failures, text) = failures_in(&world, &env, true).await;
    assert!(
        text.contains(
            "PASS config.client_assertion: obo.client_assertion = managed_identity (derived from IDENTITY_ENDPOINT)\n"
        ),
        "{text}"
    );
    let [only] = failures.as_slice() else {
        panic!("one failure expected:\n{text}");
    };
    let (line, fix) = only.split_once("\n    fix: ").expect("a fix");
    assert!(
        line.starts_with(
            "FAIL credential.assertion: cannot obtain the client assertion from managed identity: "
        ) && line.ends_with(" (N ms)"),
        "{text}"
    );
    assert_eq!(fix, FIX_MANAGED_IDENTITY, "{text}");
    assert!(imds.calls() >= 1, "the identity endpoint was not asked");
    assert!(imds.issued().is_empty());
}

#[tokio::test]
async fn a_managed_identity_assertion_is_shown_by_its_claims_and_never_printed() {
    let world = World::start(Broken::Nothing, &mcp_url()).await;
    let imds = FakeImds::start(EXCHANGE).await;
    let env = managed_identity_env(&world, &imds, IDENTITY_HEADER);
    let (failures, text, output) = report_in(&world, &env, true).await;
    assert!(failures.is_empty(), "{text}");
    assert!(lines_with(&text, "WARN ").is_empty(), "{text}");
    let masked = mask_latency(&text);
    let iss = mi_issuer();
    for line in [
        format!(
            "PASS credential.assertion: managed identity assertion: iss {iss}, sub {MI_PRINCIPAL_ID}, aud {EXCHANGE} (N ms)"
        ),
        format!(
            "PASS app.federated_credential: container-app-mi trusts iss {iss}, sub {MI_PRINCIPAL_ID}"
        ),
    ] {
        assert!(
            masked.lines().any(|l| l == line),
            "missing {line:?}:\n{text}"
        );
    }
    // The same in JSON; neither output holds the assertion the endpoint issued.
    let (json, doc) = world.doctor_json(&env).await;
    assert_eq!(json.status.code(), Some(0));
    let credential = doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["id"] == "credential.assertion")
        .expect("the credential line");
    assert_eq!(
        credential["summary"],
        format!("managed identity assertion: iss {iss}, sub {MI_PRINCIPAL_ID}, aud {EXCHANGE}")
    );
    let issued = imds.issued();
    assert_eq!(issued.len(), 2, "one assertion per run");
    let issued: Vec<&str> = issued.iter().map(String::as_str).collect();
    assert_no_credential(&output, &issued);
    assert_no_credential(&json, &issued);
}

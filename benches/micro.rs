//! Micro-benchmarks of the per-request work on the authenticated tool path.
//!
//! - `token_validation/*`: `TokenValidator::validate` with the issuer's keys preloaded
//!   (`JwksCache::install`, no network), for an RS256 (Entra's algorithm) and an ES256 token,
//!   in a current-thread runtime; plus its cheap parts on their own (header decode, the
//!   SHA-256 digest the OBO cache keys on).
//! - `jsonrpc/*`: parsing a `tools/call` body as `serde_json::Value` and as rmcp's
//!   `ClientJsonRpcMessage` (what the transport does first), and one whole in-process
//!   `tools/list` through the actix service that `mcp::mount` builds (rmcp-actix-web +
//!   rmcp dispatch + response serialisation, no TCP, no middleware; the `Caller` the
//!   authorization middleware would leave is put in the request).
//! - `limits/*`: the per-user limits on every tool call: the user key (SHA-256 of
//!   tenant and user id), a `tools/call` taken from the rate limiter's bucket, and the
//!   in-flight cap's middleware around a trivial handler against the same handler without it.
//! - The OBO cache lookup is `benches/obo_cache.rs` (`cargo bench --bench obo_cache`).
//!
//! `cargo bench --bench micro`.

use std::collections::HashSet;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::HttpServiceFactory;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpMessage, test};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::jwk::JwkSet;
use mcp_obo::auth::{IssuerPolicy, JwksCache, TokenValidator};
use mcp_obo::graph::GraphClient;
use mcp_obo::jose::SigningKey;
use mcp_obo::mcp::Registry;
use mcp_obo_testkit::tokens::now;
use serde_json::json;

const ISSUER: &str = "https://issuer.example.com/oidc";
const AUDIENCE: &str = "https://mcp.example.com/mcp";
const CALL: &[u8] =
    br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"HelloTool","arguments":{}}}"#;
const LIST: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;

fn validator(keys: &[&SigningKey]) -> TokenValidator {
    let set: JwkSet = serde_json::from_value(json!({
        "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>()
    }))
    .expect("jwk set");
    let jwks = JwksCache::new(
        url::Url::parse("http://127.0.0.1:9/oidc/.well-known/openid-configuration").expect("url"),
        reqwest::Client::new(),
        Duration::from_secs(30),
    );
    assert_eq!(jwks.install(&set), Some(keys.len()));
    TokenValidator {
        jwks: Arc::new(jwks),
        issuer: IssuerPolicy::Exact(ISSUER.into()),
        audiences: vec![AUDIENCE.into()],
        allowed_client_apps: HashSet::new(),
        leeway_secs: 60,
        max_token_bytes: 16 * 1024,
    }
}

fn user_token(key: &SigningKey) -> String {
    key.sign(
        "JWT",
        json!({}),
        &json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "bench-user-1",
            "name": "Bench User", "preferred_username": "bench@example.org",
            "exp": now() + 3600, "iat": now(), "scope": "openid mcp:tools",
        }),
    )
    .expect("sign")
}

fn token_validation(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let rsa = SigningKey::generate_rsa("rsa-1").expect("rsa key");
    let ec = SigningKey::generate_ec("ec-1").expect("ec key");
    let validator = validator(&[&rsa, &ec]);
    let rs256 = user_token(&rsa);
    let es256 = user_token(&ec);
    for token in [&rs256, &es256] {
        let caller = rt.block_on(validator.validate(token)).expect("valid token");
        assert_eq!(caller.subject, "bench-user-1");
    }
    let mut group = c.benchmark_group("token_validation");
    group.bench_function("validate_rs256", |b| {
        b.iter(|| black_box(rt.block_on(validator.validate(black_box(&rs256)))))
    });
    group.bench_function("validate_es256", |b| {
        b.iter(|| black_box(rt.block_on(validator.validate(black_box(&es256)))))
    });
    group.bench_function("decode_header", |b| {
        b.iter(|| black_box(jsonwebtoken::decode_header(black_box(&rs256))))
    });
    group.bench_function("sha256_of_token", |b| {
        b.iter(|| black_box(mcp_obo::jose::sha256(black_box(rs256.as_bytes()))))
    });
    group.finish();
}

fn jsonrpc_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("jsonrpc");
    group.bench_function("parse_tools_call_as_value", |b| {
        b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(black_box(CALL))))
    });
    group.bench_function("parse_tools_call_as_rmcp_message", |b| {
        b.iter(|| {
            black_box(serde_json::from_slice::<rmcp::model::ClientJsonRpcMessage>(
                black_box(CALL),
            ))
        })
    });
    group.finish();
}

/// The MCP service exactly as the server mounts it, at `/mcp`: rmcp's transport alone, and
/// the same with the stateless fast path in front as `server/mcp_scope.rs` mounts it (the
/// step-up layer reads and parses the body, the fast path answers). Needs a runtime.
fn mcp_scopes(
    settings: &mcp_obo::settings::Settings,
) -> (
    impl HttpServiceFactory + 'static,
    impl HttpServiceFactory + 'static,
) {
    let tokens = mcp_obo_testkit::StaticTokens::new("unused");
    let graph = GraphClient::new(&settings.graph, tokens).expect("graph client");
    let registry = Arc::new(
        Registry::default().with_all(mcp_obo::tools::all(&graph).expect("the tools build")),
    );
    let service = mcp_obo::mcp::mount(
        settings.server.sessions,
        settings.server.max_body_bytes,
        registry.clone(),
        mcp_obo::mcp::RmcpSessions::default(),
        rmcp_actix_web::transport::CancellationToken::new(),
    );
    let rmcp_only = service.clone().scope_with_path("/mcp");
    let metadata = Arc::new(mcp_obo::auth::ResourceMetadata::from_settings(
        &settings.auth,
        &settings.entra,
        &settings.server.public_url,
        &[],
        &[],
    ));
    let authorizer =
        mcp_obo::auth::Authorizer::new(&settings.auth, &settings.entra, metadata, None);
    let access = Rc::new(
        mcp_obo::mcp::ToolAccess::new(registry.clone(), authorizer, settings.server.max_body_bytes)
            .with_fast_path(true),
    );
    let direct = Rc::new(mcp_obo::mcp::Direct::new(registry));
    let fast = service
        .scope_with_path("/mcp")
        .wrap(from_fn(move |req, next| {
            mcp_obo::mcp::Direct::answer(Rc::clone(&direct), req, next)
        }))
        .wrap(from_fn(move |req, next| {
            mcp_obo::mcp::ToolAccess::check(Rc::clone(&access), req, next)
        }));
    (rmcp_only, fast)
}

fn jsonrpc_in_process(c: &mut Criterion) {
    let mut group = c.benchmark_group("jsonrpc");
    let loaded = mcp_obo::settings::load(None, &Vec::new()).expect("default settings");
    let settings = loaded.settings;
    let system = actix_web::rt::System::new();
    let (app, fast) = system.block_on(async {
        let (rmcp_only, fast) = mcp_scopes(&settings);
        (
            test::init_service(App::new().service(rmcp_only)).await,
            test::init_service(App::new().service(fast)).await,
        )
    });
    let list = || {
        let request = test::TestRequest::post()
            .uri("/mcp")
            .insert_header(("host", "127.0.0.1:7071"))
            .insert_header(("content-type", "application/json"))
            .insert_header(("accept", "application/json, text/event-stream"))
            .insert_header(("mcp-protocol-version", "2025-06-18"))
            .set_payload(LIST)
            .to_request();
        // What the authorization middleware leaves for the MCP handler (as `Arc<Caller>`
        // since 95087da; the plain `Caller` too, for older trees).
        let caller = mcp_obo::auth::Caller::local_developer();
        request.extensions_mut().insert(Arc::new(caller.clone()));
        request.extensions_mut().insert(caller);
        request
    };
    let body = system.block_on(async {
        let response = test::call_service(&app, list()).await;
        let status = response.status();
        let body = test::read_body(response).await;
        assert!(
            status.is_success(),
            "{status}: {}",
            String::from_utf8_lossy(&body)
        );
        body
    });
    assert!(
        String::from_utf8_lossy(&body).contains(r#""name":"HelloTool""#),
        "{}",
        String::from_utf8_lossy(&body)
    );
    group.bench_function("tools_list_in_process", |b| {
        b.iter(|| {
            system.block_on(async {
                let response = test::call_service(&app, list()).await;
                black_box(test::read_body(response).await)
            })
        })
    });
    let fast_body =
        system.block_on(async { test::read_body(test::call_service(&fast, list()).await).await });
    assert_eq!(fast_body, body, "the fast path answers as rmcp does");
    group.bench_function("tools_list_in_process_fast_path", |b| {
        b.iter(|| {
            system.block_on(async {
                let response = test::call_service(&fast, list()).await;
                black_box(test::read_body(response).await)
            })
        })
    });
    group.finish();
}

fn limits(c: &mut Criterion) {
    use mcp_obo::mcp::{InFlight, ToolCallRate, UserKey};
    let caller = mcp_obo::auth::Caller {
        tenant_id: Some("72f988bf-86f1-41af-91ab-2d7cd011db47".into()),
        subject: "9f3c1d2e-0000-4000-8000-00000000ada1".into(),
        ..mcp_obo::auth::Caller::local_developer()
    };
    let mut group = c.benchmark_group("limits");
    group.bench_function("user_key", |b| {
        b.iter(|| black_box(UserKey::of(black_box(&caller))))
    });
    // A bucket that never empties: the cost of an allowed call.
    let rate = ToolCallRate::new(mcp_obo::mcp::RateLimit {
        every: Duration::from_nanos(1),
        burst: std::num::NonZeroU32::MAX,
    });
    let key = UserKey::of(&caller);
    group.bench_function("rate_check", |b| {
        b.iter(|| black_box(rate.check(black_box(&key), std::num::NonZeroU32::MIN)))
    });
    let system = actix_web::rt::System::new();
    let (with, without) = system.block_on(async {
        let handler = || actix_web::web::to(|| async { "ok" });
        let in_flight = Rc::new(InFlight::new(32));
        let with = test::init_service(App::new().route("/", handler()).wrap(from_fn(
            move |req, next| InFlight::admit(Rc::clone(&in_flight), req, next),
        )))
        .await;
        let without = test::init_service(App::new().route("/", handler())).await;
        (with, without)
    });
    let request = || {
        let request = test::TestRequest::get().uri("/").to_request();
        request.extensions_mut().insert(Arc::new(caller.clone()));
        request
    };
    group.bench_function("in_flight_admit_in_process", |b| {
        b.iter(|| system.block_on(async { black_box(test::call_service(&with, request()).await) }))
    });
    group.bench_function("no_in_flight_admit_in_process", |b| {
        b.iter(|| {
            system.block_on(async { black_box(test::call_service(&without, request()).await) })
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    token_validation,
    jsonrpc_parse,
    jsonrpc_in_process,
    limits
);
criterion_main!(benches);

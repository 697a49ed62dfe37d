//! How the server reaches Microsoft Graph: over https verified against the platform's roots
//! (a CA they hold is trusted, here through `SSL_CERT_FILE`; an unknown one is refused before
//! any token is sent), and through the proxies the
//! environment names (`HTTP_PROXY`, `HTTPS_PROXY` with a CONNECT tunnel, credentials in the
//! proxy URL, `NO_PROXY`), each with the real binary and HelloTool.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::hello_tool::{TOKEN, error_text, graph_with_ada};
use crate::support::fake_graph::FakeGraph;
use crate::support::mcp_http::{post, request};
use crate::support::{FakeAzCli, ServerProcess, binary};
use serde_json::json;

/// A test CA (PEM) and a certificate for `localhost` it signed, with its key.
pub(crate) struct TestCa {
    pub ca_pem: String,
    pub leaf: rcgen::Certificate,
    pub leaf_key: rcgen::KeyPair,
}

impl TestCa {
    pub fn new() -> Self {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "mcp-obo test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA");
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let leaf = rcgen::CertificateParams::new(vec!["localhost".into()])
            .expect("leaf params")
            .signed_by(&leaf_key, &ca)
            .expect("leaf");
        Self {
            ca_pem: ca.pem(),
            leaf,
            leaf_key,
        }
    }
}

/// A TLS front for the fake Graph: `https://localhost:{port}` with a certificate from a test
/// CA, forwarding the decrypted bytes to the plain fake.
struct TlsGraph {
    url: String,
    ca_pem: String,
    handshakes: Arc<std::sync::atomic::AtomicUsize>,
}

impl TlsGraph {
    async fn start(plain: &FakeGraph) -> Self {
        let TestCa {
            ca_pem,
            leaf,
            leaf_key,
        } = TestCa::new();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let upstream = plain.url.trim_start_matches("http://").to_owned();
        let handshakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = handshakes.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, upstream, counted) =
                    (acceptor.clone(), upstream.clone(), counted.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    counted.fetch_add(1, Ordering::SeqCst);
                    if let Ok(mut plain) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                    }
                });
            }
        });
        Self {
            url: format!("https://localhost:{port}"),
            ca_pem,
            handshakes,
        }
    }
}

#[tokio::test]
async fn graph_over_https_is_verified_against_the_system_roots() {
    let graph = graph_with_ada().await;
    let tls = TlsGraph::start(&graph).await;
    let az = FakeAzCli::new(TOKEN, &format!("{}/User.Read", tls.url));
    let path = az.path_env();
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &tls.ca_pem).expect("write CA");
    let hello = |server: &ServerProcess| {
        let url = server.mcp_url();
        async move {
            let reply = post(
                &url,
                &request(1, "tools/call", json!({"name": "HelloTool"})),
                Some("2025-06-18"),
            )
            .await;
            reply.json.expect("json")["result"].clone()
        }
    };

    // The platform's roots (SSL_CERT_FILE names them here) include the test CA: Graph answers.
    let trusting = ServerProcess::start(
        binary(),
        &[
            ("PATH", path.as_str()),
            ("MCP_OBO__GRAPH__BASE_URL", tls.url.as_str()),
            ("SSL_CERT_FILE", ca_file.to_str().expect("utf-8 path")),
        ],
    )
    .await;
    let result = hello(&trusting).await;
    assert_eq!(result["isError"], false, "{result} / {}", trusting.stderr());
    assert_eq!(result["structuredContent"]["email"], "ada@contoso.com");
    assert_eq!(graph.seen_tokens(), vec![TOKEN.to_owned()]);
    assert_eq!(tls.handshakes.load(Ordering::SeqCst), 1);

    // The same server without the test CA: the handshake fails and no token is sent.
    let refusing = ServerProcess::start(
        binary(),
        &[
            ("PATH", path.as_str()),
            ("MCP_OBO__GRAPH__BASE_URL", tls.url.as_str()),
        ],
    )
    .await;
    let result = hello(&refusing).await;
    assert_eq!(result["isError"], true, "{result}");
    assert!(
        error_text(&result).contains("cannot reach Microsoft Graph"),
        "{result}"
    );
    assert_eq!(
        graph.seen_tokens().len(),
        1,
        "no token over an untrusted connection"
    );
    assert_eq!(tls.handshakes.load(Ordering::SeqCst), 1);
}

/// A forward proxy: `CONNECT host:port` is tunnelled to that address; a request in absolute
/// form (`GET http://host/path`) is passed on, as written, to `upstream`. Records the first
/// line and the `Proxy-Authorization` value of each connection's first request.
struct ForwardProxy {
    url: String,
    requests: Arc<std::sync::Mutex<Vec<ProxiedRequest>>>,
}

/// A request's first line and its `Proxy-Authorization` value.
type ProxiedRequest = (String, Option<String>);

impl ForwardProxy {
    async fn start(upstream: &str) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let (upstream, seen) = (upstream.clone(), seen.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        if matches!(client.read_buf(&mut head).await, Ok(0) | Err(_)) {
                            return;
                        }
                    }
                    let text = String::from_utf8_lossy(&head).into_owned();
                    let line = text.lines().next().unwrap_or_default().to_owned();
                    let authorization = text.lines().find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("proxy-authorization")
                            .then(|| value.trim().to_owned())
                    });
                    seen.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((line.clone(), authorization));
                    let mut parts = line.split(' ');
                    let (method, target) = (parts.next(), parts.next().unwrap_or_default());
                    let server = if method == Some("CONNECT") {
                        let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                            let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                            return;
                        };
                        if client
                            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                            .await
                            .is_err()
                        {
                            return;
                        }
                        server
                    } else {
                        let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                            return;
                        };
                        if server.write_all(&head).await.is_err() {
                            return;
                        }
                        server
                    };
                    let mut server = server;
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        Self { url, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.seen().into_iter().map(|(line, _)| line).collect()
    }

    fn authorizations(&self) -> Vec<Option<String>> {
        self.seen().into_iter().map(|(_, auth)| auth).collect()
    }

    fn seen(&self) -> Vec<ProxiedRequest> {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The proxy's URL with a user and password (`s3cret pass`, percent-encoded).
    fn url_with_credentials(&self) -> String {
        self.url
            .replacen("http://", "http://proxy-user:s3cret%20pass@", 1)
    }
}

/// HelloTool through a server process started with `env` and a fake Azure CLI for `graph_url`.
async fn hello_via_process(graph_url: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let az = FakeAzCli::new(
        TOKEN,
        &format!("{}/User.Read", graph_url.trim_end_matches('/')),
    );
    let path = az.path_env();
    let mut vars = vec![
        ("PATH", path.as_str()),
        ("MCP_OBO__GRAPH__BASE_URL", graph_url),
    ];
    vars.extend_from_slice(env);
    let server = ServerProcess::start(binary(), &vars).await;
    let reply = post(
        &server.mcp_url(),
        &request(1, "tools/call", json!({"name": "HelloTool"})),
        Some("2025-06-18"),
    )
    .await;
    let result = reply.json.expect("json")["result"].clone();
    assert_eq!(result["isError"], false, "{result} / {}", server.stderr());
    result
}

#[tokio::test]
async fn http_graph_calls_go_through_the_proxy_in_http_proxy() {
    let graph = graph_with_ada().await;
    let proxy = ForwardProxy::start(&graph.url).await;
    // Plain http is allowed for loopback only; nothing listens on this port, so only the
    // proxy (forwarding to the fake Graph) can answer.
    let unreachable = format!("http://localhost:{}", crate::support::free_port());
    let result = hello_via_process(&unreachable, &[("HTTP_PROXY", proxy.url.as_str())]).await;
    assert_eq!(result["structuredContent"]["email"], "ada@contoso.com");
    assert_eq!(
        proxy.requests(),
        vec![format!("GET {unreachable}/v1.0/me HTTP/1.1")]
    );
    assert_eq!(graph.seen_tokens(), vec![TOKEN.to_owned()]);
}

/// HelloTool against the https Graph `tls` (its CA trusted), through `HTTPS_PROXY=proxy`.
async fn hello_through_https_proxy(tls: &TlsGraph, proxy: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &tls.ca_pem).expect("write CA");
    hello_via_process(
        &tls.url,
        &[
            ("HTTPS_PROXY", proxy),
            ("SSL_CERT_FILE", ca_file.to_str().expect("utf-8 path")),
        ],
    )
    .await
}

#[tokio::test]
async fn https_graph_calls_are_tunnelled_through_the_proxy_in_https_proxy() {
    let graph = graph_with_ada().await;
    let tls = TlsGraph::start(&graph).await;
    let proxy = ForwardProxy::start(&graph.url).await;
    let result = hello_through_https_proxy(&tls, &proxy.url).await;
    assert_eq!(result["structuredContent"]["email"], "ada@contoso.com");
    let authority = tls.url.trim_start_matches("https://");
    assert_eq!(
        proxy.requests(),
        vec![format!("CONNECT {authority} HTTP/1.1")],
        "one tunnel, through which TLS to Graph itself"
    );
    assert_eq!(tls.handshakes.load(Ordering::SeqCst), 1);
}

/// `Basic` credentials for `proxy-user` / `s3cret pass`.
const PROXY_BASIC: &str = "Basic cHJveHktdXNlcjpzM2NyZXQgcGFzcw==";

#[tokio::test]
async fn proxy_credentials_in_the_proxy_url_go_to_the_proxy_with_each_tunnel_or_request() {
    let graph = graph_with_ada().await;
    // https: on the CONNECT, never inside the tunnel (Graph would see it).
    let tls = TlsGraph::start(&graph).await;
    let proxy = ForwardProxy::start(&graph.url).await;
    let result = hello_through_https_proxy(&tls, &proxy.url_with_credentials()).await;
    assert_eq!(result["structuredContent"]["email"], "ada@contoso.com");
    assert_eq!(proxy.authorizations(), vec![Some(PROXY_BASIC.to_owned())]);
    // Plain http: on the request in absolute form.
    let proxy = ForwardProxy::start(&graph.url).await;
    let unreachable = format!("http://localhost:{}", crate::support::free_port());
    let result = hello_via_process(
        &unreachable,
        &[("HTTP_PROXY", proxy.url_with_credentials().as_str())],
    )
    .await;
    assert_eq!(result["structuredContent"]["email"], "ada@contoso.com");
    assert_eq!(proxy.authorizations(), vec![Some(PROXY_BASIC.to_owned())]);
}

#[tokio::test]
async fn hosts_in_no_proxy_bypass_the_proxy() {
    let graph = graph_with_ada().await;
    let proxy = ForwardProxy::start(&graph.url).await;
    let result = hello_via_process(
        &graph.url,
        &[
            ("HTTP_PROXY", proxy.url.as_str()),
            ("NO_PROXY", "localhost,127.0.0.1"),
        ],
    )
    .await;
    assert_eq!(result["structuredContent"]["email"], "ada@contoso.com");
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
    assert_eq!(graph.seen_tokens(), vec![TOKEN.to_owned()]);
}

//! The connector under the pooled client: TCP to the destination or its proxy, a `CONNECT`
//! tunnel for https through a proxy, then TLS; and the connection it yields.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use http::uri::Scheme;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tower_service::Service;

/// Why a connection could not be made. Names no proxy URL (it may carry a password).
#[derive(Debug, thiserror::Error)]
pub(super) enum ConnectError {
    #[error("timed out")]
    TimedOut,
    #[error("{0}")]
    Tcp(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// hyper-util's `TunnelError` (not exported by name).
    #[error("the proxy's {0}")]
    Tunnel(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("only http:// proxies are supported, and the proxy for this host is {0}://")]
    ProxyScheme(String),
    #[error("the host is not a valid TLS server name")]
    ServerName,
    #[error("TLS: {0}")]
    Tls(#[source] std::io::Error),
}

/// TCP to the destination or its proxy, a `CONNECT` tunnel for https through a proxy, then
/// TLS for https; all within the connect timeout.
#[derive(Clone)]
pub(super) struct Connector {
    pub tcp: HttpConnector,
    pub tls: tokio_rustls::TlsConnector,
    pub proxies: Arc<Matcher>,
    pub timeout: Duration,
}

impl Service<Uri> for Connector {
    type Response = Stream;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let connector = self.clone();
        Box::pin(async move {
            tokio::time::timeout(connector.timeout, connector.connect(dst))
                .await
                .map_err(|_| ConnectError::TimedOut)?
        })
    }
}

impl Connector {
    async fn connect(mut self, dst: Uri) -> Result<Stream, ConnectError> {
        let https = dst.scheme() == Some(&Scheme::HTTPS);
        let proxy = self.proxies.intercept(&dst);
        if let Some(p) = &proxy
            && p.uri().scheme() != Some(&Scheme::HTTP)
        {
            return Err(ConnectError::ProxyScheme(
                p.uri().scheme_str().unwrap_or_default().to_owned(),
            ));
        }
        let (io, proxied) = match proxy {
            None => (tcp(&mut self.tcp, dst.clone()).await?, false),
            Some(p) if https => {
                let mut tunnel = Tunnel::new(p.uri().clone(), self.tcp.clone());
                if let Some(auth) = p.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                std::future::poll_fn(|cx| tunnel.poll_ready(cx))
                    .await
                    .map_err(|e| ConnectError::Tunnel(e.into()))?;
                let io = tunnel
                    .call(dst.clone())
                    .await
                    .map_err(|e| ConnectError::Tunnel(e.into()))?;
                (io, false)
            }
            Some(p) => (tcp(&mut self.tcp, p.uri().clone()).await?, true),
        };
        if !https {
            return Ok(Stream::Plain { io, proxied });
        }
        let host = dst.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|_| ConnectError::ServerName)?;
        let tls = self
            .tls
            .connect(name, io.into_inner())
            .await
            .map_err(ConnectError::Tls)?;
        Ok(Stream::Tls(Box::new(TokioIo::new(tls))))
    }
}

async fn tcp(connector: &mut HttpConnector, to: Uri) -> Result<TokioIo<TcpStream>, ConnectError> {
    std::future::poll_fn(|cx| connector.poll_ready(cx))
        .await
        .map_err(|e| ConnectError::Tcp(e.into()))?;
    connector
        .call(to)
        .await
        .map_err(|e| ConnectError::Tcp(e.into()))
}

/// A connection: plain (to the destination, or to a proxy that takes absolute-form requests)
/// or TLS.
pub(super) enum Stream {
    Plain {
        io: TokioIo<TcpStream>,
        proxied: bool,
    },
    /// Boxed: a TLS session is about a kilobyte, a plain stream a few words.
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Self::Plain { io, proxied } => io.connected().proxy(*proxied),
            Self::Tls(io) => io.inner().get_ref().0.connected(),
        }
    }
}

impl hyper::rt::Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain { io, .. } => Pin::new(io).poll_read(cx, buf),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl hyper::rt::Write for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain { io, .. } => Pin::new(io).poll_write(cx, buf),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain { io, .. } => Pin::new(io).poll_write_vectored(cx, bufs),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain { io, .. } => io.is_write_vectored(),
            Self::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain { io, .. } => Pin::new(io).poll_flush(cx),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain { io, .. } => Pin::new(io).poll_shutdown(cx),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }
}

//! `qsearch mcp --http`: the same tools over MCP's streamable HTTP transport (rmcp's
//! `StreamableHttpService`, served by hyper), for clients that connect to a URL rather than
//! start a process, and for several clients sharing one warm model and index. Each client gets
//! its own MCP session; every session calls the one [`Engine`].
//!
//! Anyone who can reach the port can search the index and read its files, so the server listens
//! on loopback unless the caller allows otherwise ([`check_bind`]), and every request passes the
//! [`Guard`] first: on loopback a loopback `Host` and, if any, a loopback `Origin` (no web page
//! gets in); off loopback the bearer token ([`super::token`]) and, if any, the server's own
//! `Origin`. [`Limits`] bound a request's body and how long a connection may sit idle.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::guard::{Guard, Refusal};
use super::token::Token;
use super::{Engine, Server};

/// The endpoint's path: `http://ADDR/mcp`.
pub const PATH: &str = "/mcp";

/// Where `--http` listens when no address is given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8765";

/// Why an address was not listened on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindRefused {
    #[error(
        "{0} is not a loopback address: anyone who can reach it could search the index and read the indexed files. \
         Listen on 127.0.0.1 (the default), or pass --allow-remote to expose the server on purpose"
    )]
    Remote(SocketAddr),
    #[error("{0:?} is not an address to listen on (examples: 127.0.0.1:8765, localhost:8765, [::1]:8765, 8765)")]
    Unreadable(String),
}

/// The addresses `spec` names: `HOST:PORT`, `[V6]:PORT`, or a bare port on 127.0.0.1. Each must
/// be loopback unless `allow_remote`.
pub fn resolve(spec: &str, allow_remote: bool) -> Result<Vec<SocketAddr>, BindRefused> {
    let spec = spec.trim();
    let addrs: Vec<SocketAddr> = match spec.parse::<u16>() {
        Ok(port) => vec![SocketAddr::from(([127, 0, 0, 1], port))],
        Err(_) => spec.to_socket_addrs().map_err(|_| BindRefused::Unreadable(spec.to_string()))?.collect(),
    };
    if addrs.is_empty() {
        return Err(BindRefused::Unreadable(spec.to_string()));
    }
    for addr in &addrs {
        check_bind(addr, allow_remote)?;
    }
    Ok(addrs)
}

/// Refuses an address other than loopback unless `allow_remote`.
pub fn check_bind(addr: &SocketAddr, allow_remote: bool) -> Result<(), BindRefused> {
    if addr.ip().is_loopback() || allow_remote { Ok(()) } else { Err(BindRefused::Remote(*addr)) }
}

/// Listens on the first of `addrs` that can be bound.
pub async fn bind(addrs: &[SocketAddr]) -> Result<TcpListener> {
    let mut last = None;
    for addr in addrs {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(anyhow::Error::new(e).context(format!("cannot listen on {addr}"))),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no address to listen on")))
}

/// What bounds a client's use of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest request body (413 beyond it): a JSON-RPC message, far below this.
    pub max_body: usize,
    /// A connection that sends no complete request head for this long (idle between requests,
    /// or trickling its headers) is closed. Not while a response streams.
    pub idle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_body: 4 << 20, idle: Duration::from_secs(60) }
    }
}

/// How a listener serves: the token every client must send (required off loopback; `None` on
/// loopback admits local clients without one), and the limits.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub token: Option<Token>,
    pub limits: Limits,
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

/// Serves MCP clients on `listener` until `stop` is cancelled. A listener off loopback needs
/// `options.token`: it is refused without one.
pub async fn serve(
    engine: Arc<Engine>,
    listener: TcpListener,
    options: Options,
    stop: CancellationToken,
) -> Result<()> {
    let local = listener.local_addr().context("the listening address")?;
    let loopback = local.ip().is_loopback();
    if !loopback && options.token.is_none() {
        anyhow::bail!("{local} is not a loopback address: clients there must send a token, and none was given");
    }
    let guard = Arc::new(Guard::new(loopback, options.token));
    let limits = options.limits;
    // The guard checks `Host` before rmcp sees a request (rmcp's own list knows only loopback).
    let config = StreamableHttpServerConfig::default()
        .with_cancellation_token(stop.child_token())
        .with_max_request_body_bytes(limits.max_body)
        .disable_allowed_hosts();
    let service = StreamableHttpService::new(
        move || Ok(Server::new(engine.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return Ok(()),
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: the server keeps listening.
                tracing::warn!("cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let guard = guard.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let handler = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let mut service = service.clone();
                let guard = guard.clone();
                async move {
                    if let Err(refusal) = guard.check(req.headers()) {
                        tracing::warn!("refused {} {} from {peer}: {refusal}", req.method(), req.uri().path());
                        return Ok(refused(&refusal));
                    }
                    if req.uri().path() != PATH {
                        return Ok(not_found());
                    }
                    if content_length(&req).is_some_and(|n| n > limits.max_body as u64) {
                        tracing::warn!("refused a request from {peer}: its body is over {} bytes", limits.max_body);
                        return Ok(too_large(limits.max_body));
                    }
                    tower_service::Service::call(&mut service, req).await
                }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.idle)
                .serve_connection(TokioIo::new(stream), handler);
            tokio::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = served {
                tracing::debug!("connection from {peer} ended: {e}");
            }
        });
    }
}

fn content_length(req: &hyper::Request<Incoming>) -> Option<u64> {
    req.headers().get(hyper::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

fn text_response(status: hyper::StatusCode, text: String) -> hyper::Response<Body> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(text)).boxed());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

fn refused(refusal: &Refusal) -> hyper::Response<Body> {
    let status = hyper::StatusCode::from_u16(refusal.status()).unwrap_or(hyper::StatusCode::FORBIDDEN);
    let mut response =
        text_response(status, format!("{}: {refusal}\n", status.canonical_reason().unwrap_or("Refused")));
    if status == hyper::StatusCode::UNAUTHORIZED {
        let challenge = match refusal {
            Refusal::WrongToken => r#"Bearer realm="qsearch", error="invalid_token""#,
            _ => r#"Bearer realm="qsearch""#,
        };
        response
            .headers_mut()
            .insert(hyper::header::WWW_AUTHENTICATE, hyper::header::HeaderValue::from_static(challenge));
    }
    response
}

fn too_large(max: usize) -> hyper::Response<Body> {
    text_response(
        hyper::StatusCode::PAYLOAD_TOO_LARGE,
        format!("Payload Too Large: a request body is at most {max} bytes\n"),
    )
}

fn not_found() -> hyper::Response<Body> {
    text_response(hyper::StatusCode::NOT_FOUND, format!("Not Found: the MCP endpoint is {PATH}\n"))
}

/// Listens on `spec` (checked by [`resolve`]) and returns the listener with its bound address
/// (the port the system chose, for port 0).
pub async fn listen(spec: &str, allow_remote: bool) -> Result<(TcpListener, SocketAddr)> {
    let addrs = resolve(spec, allow_remote)?;
    let listener = bind(&addrs).await?;
    let local = listener.local_addr().context("the listening address")?;
    Ok((listener, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_allowed_and_anything_else_only_when_asked() {
        assert_eq!(resolve("127.0.0.1:0", false).unwrap(), vec![SocketAddr::from(([127, 0, 0, 1], 0))]);
        assert_eq!(resolve("8765", false).unwrap(), vec![SocketAddr::from(([127, 0, 0, 1], 8765))]);
        assert!(resolve("[::1]:9", false).unwrap()[0].ip().is_loopback());
        for remote in ["0.0.0.0:8765", "[::]:8765", "192.168.1.20:80"] {
            let refused = resolve(remote, false).unwrap_err();
            assert!(matches!(refused, BindRefused::Remote(_)), "{remote}: {refused}");
            assert!(refused.to_string().contains("--allow-remote"), "{refused}");
            assert!(resolve(remote, true).is_ok(), "{remote} with --allow-remote");
        }
        assert!(matches!(resolve("not an address", false), Err(BindRefused::Unreadable(_))));
        assert!(matches!(resolve("127.0.0.1", false), Err(BindRefused::Unreadable(_))), "a port is needed");
    }
}

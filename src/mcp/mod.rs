//! `qsearch mcp`: the index as a Model Context Protocol server, so coding agents and desktop
//! assistants search the user's notes and code with the same index, the same hybrid ranking and a
//! warm model. [`engine`] does the work as plain blocking functions; [`tools`] is the protocol
//! face (the official Rust SDK, `rmcp`), served on stdio ([`serve_stdio`]) or streamable HTTP
//! ([`http`], behind [`guard`] and, off loopback, a [`token`]); [`access`] decides which files an
//! agent may read. The searching and the warm model are the query session's
//! ([`crate::session`]), as for the CLI and the TUI.

pub mod access;
pub mod engine;
pub mod guard;
pub mod http;
pub mod token;
pub mod tools;

use std::sync::Arc;

use anyhow::Result;
use rmcp::ServiceExt;

pub use engine::{Engine, Setup};
pub use tools::Server;

/// Starts opening the index and loading its model in the background, so the first calls find
/// them ready (searches answer by keyword until the model is).
pub fn warm_up(engine: &Arc<Engine>) {
    let engine = engine.clone();
    let spawned = std::thread::Builder::new().name("qsearch-mcp-warm".into()).spawn(move || engine.warm_up());
    if let Err(e) = spawned {
        tracing::warn!("cannot start the warm-up thread: {e}");
    }
}

/// Serves one client over any byte stream pair until it closes its end.
pub async fn serve<R, W>(engine: Arc<Engine>, read: R, write: W) -> Result<()>
where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
    W: tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let running = Server::new(engine).serve((read, write)).await?;
    running.waiting().await?;
    Ok(())
}

/// Serves one client on stdin and stdout until it closes stdin.
pub async fn serve_stdio(engine: Arc<Engine>) -> Result<()> {
    let (read, write) = rmcp::transport::stdio();
    serve(engine, read, write).await
}

//! `qsearch mcp`: serves the index to MCP clients (coding agents, desktop assistants) on stdio,
//! or with `--http` on a local URL. The server lives in the library (`qsearch::mcp`); this
//! decides, as the other commands do, which model an index gets, and runs it on a small async
//! runtime.
//!
//! A build without the `mcp` feature has the command too, from `no_mcp.rs`: it says what the
//! build lacks and how to get it.

#[cfg(not(feature = "mcp"))]
#[path = "no_mcp.rs"]
mod without;
#[cfg(not(feature = "mcp"))]
pub use without::{Args, run};

#[cfg(feature = "mcp")]
use std::process::ExitCode;
#[cfg(feature = "mcp")]
use std::sync::Arc;
#[cfg(feature = "mcp")]
use std::sync::atomic::{AtomicBool, Ordering};

#[cfg(feature = "mcp")]
use anyhow::Result;
#[cfg(feature = "mcp")]
use qsearch::config::Config;
#[cfg(feature = "mcp")]
use qsearch::mcp::token::Token;
#[cfg(feature = "mcp")]
use qsearch::mcp::{self, Engine, Setup, http};
#[cfg(feature = "mcp")]
use qsearch::session::Defaults;
#[cfg(feature = "mcp")]
use tokio_util::sync::CancellationToken;

#[cfg(feature = "mcp")]
#[derive(clap::Args)]
pub struct Args {
    /// Serve MCP's streamable HTTP transport at http://ADDR/mcp instead of stdio (default
    /// 127.0.0.1:8765; a bare port listens on 127.0.0.1; port 0 picks a free one)
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = http::DEFAULT_ADDR)]
    pub http: Option<String>,
    /// Listen on an address other than loopback: clients must then send the bearer token (made
    /// on first use, kept in `mcp-token` in the data directory, printed at start); whoever has it
    /// can search the index and read the indexed files
    #[arg(long, requires = "http")]
    pub allow_remote: bool,
    /// Require the bearer token on loopback too (always required off loopback)
    #[arg(long, requires = "http")]
    pub token: bool,
}

#[cfg(feature = "mcp")]
pub fn run(config: &Config, args: Args) -> Result<ExitCode> {
    let engine = Arc::new(Engine::new(Setup {
        index_dir: config.index_dir(),
        model: super::plan(config),
        defaults: Defaults { k: config.results, mode: config.mode, per_doc: config.per_doc },
        index_options: super::index_options(config),
    }));
    // The `rerank` argument of the search tool uses the configured reranker.
    match super::reranker(config) {
        Ok(Some(r)) => engine.session().set_reranker(r, std::time::Duration::from_millis(config.rerank_ms)),
        Ok(None) => {}
        Err(e) => eprintln!("qsearch mcp: no reranker: {e:#}"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let served = match args.http {
        None => {
            mcp::warm_up(&engine);
            runtime.block_on(mcp::serve_stdio(engine))
        }
        Some(spec) => runtime.block_on(async {
            let (listener, local) = http::listen(&spec, args.allow_remote).await?;
            let remote = !local.ip().is_loopback();
            let token = if remote || args.token {
                let (token, file, created) = Token::load_or_create(&qsearch::paths::data_dir())?;
                if remote {
                    eprintln!(
                        "qsearch mcp: warning: {local} may be reachable from other machines: whoever reaches it \
                         with the token can search the index and read the indexed files (the token is sent \
                         in clear: plain HTTP)"
                    );
                }
                let made = if created { "made now, " } else { "" };
                let url = format!("http://{}{}", client_host(local), http::PATH);
                eprintln!(
                    "qsearch mcp: clients must send the bearer token ({made}kept in {}); for Claude Code:\n  \
                     claude mcp add --transport http qsearch {url} --header \"Authorization: Bearer {}\"\n\
                     or in a client's JSON configuration: \"headers\": {{ \"Authorization\": \"Bearer {}\" }}",
                    file.display(),
                    token.as_str(),
                    token.as_str(),
                );
                Some(token)
            } else {
                None
            };
            mcp::warm_up(&engine);
            // The address is the readiness signal (a test or a script reads it for port 0).
            eprintln!("qsearch mcp: listening on http://{local}{} (Ctrl-C stops)", http::PATH);
            let options = http::Options { token, ..Default::default() };
            http::serve(engine, listener, options, stop_on_signal()).await
        }),
    };
    // A tool still running (a long `index`) must not keep the process alive once the client left.
    runtime.shutdown_background();
    served?;
    Ok(ExitCode::SUCCESS)
}

/// The host a client names to reach `local`: the machine's name when it listens on every
/// address (`0.0.0.0`, `[::]`), else the address.
#[cfg(feature = "mcp")]
fn client_host(local: std::net::SocketAddr) -> String {
    if !local.ip().is_unspecified() {
        return local.to_string();
    }
    let mut name = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let got = unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) };
    let end = name.iter().position(|&b| b == 0).unwrap_or(0);
    match std::str::from_utf8(&name[..end]) {
        Ok(host) if got == 0 && !host.is_empty() => format!("{host}:{}", local.port()),
        _ => format!("THIS-MACHINE:{}", local.port()),
    }
}

/// Cancelled by Ctrl-C or SIGTERM (the server then stops accepting and ends its sessions); a
/// second signal exits at once.
#[cfg(feature = "mcp")]
fn stop_on_signal() -> CancellationToken {
    let stop = CancellationToken::new();
    let token = stop.clone();
    let signalled = AtomicBool::new(false);
    let installed = ctrlc::set_handler(move || {
        if signalled.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        token.cancel();
    });
    if let Err(e) = installed {
        tracing::warn!("cannot handle Ctrl-C: {e}");
    }
    stop
}

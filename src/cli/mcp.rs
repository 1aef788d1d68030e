//! `qsearch mcp`: serves the index to MCP clients (coding agents, desktop assistants) on stdio,
//! or with `--http` on a local URL. The server lives in the library (`qsearch::mcp`); this
//! decides, as the other commands do, which model an index gets, and runs it on a small async
//! runtime.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use qsearch::config::Config;
use qsearch::mcp::{self, Engine, Setup, http};
use qsearch::session::Defaults;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct Args {
    /// Serve MCP's streamable HTTP transport at http://ADDR/mcp instead of stdio (default
    /// 127.0.0.1:8765; a bare port listens on 127.0.0.1; port 0 picks a free one)
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = http::DEFAULT_ADDR)]
    pub http: Option<String>,
    /// Listen on an address other than loopback: anyone who can reach it can search the index
    /// and read the indexed files
    #[arg(long, requires = "http")]
    pub allow_remote: bool,
}

pub fn run(config: &Config, args: Args) -> Result<ExitCode> {
    let engine = Arc::new(Engine::new(Setup {
        index_dir: config.index_dir(),
        model: super::plan(config),
        defaults: Defaults { k: config.results, mode: config.mode, per_doc: config.per_doc },
        index_options: super::index_options(config),
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let served = match args.http {
        None => {
            mcp::warm_up(&engine);
            runtime.block_on(mcp::serve_stdio(engine))
        }
        Some(spec) => runtime.block_on(async {
            let (listener, local) = http::listen(&spec, args.allow_remote).await?;
            mcp::warm_up(&engine);
            if !local.ip().is_loopback() {
                eprintln!(
                    "qsearch mcp: warning: {local} may be reachable from other machines, and there is no \
                     authentication: whoever reaches it can search the index and read the indexed files"
                );
            }
            // The address is the readiness signal (a test or a script reads it for port 0).
            eprintln!("qsearch mcp: listening on http://{local}{} (Ctrl-C stops)", http::PATH);
            http::serve(engine, listener, args.allow_remote, stop_on_signal()).await
        }),
    };
    // A tool still running (a long `index`) must not keep the process alive once the client left.
    runtime.shutdown_background();
    served?;
    Ok(ExitCode::SUCCESS)
}

/// Cancelled by Ctrl-C or SIGTERM (the server then stops accepting and ends its sessions); a
/// second signal exits at once.
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

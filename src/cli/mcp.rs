//! `qsearch mcp`: serves the index to MCP clients (coding agents, desktop assistants) on stdio.
//! The server lives in the library (`qsearch::mcp`); this decides, as the other commands do,
//! which model an index gets, and runs it on a small async runtime.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use qsearch::config::Config;
use qsearch::mcp::{self, Engine, ModelPlan, Setup};
use qsearch::models::choice;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(config: &Config, _args: Args) -> Result<ExitCode> {
    let plan: ModelPlan = {
        let config = config.clone();
        Arc::new(move |fp, purpose| {
            if let Some(fp) = fp {
                choice::check_named(config.model.as_deref(), fp)?;
            }
            let dims = fp.map(|f| f.dims).or(config.dims);
            Ok(super::settings(&config, super::choose_model(&config, fp), dims, purpose))
        })
    };
    let engine = Arc::new(Engine::new(Setup {
        index_dir: config.index_dir(),
        model: plan,
        k: config.results,
        mode: config.mode,
        per_doc: config.per_doc,
        index_options: super::index_options(config),
    }));
    mcp::warm_up(&engine);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let served = runtime.block_on(mcp::serve_stdio(engine));
    // A tool still running (a long `index`) must not keep the process alive once the client left.
    runtime.shutdown_background();
    served?;
    Ok(ExitCode::SUCCESS)
}

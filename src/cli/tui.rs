//! `qsearch` / `qsearch tui`: the interactive terminal UI. The UI lives in the library
//! (`qsearch::tui`); this decides, as the other commands do, which model an index gets, and
//! where log lines go while the terminal belongs to the UI.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Result, bail};
use qsearch::config::Config;
use qsearch::tui;

/// The TUI shows more results than `search` prints: the list scrolls.
const MIN_RESULTS: usize = 50;

pub fn run(config: &Config) -> Result<ExitCode> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        bail!("the interactive UI needs a terminal; in scripts use `qsearch search QUERY` (see --help)");
    }
    tui::run(tui::Options {
        index_dir: config.index_dir(),
        mode: config.mode,
        k: config.results.max(MIN_RESULTS),
        per_doc: config.per_doc,
        color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        model: super::plan(config),
        log: log_file(),
        reranker: reranker(config),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The configured reranker for Ctrl+R (loaded before the UI takes the terminal), with a budget
/// of at most 100 ms a list: it reranks while the user waits between keystrokes.
fn reranker(config: &Config) -> Option<tui::worker::Reranking> {
    let budget = std::time::Duration::from_millis(config.rerank_ms.min(100));
    match super::reranker(config) {
        Ok(r) => r.map(|r| (r, budget)),
        Err(e) => {
            eprintln!("note: Ctrl+R will not rerank: {e:#}");
            None
        }
    }
}

/// Log lines go to `tui.log` in the data directory (`QSEARCH_LOG` sets the filter), or nowhere.
fn log_file() -> tracing::Dispatch {
    let path = qsearch::paths::data_dir().join("tui.log");
    let file = std::fs::create_dir_all(qsearch::paths::data_dir())
        .and_then(|()| std::fs::OpenOptions::new().create(true).append(true).open(&path));
    match file {
        Ok(file) => {
            let filter =
                tracing_subscriber::EnvFilter::try_from_env("QSEARCH_LOG").unwrap_or_else(|_| "qsearch=info".into());
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(false)
                .with_writer(Mutex::new(file))
                .finish();
            tracing::Dispatch::new(subscriber)
        }
        Err(_) => tracing::Dispatch::none(),
    }
}

//! `qsearch watch [PATH...]`: reconcile, then keep the index fresh until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use qsearch::embed::InputKind;
use qsearch::config::Config;
use qsearch::indexer;
use qsearch::store::Store;
use qsearch::store::lock::WriterLock;
use qsearch::watch;

#[derive(clap::Args)]
pub struct Args {
    /// Folders to watch (added to the index); with none, every registered folder
    paths: Vec<PathBuf>,
    /// Poll instead of using native file-system events (network file systems)
    #[arg(long)]
    poll: bool,
    /// Milliseconds of quiet before a batch of changes is indexed
    #[arg(long, default_value_t = 200)]
    debounce_ms: u64,
    /// Keep normal CPU priority (by default the watcher runs at low priority)
    #[arg(long)]
    no_nice: bool,
}

pub fn run(config: &Config, args: Args) -> Result<ExitCode> {
    let dir = config.index_dir();
    let _lock = WriterLock::acquire(&dir, "watch")?;
    let mut store = Store::open_write(&dir)?;
    let roots = super::roots_or_registered(
        &store,
        &args.paths,
        "no folders to watch: run `qsearch watch PATH` or `qsearch index PATH` first",
    )?;
    if !args.no_nice {
        watch::lower_priority();
    }
    let existing = store.fingerprint()?;
    let choice = super::choose_model(config, existing.as_ref());
    let mut embedder = super::load_embedder(config, choice, config.dims, InputKind::Document, false)?;
    let opts = super::index_options(config, embedder.as_ref());
    let fp = indexer::fingerprint(embedder.as_ref(), opts.chunk);
    indexer::check_fingerprint(&mut store, &fp, false)?;

    let cancel = super::stop_on_signal();
    let wopts = watch::Options { force_poll: args.poll, debounce: Duration::from_millis(args.debounce_ms), ..Default::default() };
    eprintln!("watching {} folder(s) with {}; index {}", roots.len(), fp, dir.display());
    let mut first = true;
    watch::run(&mut store, embedder.as_mut(), &roots, &opts, &wopts, &cancel, &mut |report, state| {
        if first {
            eprintln!("events: {}", state.backend);
            first = false;
        }
        if report.indexed + report.removed > 0 || !report.failed.is_empty() || first {
            eprintln!(
                "[{}] indexed {}, removed {}, embedded {}, failed {}{}",
                state.last_batch.unwrap_or(0),
                report.indexed,
                report.removed,
                report.embedded,
                report.failed.len(),
                if report.pending > 0 { format!(", {} pending", report.pending) } else { String::new() }
            );
        }
        for (path, why) in &report.failed {
            eprintln!("  failed {path}: {why}");
        }
    })?;
    eprintln!("watcher stopped; the index is saved");
    Ok(ExitCode::SUCCESS)
}

//! `qsearch watch [PATH...]`: reconcile, then keep the index fresh until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use qsearch::config::Config;
use qsearch::indexer::Rebuild;
use qsearch::store::lock::Role;
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
    qsearch::indexer::canonical_roots(&args.paths)?;
    let mut writer = super::open_writer(config, Role::Watch, Rebuild::No, false)?;
    let roots = writer.roots_or_registered(
        &args.paths,
        "no folders to watch: run `qsearch watch PATH` or `qsearch index PATH` first",
    )?;
    if !args.no_nice {
        watch::lower_priority();
    }
    let fp = writer.fingerprint().clone();

    let cancel = super::stop_on_signal();
    let wopts = watch::Options {
        force_poll: args.poll,
        debounce: Duration::from_millis(args.debounce_ms),
        ..Default::default()
    };
    eprintln!("watching {} folder(s) with {}; index {}", roots.len(), fp, dir.display());
    let mut first = true;
    watch::run(&mut writer, &roots, &wopts, &cancel, &mut |report, state| {
        if first {
            eprintln!("events: {}", state.backend);
            first = false;
        }
        if report.indexed + report.removed + report.embedded as usize > 0
            || !report.failed.is_empty()
            || report.embed_error.is_some()
            || first
        {
            eprintln!(
                "[{}] indexed {}, removed {}, embedded {}, failed {}{}",
                super::local_time(state.last_batch.unwrap_or(0)),
                report.indexed,
                report.removed,
                report.embedded,
                report.failed.len(),
                if report.pending > 0 { format!(", {} pending", report.pending) } else { String::new() }
            );
        }
        for f in &report.failed {
            eprintln!("  failed {}: {}", f.path.display(), f.why);
        }
        if let Some(e) = &report.embed_error {
            eprintln!(
                "  the model stopped: {e}\n  its texts wait (keyword search finds them meanwhile) and are tried again soon"
            );
        }
    })?;
    eprintln!("watcher stopped; the index is saved");
    Ok(ExitCode::SUCCESS)
}

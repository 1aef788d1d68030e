//! `qsearch watch [PATH...]`: reconcile, then keep the index fresh until SIGINT or SIGTERM. On
//! Unix it also answers other processes' queries with its warm model (`qsearch::daemon`): its
//! writer embeds documents with the same model.

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
    let plan = super::plan(config);
    let model = qsearch::session::WarmModel::new(plan.clone(), None);
    let mut writer = super::open_writer_with(config, Role::Watch, Rebuild::No, |existing| match existing {
        // The index's own model at its own dimensions: loaded once, warm for queries too.
        Some(fp) if plan.dims.is_none_or(|d| d == fp.dims) && plan.check(fp).is_ok() => {
            let mut progress = super::Progress::new(false);
            model.load_now(fp, &mut |e| progress.on(e));
            drop(progress);
            if let qsearch::session::ModelState::Ready { notes, .. } = model.state() {
                notes.iter().for_each(|n| eprintln!("note: {n}"));
            }
            model.for_writer(Some(fp))
        }
        // Nothing embedded yet (or a model the writer refuses): as `index` loads it; the daemon
        // loads its own copy for the first query.
        _ => super::load_embedder(&plan.for_writer(existing), false),
    })?;
    // Before the priority is lowered: a query does not wait behind other programs' work.
    let daemon_handle = daemon(&dir, model);
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
    drop(daemon_handle);
    eprintln!("watcher stopped; the index is saved");
    Ok(ExitCode::SUCCESS)
}

/// The daemon beside the watcher, answering queries with `model`; None (said) when it cannot be.
#[cfg(unix)]
fn daemon(dir: &std::path::Path, model: qsearch::session::WarmModel) -> Option<qsearch::daemon::server::Handle> {
    use qsearch::daemon::server::{self, Served};
    let started = server::bind(dir).and_then(|server| {
        let socket = server.socket().to_path_buf();
        let handle = server.spawn(std::sync::Arc::new(Served::new(dir, "watch", model)?))?;
        Ok((socket, handle))
    });
    match started {
        Ok((socket, handle)) => {
            eprintln!("answering queries at {}", socket.display());
            Some(handle)
        }
        Err(e) => {
            eprintln!("note: searches load the model themselves: {e:#}");
            None
        }
    }
}

#[cfg(not(unix))]
fn daemon(_dir: &std::path::Path, _model: qsearch::session::WarmModel) -> Option<()> {
    None
}

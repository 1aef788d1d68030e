//! `qsearch index PATH...`: register folders and bring the index up to date, with progress.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use qsearch::config::Config;
use qsearch::indexer::{self, Progress, Rebuild, Report};
use qsearch::store::Store;
use qsearch::store::lock::Role;

#[derive(clap::Args)]
pub struct Args {
    /// Folders to index; with none, the folders already registered are refreshed
    paths: Vec<PathBuf>,
    /// Start afresh: read every file and embed every chunk again, with the index's model unless
    /// --model names another (needed after a model or chunking change)
    #[arg(long)]
    rebuild: bool,
    /// No progress and no summary (errors still go to stderr)
    #[arg(short, long)]
    quiet: bool,
    /// Also index hidden files and folders
    #[arg(long)]
    hidden: bool,
    /// Skip files larger than this many MB
    #[arg(long)]
    max_file_mb: Option<u64>,
    /// Chunk size in tokens
    #[arg(long)]
    chunk_tokens: Option<usize>,
    /// Tokens shared by neighbouring chunks
    #[arg(long)]
    chunk_overlap: Option<usize>,
    /// Matryoshka dimensions (Qwen3: 32..1024)
    #[arg(long)]
    dims: Option<usize>,
    /// Print the summary as JSON on stdout
    #[arg(long)]
    json: bool,
    /// Only estimate the work (chunks, tokens, time on this machine, disk) and change nothing
    #[arg(long)]
    estimate: bool,
    /// Check the index and mend what can be mended without the model (a damaged database is
    /// salvaged, orphaned rows dropped, the keyword index and the vector file written again),
    /// then bring it up to date (files whose rows were lost are read again)
    #[arg(long, conflicts_with_all = ["rebuild", "estimate"])]
    repair: bool,
}

pub fn run(config: &Config, args: Args) -> Result<ExitCode> {
    let mut config = config.clone();
    config.chunk_tokens = args.chunk_tokens.unwrap_or(config.chunk_tokens);
    config.chunk_overlap = args.chunk_overlap.unwrap_or(config.chunk_overlap);
    config.hidden |= args.hidden;
    config.max_file_mb = args.max_file_mb.unwrap_or(config.max_file_mb);
    config.dims = args.dims.or(config.dims);
    let config = &config;
    if args.estimate {
        return estimate(config, &args);
    }
    let dir = config.index_dir();
    // Named folders are checked before the model loads.
    indexer::canonical_roots(&args.paths)?;
    if args.repair {
        let repair = indexer::repair(&dir)?;
        if !args.quiet {
            eprintln!("{repair}");
        }
    }
    let mut writer =
        super::open_writer(config, Role::Index, if args.rebuild { Rebuild::Always } else { Rebuild::No }, args.quiet)?;
    let roots = writer.roots_or_registered(&args.paths, "no folders to index: run `qsearch index PATH`")?;
    let fp = writer.fingerprint().clone();

    let cancel = super::stop_on_signal();
    let show = !args.quiet && std::io::stderr().is_terminal();
    let bar = ProgressBar::with_draw_target(
        None,
        if show { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    // One short text through the model: where ONNX Runtime placed its nodes (none for a model on
    // a server), before the run, so that a model off its device is seen at once.
    let placement = match writer.placement() {
        Ok(Some(p)) => format!(": {p}"),
        Ok(None) => String::new(),
        Err(e) => format!(" (placement unknown: {e:#})"),
    };
    if !args.quiet {
        eprintln!("index: {}\n{} on {}{placement}", dir.display(), fp, writer.embedder().device());
    }
    let quiet = args.quiet;
    let mut embedding = false;
    let mut on = |p: Progress| match p {
        Progress::Scanned { root, files } => {
            bar.set_style(ProgressStyle::with_template("{spinner} reading {pos}/{len} files {wide_msg}").unwrap());
            bar.set_length(files as u64);
            bar.set_position(0);
            bar.set_message(root.display().to_string());
        }
        Progress::File { done, .. } => bar.set_position(done as u64),
        Progress::Estimate { chunks, tokens_per_sec, eta } => {
            if !quiet {
                bar.suspend(|| {
                    eprintln!(
                        "every file is read; {chunks} chunks left to embed: about {} at {:.0} tokens/s (recent batches)",
                        human_duration(eta),
                        tokens_per_sec
                    )
                });
            }
        }
        Progress::Embedded { done, tokens_per_sec, eta, syncing, .. } => {
            let left = eta.map(|e| format!(", about {} left", human_duration(e))).unwrap_or_default();
            if syncing {
                bar.set_message(format!("(embedded {done} chunks meanwhile, {tokens_per_sec:.0} tokens/s)"));
            } else {
                if !embedding {
                    embedding = true;
                    bar.set_style(ProgressStyle::with_template("{spinner} embedding: {wide_msg}").unwrap());
                }
                bar.set_message(format!("{done} chunks, {tokens_per_sec:.0} tokens/s{left}"));
            }
        }
    };
    let report = writer.update(&roots, &mut on, &cancel)?;
    writer.save()?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if !args.quiet {
        print_summary(&report);
    }
    if let Some(e) = &report.embed_error {
        eprintln!(
            "qsearch: the model stopped: {e}\n{} chunks wait for their vectors (keyword search finds them meanwhile): \
             run `qsearch index` again to embed them",
            report.pending
        );
    }
    Ok(if report.interrupted {
        ExitCode::from(130)
    } else if report.embed_error.is_some() {
        ExitCode::from(2)
    } else if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn estimate(config: &Config, args: &Args) -> Result<ExitCode> {
    let roots = indexer::canonical_roots(&args.paths)?;
    if roots.is_empty() {
        anyhow::bail!("name the folders to estimate: `qsearch index --estimate PATH...`");
    }
    let existing = Store::open_read(&config.index_dir()).ok().and_then(|s| s.fingerprint().ok().flatten());
    let mut embedder = super::load_embedder(&super::plan(config).for_writer(existing.as_ref()), args.quiet)?;
    let mut opts = super::index_options(config);
    opts.chunk = indexer::effective_chunking(opts.chunk, embedder.as_ref());
    let est = indexer::estimate(embedder.as_mut(), &roots, &opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&est)?);
    } else {
        println!(
            "{} files ({} skipped), {} chunks, {} tokens for {}\n\
             embedding: about {} at {:.0} tokens/s (measured on {} sample chunks here)\n\
             disk: about {:.0} MB; nothing was written",
            est.files,
            est.skipped,
            est.chunks,
            est.tokens,
            embedder.model_id(),
            human_duration(Duration::from_secs_f64(est.embed_secs)),
            est.tokens_per_sec,
            est.sample_chunks,
            est.disk_bytes as f64 / 1e6
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(r: &Report) {
    eprintln!(
        "indexed {} files, {} unchanged, {} removed, {} skipped, {} failed; {} chunks written, {} embedded ({} tokens{})",
        r.indexed,
        r.unchanged,
        r.removed,
        r.skipped.len(),
        r.failed.len(),
        r.chunks_written,
        r.embedded,
        r.tokens,
        if r.embed_secs > 0.0 { format!(", {:.0} tokens/s", r.tokens as f64 / r.embed_secs) } else { String::new() },
    );
    for s in &r.skipped {
        eprintln!("  skipped {}: {}", s.path.display(), s.why);
    }
    for f in &r.failed {
        eprintln!("  failed  {}: {}", f.path.display(), f.why);
    }
    for path in &r.lossy {
        eprintln!("  note    {path}: invalid bytes replaced with U+FFFD");
    }
    for p in &r.partial {
        eprintln!("  note    {}: {}", p.path.display(), p.why);
    }
    if r.truncated > 0 {
        let what = match r.truncated {
            1 => "1 chunk was longer than the model reads: its end is found by keyword only".to_string(),
            n => format!("{n} chunks were longer than the model reads: their ends are found by keyword only"),
        };
        eprintln!("  note    {what}");
    }
    if r.unsupported > 0 {
        eprintln!("  ({} files of types qsearch does not read were ignored)", r.unsupported);
    }
    if r.interrupted {
        eprintln!(
            "interrupted: what was done is saved; run the same command again to finish ({} chunks pending)",
            r.pending
        );
    }
}

pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

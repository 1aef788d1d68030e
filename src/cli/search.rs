//! `qsearch search QUERY`: one query, printed for people or as JSON.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::builder::TypedValueParser;
use qsearch::config::Config;
use qsearch::embed::InputKind;
use qsearch::models::choice;
use qsearch::search::{Filter, Hit, KeywordOnly, Mode, Query, Results, Searcher};

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
    /// Print JSON (schema in README)
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct JsonOut<'a> {
    query: &'a str,
    mode: Mode,
    /// True when some chunks have no vector yet (semantic results cover the rest).
    partial: bool,
    pending: u64,
    notes: Vec<String>,
    hits: Vec<JsonHit<'a>>,
}

#[derive(serde::Serialize)]
struct JsonHit<'a> {
    rank: usize,
    #[serde(flatten)]
    hit: &'a Hit,
}

pub fn run(config: &Config, args: Args) -> Result<ExitCode> {
    let text = args.query.join(" ");
    let mut searcher = Searcher::open(&config.index_dir())?;
    let mode = args.mode.unwrap_or(config.mode);
    let filter = Filter::from_parts(
        args.path.as_deref(),
        &args.types,
        &args.tags,
        args.since.as_deref(),
        args.until.as_deref(),
        chrono::Local::now(),
    )?;
    let q = Query {
        text: text.clone(),
        k: args.k.unwrap_or(config.results),
        mode,
        filter,
        per_doc: args.per_doc.unwrap_or(config.per_doc),
    };
    let mut keyword_only = None;
    let mut vector = None;
    if mode.needs_vectors() {
        match searcher.fingerprint()? {
            Some(fp) => {
                choice::check_named(config.model.as_deref(), &fp)?;
                let choice = super::choose_model(config, Some(&fp));
                // Without the model, words still find things: say why and answer by keyword.
                match super::load_embedder(config, choice, Some(fp.dims), InputKind::Query, args.json) {
                    Ok(mut embedder) => {
                        vector = Some(embedder.embed(&[&text], InputKind::Query)?.vectors.remove(0));
                        searcher.load_vectors()?;
                    }
                    Err(e) => keyword_only = Some(KeywordOnly::ModelUnavailable(format!("{e:#}"))),
                }
            }
            None => keyword_only = Some(KeywordOnly::NoModel),
        }
    }
    let results = searcher.search(&q, vector.as_deref())?;
    let mut notes: Vec<String> =
        keyword_only.or(results.semantic_note.clone()).iter().map(ToString::to_string).collect();
    if results.pending > 0 && mode.needs_vectors() {
        notes.push(format!("{} chunks are not embedded yet: semantic results are partial", results.pending));
    }
    notes.extend(results.filter_note());
    if args.json {
        let out = JsonOut {
            query: &text,
            mode,
            partial: results.pending > 0,
            pending: results.pending,
            notes,
            hits: results.hits.iter().enumerate().map(|(i, hit)| JsonHit { rank: i + 1, hit }).collect(),
        };
        writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(&out)?)?;
    } else {
        print_human(&results, &notes)?;
    }
    Ok(if results.hits.is_empty() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn print_human(results: &Results, notes: &[String]) -> std::io::Result<()> {
    let color = super::color_enabled();
    let mut out = std::io::stdout().lock();
    for note in notes {
        eprintln!("note: {note}");
    }
    if results.hits.is_empty() {
        eprintln!("no results");
    }
    for (i, hit) in results.hits.iter().enumerate() {
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
        for line in marked(&hit.snippet, &hit.marks, color).lines().filter(|l| !l.trim().is_empty()).take(4) {
            writeln!(out, "    {}", line.trim_end())?;
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

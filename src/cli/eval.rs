//! `qsearch eval --beir DIR`: index a BEIR data set with the normal pipeline and report
//! nDCG@10, recall@10, recall@100 and MRR@10 for keyword, semantic and hybrid search.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result};
use qsearch::config::Config;
use qsearch::embed::InputKind;
use qsearch::eval;
use qsearch::indexer;
use qsearch::indexer::Writer;
use qsearch::search::Mode::Hybrid;
use qsearch::search::{Hit, Mode, Query, Searcher};
use qsearch::store::lock::Role;

#[derive(clap::Args)]
pub struct Args {
    /// BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv
    #[arg(long)]
    beir: PathBuf,
    /// Which qrels file (default: test, or the only one)
    #[arg(long)]
    split: Option<String>,
    /// Use only the first N queries
    #[arg(long)]
    max_queries: Option<usize>,
    /// Working folder for the corpus files and index (kept, so a rerun re-embeds nothing)
    #[arg(long)]
    work: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    json: bool,
    /// Extension of the files written for untitled documents: `py` for a corpus of Python
    /// functions (chunked as code), `txt` for plain text
    #[arg(long, default_value = "txt")]
    ext: String,
    /// Also write each query's keyword and semantic results (document, score, whether the
    /// keyword hit has every query word, the share of the query's words it holds) as JSON
    /// lines, for studying the fusion
    #[arg(long)]
    lists: Option<PathBuf>,
    /// Also rerank hybrid's hits, reported as a fourth mode: with this reranker (as `search
    /// --reranker` names one: qwen3-reranker, a folder, openai:NAME), or with `oracle`, which
    /// scores each hit by the data set's own judgements (it proves the reranked order is used,
    /// not any model's quality)
    #[arg(long, value_name = "NAME|FOLDER|openai:NAME|oracle")]
    rerank: Option<String>,
    /// Where a served reranker's server is, up to its /v1
    #[arg(long, value_name = "URL")]
    reranker_endpoint: Option<String>,
}

/// Scores each hit by the judgement of its document (0 when unjudged): a reranker that knows
/// the answers, for `eval --rerank oracle`.
struct Oracle {
    judged: std::collections::HashMap<String, f32>,
}

impl qsearch::rerank::Reranker for Oracle {
    fn id(&self) -> String {
        "oracle".into()
    }
    fn score(&mut self, _query: &str, documents: &[&str]) -> Result<Vec<f32>> {
        Ok(documents.iter().map(|d| self.judged.get(*d).copied().unwrap_or(0.0)).collect())
    }
}

const MODES: [Mode; 3] = [Mode::Keyword, Mode::Semantic, Hybrid];

/// One mode's ranked documents as JSON: [doc, score, every query word, coverage (the share of
/// the query's words, by rarity; keyword hits only)].
fn list_json(searcher: &Searcher, text: &str, ranked: &[(String, &Hit)]) -> Result<serde_json::Value> {
    let found: std::collections::HashMap<i64, (bool, f32)> =
        searcher.keyword(text, 400, None)?.into_iter().map(|h| (h.chunk_id, (h.every_word, h.coverage))).collect();
    Ok(ranked
        .iter()
        .map(|(d, h)| {
            let (every, coverage) = found.get(&h.chunk_id).copied().unwrap_or((false, 0.0));
            serde_json::json!([d, h.score, every, coverage])
        })
        .collect())
}

pub fn run(config: &Config, args: Args) -> Result<ExitCode> {
    let data = eval::load(&args.beir, args.split.as_deref())?;
    let name = args.beir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or("beir".into());
    // A folder name: a server's model names hold `:` and `/` (`openai:BAAI/bge-small-en-v1.5`).
    let model_tag = config.model.as_deref().unwrap_or("default").replace(['/', ':', '\\'], "-");
    let work = args
        .work
        .clone()
        .unwrap_or_else(|| qsearch::paths::data_dir().join("eval").join(format!("{name}-{model_tag}-{}", args.ext)));
    let corpus_dir = work.join("corpus");
    let index_dir = work.join("index");
    eprintln!(
        "{}: {} documents, {} queries (split {}); working in {}",
        name,
        data.corpus.len(),
        data.queries.len(),
        data.split,
        work.display()
    );
    let names = eval::write_corpus(&data.corpus, &corpus_dir, &args.ext)?;

    let t0 = Instant::now();
    let mut embedder = {
        // Another model or chunking than last time starts the set afresh; the same one re-embeds nothing.
        let settings = indexer::Settings {
            role: Role::Eval,
            rebuild: indexer::Rebuild::IfOther,
            options: super::index_options(config),
        };
        let mut writer =
            Writer::open(&index_dir, settings, |_| super::load_embedder(&super::plan(config).for_writer(None), false))?;
        let roots = indexer::canonical_roots(std::slice::from_ref(&corpus_dir))?;
        let report = writer.update(&roots, &mut |_| {}, &AtomicBool::new(false))?;
        if let Some(e) = &report.embed_error {
            anyhow::bail!("the model stopped: {e}");
        }
        writer.save()?;
        eprintln!(
            "indexed in {:.0}s: {} files, {} chunks embedded, {} tokens ({} cut at the model's limit)",
            t0.elapsed().as_secs_f64(),
            report.indexed + report.unchanged,
            report.embedded,
            report.tokens,
            report.truncated
        );
        writer.into_embedder()
    };
    let mut queries = data.queries.clone();
    if let Some(n) = args.max_queries {
        queries.truncate(n);
    }
    let texts: Vec<&str> = queries.iter().map(|q| q.text.as_str()).collect();
    let vectors = embedder.embed(&texts, InputKind::Query)?.vectors;
    let mut searcher = Searcher::open(&index_dir)?;
    searcher.load_vectors()?;
    let mut lists = match &args.lists {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => None,
    };
    let mut served = match args.rerank.as_deref() {
        None | Some("oracle") => None,
        Some(name) => {
            let mut config = config.clone();
            config.reranker = Some(name.to_string());
            config.reranker_endpoint = args.reranker_endpoint.clone().or(config.reranker_endpoint);
            super::reranker(&config)?
        }
    };
    let budget = std::time::Duration::from_millis(config.rerank_ms);
    let mut cost = qsearch::rerank::Cost::default();
    let (mut reranked, mut rerank_secs, mut rerank_counts) = (Vec::new(), 0.0f64, 0usize);
    let mut scores: Vec<Vec<(f64, f64, f64, f64)>> = vec![Vec::new(); MODES.len()];
    let mut secs = [0.0f64; MODES.len()];
    for (q, v) in queries.iter().zip(&vectors) {
        let relevant = data.qrels.get(&q.id).context("query without judgements")?;
        let mut dumped = Vec::new();
        for (i, &mode) in MODES.iter().enumerate() {
            let query = Query { text: q.text.clone(), k: 100, mode, filter: Default::default(), per_doc: 1 };
            let t = Instant::now();
            let results = searcher.search(&query, Some(v))?;
            secs[i] += t.elapsed().as_secs_f64();
            let ranked: Vec<(String, &Hit)> =
                results.hits.iter().filter_map(|h| eval::doc_of(&h.path, &names).map(|d| (d, h))).collect();
            let ranking: Vec<String> = ranked.iter().map(|(d, _)| d.clone()).collect();
            scores[i].push(eval::score(&ranking, relevant));
            if lists.is_some() && mode != Mode::Hybrid {
                dumped.push(list_json(&searcher, &q.text, &ranked)?);
            }
            if mode == Mode::Hybrid && args.rerank.is_some() {
                let mut hits = results.hits.clone();
                let mut oracle;
                let reranker: &mut dyn qsearch::rerank::Reranker = match served.as_deref_mut() {
                    Some(r) => r,
                    None => {
                        let judged = hits
                            .iter()
                            .filter_map(|h| {
                                let doc = eval::doc_of(&h.path, &names)?;
                                Some((h.text.clone(), relevant.get(&doc).copied().unwrap_or(0) as f32))
                            })
                            .collect();
                        oracle = Oracle { judged };
                        &mut oracle
                    }
                };
                let t = Instant::now();
                let done = qsearch::rerank::rerank(reranker, &mut cost, budget, &q.text, &mut hits)?;
                rerank_secs += t.elapsed().as_secs_f64();
                rerank_counts += done.count;
                let ranking: Vec<String> = hits.iter().filter_map(|h| eval::doc_of(&h.path, &names)).collect();
                reranked.push(eval::score(&ranking, relevant));
            }
        }
        if let Some(out) = lists.as_mut() {
            let row = serde_json::json!({"id": q.id, "text": q.text, "relevant": relevant, "keyword": dumped[0], "semantic": dumped[1]});
            writeln!(out, "{row}")?;
        }
    }
    let per_query = |s: f64| s * 1000.0 / queries.len().max(1) as f64;
    let mut table: Vec<(String, eval::Metrics, f64)> = MODES
        .iter()
        .enumerate()
        .map(|(i, &mode)| (mode.to_string(), eval::average(&scores[i]), per_query(secs[i])))
        .collect();
    let (kw, sem, hyb) = (&scores[0], &scores[1], &scores[2]);
    let mut versus = vec![
        ("hybrid", "semantic", eval::win_loss(hyb, sem)),
        ("hybrid", "keyword", eval::win_loss(hyb, kw)),
        ("semantic", "keyword", eval::win_loss(sem, kw)),
    ];
    if args.rerank.is_some() {
        // Its time is the reranker's alone, on top of hybrid's.
        table.push(("reranked".into(), eval::average(&reranked), per_query(rerank_secs)));
        versus.push(("reranked", "hybrid", eval::win_loss(&reranked, hyb)));
        eprintln!(
            "reranked by {}: {:.1} hits a query on average (budget {} ms)",
            args.rerank.as_deref().unwrap_or_default(),
            rerank_counts as f64 / queries.len().max(1) as f64,
            config.rerank_ms
        );
    }
    if args.json {
        let rows: Vec<_> = table
            .iter()
            .map(|(mode, m, ms)| serde_json::json!({"mode": mode, "metrics": m, "ms_per_query": ms}))
            .collect();
        let pairs: Vec<_> =
            versus.iter().map(|(a, b, wl)| serde_json::json!({"mode": a, "against": b, "queries": wl})).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"dataset": name, "model": embedder.fingerprint(), "results": rows, "per_query": pairs})
            )?
        );
    } else {
        println!("{name} ({} queries), model {}", queries.len(), embedder.fingerprint());
        println!(
            "{:<9} {:>8} {:>10} {:>11} {:>7} {:>12}",
            "mode", "nDCG@10", "recall@10", "recall@100", "MRR@10", "ms/query*"
        );
        for (mode, m, ms) in &table {
            println!(
                "{:<9} {:>8.4} {:>10.4} {:>11.4} {:>7.4} {:>12.2}",
                mode, m.ndcg_at_10, m.recall_at_10, m.recall_at_100, m.mrr_at_10, ms
            );
        }
        println!("* search time only; query embeddings were computed beforehand in one batch");
        println!("per query, nDCG@10:");
        for (a, b, wl) in &versus {
            println!("  {a:<8} vs {b:<8}: {} better, {} worse, {} tied", wl.better, wl.worse, wl.tied);
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! Retrieval quality on BEIR-format data sets: loading `corpus.jsonl`, `queries.jsonl` and
//! `qrels/*.tsv`, and the metrics as BEIR computes them with pytrec_eval (nDCG with linear gain,
//! recall over all judged-relevant documents, reciprocal rank cut at 10).

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Doc {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default)]
    pub title: String,
    pub text: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct QueryRow {
    #[serde(rename = "_id")]
    pub id: String,
    pub text: String,
}

/// query id -> (doc id -> relevance)
pub type Qrels = HashMap<String, HashMap<String, i32>>;

pub struct Dataset {
    pub corpus: Vec<Doc>,
    pub queries: Vec<QueryRow>,
    pub qrels: Qrels,
    pub split: String,
}

fn jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    std::io::BufReader::new(f)
        .lines()
        .enumerate()
        .filter(|(_, l)| l.as_ref().map(|l| !l.trim().is_empty()).unwrap_or(true))
        .map(|(i, l)| serde_json::from_str(&l?).with_context(|| format!("{}:{}", path.display(), i + 1)))
        .collect()
}

/// Loads a BEIR folder; `split` picks `qrels/<split>.tsv` (default: test, else the only one).
pub fn load(dir: &Path, split: Option<&str>) -> Result<Dataset> {
    let qrels_dir = dir.join("qrels");
    let split = match split {
        Some(s) => s.to_string(),
        None => {
            let mut names: Vec<String> = std::fs::read_dir(&qrels_dir)
                .with_context(|| format!("{} has no qrels/ folder", dir.display()))?
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.strip_suffix(".tsv").map(str::to_string))
                .collect();
            names.sort();
            if names.iter().any(|n| n == "test") {
                "test".into()
            } else if names.len() == 1 {
                names.remove(0)
            } else {
                bail!("pick a split with --split: {}", names.join(", "))
            }
        }
    };
    let mut qrels: Qrels = HashMap::new();
    let path = qrels_dir.join(format!("{split}.tsv"));
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() >= 3 {
            qrels.entry(cols[0].to_string()).or_default().insert(cols[1].to_string(), cols[2].trim().parse()?);
        }
    }
    let queries: Vec<QueryRow> =
        jsonl::<QueryRow>(&dir.join("queries.jsonl"))?.into_iter().filter(|q| qrels.contains_key(&q.id)).collect();
    Ok(Dataset { corpus: jsonl(&dir.join("corpus.jsonl"))?, queries, qrels, split })
}

/// Writes the corpus as one file per document (markdown with the title as heading when there is
/// a title; else a file named `.{ext}`, e.g. `py` for a corpus of Python functions, so it is
/// chunked as that language), so the normal indexer reads it. Returns file name -> doc id.
pub fn write_corpus(corpus: &[Doc], dir: &Path, ext: &str) -> Result<HashMap<String, String>> {
    std::fs::create_dir_all(dir)?;
    // Files of another extension from an earlier run would be indexed too.
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('d') && !name.ends_with(&format!(".{ext}")) && !name.ends_with(".md") {
            std::fs::remove_file(entry.path())?;
        }
    }
    let mut names = HashMap::new();
    for (i, doc) in corpus.iter().enumerate() {
        let (name, body) = if doc.title.trim().is_empty() {
            (format!("d{i}.{ext}"), doc.text.clone())
        } else {
            (format!("d{i}.md"), format!("# {}\n\n{}", doc.title.trim(), doc.text))
        };
        std::fs::write(dir.join(&name), body)?;
        names.insert(name, doc.id.clone());
    }
    Ok(names)
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Metrics {
    pub ndcg_at_10: f64,
    pub recall_at_10: f64,
    pub recall_at_100: f64,
    pub mrr_at_10: f64,
    pub queries: usize,
}

/// Scores one ranking (doc ids, best first) against its judgements.
pub fn score(ranking: &[String], relevant: &HashMap<String, i32>) -> (f64, f64, f64, f64) {
    let rel = |id: &String| relevant.get(id).copied().unwrap_or(0).max(0) as f64;
    let dcg: f64 = ranking.iter().take(10).enumerate().map(|(i, id)| rel(id) / ((i + 2) as f64).log2()).sum();
    let mut ideal: Vec<f64> = relevant.values().map(|&r| r.max(0) as f64).collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal.iter().take(10).enumerate().map(|(i, r)| r / ((i + 2) as f64).log2()).sum();
    let n_rel = relevant.values().filter(|&&r| r > 0).count().max(1) as f64;
    let recall = |k: usize| ranking.iter().take(k).filter(|id| rel(id) > 0.0).count() as f64 / n_rel;
    let mrr = ranking.iter().take(10).position(|id| rel(id) > 0.0).map(|p| 1.0 / (p + 1) as f64).unwrap_or(0.0);
    (if idcg > 0.0 { dcg / idcg } else { 0.0 }, recall(10), recall(100), mrr)
}

pub fn average(scores: &[(f64, f64, f64, f64)]) -> Metrics {
    let n = scores.len().max(1) as f64;
    let sum = scores.iter().fold((0.0, 0.0, 0.0, 0.0), |a, s| (a.0 + s.0, a.1 + s.1, a.2 + s.2, a.3 + s.3));
    Metrics {
        ndcg_at_10: sum.0 / n,
        recall_at_10: sum.1 / n,
        recall_at_100: sum.2 / n,
        mrr_at_10: sum.3 / n,
        queries: scores.len(),
    }
}

/// How one mode fared against another, query by query, on nDCG@10.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WinLoss {
    pub better: usize,
    pub worse: usize,
    pub tied: usize,
}

/// Counts the queries where `a` scored above, below or level with `b` (nDCG@10 of each).
pub fn win_loss(a: &[(f64, f64, f64, f64)], b: &[(f64, f64, f64, f64)]) -> WinLoss {
    let mut out = WinLoss::default();
    for (x, y) in a.iter().zip(b) {
        match x.0 - y.0 {
            d if d > 1e-9 => out.better += 1,
            d if d < -1e-9 => out.worse += 1,
            _ => out.tied += 1,
        }
    }
    out
}

/// The document id of a hit's path, from the names `write_corpus` gave.
pub fn doc_of(path: &str, names: &HashMap<String, String>) -> Option<String> {
    let name = PathBuf::from(path).file_name()?.to_str()?.to_string();
    names.get(&name).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_hand_computation() {
        let rel: HashMap<String, i32> = [("a".into(), 1), ("b".into(), 1)].into();
        let ranking: Vec<String> = vec!["x".into(), "a".into(), "y".into(), "b".into()];
        let (ndcg, r10, r100, mrr) = score(&ranking, &rel);
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2();
        assert!((ndcg - dcg / idcg).abs() < 1e-12);
        assert_eq!((r10, r100, mrr), (1.0, 1.0, 0.5));
        let (ndcg, r10, _, mrr) = score(&["x".into()], &rel);
        assert_eq!((ndcg, r10, mrr), (0.0, 0.0, 0.0));
    }

    #[test]
    fn win_loss_counts_queries() {
        let a = [(0.5, 0.0, 0.0, 0.0), (0.2, 0.0, 0.0, 0.0), (0.3, 0.0, 0.0, 0.0)];
        let b = [(0.4, 0.0, 0.0, 0.0), (0.2, 0.0, 0.0, 0.0), (0.9, 0.0, 0.0, 0.0)];
        assert_eq!(win_loss(&a, &b), WinLoss { better: 1, worse: 1, tied: 1 });
    }
}

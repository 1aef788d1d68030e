//! Reranking: a slower, closer judge of the first hits. The first stage (keyword, semantic,
//! hybrid) ranks every chunk by scores computed apart from the query; a reranker reads the query
//! and each candidate together and scores the pair. It is asked within a time budget, not for a
//! fixed count: the cost of a pair is measured on each call, and as many of the first hits are
//! reranked as the budget holds (never fewer than [`MIN_CANDIDATES`]). A reranker that fails
//! leaves the first stage's order, and the answer says why.

pub mod local;
pub mod prepare;
pub mod served;

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::search::Hit;

/// The fewest first hits a reranker is given, whatever its cost.
pub const MIN_CANDIDATES: usize = 5;

/// The most first hits a reranker is given, however cheap it is.
pub const MAX_CANDIDATES: usize = 100;

/// Scores query-document pairs: higher is closer.
pub trait Reranker: Send {
    /// The reranker as the user named it (`openai:bge-reranker-v2-m3`).
    fn id(&self) -> String;
    /// One score per document, in the documents' order.
    fn score(&mut self, query: &str, documents: &[&str]) -> Result<Vec<f32>>;
}

/// The part of the time left that one call of the reranker may be planned to take.
const SHARE: f64 = 0.5;

/// Text a pair costs besides its query and document (a prompt, special tokens), in bytes.
const PAIR_BYTES: usize = 256;

/// A pair's size in the units [`Cost`] counts: the bytes of its query and document, and
/// [`PAIR_BYTES`] (tokens follow bytes closely enough, and the reranker's tokenizer is its own).
pub fn units(query: &str, document: &str) -> f64 {
    (query.len() + document.len() + PAIR_BYTES) as f64
}

/// What reranking a list cost, measured: the time of a call is taken as `fixed + units *
/// per_unit`, a pair's units its length ([`units`]); each call's time updates the estimate of
/// both (the last calls weigh most).
#[derive(Debug, Clone, Copy, Default)]
pub struct Cost {
    /// Seconds per unit, and per call besides, once a call was measured.
    per_unit: Option<f64>,
    fixed: f64,
    /// A pair's units on average (0 before anything was measured).
    pair_units: f64,
}

impl Cost {
    /// How many candidates of the average size fit `budget`. Before anything was measured, as
    /// many as there are (up to [`MAX_CANDIDATES`]): [`rerank`] then measures on the first
    /// [`MIN_CANDIDATES`] and gives the rest of the budget to as many more as it holds.
    pub fn fit(&self, budget: Duration, available: usize) -> usize {
        let n = match self.per_unit {
            None => MAX_CANDIDATES,
            Some(per) => {
                ((budget.as_secs_f64() - self.fixed).max(0.0) / (per * self.average()).max(1e-6) + 1e-9) as usize
            }
        };
        n.clamp(MIN_CANDIDATES, MAX_CANDIDATES).min(available)
    }

    /// Whether a call was measured yet.
    pub fn measured(&self) -> bool {
        self.per_unit.is_some()
    }

    fn average(&self) -> f64 {
        if self.pair_units > 0.0 { self.pair_units } else { 1.0 }
    }

    /// How many of `documents`, from the first, fit in `share` of `left`, in one call (none
    /// when nothing was measured).
    fn prefix(&self, left: Duration, share: f64, query: &str, documents: &[&str]) -> usize {
        let Some(per) = self.per_unit else { return 0 };
        let mut room = left.as_secs_f64() * share - self.fixed;
        documents
            .iter()
            .take_while(|d| {
                room -= units(query, d) * per;
                room >= 0.0
            })
            .count()
    }

    /// Learns from a call of `n` pairs of the average size that took `took`.
    pub fn record(&mut self, n: usize, took: Duration) {
        self.record_units(n, n as f64 * self.average(), took);
    }

    /// Learns from a call of `n` pairs, `units` in all, that took `took`.
    pub fn record_units(&mut self, n: usize, units: f64, took: Duration) {
        if n == 0 || units <= 0.0 {
            return;
        }
        let secs = took.as_secs_f64();
        // One call cannot tell the fixed part from the per-pair part: the fixed part is taken as
        // a fifth of a call's time, the rest spread over its units.
        let fixed = secs / 5.0;
        let per = (secs - fixed) / units;
        let pair_units = units / n as f64;
        match self.per_unit {
            None => (self.per_unit, self.fixed, self.pair_units) = (Some(per), fixed, pair_units),
            Some(old) => {
                self.per_unit = Some(old * 0.5 + per * 0.5);
                self.fixed = self.fixed * 0.5 + fixed * 0.5;
                self.pair_units = self.pair_units * 0.5 + pair_units * 0.5;
            }
        }
    }
}

/// What a reranking did: by which reranker, how many of the first hits, in how long.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Reranked {
    pub reranker: String,
    /// How many of the first hits were reranked (the rest follow in the first stage's order).
    pub count: usize,
    pub ms: f64,
    /// The budget it was given.
    pub budget_ms: u64,
}

/// Reranks the first hits that fit `budget` by `reranker`'s scores (each hit keeps its first
/// stage score in `score` and gets `rerank_score`), the rest following in their order. A
/// failure leaves `hits` as they were, and is returned.
pub fn rerank(
    reranker: &mut dyn Reranker,
    cost: &mut Cost,
    budget: Duration,
    query: &str,
    hits: &mut [Hit],
) -> Result<Reranked> {
    let started = Instant::now();
    let documents: Vec<&str> = hits.iter().take(MAX_CANDIDATES).map(|h| h.text.as_str()).collect();
    // Unmeasured (a reranker's first call), the first few measure the cost; measured, the first
    // call takes what fits half the budget. Then each call takes what fits half of what is left,
    // measured again after each: an estimate that is off (a burst of other work, longer
    // documents further down) costs at most part of one call, not the whole budget.
    let least = MIN_CANDIDATES.min(documents.len());
    let mut n = if cost.measured() { cost.prefix(budget, SHARE, query, &documents).max(least) } else { least };
    let mut scores = score(reranker, cost, query, &hits[..n])?;
    loop {
        let more = cost.prefix(budget.saturating_sub(started.elapsed()), SHARE, query, &documents[n..]);
        if more == 0 {
            break;
        }
        scores.extend(score(reranker, cost, query, &hits[n..n + more])?);
        n += more;
    }
    let took = started.elapsed();
    let n = scores.len();
    for (hit, score) in hits.iter_mut().zip(scores) {
        hit.rerank_score = Some(score);
    }
    // Stable: equal scores keep the first stage's order.
    hits[..n].sort_by(|a, b| b.rerank_score.unwrap_or(f32::MIN).total_cmp(&a.rerank_score.unwrap_or(f32::MIN)));
    Ok(Reranked {
        reranker: reranker.id(),
        count: n,
        ms: took.as_secs_f64() * 1e3,
        budget_ms: budget.as_millis() as u64,
    })
}

/// One call of the reranker on `hits`, its time recorded in `cost`.
fn score(reranker: &mut dyn Reranker, cost: &mut Cost, query: &str, hits: &[Hit]) -> Result<Vec<f32>> {
    let documents: Vec<&str> = hits.iter().map(|h| h.text.as_str()).collect();
    let started = Instant::now();
    let scores = reranker.score(query, &documents)?;
    let n = documents.len();
    anyhow::ensure!(scores.len() == n, "the reranker {} gave {} scores for {n} documents", reranker.id(), scores.len());
    cost.record_units(n, documents.iter().map(|d| units(query, d)).sum(), started.elapsed());
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_follows_the_measured_cost_within_its_bounds() {
        let budget = Duration::from_millis(150);
        let mut cost = Cost::default();
        assert_eq!(cost.fit(budget, 500), MAX_CANDIDATES, "unmeasured: as many as there may be");
        assert_eq!(cost.fit(budget, 3), 3, "never more than there are");
        // 10 pairs in 50 ms: 10 ms a call and 4 ms a pair, so 35 fit 150 ms.
        cost.record(10, Duration::from_millis(50));
        assert_eq!(cost.fit(budget, 100), 35);
        // A slow reranker (a second a pair) still gets the first few.
        let mut slow = Cost::default();
        slow.record(10, Duration::from_secs(10));
        assert_eq!(slow.fit(budget, 100), MIN_CANDIDATES);
        // A free one gets at most the cap.
        let mut free = Cost::default();
        free.record(10, Duration::from_micros(10));
        assert_eq!(free.fit(budget, 1000), MAX_CANDIDATES);
    }

    #[test]
    fn a_first_call_measures_on_the_first_few_then_takes_as_many_as_the_rest_of_the_budget_holds() {
        // 5 pairs of 1,000 units in 50 ms: 10 ms a call, 8 ms a pair of that size; 100 ms left
        // (80 spent) hold 8 more of them, or 4 twice as long.
        let mut cost = Cost::default();
        let doc = "d".repeat(1000 - 1 - PAIR_BYTES);
        let docs = vec![doc.as_str(); 200];
        assert_eq!(cost.prefix(Duration::from_millis(100), 0.8, "q", &docs), 0, "nothing measured, nothing more");
        cost.record_units(5, 5000.0, Duration::from_millis(50));
        assert_eq!(cost.prefix(Duration::from_millis(100), 0.8, "q", &docs), 8);
        assert_eq!(cost.prefix(Duration::from_millis(100), 0.8, "q", &docs[..4]), 4);
        assert_eq!(cost.prefix(Duration::from_millis(5), 0.8, "q", &docs), 0);
        let long = "d".repeat(2000 - 1 - PAIR_BYTES);
        assert_eq!(cost.prefix(Duration::from_millis(100), 0.8, "q", &[long.as_str(); 10]), 4);
        assert_eq!(cost.fit(Duration::from_millis(90), 200), 10, "the average pair");

        struct ByLength(Vec<usize>);
        impl Reranker for ByLength {
            fn id(&self) -> String {
                "by-length".into()
            }
            fn score(&mut self, _: &str, documents: &[&str]) -> Result<Vec<f32>> {
                self.0.push(documents.len());
                Ok(documents.iter().map(|d| d.len() as f32).collect())
            }
        }
        let hit = |i: usize| Hit {
            chunk_id: i as i64,
            doc_id: i as i64,
            path: format!("{i}.md"),
            title: String::new(),
            heading: String::new(),
            line: 1,
            end_line: 1,
            score: 1.0 / (i + 1) as f32,
            rerank_score: None,
            kind: crate::search::MatchKind::Keyword,
            snippet: String::new(),
            marks: vec![],
            tags: vec![],
            date: String::new(),
            text: "x".repeat(i),
        };
        // A reranker that costs next to nothing: the first call takes the first 5, the second
        // every other hit (up to the cap).
        let mut hits: Vec<Hit> = (0..150).map(hit).collect();
        let (mut reranker, mut cost) = (ByLength(vec![]), Cost::default());
        let done = rerank(&mut reranker, &mut cost, Duration::from_secs(5), "q", &mut hits).unwrap();
        assert_eq!(reranker.0, [MIN_CANDIDATES, MAX_CANDIDATES - MIN_CANDIDATES]);
        assert_eq!(done.count, MAX_CANDIDATES);
        assert_eq!(hits[0].chunk_id, 99, "the longest of the reranked first");
        assert_eq!(hits[MAX_CANDIDATES].chunk_id, 100, "the rest in their first order");
        assert!(hits[MAX_CANDIDATES].rerank_score.is_none());
        // Measured now: one call.
        let mut hits: Vec<Hit> = (0..150).map(hit).collect();
        rerank(&mut reranker, &mut cost, Duration::from_secs(5), "q", &mut hits).unwrap();
        assert_eq!(reranker.0.len(), 3);
    }
}

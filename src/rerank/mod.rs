//! Reranking: a slower, closer judge of the first hits. The first stage (keyword, semantic,
//! hybrid) ranks every chunk by scores computed apart from the query; a reranker reads the query
//! and each candidate together and scores the pair. It is asked within a time budget, not for a
//! fixed count: the cost of a pair is measured on each call, and as many of the first hits are
//! reranked as the budget holds (never fewer than [`MIN_CANDIDATES`]). A reranker that fails
//! leaves the first stage's order, and the answer says why.

pub mod local;
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

/// What reranking a list cost, measured: the time of a call of `n` pairs is taken as
/// `fixed + n * per_pair`; each call's time updates the estimate of both (the last calls
/// weigh most).
#[derive(Debug, Clone, Copy, Default)]
pub struct Cost {
    /// Seconds per pair, and per call besides, once a call was measured.
    per_pair: Option<f64>,
    fixed: f64,
}

impl Cost {
    /// How many candidates fit `budget`: all of `available` (up to [`MAX_CANDIDATES`]) before
    /// anything was measured is too many, so the first call takes [`MIN_CANDIDATES`] * 2.
    pub fn fit(&self, budget: Duration, available: usize) -> usize {
        let n = match self.per_pair {
            None => MIN_CANDIDATES * 2,
            Some(per) => ((budget.as_secs_f64() - self.fixed).max(0.0) / per.max(1e-6) + 1e-9) as usize,
        };
        n.clamp(MIN_CANDIDATES, MAX_CANDIDATES).min(available)
    }

    /// Learns from a call of `n` pairs that took `took`.
    pub fn record(&mut self, n: usize, took: Duration) {
        if n == 0 {
            return;
        }
        let secs = took.as_secs_f64();
        // One call cannot tell the fixed part from the per-pair part: the fixed part is taken as
        // a fifth of a call's time, the rest spread over its pairs.
        let fixed = secs / 5.0;
        let per = (secs - fixed) / n as f64;
        match self.per_pair {
            None => (self.per_pair, self.fixed) = (Some(per), fixed),
            Some(old) => {
                self.per_pair = Some(old * 0.5 + per * 0.5);
                self.fixed = self.fixed * 0.5 + fixed * 0.5;
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
    let n = cost.fit(budget, hits.len());
    let documents: Vec<&str> = hits[..n].iter().map(|h| h.text.as_str()).collect();
    let started = Instant::now();
    let scores = reranker.score(query, &documents)?;
    let took = started.elapsed();
    anyhow::ensure!(scores.len() == n, "the reranker {} gave {} scores for {n} documents", reranker.id(), scores.len());
    cost.record(n, took);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_follows_the_measured_cost_within_its_bounds() {
        let budget = Duration::from_millis(150);
        let mut cost = Cost::default();
        assert_eq!(cost.fit(budget, 50), MIN_CANDIDATES * 2, "unmeasured: a small first call");
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
}

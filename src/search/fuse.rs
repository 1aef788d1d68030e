//! Hybrid ranking: the keyword and semantic lists fused into one.
//!
//! Over every chunk either list holds, each side's scores are standardised (z-scores: how far
//! above the mean a chunk stands, in standard deviations), then combined as a weighted sum; a
//! chunk the keyword list lacks has a BM25 of 0, one the semantic list lacks its lowest cosine.
//! A keyword hit's BM25 counts in proportion to the share of the query's words it holds, each
//! weighted by its rarity (its `coverage`, the old "coordination factor"): a chunk that holds
//! only one rare word of a five-word question no longer stands as far ahead as one that holds
//! them all. Unlike reciprocal rank fusion, this keeps how *decisive* each
//! list is: a keyword hit far ahead of the rest (a query that reuses a page's own words) stays
//! ahead, while a flat keyword list (a question whose words code rarely uses) barely moves the
//! semantic order. The weight was chosen on the development sets in `/work/shared/data` (see
//! `benches/README.md`; `qsearch eval` prints per-query wins and losses of each mode).

use std::collections::{HashMap, HashSet};

use super::{KeywordHit, MatchKind, Mode};

/// Share of the semantic list in the fused score; the keyword list has the rest.
const SEMANTIC_WEIGHT: f32 = 0.65;

/// How many of each list's first hits are fused into the head of the ranking (the default
/// search of 10 hits fetches this many). Hits further down either list follow the head, so a
/// search for more hits (the terminal UI asks for 50) does not reorder the first ones.
const HEAD: usize = 40;

/// Combines the two rankings. Hybrid: a weighted sum of each list's z-scores; a single mode
/// keeps its own scores.
pub fn fuse(keyword: &[KeywordHit], semantic: &[(i64, f32)], mode: Mode) -> Vec<(i64, f32, MatchKind)> {
    match mode {
        Mode::Keyword => keyword.iter().map(|h| (h.chunk_id, h.score, MatchKind::Keyword)).collect(),
        Mode::Semantic => semantic.iter().map(|&(id, s)| (id, s, MatchKind::Semantic)).collect(),
        Mode::Hybrid => {
            let by_words: HashSet<i64> = keyword.iter().map(|h| h.chunk_id).collect();
            let by_meaning: HashSet<i64> = semantic.iter().map(|h| h.0).collect();
            let kind = |id: i64| match (by_words.contains(&id), by_meaning.contains(&id)) {
                (true, true) => MatchKind::Both,
                (true, false) => MatchKind::Keyword,
                _ => MatchKind::Semantic,
            };
            let head = weighted_sum(&keyword[..keyword.len().min(HEAD)], &semantic[..semantic.len().min(HEAD)]);
            let placed: HashSet<i64> = head.iter().map(|h| h.0).collect();
            let tail = weighted_sum(keyword, semantic).into_iter().filter(|h| !placed.contains(&h.0));
            head.into_iter().chain(tail).map(|(id, score)| (id, score, kind(id))).collect()
        }
    }
}

/// Every chunk of either list, best first, by the weighted sum of its z-scores in each.
fn weighted_sum(keyword: &[KeywordHit], semantic: &[(i64, f32)]) -> Vec<(i64, f32)> {
    let kw: HashMap<i64, f32> = keyword.iter().map(|h| (h.chunk_id, h.score * h.coverage)).collect();
    let sem: HashMap<i64, f32> = semantic.iter().copied().collect();
    let mut ids: Vec<i64> = keyword.iter().map(|h| h.chunk_id).collect();
    ids.extend(semantic.iter().map(|h| h.0).filter(|id| !kw.contains_key(id)));
    // A chunk without the query's words has a BM25 of 0; one below the semantic list's end is
    // at most as close as its last hit.
    let sem_floor = semantic.iter().map(|h| h.1).reduce(f32::min).unwrap_or(0.0);
    let kz = standardise(ids.iter().map(|id| kw.get(id).copied().unwrap_or(0.0)));
    let sz = standardise(ids.iter().map(|id| sem.get(id).copied().unwrap_or(sem_floor)));
    let mut out: Vec<(i64, f32)> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| (id, SEMANTIC_WEIGHT * sz[i] + (1.0 - SEMANTIC_WEIGHT) * kz[i]))
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// Scores as z-scores (distance from their mean in standard deviations); all 0 when equal.
fn standardise(scores: impl Iterator<Item = f32>) -> Vec<f32> {
    let scores: Vec<f32> = scores.collect();
    let n = scores.len().max(1) as f32;
    let mean = scores.iter().sum::<f32>() / n;
    let sd = (scores.iter().map(|s| (s - mean).powi(2)).sum::<f32>() / n).sqrt();
    let sd = if sd > f32::EPSILON { sd } else { 1.0 };
    scores.iter().map(|s| (s - mean) / sd).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(hits: &[(i64, f32, f32)]) -> Vec<KeywordHit> {
        hits.iter()
            .map(|&(chunk_id, score, coverage)| KeywordHit { chunk_id, score, every_word: coverage == 1.0, coverage })
            .collect()
    }

    #[test]
    fn agreement_wins_and_a_decisive_keyword_hit_stays_on_top() {
        let keyword = kw(&[(1, 9.0, 1.0), (2, 8.0, 1.0), (3, 7.0, 1.0)]);
        let sem = vec![(3, 0.9), (4, 0.8), (1, 0.7)];
        let fused = fuse(&keyword, &sem, Mode::Hybrid);
        assert_eq!(fused.len(), 4);
        assert_eq!((fused[0].0, fused[0].2), (3, MatchKind::Both), "{fused:?}");
        // A keyword hit far ahead of its list (a query that reuses a page's words) goes first,
        // over semantic hits with no clear winner.
        let sem: Vec<(i64, f32)> = (0..40).map(|i| (100 + i, 0.60 - 0.003 * i as f32)).collect();
        let mut hits = vec![(102, 30.0, 1.0)];
        hits.extend((0..39).map(|i| (200 + i, 3.0 - 0.01 * i as f32, 0.5)));
        assert_eq!(fuse(&kw(&hits), &sem, Mode::Hybrid)[0].0, 102);
        // Among chunks with equal keyword scores, the semantic order decides.
        let keyword = kw(&[(9, 5.0, 0.5), (8, 5.0, 0.5), (4, 5.0, 0.5)]);
        let sem = vec![(4, 0.9), (8, 0.6), (6, 0.5), (9, 0.4)];
        let fused = fuse(&keyword, &sem, Mode::Hybrid);
        assert_eq!(fused.iter().map(|f| f.0).take(3).collect::<Vec<_>>(), vec![4, 8, 9]);
    }

    #[test]
    fn a_keyword_hit_counts_by_the_share_of_the_query_it_holds() {
        // Two chunks with the same BM25 and the same cosine: the one holding the query's words
        // goes first; the one holding one rare word of them, not. Keyword mode keeps BM25's order.
        let sem: Vec<(i64, f32)> = vec![(7, 0.5), (8, 0.5), (1, 0.6), (2, 0.55)];
        let keyword = kw(&[(7, 10.0, 0.2), (8, 10.0, 1.0), (3, 2.0, 0.3)]);
        let fused = fuse(&keyword, &sem, Mode::Hybrid);
        let at = |id| fused.iter().position(|f| f.0 == id).unwrap();
        assert!(at(8) < at(7), "{fused:?}");
        let keyword = kw(&[(7, 10.0, 0.2), (8, 10.0, 1.0)]);
        assert_eq!(fuse(&keyword, &[], Mode::Keyword).iter().map(|f| f.0).collect::<Vec<_>>(), vec![7, 8]);
    }

    #[test]
    fn one_empty_list_gives_the_other_as_it_is() {
        let sem = vec![(3, 0.9), (4, 0.8)];
        let fused = fuse(&[], &sem, Mode::Hybrid);
        assert_eq!(fused.iter().map(|f| f.0).collect::<Vec<_>>(), vec![3, 4]);
        let keyword = kw(&[(1, 2.0, 1.0), (2, 1.0, 0.5)]);
        assert_eq!(fuse(&keyword, &[], Mode::Hybrid).iter().map(|f| f.0).collect::<Vec<_>>(), vec![1, 2]);
    }
}

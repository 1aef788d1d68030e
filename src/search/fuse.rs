//! Hybrid ranking: the keyword and semantic lists fused into one.
//!
//! Over every chunk either list holds, each side's scores are standardised (z-scores: how far
//! above the mean a chunk stands, in standard deviations), then combined as a weighted sum; a
//! chunk the keyword list lacks has a BM25 of 0, one the semantic list lacks its lowest cosine. Unlike reciprocal rank fusion, this keeps how *decisive* each
//! list is: a keyword hit far ahead of the rest (a query that reuses a page's own words) stays
//! ahead, while a flat keyword list (a question whose words code rarely uses) barely moves the
//! semantic order. The weight was chosen on the development sets in `/work/shared/data` (see
//! `benches/README.md`; `qsearch eval` prints per-query wins and losses of each mode).

use std::collections::HashMap;

use super::{MatchKind, Mode};

/// Share of the semantic list in the fused score; the keyword list has the rest.
const SEMANTIC_WEIGHT: f32 = 0.75;

/// Combines the two rankings. Hybrid: a weighted sum of each list's z-scores; a single mode
/// keeps its own scores.
pub fn fuse(keyword: &[(i64, f32, bool)], semantic: &[(i64, f32)], mode: Mode) -> Vec<(i64, f32, MatchKind)> {
    match mode {
        Mode::Keyword => keyword.iter().map(|&(id, s, _)| (id, s, MatchKind::Keyword)).collect(),
        Mode::Semantic => semantic.iter().map(|&(id, s)| (id, s, MatchKind::Semantic)).collect(),
        Mode::Hybrid => {
            let kw: HashMap<i64, f32> = keyword.iter().map(|h| (h.0, h.1)).collect();
            let sem: HashMap<i64, f32> = semantic.iter().copied().collect();
            let mut ids: Vec<i64> = keyword.iter().map(|h| h.0).collect();
            ids.extend(semantic.iter().map(|h| h.0).filter(|id| !kw.contains_key(id)));
            // A chunk without the query's words has a BM25 of 0; one below the semantic list's
            // end is at most as close as its last hit.
            let sem_floor = semantic.iter().map(|h| h.1).reduce(f32::min).unwrap_or(0.0);
            let kz = standardise(ids.iter().map(|id| kw.get(id).copied().unwrap_or(0.0)));
            let sz = standardise(ids.iter().map(|id| sem.get(id).copied().unwrap_or(sem_floor)));
            let mut out: Vec<(i64, f32, MatchKind)> = ids
                .iter()
                .enumerate()
                .map(|(i, &id)| {
                    let kind = match (kw.contains_key(&id), sem.contains_key(&id)) {
                        (true, true) => MatchKind::Both,
                        (true, false) => MatchKind::Keyword,
                        _ => MatchKind::Semantic,
                    };
                    (id, SEMANTIC_WEIGHT * sz[i] + (1.0 - SEMANTIC_WEIGHT) * kz[i], kind)
                })
                .collect();
            out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            out
        }
    }
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

    #[test]
    fn agreement_wins_and_a_decisive_keyword_hit_stays_on_top() {
        let kw = vec![(1, 9.0, true), (2, 8.0, true), (3, 7.0, true)];
        let sem = vec![(3, 0.9), (4, 0.8), (1, 0.7)];
        let fused = fuse(&kw, &sem, Mode::Hybrid);
        assert_eq!(fused.len(), 4);
        assert_eq!((fused[0].0, fused[0].2), (3, MatchKind::Both), "{fused:?}");
        // A keyword hit far ahead of its list (a query that reuses a page's words) goes first,
        // over semantic hits with no clear winner.
        let sem: Vec<(i64, f32)> = (0..40).map(|i| (100 + i, 0.60 - 0.003 * i as f32)).collect();
        let mut kw: Vec<(i64, f32, bool)> = vec![(102, 30.0, true)];
        kw.extend((0..39).map(|i| (200 + i, 3.0 - 0.01 * i as f32, false)));
        assert_eq!(fuse(&kw, &sem, Mode::Hybrid)[0].0, 102);
        // Among chunks with equal keyword scores, the semantic order decides.
        let kw = vec![(9, 5.0, false), (8, 5.0, false), (4, 5.0, false)];
        let sem = vec![(4, 0.9), (8, 0.6), (6, 0.5), (9, 0.4)];
        let fused = fuse(&kw, &sem, Mode::Hybrid);
        assert_eq!(fused.iter().map(|f| f.0).take(3).collect::<Vec<_>>(), vec![4, 8, 9]);
    }

    #[test]
    fn one_empty_list_gives_the_other_as_it_is() {
        let sem = vec![(3, 0.9), (4, 0.8)];
        let fused = fuse(&[], &sem, Mode::Hybrid);
        assert_eq!(fused.iter().map(|f| f.0).collect::<Vec<_>>(), vec![3, 4]);
        let kw = vec![(1, 2.0, true), (2, 1.0, false)];
        assert_eq!(fuse(&kw, &[], Mode::Hybrid).iter().map(|f| f.0).collect::<Vec<_>>(), vec![1, 2]);
    }
}

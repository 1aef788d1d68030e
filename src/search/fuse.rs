//! Hybrid ranking: the keyword and semantic lists fused into one.

use std::collections::HashMap;

use super::{MatchKind, Mode};

/// Reciprocal rank fusion constant (the usual 60).
const RRF_K: f32 = 60.0;

/// In hybrid fusion, a keyword hit that has only some of the query's words counts this much of
/// one that has all of them. Natural-language queries match nearly every chunk on some word;
/// those partial matches are weak evidence next to the semantic ranking.
const PARTIAL_KEYWORD_WEIGHT: f32 = 0.3;

/// Combines the two rankings. Hybrid: weighted reciprocal rank fusion (keyword hits with only
/// some of the query's words weigh less); a single mode keeps its own scores.
pub fn fuse(keyword: &[(i64, f32, bool)], semantic: &[(i64, f32)], mode: Mode) -> Vec<(i64, f32, MatchKind)> {
    match mode {
        Mode::Keyword => keyword.iter().map(|&(id, s, _)| (id, s, MatchKind::Keyword)).collect(),
        Mode::Semantic => semantic.iter().map(|&(id, s)| (id, s, MatchKind::Semantic)).collect(),
        Mode::Hybrid => {
            let mut scores: HashMap<i64, (f32, bool, bool)> = HashMap::new();
            for (rank, &(id, _, every_word)) in keyword.iter().enumerate() {
                let e = scores.entry(id).or_default();
                let weight = if every_word { 1.0 } else { PARTIAL_KEYWORD_WEIGHT };
                e.0 += weight / (RRF_K + rank as f32 + 1.0);
                e.1 = true;
            }
            for (rank, &(id, _)) in semantic.iter().enumerate() {
                let e = scores.entry(id).or_default();
                e.0 += 1.0 / (RRF_K + rank as f32 + 1.0);
                e.2 = true;
            }
            let mut out: Vec<(i64, f32, MatchKind)> = scores
                .into_iter()
                .map(|(id, (s, k, v))| {
                    let kind = match (k, v) {
                        (true, true) => MatchKind::Both,
                        (true, false) => MatchKind::Keyword,
                        _ => MatchKind::Semantic,
                    };
                    (id, s, kind)
                })
                .collect();
            out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrf_rewards_agreement() {
        let kw = vec![(1, 9.0, true), (2, 8.0, true), (3, 7.0, true)];
        let sem = vec![(3, 0.9), (4, 0.8), (1, 0.7)];
        let fused = fuse(&kw, &sem, Mode::Hybrid);
        assert_eq!(fused[0].0, 1);
        assert_eq!(fused[0].2, MatchKind::Both);
        assert_eq!(fused[1].0, 3);
        assert_eq!(fused.len(), 4);
        // A partial keyword match is outweighed by agreement elsewhere.
        let kw = vec![(5, 9.0, false), (3, 7.0, false)];
        let fused = fuse(&kw, &sem, Mode::Hybrid);
        assert_eq!(fused[0].0, 3);
    }
}

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
//!
//! The weighted sum suits questions but can drown exact words, so three promises of the keyword
//! side are kept over it ([`promises`]): a chunk holding the query as a phrase goes first; so
//! does the one chunk (or two) holding every word of a long query, when it also outscores every
//! chunk holding only some; and keyword search's best hit is never pushed out of the first
//! [`SEAT`] places. A user who types a sentence they remember finds its note on the first line.

use std::collections::{HashMap, HashSet};

use super::{KeywordHit, MatchKind, Mode};

/// Share of the semantic list in the fused score; the keyword list has the rest.
const SEMANTIC_WEIGHT: f32 = 0.65;

/// How many of each list's first hits are fused into the head of the ranking (the default
/// search of 10 hits fetches this many). Hits further down either list follow the head, so a
/// search for more hits (the terminal UI asks for 50) does not reorder the first ones.
pub const HEAD: usize = 40;

/// A query of at least this many words whose every word one or two chunks alone hold puts
/// them first (see [`promises`]).
const LONG_QUERY: usize = 6;

/// At most this many chunks holding the query as a phrase, or all of a long query's words, go
/// first.
const PROMOTED: usize = 3;

/// Keyword search's best hit stays within this many places of the top.
pub const SEAT: usize = 10;

/// Combines the two rankings. Hybrid: a weighted sum of each list's z-scores, with the keyword
/// side's promises kept; a single mode keeps its own scores. `words` is how many words the
/// query has (stopwords included).
pub fn fuse(keyword: &[KeywordHit], semantic: &[(i64, f32)], mode: Mode, words: usize) -> Vec<(i64, f32, MatchKind)> {
    let phrases: HashSet<i64> = keyword.iter().filter(|h| h.phrase).map(|h| h.chunk_id).collect();
    match mode {
        Mode::Keyword => keyword
            .iter()
            .map(|h| (h.chunk_id, h.score, if h.phrase { MatchKind::Phrase } else { MatchKind::Keyword }))
            .collect(),
        Mode::Semantic => semantic.iter().map(|&(id, s)| (id, s, MatchKind::Semantic)).collect(),
        Mode::Hybrid => {
            let by_words: HashSet<i64> = keyword.iter().map(|h| h.chunk_id).collect();
            let by_meaning: HashSet<i64> = semantic.iter().map(|h| h.0).collect();
            let kind = |id: i64| match (phrases.contains(&id), by_words.contains(&id), by_meaning.contains(&id)) {
                (true, _, _) => MatchKind::Phrase,
                (_, true, true) => MatchKind::Both,
                (_, true, false) => MatchKind::Keyword,
                _ => MatchKind::Semantic,
            };
            let (kw_head, sem_head) = (&keyword[..keyword.len().min(HEAD)], &semantic[..semantic.len().min(HEAD)]);
            // A weak keyword list: its best hit holds only some of the query's words, and
            // semantic's first hits do not hold it. Then its scores say nothing for this query
            // (a question whose words the answer does not use) and the semantic order stands,
            // keyword hits after it; the promises below still hold.
            let weak =
                keyword.first().is_some_and(|best| !best.every_word && !sem_head.iter().any(|s| s.0 == best.chunk_id));
            let agree = !weak;
            let weight = if agree || semantic.is_empty() { SEMANTIC_WEIGHT } else { 1.0 };
            let head = weighted_sum(kw_head, sem_head, weight);
            let placed: HashSet<i64> = head.iter().map(|h| h.0).collect();
            let tail: Vec<(i64, f32)> =
                weighted_sum(keyword, semantic, weight).into_iter().filter(|h| !placed.contains(&h.0)).collect();
            // The tail's z-scores are taken over the whole lists, the head's over their first
            // hits: the tail is moved down to start at the head's last score, its gaps kept, so
            // scores stay in rank order.
            let shift = match (head.last(), tail.first()) {
                (Some(last), Some(first)) => (first.1 - last.1).max(0.0),
                _ => 0.0,
            };
            let fused: Vec<(i64, f32)> =
                head.into_iter().chain(tail.into_iter().map(|(id, s)| (id, s - shift))).collect();
            promises(fused, &keyword[..keyword.len().min(HEAD)], words)
                .into_iter()
                .map(|(id, score)| (id, score, kind(id)))
                .collect()
        }
    }
}

/// Keeps the keyword side's promises over the fused order: chunks holding the query as a
/// phrase first (at most [`PROMOTED`], in fused order); with a query of [`LONG_QUERY`] words or
/// more that only one or two chunks hold whole, and that outscore in BM25 every chunk holding
/// part of it, those too; then keyword's best hit within the first [`SEAT`] places.
fn promises(fused: Vec<(i64, f32)>, keyword: &[KeywordHit], words: usize) -> Vec<(i64, f32)> {
    let mut first: HashSet<i64> = keyword.iter().filter(|h| h.phrase).map(|h| h.chunk_id).collect();
    let whole: Vec<&KeywordHit> = keyword.iter().filter(|h| h.every_word).collect();
    let best_part = keyword.iter().filter(|h| !h.every_word).map(|h| h.score * h.coverage).fold(0.0, f32::max);
    if words >= LONG_QUERY && matches!(whole.len(), 1 | 2) && whole.iter().all(|h| h.score >= best_part) {
        first.extend(whole.iter().map(|h| h.chunk_id));
    }
    let (mut out, rest): (Vec<_>, Vec<_>) = {
        let mut taken = 0;
        fused.into_iter().partition(|h| {
            let take = taken < PROMOTED && first.contains(&h.0);
            taken += take as usize;
            take
        })
    };
    // Scores stay in rank order: a hit moved up takes the score of the hit it passes.
    let passed = rest.first().map_or(f32::MIN, |h| h.1);
    out.iter_mut().for_each(|h| h.1 = h.1.max(passed));
    out.extend(rest);
    if let Some(best) = keyword.first()
        && let Some(at) = out.iter().position(|h| h.0 == best.chunk_id)
        && at >= SEAT
    {
        let (id, _) = out.remove(at);
        out.insert(SEAT - 1, (id, out[SEAT - 1].1));
    }
    out
}

/// Every chunk of either list, best first, by the weighted sum of its z-scores in each.
fn weighted_sum(keyword: &[KeywordHit], semantic: &[(i64, f32)], weight: f32) -> Vec<(i64, f32)> {
    let kw: HashMap<i64, f32> = keyword.iter().map(|h| (h.chunk_id, h.score * h.coverage)).collect();
    let sem: HashMap<i64, f32> = semantic.iter().copied().collect();
    let mut ids: Vec<i64> = keyword.iter().map(|h| h.chunk_id).collect();
    ids.extend(semantic.iter().map(|h| h.0).filter(|id| !kw.contains_key(id)));
    // A chunk without the query's words has a BM25 of 0; one below the semantic list's end is
    // at most as close as its last hit.
    let sem_floor = semantic.iter().map(|h| h.1).reduce(f32::min).unwrap_or(0.0);
    let kz = standardise(ids.iter().map(|id| kw.get(id).copied().unwrap_or(0.0)));
    let sz = standardise(ids.iter().map(|id| sem.get(id).copied().unwrap_or(sem_floor)));
    let mut out: Vec<(i64, f32)> =
        ids.iter().enumerate().map(|(i, &id)| (id, weight * sz[i] + (1.0 - weight) * kz[i])).collect();
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
            .map(|&(chunk_id, score, coverage)| KeywordHit {
                chunk_id,
                score,
                every_word: coverage == 1.0,
                coverage,
                phrase: false,
            })
            .collect()
    }

    #[test]
    fn agreement_wins_and_a_decisive_keyword_hit_stays_on_top() {
        let keyword = kw(&[(1, 9.0, 1.0), (2, 8.0, 1.0), (3, 7.0, 1.0)]);
        let sem = vec![(3, 0.9), (4, 0.8), (1, 0.7)];
        let fused = fuse(&keyword, &sem, Mode::Hybrid, 3);
        assert_eq!(fused.len(), 4);
        assert_eq!((fused[0].0, fused[0].2), (3, MatchKind::Both), "{fused:?}");
        // A keyword hit far ahead of its list (a query that reuses a page's words) goes first,
        // over semantic hits with no clear winner.
        let sem: Vec<(i64, f32)> = (0..40).map(|i| (100 + i, 0.60 - 0.003 * i as f32)).collect();
        let mut hits = vec![(102, 30.0, 1.0)];
        hits.extend((0..39).map(|i| (200 + i, 3.0 - 0.01 * i as f32, 0.5)));
        assert_eq!(fuse(&kw(&hits), &sem, Mode::Hybrid, 3)[0].0, 102);
        // Among chunks with equal keyword scores, the semantic order decides.
        let keyword = kw(&[(9, 5.0, 0.5), (8, 5.0, 0.5), (4, 5.0, 0.5)]);
        let sem = vec![(4, 0.9), (8, 0.6), (6, 0.5), (9, 0.4)];
        let fused = fuse(&keyword, &sem, Mode::Hybrid, 3);
        assert_eq!(fused.iter().map(|f| f.0).take(3).collect::<Vec<_>>(), vec![4, 8, 9]);
    }

    #[test]
    fn a_keyword_hit_counts_by_the_share_of_the_query_it_holds() {
        // Two chunks with the same BM25 and the same cosine: the one holding the query's words
        // goes first; the one holding one rare word of them, not. Keyword mode keeps BM25's order.
        let sem: Vec<(i64, f32)> = vec![(7, 0.5), (8, 0.5), (1, 0.6), (2, 0.55)];
        let keyword = kw(&[(7, 10.0, 0.2), (8, 10.0, 1.0), (3, 2.0, 0.3)]);
        let fused = fuse(&keyword, &sem, Mode::Hybrid, 3);
        let at = |id| fused.iter().position(|f| f.0 == id).unwrap();
        assert!(at(8) < at(7), "{fused:?}");
        let keyword = kw(&[(7, 10.0, 0.2), (8, 10.0, 1.0)]);
        assert_eq!(fuse(&keyword, &[], Mode::Keyword, 3).iter().map(|f| f.0).collect::<Vec<_>>(), vec![7, 8]);
    }

    #[test]
    fn phrases_go_first_then_a_long_query_held_whole_by_one_chunk_and_keywords_best_keeps_a_seat() {
        // Semantic's order is 100.., and it holds none of the keyword hits.
        let sem: Vec<(i64, f32)> = (0..40).map(|i| (100 + i, 0.9 - 0.001 * i as f32)).collect();
        let ranks = |keyword: &[KeywordHit], words: usize| {
            let fused = fuse(keyword, &sem, Mode::Hybrid, words);
            move |id: i64| fused.iter().position(|f| f.0 == id).unwrap()
        };
        let mut keyword = kw(&[(1, 9.0, 1.0), (2, 8.0, 1.0), (3, 7.0, 1.0), (4, 6.0, 1.0), (5, 5.0, 1.0)]);
        keyword.extend(kw(&(10..40).map(|i| (i, 4.0, 0.5)).collect::<Vec<_>>()));
        let plain = ranks(&keyword, 3);
        assert!(plain(3) > 0 && plain(1) < SEAT, "keyword's best keeps a seat");
        // A weak list (its best holds some of the words, and semantic lacks it) leaves the
        // semantic order, but its best still takes the last seat.
        let weak = kw(&[(1, 9.0, 0.6), (2, 8.0, 0.5)]);
        let seated = fuse(&weak, &sem, Mode::Hybrid, 3);
        assert_eq!(seated.iter().take(SEAT - 1).map(|f| f.0).collect::<Vec<_>>(), (100..109).collect::<Vec<_>>());
        assert_eq!(seated[SEAT - 1].0, 1, "{seated:?}");
        assert!(seated.windows(2).all(|w| w[0].1 >= w[1].1), "scores in rank order: {seated:?}");
        for i in [2, 3, 4, 5] {
            keyword[i - 1].phrase = true;
        }
        let marked = fuse(&keyword, &sem, Mode::Hybrid, 3);
        let first: Vec<i64> = marked.iter().take(PROMOTED).map(|f| f.0).collect();
        assert_eq!(first, [2, 3, 4], "phrases first, in fused order, at most {PROMOTED}: {marked:?}");
        assert!(marked.windows(2).all(|w| w[0].1 >= w[1].1), "scores in rank order: {marked:?}");
        assert_eq!(marked[0].2, MatchKind::Phrase);
        assert!(marked.iter().any(|f| f.0 == 5 && f.2 == MatchKind::Phrase), "a phrase past the cap is still marked");
        // A long query whose every word two chunks alone hold, each above every partial hit.
        let mut keyword = kw(&[(1, 9.0, 1.0), (2, 8.0, 1.0)]);
        keyword.extend(kw(&(10..40).map(|i| (i, 6.0, 0.9)).collect::<Vec<_>>()));
        let long = ranks(&keyword, LONG_QUERY);
        assert_eq!((long(1), long(2)), (0, 1));
        let short = ranks(&keyword, LONG_QUERY - 1);
        assert!(short(2) > 1, "a short query keeps the fused order");
        // A partial hit above them in BM25, or three chunks holding every word: no promise.
        keyword[2].score = 9.5;
        assert!(ranks(&keyword, LONG_QUERY)(2) > 1);
        let keyword = kw(&[(1, 9.0, 1.0), (2, 8.0, 1.0), (3, 7.5, 1.0)]);
        assert!(ranks(&keyword, LONG_QUERY)(3) > 2);
        // Keyword mode marks phrases and keeps BM25's order.
        let mut keyword = kw(&[(7, 10.0, 1.0), (8, 9.0, 1.0)]);
        keyword[1].phrase = true;
        let kinds: Vec<_> = fuse(&keyword, &[], Mode::Keyword, 3).iter().map(|f| (f.0, f.2)).collect();
        assert_eq!(kinds, [(7, MatchKind::Keyword), (8, MatchKind::Phrase)]);
    }

    #[test]
    fn scores_stay_in_rank_order_past_the_head() {
        // Lists longer than the head: a weak keyword list whose hits follow the semantic head,
        // and a tail whose z-scores, taken over the whole lists, would stand above the head's.
        let sem: Vec<(i64, f32)> = (0..60).map(|i| (100 + i, 0.9 - 0.01 * i as f32)).collect();
        let keyword = kw(&(0..60).map(|i| (200 + i, 9.0 - 0.1 * i as f32, 0.4)).collect::<Vec<_>>());
        let fused = fuse(&keyword, &sem, Mode::Hybrid, 3);
        assert_eq!(fused.len(), 120);
        assert!(fused.windows(2).all(|w| w[0].1 >= w[1].1), "{fused:?}");
    }

    #[test]
    fn one_empty_list_gives_the_other_as_it_is() {
        let sem = vec![(3, 0.9), (4, 0.8)];
        let fused = fuse(&[], &sem, Mode::Hybrid, 3);
        assert_eq!(fused.iter().map(|f| f.0).collect::<Vec<_>>(), vec![3, 4]);
        let keyword = kw(&[(1, 2.0, 1.0), (2, 1.0, 0.5)]);
        assert_eq!(fuse(&keyword, &[], Mode::Hybrid, 3).iter().map(|f| f.0).collect::<Vec<_>>(), vec![1, 2]);
    }
}

//! A query answered, as plain blocking functions: what the search thread runs, and what a
//! benchmark times (keystroke to results, with the model warm).

use anyhow::Result;

use crate::embed::{Embedder, InputKind};
use crate::search::{Mode, Query, Searcher};

use super::Found;
use super::neighbours;

/// The searcher's results for `query` with each hit's neighbourhood. Without `vector`, semantic
/// and hybrid queries fall back to what the searcher can do with words alone.
pub fn answer(searcher: &Searcher, query: &Query, vector: Option<&[f32]>) -> Result<Found> {
    let results = searcher.search(query, vector)?;
    let contexts =
        results.hits.iter().map(|h| neighbours::context(&searcher.store, h.chunk_id).ok().flatten()).collect();
    Ok(Found { results, contexts })
}

/// The keyword results shown at once, while the query's embedding is on its way.
pub fn keyword_answer(searcher: &Searcher, query: &Query) -> Result<Found> {
    answer(searcher, &Query { mode: Mode::Keyword, ..query.clone() }, None)
}

/// The query's vector, as the index's documents were embedded to be compared with.
pub fn embed_query(embedder: &mut dyn Embedder, text: &str) -> Result<Vec<f32>> {
    let mut embedded = embedder.embed(&[text], InputKind::Query)?;
    embedded.vectors.pop().ok_or_else(|| anyhow::anyhow!("the model returned no vector"))
}

/// Everything a keystroke costs when the model is warm: the embedding (when the mode needs one),
/// the search and the neighbourhoods. The searcher must have its vectors loaded
/// ([`Searcher::load_vectors`]) for semantic results.
pub fn answer_with_model(searcher: &Searcher, embedder: &mut dyn Embedder, query: &Query) -> Result<Found> {
    let vector = if query.mode.needs_vectors() { Some(embed_query(embedder, &query.text)?) } else { None };
    answer(searcher, query, vector.as_deref())
}

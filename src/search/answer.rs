//! A query answered as an interactive client shows it: the results with each hit's neighbouring
//! chunks. Plain blocking functions: what the TUI's search thread runs, and what a benchmark
//! times (keystroke to results, with the model warm).

use anyhow::Result;

use crate::embed::{Embedder, InputKind};
use crate::store::read::ChunkSpan;

use super::{Mode, Query, Results, Searcher};

/// A hit's chunk and its neighbours (sequence -1 and +1 when they exist), in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Neighbourhood {
    pub pieces: Vec<ChunkSpan>,
}

#[derive(Debug, Clone, Default)]
pub struct Found {
    pub results: Results,
    /// Each hit's neighbourhood, in hit order (None when it could not be read).
    pub contexts: Vec<Option<Neighbourhood>>,
}

/// The searcher's results for `query` with each hit's neighbourhood. Without `vector`, semantic
/// and hybrid queries fall back to what the searcher can do with words alone.
pub fn answer(searcher: &Searcher, query: &Query, vector: Option<&[f32]>) -> Result<Found> {
    let results = searcher.search(query, vector)?;
    let contexts = results
        .hits
        .iter()
        .map(|h| searcher.neighbours(h.chunk_id).ok().flatten().map(|pieces| Neighbourhood { pieces }))
        .collect();
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

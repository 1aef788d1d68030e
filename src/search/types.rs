//! What a search is asked and what it answers: the mode, the query, the hits and why a semantic
//! query could be answered by keyword alone.

use super::Filter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Hybrid,
    Semantic,
    Keyword,
}

impl Mode {
    pub fn next(self) -> Mode {
        match self {
            Mode::Hybrid => Mode::Semantic,
            Mode::Semantic => Mode::Keyword,
            Mode::Keyword => Mode::Hybrid,
        }
    }
    pub fn needs_vectors(self) -> bool {
        self != Mode::Keyword
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s.to_ascii_lowercase().as_str() {
            "hybrid" => Ok(Mode::Hybrid),
            "semantic" => Ok(Mode::Semantic),
            "keyword" => Ok(Mode::Keyword),
            other => Err(format!("unknown mode {other:?}: use hybrid, semantic or keyword")),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Hybrid => "hybrid",
            Mode::Semantic => "semantic",
            Mode::Keyword => "keyword",
        })
    }
}

#[derive(Debug, Clone)]
pub struct Query {
    pub text: String,
    pub k: usize,
    pub mode: Mode,
    /// Which files to look in (path, type, tag, modification time).
    pub filter: Filter,
    /// Most hits one document may place in the results.
    pub per_doc: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchKind {
    Keyword,
    Semantic,
    Both,
    /// The chunk holds the query's words in the order they were typed (see `search::phrase`).
    Phrase,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Hit {
    pub chunk_id: i64,
    pub doc_id: i64,
    pub path: String,
    pub title: String,
    pub heading: String,
    pub line: usize,
    pub end_line: usize,
    /// The first stage's score (hybrid, semantic or keyword).
    pub score: f32,
    /// The reranker's score, when this hit was reranked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank_score: Option<f32>,
    #[serde(rename = "match")]
    pub kind: MatchKind,
    pub snippet: String,
    /// Byte ranges in `snippet` where query words occur.
    pub marks: Vec<(usize, usize)>,
    /// The document's tags (a Markdown note's frontmatter and `#tags`), sorted.
    pub tags: Vec<String>,
    /// The note's own date (its frontmatter's), else the file's modification time: RFC 3339 in
    /// local time, the date `since` and `until` filter by.
    pub date: String,
    #[serde(skip)]
    pub text: String,
}

impl Hit {
    /// The day of [`Hit::date`] (`2026-11-01`).
    pub fn day(&self) -> &str {
        self.date.get(..10).unwrap_or(&self.date)
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Results {
    pub hits: Vec<Hit>,
    /// Chunks whose vectors are not computed yet: semantic results cover only the rest.
    pub pending: u64,
    /// Why semantic results are missing, when they are.
    pub semantic_note: Option<KeywordOnly>,
    /// The filter held no indexed file, so nothing was searched: the filter in words.
    pub no_file_matches: Option<String>,
    /// No hit held the query's quoted phrases, so these hits are without them: the phrases,
    /// each in quotes.
    pub phrases_missing: Option<String>,
}

/// Why a semantic or hybrid query was answered with keyword results alone. Each reason has one
/// wording, wherever it is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeywordOnly {
    /// The query's vector is not computed yet (the model is loading).
    ModelLoading,
    /// The index has no vector graph yet.
    NoVectors,
    /// Nothing in the index was embedded yet, so there is no model to load.
    NoModel,
    /// The index's model could not be loaded, and why.
    ModelUnavailable(String),
    /// The vector file could not be read.
    VectorFileUnreadable,
    /// No index to search yet.
    NoIndex,
}

impl std::fmt::Display for KeywordOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match self {
            KeywordOnly::ModelLoading => "the model is not loaded yet".to_string(),
            KeywordOnly::NoVectors => "the index has no vectors yet".to_string(),
            KeywordOnly::NoModel => "the index has no embeddings yet".to_string(),
            KeywordOnly::ModelUnavailable(e) => format!("semantic search is unavailable ({e})"),
            KeywordOnly::VectorFileUnreadable => "the vector file cannot be read".to_string(),
            KeywordOnly::NoIndex => "no index yet".to_string(),
        };
        write!(f, "{why}: keyword results only")
    }
}

impl serde::Serialize for KeywordOnly {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A chunk the keyword index found for a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeywordHit {
    pub chunk_id: i64,
    /// BM25, higher is better.
    pub score: f32,
    /// Whether the chunk holds every query word.
    pub every_word: bool,
    /// The share of the query's words the chunk holds, each weighted by its rarity (IDF): 1
    /// with every word.
    pub coverage: f32,
    /// Whether the chunk holds the whole query as a phrase (its words in order, adjacent).
    pub phrase: bool,
}

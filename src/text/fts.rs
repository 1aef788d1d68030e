//! Text for the keyword index. SQLite's unicode61 tokenizer splits on spaces and punctuation,
//! which finds nothing inside Chinese or Japanese text (no spaces), and keeps `HttpClient` one
//! word. So each CJK character is written as its own token, and each identifier with several
//! words ([`ident::parts`]) is written as its parts followed by the whole, lowercased and joined
//! (`HttpClient` -> `Http Client httpclient`, `parse_config` -> `parse config parseconfig`):
//! "http client" matches the parts, `HttpClient` or `http_client` the whole. Queries get the
//! same treatment ([`query_keys`]): a CJK run becomes a phrase of characters, an identifier
//! matches its whole or the phrase of its parts. All of it works with BM25 unchanged.

use super::ident;

pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF   // Hiragana, Katakana
        | 0x3400..=0x4DBF // CJK Extension A
        | 0x4E00..=0x9FFF // CJK Unified Ideographs
        | 0xAC00..=0xD7AF // Hangul syllables
        | 0xF900..=0xFAFF // CJK Compatibility Ideographs
        | 0x20000..=0x2FFFF)
}

/// Writes CJK characters as separate tokens and identifiers as their parts and their whole;
/// other text is left as it is.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    let mut word: Option<usize> = None;
    for (i, c) in text.char_indices() {
        let cjk = is_cjk(c);
        if !cjk && ident::is_ident_char(c) {
            word.get_or_insert(i);
            continue;
        }
        if let Some(start) = word.take() {
            push_word(&mut out, &text[start..i]);
        }
        if cjk {
            out.push(' ');
            out.push(c);
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    if let Some(start) = word {
        push_word(&mut out, &text[start..]);
    }
    out
}

fn push_word(out: &mut String, word: &str) {
    let parts = ident::parts(word);
    if parts.len() < 2 {
        out.push_str(word);
        return;
    }
    for p in &parts {
        out.push_str(p);
        out.push(' ');
    }
    out.extend(parts.iter().flat_map(|p| p.chars()).flat_map(char::to_lowercase));
}

/// One word of a query as the keyword index matches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// The word, lowercased (for an identifier, its parts joined: `httpclient`).
    pub word: String,
    /// The token sequences that match it, each a phrase: the word itself, and for an identifier
    /// also its parts (`["httpclient", "http client"]`); for a CJK run, its characters.
    pub phrases: Vec<String>,
}

impl Term {
    /// A phrase of several tokens (CJK run, identifier): never dropped as too common.
    pub fn is_compound(&self) -> bool {
        self.phrases.len() > 1 || self.phrases.first().is_some_and(|p| p.contains(' '))
    }
}

/// The words of a query as qsearch matches them: lowercase runs of letters and digits (an
/// identifier also by its parts), each CJK run kept whole (it becomes a phrase).
pub fn query_keys(query: &str) -> Vec<Term> {
    // Each once, by a set: looking each up in those before took time growing with the square of
    // the query's length (a query of 12,800 words took 2.5 s, issue 25).
    let mut terms: Vec<Term> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut push = |t: Term| {
        if seen.insert((t.word.clone(), t.phrases.clone())) {
            terms.push(t);
        }
    };
    for (run, cjk) in runs(query) {
        if cjk {
            let spaced = segment(run).split_whitespace().collect::<Vec<_>>().join(" ");
            push(Term { word: run.to_string(), phrases: vec![spaced] });
            continue;
        }
        let parts = ident::parts(run);
        if parts.is_empty() {
            continue;
        }
        let lower: Vec<String> = parts.iter().map(|p| p.to_lowercase()).collect();
        let word = lower.concat();
        let mut phrases = vec![word.clone()];
        if lower.len() > 1 {
            phrases.push(lower.join(" "));
        }
        push(Term { word, phrases });
    }
    terms
}

/// The words of a query to mark in a hit's text (lowercase): each word as typed, and an
/// identifier's parts.
pub fn query_terms(query: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (run, cjk) in runs(query) {
        let mut add = |w: String| {
            if !w.is_empty() && seen.insert(w.clone()) {
                out.push(w);
            }
        };
        add(run.to_lowercase());
        if !cjk {
            let parts = ident::parts(run);
            if parts.len() > 1 {
                parts.iter().for_each(|p| add(p.to_lowercase()));
            }
        }
    }
    out
}

/// A query's runs of identifier characters and of CJK characters, with whether each is CJK.
fn runs(query: &str) -> Vec<(&str, bool)> {
    let mut out = Vec::new();
    let mut start: Option<(usize, bool)> = None;
    for (i, c) in query.char_indices() {
        let class = if is_cjk(c) {
            Some(true)
        } else if ident::is_ident_char(c) {
            Some(false)
        } else {
            None
        };
        match (start, class) {
            (Some((_, a)), Some(b)) if a == b => {}
            (s, class) => {
                if let Some((from, cjk)) = s {
                    out.push((&query[from..i], cjk));
                }
                start = class.map(|cjk| (i, cjk));
            }
        }
    }
    if let Some((from, cjk)) = start {
        out.push((&query[from..], cjk));
    }
    out.retain(|(run, cjk)| *cjk || run.chars().any(char::is_alphanumeric));
    out
}

/// English words that carry no topic: a question ("how to sort a list in python") matches on
/// them anywhere, and in code, where they are rare, BM25 even weighs them high. Keyword queries
/// leave them out when other words remain.
const STOPWORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "but", "by", "can", "could", "do", "does", "for", "from",
    "get", "got", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "of", "on", "or",
    "should", "so", "that", "the", "their", "them", "then", "there", "these", "this", "to", "using", "was", "way",
    "we", "what", "when", "where", "which", "while", "who", "why", "will", "with", "would", "you", "your",
];

/// Whether a query word is one of [`STOPWORDS`].
pub fn is_stopword(word: &str) -> bool {
    STOPWORDS.binary_search(&word).is_ok()
}

/// Whether a keyword match needs every query word or any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    All,
    Any,
}

/// An FTS5 MATCH expression over the query's words. Every phrase is quoted, so no user input is
/// read as FTS5 syntax. `None` when nothing is left.
pub fn match_expr(query: &str, join: Join) -> Option<String> {
    terms_expr(&query_keys(query), join)
}

/// The same, over terms already chosen (see [`query_keys`]).
pub fn terms_expr(terms: &[Term], join: Join) -> Option<String> {
    if terms.is_empty() {
        return None;
    }
    let quote = |p: &String| format!("\"{}\"", p.replace('"', ""));
    let each: Vec<String> = terms
        .iter()
        .map(|t| match t.phrases.as_slice() {
            [one] => quote(one),
            many => format!("({})", many.iter().map(quote).collect::<Vec<_>>().join(" OR ")),
        })
        .collect();
    Some(each.join(if join == Join::All { " AND " } else { " OR " }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each word was looked up in those before it: 12,800 words took 2.5 s, 100,000 minutes.
    #[test]
    fn query_words_deduplicated_in_quadratic_time() {
        let query: String = (0..200_000).map(|i| format!("w{} HttpClient{} ", i % 150_000, i % 7)).collect();
        let keys = query_keys(&query);
        assert_eq!(keys.len(), 150_007);
        assert_eq!(
            (keys[0].word.as_str(), keys[1].phrases.as_slice()),
            ("w0", &["httpclient0".into(), "http client0".into()][..])
        );
        assert_eq!(query_terms(&query).len(), 150_000 + 7 + 1 + 7, "words, identifiers, `http`, `client0`..");
    }

    #[test]
    fn cjk_is_split_into_tokens() {
        assert_eq!(segment("用Rust写"), " 用 Rust 写 ");
    }

    #[test]
    fn identifiers_are_written_as_parts_and_whole() {
        assert_eq!(
            segment("let c = HttpClient::new(max_file_mb);"),
            "let c = Http Client httpclient::new(max file mb maxfilemb);"
        );
        assert_eq!(segment("os.path.join"), "os.path.join");
        assert_eq!(segment("__init__ x"), "__init__ x");
        assert_eq!(segment("写parseConfig"), " 写 parse Config parseconfig");
    }

    #[test]
    fn queries_are_quoted_and_cjk_runs_become_phrases() {
        assert_eq!(match_expr("borrow checker", Join::Any), Some("\"borrow\" OR \"checker\"".into()));
        assert_eq!(match_expr("borrow checker", Join::All), Some("\"borrow\" AND \"checker\"".into()));
        assert_eq!(match_expr("向量 search", Join::Any), Some("\"向 量\" OR \"search\"".into()));
        assert_eq!(match_expr("\"; DROP TABLE x --", Join::Any), Some("\"drop\" OR \"table\" OR \"x\"".into()));
        assert_eq!(match_expr("  -- ", Join::All), None);
    }

    #[test]
    fn stopwords_are_known() {
        assert!(STOPWORDS.windows(2).all(|w| w[0] < w[1]), "sorted, for binary search");
        assert!(is_stopword("how") && is_stopword("the") && !is_stopword("python"));
    }

    #[test]
    fn query_identifiers_match_whole_or_parts() {
        assert_eq!(match_expr("HttpClient", Join::All), Some("(\"httpclient\" OR \"http client\")".into()));
        assert_eq!(
            match_expr("parse_config file", Join::All),
            Some("(\"parseconfig\" OR \"parse config\") AND \"file\"".into())
        );
        assert_eq!(match_expr("max-file-mb", Join::All), Some("\"max\" AND \"file\" AND \"mb\"".into()));
        assert_eq!(match_expr("os.path.join", Join::Any), Some("\"os\" OR \"path\" OR \"join\"".into()));
        assert_eq!(match_expr("__", Join::Any), None);
        assert_eq!(query_terms("HttpClient 向量"), vec!["httpclient", "http", "client", "向量"]);
        assert!(query_keys("parse_config")[0].is_compound());
        assert!(!query_keys("parse")[0].is_compound());
    }
}

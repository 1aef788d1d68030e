//! Text for the keyword index. SQLite's unicode61 tokenizer splits on spaces and punctuation,
//! which finds nothing inside Chinese or Japanese text (no spaces). So each CJK character is
//! written as its own token, and a CJK run in a query becomes a phrase of characters: bigram-free,
//! but precise enough, and it works with BM25 unchanged.

pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF   // Hiragana, Katakana
        | 0x3400..=0x4DBF // CJK Extension A
        | 0x4E00..=0x9FFF // CJK Unified Ideographs
        | 0xAC00..=0xD7AF // Hangul syllables
        | 0xF900..=0xFAFF // CJK Compatibility Ideographs
        | 0x20000..=0x2FFFF)
}

/// Writes CJK characters as separate tokens; other text is left as it is.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    for c in text.chars() {
        if is_cjk(c) {
            out.push(' ');
            out.push(c);
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// The words of a query as qsearch matches them: lowercase runs of letters and digits, with
/// each CJK run kept whole (it becomes a phrase).
pub fn query_terms(query: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut word = String::new();
    let mut cjk = String::new();
    let flush = |buf: &mut String, terms: &mut Vec<String>| {
        if !buf.is_empty() {
            terms.push(std::mem::take(buf));
        }
    };
    for c in query.chars() {
        if is_cjk(c) {
            flush(&mut word, &mut terms);
            cjk.push(c);
        } else if c.is_alphanumeric() || c == '_' {
            flush(&mut cjk, &mut terms);
            word.extend(c.to_lowercase());
        } else {
            flush(&mut word, &mut terms);
            flush(&mut cjk, &mut terms);
        }
    }
    flush(&mut word, &mut terms);
    flush(&mut cjk, &mut terms);
    terms.dedup();
    terms
}

/// Whether a keyword match needs every query word or any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    All,
    Any,
}

/// An FTS5 MATCH expression over the query's words. Every term is quoted, so no user input is
/// read as FTS5 syntax. `None` when nothing is left.
pub fn match_expr(query: &str, join: Join) -> Option<String> {
    terms_expr(&query_terms(query), join)
}

/// The same, over terms already chosen (see [`query_terms`]).
pub fn terms_expr(terms: &[String], join: Join) -> Option<String> {
    if terms.is_empty() {
        return None;
    }
    let quoted: Vec<String> = terms
        .iter()
        .map(|t| {
            let spaced = segment(t);
            format!("\"{}\"", spaced.split_whitespace().collect::<Vec<_>>().join(" ").replace('"', ""))
        })
        .collect();
    Some(quoted.join(if join == Join::All { " AND " } else { " OR " }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cjk_is_split_into_tokens() {
        assert_eq!(segment("用Rust写"), " 用 Rust 写 ");
    }

    #[test]
    fn queries_are_quoted_and_cjk_runs_become_phrases() {
        assert_eq!(match_expr("borrow checker", Join::Any), Some("\"borrow\" OR \"checker\"".into()));
        assert_eq!(match_expr("borrow checker", Join::All), Some("\"borrow\" AND \"checker\"".into()));
        assert_eq!(match_expr("向量 search", Join::Any), Some("\"向 量\" OR \"search\"".into()));
        assert_eq!(match_expr("\"; DROP TABLE x --", Join::Any), Some("\"drop\" OR \"table\" OR \"x\"".into()));
        assert_eq!(match_expr("  -- ", Join::All), None);
    }
}

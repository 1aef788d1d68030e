//! Phrases: the query's words in the order they were typed, found in a chunk's text. A user who
//! remembers a sentence of a note types it, and the chunk holding it is the answer whatever the
//! two ranked lists say ([`super::fuse`] puts such chunks first); `"quoted words"` in a query
//! must appear as a phrase in every hit.
//!
//! Text and query are cut into the same words: lowercase runs of letters and digits, an
//! identifier by its parts (`HttpClient` -> `http client`, `g_` -> `g`), each CJK character a
//! word of its own; punctuation and Markdown marks between words are passed over, so
//! "See :h g for more details" is found in ``See `:h g_` for more details.``.

use crate::text::fts::is_cjk;
use crate::text::ident;

/// A query's phrases: the whole query, and the quoted parts that every hit must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Phrases {
    /// Every word of the query, quotes left out, in order.
    pub whole: Vec<String>,
    /// Each `"quoted"` part's words (an unclosed quote runs to the end of the query).
    pub required: Vec<Vec<String>>,
}

impl Phrases {
    pub fn of(query: &str) -> Phrases {
        let whole = words(query);
        let required = query.split('"').skip(1).step_by(2).map(words).filter(|w| !w.is_empty()).collect();
        Phrases { whole, required }
    }

    /// Whether the whole query is a phrase worth looking for: two words or more.
    pub fn has_whole(&self) -> bool {
        self.whole.len() >= 2
    }

    /// Whether `text` holds every required phrase.
    pub fn required_in(&self, text: &[String]) -> bool {
        self.required.iter().all(|p| holds(text, p))
    }
}

/// The words of `text` as phrases are matched (see the module's doc).
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut run: Option<usize> = None;
    let flush = |out: &mut Vec<String>, run: &str| {
        out.extend(
            ident::parts(run).into_iter().filter(|p| p.chars().any(char::is_alphanumeric)).map(str::to_lowercase),
        )
    };
    for (i, c) in text.char_indices() {
        let cjk = is_cjk(c);
        if !cjk && ident::is_ident_char(c) {
            run.get_or_insert(i);
            continue;
        }
        if let Some(start) = run.take() {
            flush(&mut out, &text[start..i]);
        }
        if cjk {
            out.push(c.to_string());
        }
    }
    if let Some(start) = run {
        flush(&mut out, &text[start..]);
    }
    out
}

/// Whether `phrase` occurs in `text`, word after word.
pub fn holds(text: &[String], phrase: &[String]) -> bool {
    !phrase.is_empty() && text.windows(phrase.len()).any(|w| w == phrase)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        words(s)
    }

    #[test]
    fn words_pass_over_marks_and_split_identifiers() {
        assert_eq!(w("See `:h g_` for more details."), ["see", "h", "g", "for", "more", "details"]);
        assert_eq!(w("HttpClient::new(max_file)"), ["http", "client", "new", "max", "file"]);
        assert_eq!(w("向量search"), ["向", "量", "search"]);
        assert_eq!(w(" -- __ "), Vec::<String>::new());
    }

    #[test]
    fn a_phrase_is_its_words_in_order_and_adjacent() {
        let text = w("There's [an extensive StackOverflow thread](https://x.y) about this.");
        assert!(holds(&text, &w("an extensive StackOverflow thread")));
        assert!(holds(&text, &w("there s an extensive")));
        assert!(!holds(&text, &w("extensive an")));
        assert!(!holds(&text, &w("extensive thread")));
        assert!(!holds(&text, &[]));
        assert!(holds(&w("词向量模型"), &w("向量")));
    }

    #[test]
    fn quoted_parts_are_required_and_an_open_quote_runs_to_the_end() {
        let p = Phrases::of(r#"rust "borrow checker" errors "lifetime elision"#);
        assert_eq!(p.whole, w("rust borrow checker errors lifetime elision"));
        assert_eq!(p.required, vec![w("borrow checker"), w("lifetime elision")]);
        assert!(p.required_in(&w("the borrow checker and lifetime elision rules")));
        assert!(!p.required_in(&w("the borrow checker and elision of lifetimes")));
        assert!(Phrases::of(r#"a "" b"#).required.is_empty());
        assert!(Phrases::of("plain words").required_in(&w("anything")));
        assert!(!Phrases::of("one").has_whole() && Phrases::of("two words").has_whole());
    }
}

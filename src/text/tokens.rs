//! A document's token offsets without running the tokenizer's regex over it. For byte-level BPE
//! tokenizers that pre-tokenize with the GPT-4-style pattern Qwen uses (and NFC), almost all the
//! time of `Tokenizer::encode` goes to that regex (measured on rust-book: the pre-tokenizer alone
//! 1.8 MB/s, the whole encode 1.4 MB/s). Here the pattern is matched by hand ([`piece_end`]),
//! and each piece's tokens are looked up in a per-thread cache, filled by the tokenizer's own BPE
//! model on the piece's bytes in the byte-level alphabet: BPE never crosses a piece, so this is
//! what encoding the document gives. A token holding part of a character spans the whole
//! character, as in `encode`.
//! An added token in the text (`<|endoftext|>`) is one token, and the text between added tokens
//! is pre-tokenized on its own, as `encode` does. Anything outside that (another pattern, text
//! that NFC would change, added tokens with stripping rules) returns `None`: the caller encodes
//! as before.
//! `tests/chunk_tokens.rs` holds the offsets equal to `encode`'s.

use std::cell::RefCell;
use std::collections::HashMap;

use aho_corasick::{AhoCorasick, MatchKind};
use tokenizers::{Model, ModelWrapper, Tokenizer};
use unicode_general_category::{GeneralCategory as G, get_general_category};
use unicode_normalization::{IsNormalized, is_nfc_quick};

/// The pre-tokenizer pattern this module matches by hand.
const PATTERN: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Pieces kept per thread before the cache starts afresh (a few MB).
const CACHE_LIMIT: usize = 200_000;

/// What one tokenizer allows, worked out once per thread.
struct Plan {
    key: u64,
    /// The pattern and normalizer are the ones handled here.
    eligible: bool,
    /// Finds added tokens' text, leftmost-longest as the tokenizer does; `None` when there are
    /// none.
    added: Option<AhoCorasick>,
    /// The added tokens match as they are (no stripping of spaces around them, no word rule):
    /// else a document holding one is encoded whole.
    added_plain: bool,
    /// Piece -> its tokens' byte offsets within it.
    cache: HashMap<Box<str>, Box<[(u32, u32)]>>,
    /// Byte -> the byte-level alphabet's character (GPT-2's `bytes_to_unicode`).
    alphabet: [char; 256],
}

thread_local! {
    static PLAN: RefCell<Option<Plan>> = const { RefCell::new(None) };
}

/// Token byte offsets of `doc` as `tokenizer.encode(doc, false)` gives them, or `None` when this
/// tokenizer or text is not one the fast path handles, or `QSEARCH_EXACT_TOKENIZER` is set (the
/// tokenizer's own path everywhere: a switch for benchmarks, and a way out should a tokenizer
/// ever disagree).
pub fn offsets(tokenizer: &Tokenizer, doc: &str) -> Option<Vec<(usize, usize)>> {
    if std::env::var_os("QSEARCH_EXACT_TOKENIZER").is_some() {
        return None;
    }
    let key = identity(tokenizer);
    PLAN.with(|plan| {
        let mut plan = plan.borrow_mut();
        if plan.as_ref().is_none_or(|p| p.key != key) {
            *plan = Some(make_plan(tokenizer, key));
        }
        let plan = plan.as_mut().expect("set above");
        if !plan.eligible || is_nfc_quick(doc.chars()) != IsNormalized::Yes {
            return None;
        }
        // Added tokens in the text, each one token; the text between them goes on its own.
        let found: Vec<(usize, usize)> = match &plan.added {
            Some(ac) => ac.find_iter(doc).map(|m| (m.start(), m.end())).collect(),
            None => Vec::new(),
        };
        if !found.is_empty() && !plan.added_plain {
            return None;
        }
        if plan.cache.len() > CACHE_LIMIT {
            plan.cache.clear();
        }
        let mut out = Vec::with_capacity(doc.len() / 4);
        let mut at = 0;
        for (start, end) in found.into_iter().chain([(doc.len(), doc.len())]) {
            plan.pieces(tokenizer, &doc[at..start], at, &mut out)?;
            if start < end {
                out.push((start, end));
            }
            at = end;
        }
        Some(out)
    })
}

impl Plan {
    /// The tokens of `text` (which starts at byte `base` of the document) onto `out`.
    fn pieces(&mut self, tokenizer: &Tokenizer, text: &str, base: usize, out: &mut Vec<(usize, usize)>) -> Option<()> {
        let mut at = 0;
        while at < text.len() {
            let end = piece_end(text, at);
            let piece = &text[at..end];
            let from = base + at;
            if let Some(tokens) = self.cache.get(piece) {
                out.extend(tokens.iter().map(|&(s, e)| (from + s as usize, from + e as usize)));
            } else {
                let tokens = piece_tokens(tokenizer, &self.alphabet, piece)?;
                out.extend(tokens.iter().map(|&(s, e)| (from + s as usize, from + e as usize)));
                self.cache.insert(piece.into(), tokens);
            }
            at = end;
        }
        Some(())
    }
}

/// A piece's tokens by the BPE model alone, as byte offsets within the piece.
fn piece_tokens(tokenizer: &Tokenizer, alphabet: &[char; 256], piece: &str) -> Option<Box<[(u32, u32)]>> {
    let mapped: String = piece.bytes().map(|b| alphabet[b as usize]).collect();
    let tokens = tokenizer.get_model().tokenize(&mapped).ok()?;
    let mut at = 0;
    let mut out = Vec::with_capacity(tokens.len());
    for token in tokens {
        // One character of the alphabet per byte of the piece.
        let bytes = token.value.chars().count();
        let (mut start, mut end) = (at, at + bytes);
        at = end;
        while !piece.is_char_boundary(start) {
            start -= 1;
        }
        while !piece.is_char_boundary(end) {
            end += 1;
        }
        out.push((start as u32, end as u32));
    }
    (at == piece.len()).then(|| out.into_boxed_slice())
}

/// GPT-2's `bytes_to_unicode`: printable bytes stand for themselves, the others for 256 + n.
fn byte_alphabet() -> [char; 256] {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut out = ['\0'; 256];
    let mut n = 0;
    for b in 0..=255u8 {
        out[b as usize] = if printable(b) {
            char::from(b)
        } else {
            n += 1;
            char::from_u32(255 + n).expect("below the surrogates")
        };
    }
    out
}

/// Tells tokenizers apart well enough for a cache: the vocabulary's size and a few ids.
fn identity(tokenizer: &Tokenizer) -> u64 {
    let mut key = tokenizer.get_vocab_size(true) as u64;
    for probe in ["the", "Ġthe", "Ġ", "ing", "<|endoftext|>"] {
        key = key.wrapping_mul(1_000_003).wrapping_add(tokenizer.token_to_id(probe).map_or(u64::MAX, u64::from));
    }
    key
}

fn make_plan(tokenizer: &Tokenizer, key: u64) -> Plan {
    let json = |v: Option<serde_json::Value>| v.unwrap_or(serde_json::Value::Null);
    let pre = json(tokenizer.get_pre_tokenizer().and_then(|p| serde_json::to_value(p).ok()));
    let norm = json(tokenizer.get_normalizer().and_then(|n| serde_json::to_value(n).ok()));
    let expected_pre = serde_json::json!({"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": PATTERN}, "behavior": "Isolated", "invert": false},
        {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
    ]});
    let nfc = norm.is_null() || norm == serde_json::json!({"type": "NFC"});
    // A plain BPE: nothing that makes a piece's tokens depend on more than its bytes.
    let plain = match tokenizer.get_model() {
        ModelWrapper::BPE(bpe) => {
            bpe.dropout.is_none_or(|d| d == 0.0)
                && bpe.continuing_subword_prefix.as_deref().is_none_or(str::is_empty)
                && bpe.end_of_word_suffix.as_deref().is_none_or(str::is_empty)
                && !bpe.byte_fallback
                && !bpe.ignore_merges
        }
        _ => false,
    };
    let eligible = pre == expected_pre && nfc && plain;
    let added: Vec<_> = tokenizer.get_added_tokens_decoder().into_values().filter(|t| !t.content.is_empty()).collect();
    let added_plain = added.iter().all(|t| !t.lstrip && !t.rstrip && !t.single_word && !t.normalized);
    let added = (!added.is_empty())
        .then(|| {
            AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(added.iter().map(|t| &t.content)).ok()
        })
        .flatten();
    Plan { key, eligible, added, added_plain, cache: HashMap::new(), alphabet: byte_alphabet() }
}

fn is_letter(c: char) -> bool {
    matches!(
        get_general_category(c),
        G::UppercaseLetter | G::LowercaseLetter | G::TitlecaseLetter | G::ModifierLetter | G::OtherLetter
    )
}

fn is_number(c: char) -> bool {
    matches!(get_general_category(c), G::DecimalNumber | G::LetterNumber | G::OtherNumber)
}

/// `\s`: Unicode White_Space, which is what `char::is_whitespace` tests.
fn is_space(c: char) -> bool {
    c.is_whitespace()
}

fn is_other(c: char) -> bool {
    !is_space(c) && !is_letter(c) && !is_number(c)
}

/// Bytes from `from` while `keep` holds.
fn run(s: &str, from: usize, keep: impl Fn(char) -> bool) -> usize {
    s[from..].char_indices().find(|&(_, c)| !keep(c)).map_or(s.len(), |(i, _)| from + i)
}

/// `'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d` in any case, after the apostrophe: their length.
fn contraction(after: &str) -> Option<usize> {
    let mut chars = after.chars().map(|c| if c == 'ſ' { 's' } else { c.to_ascii_lowercase() });
    let (a, b) = (chars.next()?, chars.next());
    match (a, b) {
        ('s' | 't' | 'm' | 'd', _) => Some(after.chars().next()?.len_utf8()),
        ('r' | 'v', Some('e')) | ('l', Some('l')) => Some(2),
        _ => None,
    }
}

/// Where the piece starting at byte `i` of `s` ends: the pattern's alternatives tried in order,
/// as the regex engine does.
pub fn piece_end(s: &str, i: usize) -> usize {
    let rest = &s[i..];
    let c = rest.chars().next().expect("i is inside s");
    let width = c.len_utf8();
    let next = rest[width..].chars().next();
    // (?i:'s|'t|'re|'ve|'m|'ll|'d)
    if c == '\''
        && let Some(n) = contraction(&rest[1..])
    {
        return i + 1 + n;
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if is_letter(c) {
        return run(s, i, is_letter);
    }
    if c != '\r' && c != '\n' && !is_number(c) && next.is_some_and(is_letter) {
        return run(s, i + width, is_letter);
    }
    // \p{N}
    if is_number(c) {
        return i + width;
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    let other_from = if is_other(c) {
        Some(i)
    } else if c == ' ' && next.is_some_and(is_other) {
        Some(i + 1)
    } else {
        None
    };
    if let Some(from) = other_from {
        let end = run(s, from, is_other);
        return run(s, end, |c| c == '\r' || c == '\n');
    }
    // Whitespace from here on.
    let end = run(s, i, is_space);
    // \s*[\r\n]+: up to the last line break of the run.
    if let Some(p) = s[i..end].rfind(['\r', '\n']) {
        return i + p + 1;
    }
    // \s+(?!\S): the run at the end of the text, or all of it but its last character.
    if end == s.len() {
        return end;
    }
    let last = s[i..end].chars().next_back().map_or(1, char::len_utf8);
    if end - last > i {
        return end - last;
    }
    // \s+
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < s.len() {
            let end = piece_end(s, at);
            out.push(&s[at..end]);
            at = end;
        }
        out
    }

    #[test]
    fn the_pattern_by_hand() {
        assert_eq!(pieces("Hello world"), ["Hello", " world"]);
        assert_eq!(pieces("it's WE'LL"), ["it", "'s", " WE", "'LL"]);
        assert_eq!(pieces("a  b"), ["a", " ", " b"]);
        assert_eq!(pieces("x = 42;\n\n  y"), ["x", " =", " ", "4", "2", ";\n\n", " ", " y"]);
        assert_eq!(pieces("(foo) bar!\r\n"), ["(foo", ")", " bar", "!\r\n"]);
        assert_eq!(pieces("end   "), ["end", "   "]);
        assert_eq!(pieces("\t1"), ["\t", "1"]);
        assert_eq!(pieces("所有权规则"), ["所有权规则"]);
        assert_eq!(pieces("a \n b"), ["a", " \n", " b"]);
    }
}

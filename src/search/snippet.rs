//! The part of a chunk a hit shows: a window around the first query word, with the words marked.

/// A window of a chunk's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    pub text: String,
    /// Byte ranges in `text` where query words occur.
    pub marks: Vec<(usize, usize)>,
    /// Where the window starts in the chunk's text.
    pub offset: usize,
}

/// A window of about `width` bytes around the first query word.
pub fn snippet(text: &str, terms: &[String], width: usize) -> Snippet {
    let lower = text.to_lowercase();
    // Lowercasing can change byte lengths; fall back to no marks when it does for any character
    // (a total that stays the same can hide two that do not: `İ` grows, `ẞ` shrinks).
    let same_len = lower.len() == text.len()
        && text.chars().all(|c| c.to_lowercase().map(char::len_utf8).sum::<usize>() == c.len_utf8());
    let mut found: Vec<(usize, usize)> = Vec::new();
    if same_len {
        for t in terms.iter().filter(|t| !t.is_empty()) {
            for (i, _) in lower.match_indices(t.as_str()) {
                found.push((i, i + t.len()));
            }
        }
    }
    found.sort();
    // An identifier and its parts overlap (`httpclient`, `http`): one mark covers them.
    found.dedup_by(|next, kept| {
        let overlaps = next.0 < kept.1;
        if overlaps {
            kept.1 = kept.1.max(next.1);
        }
        overlaps
    });
    let center = found.first().map(|m| m.0).unwrap_or(0);
    let mut start = center.saturating_sub(width / 3);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    if let Some(nl) = text[..center.min(text.len())].rfind('\n').filter(|&nl| nl + 1 >= start && nl < center) {
        start = nl + 1;
    }
    let mut end = (start + width).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    let window = &text[start..end];
    let marks =
        found.into_iter().filter(|&(s, e)| s >= start && e <= end).map(|(s, e)| (s - start, e - start)).collect();
    Snippet { text: window.to_string(), marks, offset: start }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_marks_words() {
        let text = "Intro line.\nThe borrow checker rejects this. More text follows here.";
        let s = snippet(text, &["borrow".into(), "checker".into()], 40);
        assert_eq!(s.offset, 12);
        assert!(s.text.starts_with("The borrow"));
        let marked: Vec<&str> = s.marks.iter().map(|&(a, b)| &s.text[a..b]).collect();
        assert_eq!(marked, vec!["borrow", "checker"]);
    }

    /// `İ` lowercases one byte longer and `ẞ` one shorter: the lowercased text kept its length, so
    /// its offsets were taken for the text's, and `ß` was found inside `ẞ` (issue 25: a panic).
    #[test]
    fn snippet_lowercase_offsets_inside_a_character() {
        let s = snippet("İẞ x", &["ß".into()], 40);
        assert_eq!((s.text.as_str(), s.marks), ("İẞ x", vec![]));
    }
}

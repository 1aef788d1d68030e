//! Wrapping styled text into rows of at most `width` cells: after a space where it can, inside a
//! word where it must. A wide character never straddles the edge.

use super::textwidth::char_width;

/// Rows of (text, tag) runs; an empty line gives one empty row.
pub fn wrap<T: Copy + PartialEq>(segments: &[(String, T)], width: usize) -> Vec<Vec<(String, T)>> {
    let chars: Vec<(char, T, usize)> =
        segments.iter().flat_map(|(s, t)| s.chars().map(move |c| (c, *t, char_width(c)))).collect();
    if chars.is_empty() {
        return vec![Vec::new()];
    }
    let mut rows = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let mut used = 0;
        let mut end = start;
        let mut after_space = None;
        while end < chars.len() && (used + chars[end].2 <= width || end == start) {
            used += chars[end].2;
            if chars[end].0 == ' ' {
                after_space = Some(end + 1);
            }
            end += 1;
        }
        let mut next = end;
        if end < chars.len() {
            if chars[end].0 == ' ' {
                next = end + 1;
            } else if let Some(b) = after_space.filter(|&b| b > start && b < end) {
                end = b;
                next = b;
            }
        }
        rows.push(group(&chars[start..end]));
        start = next;
    }
    rows
}

fn group<T: Copy + PartialEq>(chars: &[(char, T, usize)]) -> Vec<(String, T)> {
    let mut out: Vec<(String, T)> = Vec::new();
    for &(c, t, _) in chars {
        match out.last_mut() {
            Some((s, last)) if *last == t => s.push(c),
            _ => out.push((c.to_string(), t)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(rows: &[Vec<(String, u8)>]) -> Vec<String> {
        rows.iter().map(|r| r.iter().map(|(s, _)| s.as_str()).collect()).collect()
    }

    #[test]
    fn breaks_after_spaces() {
        let rows = wrap(&[("the quick brown fox".to_string(), 0u8)], 10);
        assert_eq!(texts(&rows), vec!["the quick ", "brown fox"]);
    }

    #[test]
    fn breaks_long_words_and_keeps_tags() {
        let rows = wrap(&[("abc".to_string(), 0u8), ("defgh".to_string(), 1)], 4);
        assert_eq!(texts(&rows), vec!["abcd", "efgh"]);
        assert_eq!(rows[0], vec![("abc".to_string(), 0), ("d".to_string(), 1)]);
    }

    #[test]
    fn wide_characters_do_not_straddle() {
        let rows = wrap(&[("日本語のテキスト".to_string(), 0u8)], 5);
        assert_eq!(texts(&rows), vec!["日本", "語の", "テキ", "スト"]);
    }

    #[test]
    fn empty_line_is_one_row() {
        assert_eq!(wrap::<u8>(&[], 10).len(), 1);
    }
}

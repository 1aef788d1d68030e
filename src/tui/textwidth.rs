//! Display widths in terminal cells, not bytes or chars: CJK characters take two cells, combining
//! marks none. Everything the UI truncates or pads goes through here so wide text lines up.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

pub fn char_width(c: char) -> usize {
    c.width().unwrap_or(0)
}

/// The text as a terminal should show it on one row: tabs become spaces, other control
/// characters (newlines included) are dropped.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' => out.push_str("    "),
            '\n' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The longest prefix of `s` that fits in `max` cells, ending in `…` when something was cut.
pub fn truncate_end(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = char_width(c);
        if used + w > max - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// The longest suffix of `s` that fits in `max` cells, starting with `…` when something was cut
/// (for paths, whose end says the most).
pub fn truncate_start(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut kept: Vec<char> = Vec::new();
    let mut used = 0;
    for c in s.chars().rev() {
        let w = char_width(c);
        if used + w > max - 1 {
            break;
        }
        kept.push(c);
        used += w;
    }
    std::iter::once('…').chain(kept.into_iter().rev()).collect()
}

/// `s` cut or padded with spaces to exactly `cells` cells (a wide character that would straddle
/// the end is replaced by a space).
pub fn fit(s: &str, cells: usize) -> String {
    let mut out = truncate_end(s, cells);
    let w = width(&out);
    out.extend(std::iter::repeat_n(' ', cells.saturating_sub(w)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_characters_count_twice() {
        assert_eq!(width("日本語"), 6);
        assert_eq!(truncate_end("日本語のテキスト", 7), "日本語…");
        assert_eq!(truncate_start("notes/日本語.md", 8), "…本語.md");
        assert_eq!(fit("日本", 5), "日本 ");
        assert_eq!(width(&fit("日本語", 5)), 5);
    }

    #[test]
    fn clean_removes_control_characters() {
        assert_eq!(clean("a\tb\r\nc\u{1b}"), "a    b c");
    }
}

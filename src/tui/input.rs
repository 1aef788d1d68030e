//! A one-line text field (the query, the path filter): editing at a cursor, and the window of it
//! that fits a given width with the cursor in view.

use super::textwidth::{char_width, width};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineInput {
    text: String,
    /// Byte offset, always on a char boundary.
    cursor: usize,
}

impl LineInput {
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn insert(&mut self, c: char) {
        self.text.insert(self.cursor, c);
        self.cursor += c.len_utf8();
    }

    /// Pasted text: line breaks and tabs become spaces, other control characters go.
    pub fn insert_str(&mut self, s: &str) {
        for c in s.chars() {
            match c {
                '\n' | '\r' | '\t' => self.insert(' '),
                c if c.is_control() => {}
                c => self.insert(c),
            }
        }
    }

    pub fn backspace(&mut self) -> bool {
        match self.text[..self.cursor].chars().next_back() {
            Some(c) => {
                self.cursor -= c.len_utf8();
                self.text.remove(self.cursor);
                true
            }
            None => false,
        }
    }

    pub fn delete(&mut self) -> bool {
        if self.cursor < self.text.len() {
            self.text.remove(self.cursor);
            true
        } else {
            false
        }
    }

    pub fn left(&mut self) {
        if let Some(c) = self.text[..self.cursor].chars().next_back() {
            self.cursor -= c.len_utf8();
        }
    }

    pub fn right(&mut self) {
        if let Some(c) = self.text[self.cursor..].chars().next() {
            self.cursor += c.len_utf8();
        }
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.text.len();
    }

    pub fn clear(&mut self) -> bool {
        let changed = !self.text.is_empty();
        self.text.clear();
        self.cursor = 0;
        changed
    }

    /// Deletes the word before the cursor (and the spaces after it), like a shell's Ctrl-W.
    pub fn delete_word(&mut self) -> bool {
        let before = &self.text[..self.cursor];
        let trimmed = before.trim_end_matches(' ');
        let start = trimmed.rfind(' ').map(|i| i + 1).unwrap_or(0);
        if start == self.cursor {
            return false;
        }
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
        true
    }

    /// The part of the text to show in `cells` cells and the cursor's column in it. When the text
    /// is wider, the window slides so the cursor stays visible.
    pub fn view(&self, cells: usize) -> (String, usize) {
        if cells == 0 {
            return (String::new(), 0);
        }
        let mut start = 0;
        while width(&self.text[start..self.cursor]) >= cells {
            let c = self.text[start..].chars().next().expect("cursor is after start");
            start += c.len_utf8();
        }
        let mut shown = String::new();
        let mut used = 0;
        for c in self.text[start..].chars() {
            let w = char_width(c);
            if used + w > cells {
                break;
            }
            shown.push(c);
            used += w;
        }
        (shown, width(&self.text[start..self.cursor]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> LineInput {
        let mut input = LineInput::default();
        s.chars().for_each(|c| input.insert(c));
        input
    }

    #[test]
    fn edits_at_the_cursor() {
        let mut input = typed("helo");
        input.left();
        input.insert('l');
        assert_eq!(input.text(), "hello");
        input.home();
        input.delete();
        assert_eq!(input.text(), "ello");
        input.end();
        input.backspace();
        assert_eq!(input.text(), "ell");
    }

    #[test]
    fn delete_word_like_a_shell() {
        let mut input = typed("git reflog  ");
        assert!(input.delete_word());
        assert_eq!(input.text(), "git ");
        input.delete_word();
        assert_eq!(input.text(), "");
        assert!(!input.delete_word());
    }

    #[test]
    fn view_keeps_the_cursor_visible_with_wide_text() {
        let input = typed("日本語の検索");
        let (shown, x) = input.view(6);
        assert_eq!(x, 4, "the cursor sits after the last character that fits");
        assert_eq!(shown, "検索");
        assert!(width(&shown) <= 6);
        let (shown, x) = typed("abc").view(10);
        assert_eq!((shown.as_str(), x), ("abc", 3));
    }

    #[test]
    fn paste_flattens_lines() {
        let mut input = LineInput::default();
        input.insert_str("a\nb\tc\u{7}");
        assert_eq!(input.text(), "a b c");
    }
}

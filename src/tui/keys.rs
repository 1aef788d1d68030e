//! Keys to actions, and the help table that lists them. One place decides what a key does, so
//! the help screen cannot drift from the behaviour.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Insert(char),
    Backspace,
    Delete,
    Left,
    Right,
    Home,
    End,
    ClearLine,
    DeleteWord,
    Up,
    Down,
    PageUp,
    PageDown,
    PreviewUp,
    PreviewDown,
    PreviewPageUp,
    PreviewPageDown,
    Open,
    NextMode,
    PrevMode,
    ToggleFilter,
    /// Ctrl+R: rerank the list when typing pauses (on/off).
    ToggleRerank,
    Help,
    /// Esc: close the help, leave the filter, or quit.
    Back,
    Quit,
}

/// What a key means depends on a little state.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyContext {
    pub help: bool,
    pub query_empty: bool,
    pub filter_focus: bool,
}

/// Every key, as the help screen shows it.
pub const HELP: &[(&str, &str)] = &[
    ("type", "search as you type"),
    ("↑ ↓  Ctrl+P Ctrl+N", "select a result"),
    ("PgUp PgDn", "move a page through the results"),
    ("Shift+↑ ↓  Ctrl+↑ ↓", "scroll the preview a line"),
    ("Shift+PgUp PgDn", "scroll the preview a page"),
    ("mouse wheel, click", "scroll the list or the preview; select"),
    ("Enter", "open the hit in $VISUAL / $EDITOR at its line"),
    ("Tab  Shift+Tab", "mode: hybrid → semantic → keyword"),
    ("Ctrl+F", "filter: a path (a glob; plain text matches"),
    ("", "  anywhere in it), type:rust tag:x since:7d"),
    ("", "  until:2026-01-31; Enter or Esc returns"),
    ("Ctrl+R", "rerank the list when typing pauses (on/off)"),
    ("← → Home End", "move in the line (also Ctrl+A, Ctrl+E)"),
    ("Ctrl+U  Ctrl+W", "clear the line; delete a word"),
    ("F1, or ? on an empty query", "this help (any key closes it)"),
    ("Esc  Ctrl+C", "quit"),
];

pub fn action(key: &KeyEvent, cx: KeyContext) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    let shift = key.modifiers.contains(KeyModifiers::SHIFT);
    if ctrl && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('C')) {
        return Some(Action::Quit);
    }
    if cx.help {
        return Some(Action::Back);
    }
    let action = match key.code {
        KeyCode::Esc => Action::Back,
        KeyCode::F(1) => Action::Help,
        KeyCode::Enter => Action::Open,
        KeyCode::Tab => Action::NextMode,
        KeyCode::BackTab => Action::PrevMode,
        KeyCode::Up if shift || ctrl => Action::PreviewUp,
        KeyCode::Down if shift || ctrl => Action::PreviewDown,
        KeyCode::PageUp if shift || ctrl => Action::PreviewPageUp,
        KeyCode::PageDown if shift || ctrl => Action::PreviewPageDown,
        KeyCode::Up => Action::Up,
        KeyCode::Down => Action::Down,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Left => Action::Left,
        KeyCode::Right => Action::Right,
        KeyCode::Home => Action::Home,
        KeyCode::End => Action::End,
        KeyCode::Backspace if alt || ctrl => Action::DeleteWord,
        KeyCode::Backspace => Action::Backspace,
        KeyCode::Delete => Action::Delete,
        KeyCode::Char(c) if ctrl => match c.to_ascii_lowercase() {
            'a' => Action::Home,
            'e' => Action::End,
            'f' => Action::ToggleFilter,
            'h' => Action::Backspace,
            'n' => Action::Down,
            'p' => Action::Up,
            'r' => Action::ToggleRerank,
            'u' => Action::ClearLine,
            'w' => Action::DeleteWord,
            _ => return None,
        },
        KeyCode::Char(_) if alt => return None,
        KeyCode::Char('?') if cx.query_empty && !cx.filter_focus => Action::Help,
        KeyCode::Char(c) => Action::Insert(c),
        _ => return None,
    };
    Some(action)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn question_mark_is_help_only_on_an_empty_query() {
        let k = key(KeyCode::Char('?'), KeyModifiers::SHIFT);
        assert_eq!(action(&k, KeyContext { query_empty: true, ..Default::default() }), Some(Action::Help));
        assert_eq!(action(&k, KeyContext::default()), Some(Action::Insert('?')));
    }

    #[test]
    fn ctrl_c_quits_even_in_help() {
        let k = key(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action(&k, KeyContext { help: true, ..Default::default() }), Some(Action::Quit));
        let any = key(KeyCode::Char('x'), KeyModifiers::NONE);
        assert_eq!(action(&any, KeyContext { help: true, ..Default::default() }), Some(Action::Back));
    }

    #[test]
    fn shifted_arrows_scroll_the_preview() {
        assert_eq!(action(&key(KeyCode::Down, KeyModifiers::SHIFT), KeyContext::default()), Some(Action::PreviewDown));
        assert_eq!(action(&key(KeyCode::Down, KeyModifiers::NONE), KeyContext::default()), Some(Action::Down));
    }
}

//! The top lines: the query with the search mode, the path filter, and the notice line.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};

use super::{Theme, draw_line};
use crate::tui::app::{App, Focus};
use crate::tui::input::LineInput;
use crate::tui::layout::Areas;
use crate::tui::textwidth;

const QUERY_PROMPT: &str = "search › ";
const FILTER_PROMPT: &str = "  filter › ";

pub fn render(app: &App, theme: &Theme, areas: &Areas, frame: &mut Frame) {
    let chip = format!(" {} ", app.mode);
    let show_chip = areas.query.width as usize > chip.len() + QUERY_PROMPT.len() + 10;
    let field_width = usize::from(areas.query.width)
        .saturating_sub(QUERY_PROMPT.chars().count())
        .saturating_sub(if show_chip { chip.len() + 1 } else { 0 });
    let query =
        Field { input: &app.query, prompt: QUERY_PROMPT, width: field_width, focused: app.focus == Focus::Query };
    let cursor = field(theme, query, areas.query, frame);
    if show_chip {
        let x = areas.query.right() - chip.len() as u16;
        draw_line(
            frame,
            Line::from(Span::styled(chip, theme.chip())),
            Rect::new(x, areas.query.y, areas.query.right() - x, 1),
        );
    }
    let mut cursor = cursor;
    if let Some(area) = areas.filter {
        let width = usize::from(area.width).saturating_sub(FILTER_PROMPT.chars().count());
        let filter = Field { input: &app.filter, prompt: FILTER_PROMPT, width, focused: app.focus == Focus::Filter };
        let c = field(theme, filter, area, frame);
        cursor = cursor.or(c);
        if app.focus == Focus::Filter && app.filter.is_empty() {
            let hint = "a path glob or text in the path, type:md tag:x since:7d until:2026-01-31 · Enter returns";
            let x = area.x + FILTER_PROMPT.chars().count() as u16;
            let hint = textwidth::truncate_end(hint, usize::from(area.right().saturating_sub(x)));
            draw_line(
                frame,
                Line::from(Span::styled(hint, theme.dim())),
                Rect::new(x, area.y, area.right().saturating_sub(x), 1),
            );
        }
    }
    if let (Some(area), Some(text)) = (areas.notice, app.notice_line()) {
        let shown = textwidth::truncate_end(&textwidth::clean(&text), usize::from(area.width).saturating_sub(2));
        let style = if app.error.is_some() || app.notice.is_some() { theme.error() } else { theme.notice() };
        draw_line(frame, Line::from(vec![Span::raw("  "), Span::styled(shown, style)]), area);
    }
    if let Some(position) = cursor.filter(|_| !app.help) {
        frame.set_cursor_position(position);
    }
}

/// A text field with its prompt: the text shown in `width` columns.
struct Field<'a> {
    input: &'a LineInput,
    prompt: &'a str,
    width: usize,
    focused: bool,
}

/// Draws a prompt and a text field; returns where the cursor goes when the field has the focus.
fn field(
    theme: &Theme,
    Field { input, prompt, width, focused }: Field,
    area: Rect,
    frame: &mut Frame,
) -> Option<Position> {
    let (text, cursor_x) = input.view(width);
    let prompt_style = if focused { theme.prompt() } else { theme.dim() };
    draw_line(frame, Line::from(vec![Span::styled(prompt.to_string(), prompt_style), Span::raw(text)]), area);
    let x = area.x + (prompt.chars().count() + cursor_x) as u16;
    (focused && area.height > 0 && x < area.right()).then(|| Position::new(x, area.y))
}

//! The preview pane: the selected hit in its document, neighbours dimmed, query words marked,
//! line numbers in a gutter, scrolled to the first match (or where the user scrolled it).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::{Theme, draw_line, title_bar};
use crate::tui::app::App;
use crate::tui::layout::Areas;
use crate::tui::preview::Tone;
use crate::tui::textwidth::{clean, truncate_end, truncate_start, width};

pub fn render(app: &App, theme: &Theme, areas: &Areas, frame: &mut Frame) {
    let Some((hit, _)) = app.selected_hit() else { return };
    let Some((preview, top)) = app.preview_in(areas.preview) else { return };
    let height = usize::from(areas.preview.height);
    let position = if preview.rows.len() > height {
        format!("  {}-{}/{}", top + 1, (top + height).min(preview.rows.len()), preview.rows.len())
    } else {
        String::new()
    };
    let location = format!("{}:{}", app.relative(&hit.path), hit.line);
    let heading = clean(if hit.heading.is_empty() { &hit.title } else { &hit.heading });
    let room = usize::from(areas.preview_title.width).saturating_sub(8 + position.len());
    let location = truncate_start(&location, room);
    // The day of the note (or of the file's last change), as time filters see it; left out
    // before the heading is cut.
    let day = format!(" · {}", hit.day());
    let day = if width(&location) + 3 + width(&heading) + day.len() <= room { day } else { String::new() };
    let heading = truncate_end(&heading, room.saturating_sub(width(&location) + 3 + day.len()));
    let mut spans = vec![Span::styled(location, theme.path())];
    if !heading.is_empty() {
        spans.push(Span::styled(format!(" · {heading}"), theme.heading()));
    }
    spans.push(Span::styled(day, theme.dim()));
    spans.push(Span::styled(position, theme.dim()));
    draw_line(frame, title_bar(spans, areas.preview_title.width, theme), areas.preview_title);
    for (i, row) in preview.rows.iter().skip(top).take(height).enumerate() {
        let number = row
            .number
            .map(|n| format!("{n:>w$} ", w = preview.gutter - 1))
            .unwrap_or_else(|| " ".repeat(preview.gutter));
        let mut spans = vec![Span::styled(number, theme.dim())];
        spans.extend(row.spans.iter().map(|(text, tone)| {
            let style = match tone {
                Tone::Around => theme.dim(),
                Tone::Hit => theme.plain(),
                Tone::Mark => theme.mark(),
            };
            Span::styled(text.clone(), style)
        }));
        let area = Rect::new(areas.preview.x, areas.preview.y + i as u16, areas.preview.width, 1);
        draw_line(frame, Line::from(spans), area);
    }
}

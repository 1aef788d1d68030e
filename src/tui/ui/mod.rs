//! Drawing: a pure function of the app's state onto a frame. Nothing here changes state.
//!
//! Top to bottom: the query line (and the path filter, and a notice, when there are), the result
//! list, the preview of the selected hit, the status line. From 120 columns the preview sits
//! beside the list. The help is drawn over everything.

mod help;
mod list;
mod message;
mod preview;
mod query;
mod status;
mod theme;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

pub use theme::Theme;

use super::app::App;
use super::textwidth;
use super::worker::IndexState;

pub fn render(app: &App, frame: &mut Frame) {
    let full = frame.area();
    let theme = Theme::new(app.color);
    let areas = app.areas_in(full);
    query::render(app, &theme, &areas, frame);
    let ready = matches!(app.index, IndexState::Ready(_));
    if ready && !app.hits().is_empty() {
        list::render(app, &theme, &areas, frame);
        preview::render(app, &theme, &areas, frame);
    } else {
        message::render(app, &theme, areas.body(), frame);
    }
    status::render(app, &theme, areas.status, frame);
    if app.help {
        help::render(&theme, full, frame);
    }
}

/// A title row: `── text ─────` across the width.
fn title_bar<'a>(spans: Vec<Span<'a>>, width: u16, theme: &Theme) -> Line<'a> {
    let mut out = vec![Span::styled("── ", theme.dim())];
    let used: usize = 3 + spans.iter().map(|s| textwidth::width(&s.content)).sum::<usize>() + 1;
    out.extend(spans);
    out.push(Span::raw(" "));
    out.push(Span::styled("─".repeat(usize::from(width).saturating_sub(used)), theme.dim()));
    Line::from(out)
}

/// Draws `line` into `area` when the area has room.
fn draw_line(frame: &mut Frame, line: Line<'_>, area: Rect) {
    if area.width > 0 && area.height > 0 {
        frame.render_widget(line, area);
    }
}

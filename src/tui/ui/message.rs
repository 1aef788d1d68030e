//! What the body shows instead of results: the index is missing or broken (and what to do), the
//! first hint before anything is typed, or that nothing matched.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::Theme;
use crate::tui::app::App;
use crate::tui::worker::{IndexState, ModelState};

pub fn render(app: &App, theme: &Theme, area: Rect, frame: &mut Frame) {
    let inner = Rect::new(
        area.x + 2.min(area.width),
        area.y + 1.min(area.height),
        area.width.saturating_sub(4),
        area.height.saturating_sub(1),
    );
    if inner.width == 0 || inner.height == 0 {
        return;
    }
    let lines: Vec<Line> =
        lines(app, theme).into_iter().map(|(text, style)| Line::from(Span::styled(text, style))).collect();
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

/// The message as lines of text, each with its style.
pub fn lines(app: &App, theme: &Theme) -> Vec<(String, Style)> {
    let dir = &app.index_dir;
    let plain = |s: String| (s, theme.plain());
    match &app.index {
        IndexState::Opening => vec![(format!("Opening the index at {dir}…"), theme.dim())],
        IndexState::Missing => vec![
            (format!("No index at {dir} yet."), theme.heading()),
            plain(String::new()),
            plain("Build one from a shell, for example:".into()),
            ("    qsearch index ~/notes".into(), theme.prompt()),
            plain(String::new()),
            plain("This screen picks it up by itself once it exists. Esc quits.".into()),
        ],
        IndexState::Broken(why) => vec![
            (format!("The index at {dir} cannot be read:"), theme.error()),
            plain(format!("    {why}")),
            plain(String::new()),
            plain("`qsearch doctor` tells what is wrong. To start over, delete that folder and run".into()),
            ("    qsearch index PATH".into(), theme.prompt()),
            plain("This screen retries by itself. Esc quits.".into()),
        ],
        IndexState::Ready(info) => {
            if let Some(e) = &app.error {
                return vec![(format!("The search failed: {e}"), theme.error())];
            }
            if let Some(e) = &app.filter_error {
                return vec![
                    (format!("The filter cannot be read: {e}"), theme.error()),
                    plain("Nothing is searched until it is fixed (Ctrl+F).".into()),
                ];
            }
            if app.query.text().trim().is_empty() {
                let mut out = vec![
                    (
                        format!("Type to search {} files ({} chunks).", info.stats.documents, info.stats.chunks),
                        theme.heading(),
                    ),
                    plain(String::new()),
                    plain(format!("Mode: {} (Tab switches hybrid / semantic / keyword).", app.mode)),
                    plain("Ctrl+F filters by path, type:, tag:, since:. Enter opens a hit in your editor. F1 lists every key.".into()),
                ];
                if let ModelState::Ready { notes, .. } = &app.model {
                    out.extend(notes.iter().map(|n| (format!("note: {n}"), theme.notice())));
                }
                return out;
            }
            if app.searching {
                return vec![("Searching…".into(), theme.dim())];
            }
            let mut out = vec![(format!("No results for “{}”.", app.query.text().trim()), theme.heading())];
            if let Some(filter) = app.filter_spec().ok().filter(|f| !f.is_empty()) {
                out.push(plain(format!("Only files with {} are searched (Ctrl+F).", filter.describe())));
            }
            out
        }
    }
}

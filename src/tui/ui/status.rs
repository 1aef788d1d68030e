//! The status line: what the index holds, whether a watcher keeps it fresh, the model, and how
//! long the last query took.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::{Theme, draw_line};
use crate::tui::app::App;
use crate::tui::textwidth::{truncate_end, width};
use crate::tui::worker::{IndexState, ModelState};

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const HELP: &str = " F1 help ";

pub fn render(app: &App, theme: &Theme, area: Rect, frame: &mut Frame) {
    let room = usize::from(area.width).saturating_sub(HELP.len());
    let mut spans = vec![Span::raw(" ")];
    let mut used = 1;
    for (i, part) in parts(app, theme).into_iter().enumerate() {
        let text = if i == 0 { part.text } else { format!(" │ {}", part.text) };
        let left = room.saturating_sub(used);
        // A part that does not fit is left out whole, unless cutting it still says something.
        let shown = if width(&text) <= left {
            text
        } else if (i == 0 || part.cut) && left >= 12 {
            truncate_end(&text, left)
        } else {
            continue;
        };
        used += width(&shown);
        spans.push(Span::styled(shown, part.style));
    }
    spans.push(Span::raw(" ".repeat(usize::from(area.width).saturating_sub(used + HELP.len()))));
    if usize::from(area.width) >= used + HELP.len() {
        spans.push(Span::styled(HELP, theme.chip()));
    }
    draw_line(frame, Line::from(spans), area);
}

pub struct Part {
    pub text: String,
    pub style: Style,
    /// May be shown cut short when it does not fit.
    pub cut: bool,
}

/// The status line's parts: the index, the model, the watcher, the last query's latency.
pub fn parts(app: &App, theme: &Theme) -> Vec<Part> {
    let part = |text: String, style: Style| Part { text, style, cut: false };
    let mut out = Vec::new();
    match &app.index {
        IndexState::Opening => out.push(part("opening the index…".into(), theme.dim())),
        IndexState::Missing => out.push(part("no index".into(), theme.error())),
        IndexState::Broken(_) => out.push(part("index unreadable".into(), theme.error())),
        IndexState::Ready(info) => {
            let s = &info.stats;
            let mut text = format!("{} files · {} chunks", s.documents, s.chunks);
            if s.pending > 0 {
                text.push_str(&format!(" · {} pending", s.pending));
            }
            out.push(part(text, theme.plain()));
        }
    }
    out.push(match &app.model {
        ModelState::None => part("keyword only".into(), theme.dim()),
        ModelState::Loading { model, step } => Part {
            text: format!("{} {model}: {step}", SPINNER[app.ticks as usize % SPINNER.len()]),
            style: theme.notice(),
            cut: true,
        },
        ModelState::Ready { model, device, .. } if device.starts_with("CUDA") || device.starts_with("CoreML") => {
            part(format!("{model} on {device}"), theme.plain())
        }
        ModelState::Ready { model, .. } => part(model.clone(), theme.plain()),
        ModelState::Failed { .. } => part("model failed".into(), theme.error()),
    });
    if let IndexState::Ready(info) = &app.index {
        out.push(match info.writer.as_deref() {
            Some("watch") => part("watching".into(), theme.good()),
            Some("index") => part("indexing…".into(), theme.notice()),
            Some(other) => part(format!("{other} running"), theme.notice()),
            None => part("not watched".into(), theme.dim()),
        });
    }
    if let Some(shown) = &app.shown {
        let stage = if shown.complete { "" } else { " (keyword)" };
        out.push(part(format!("{}{stage}", millis(shown.latency)), theme.dim()));
        if let Some(r) = &shown.found.reranked {
            out.push(part(
                format!("reranked {} in {}", r.count, millis(std::time::Duration::from_secs_f64(r.ms / 1e3))),
                theme.good(),
            ));
        } else if app.rerank {
            out.push(part("rerank on".into(), theme.dim()));
        }
    }
    out
}

fn millis(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 { format!("{ms:.1} ms") } else { format!("{ms:.0} ms") }
}

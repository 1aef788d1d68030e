//! The result list: one row per hit with its heading (or title), `path:line`, score and match kind.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::{Theme, draw_line, title_bar};
use crate::search::{Hit, MatchKind};
use crate::tui::app::App;
use crate::tui::layout::Areas;
use crate::tui::textwidth::{clean, fit, truncate_start, width};

pub fn render(app: &App, theme: &Theme, areas: &Areas, frame: &mut Frame) {
    draw_line(frame, title_bar(title(app, theme), areas.list_title.width, theme), areas.list_title);
    let hits = app.hits();
    for (row, i) in (app.list_top..hits.len()).take(usize::from(areas.list.height)).enumerate() {
        let area = Rect::new(areas.list.x, areas.list.y + row as u16, areas.list.width, 1);
        draw_line(frame, hit_row(app, theme, &hits[i], i == app.selected, usize::from(area.width)), area);
    }
    if let Some(divider) = areas.divider {
        for y in divider.top()..divider.bottom() {
            draw_line(frame, Line::from(Span::styled("│", theme.dim())), Rect::new(divider.x, y, 1, 1));
        }
    }
}

fn title(app: &App, theme: &Theme) -> Vec<Span<'static>> {
    let Some(shown) = &app.shown else { return vec![Span::styled("results", theme.heading())] };
    let n = shown.found.results.hits.len();
    let mut spans = vec![Span::styled(format!("{n} result{}", if n == 1 { "" } else { "s" }), theme.heading())];
    if shown.complete {
        spans.push(Span::styled(format!(" · {}", shown.mode), theme.dim()));
    } else {
        spans.push(Span::styled(format!(" · keyword, {} on its way…", shown.mode), theme.notice()));
    }
    if shown.generation != app.generation {
        spans.push(Span::styled(" · updating…", theme.dim()));
    }
    spans
}

/// `› heading   path:line   score kind`, fitted to `cells`.
fn hit_row(app: &App, theme: &Theme, hit: &Hit, selected: bool, cells: usize) -> Line<'static> {
    let heading = clean(if hit.heading.is_empty() { &hit.title } else { &hit.heading });
    let location = clean(&format!("{}:{}", app.relative(&hit.path), hit.line));
    let (right, label) = if cells >= 40 {
        (format!(" {:>7} ", score(hit.score)), format!("{:<8} ", kind(hit.kind)))
    } else {
        (String::new(), String::new())
    };
    let avail = cells.saturating_sub(2 + right.len() + label.len());
    let (head_w, loc_w) = (width(&heading), width(&location));
    let loc_cells = if head_w + 2 + loc_w <= avail {
        loc_w
    } else {
        loc_w.min((avail * 9 / 20).max(avail.saturating_sub(head_w + 2)))
    };
    let head_cells = avail.saturating_sub(loc_cells + 2);
    let marker = if selected { "› " } else { "  " };
    let mut spans = vec![
        Span::styled(marker, theme.heading()),
        Span::styled(fit(&heading, head_cells), theme.heading()),
        Span::raw("  "),
        Span::styled(fit(&truncate_start(&location, loc_cells), loc_cells), theme.path()),
        Span::styled(right, theme.dim()),
        // A hit holding the query's words in order stands out: it is what a remembered phrase
        // was typed for.
        Span::styled(label, if hit.kind == MatchKind::Phrase { theme.notice() } else { theme.dim() }),
    ];
    if selected {
        for span in &mut spans {
            span.style = span.style.patch(theme.selected());
        }
    }
    Line::from(spans)
}

/// Scores span a wide range (RRF ~0.03, cosine ~0.8, BM25 ~12): a few significant digits.
fn score(s: f32) -> String {
    if s.abs() >= 100.0 {
        format!("{s:.0}")
    } else if s.abs() >= 10.0 {
        format!("{s:.1}")
    } else {
        format!("{s:.4}")
    }
}

fn kind(k: MatchKind) -> &'static str {
    match k {
        MatchKind::Keyword => "keyword",
        MatchKind::Semantic => "semantic",
        MatchKind::Both => "both",
        MatchKind::Phrase => "phrase",
    }
}

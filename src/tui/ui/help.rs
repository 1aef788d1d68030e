//! The help overlay: every key, from the same table the key handling uses.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::Theme;
use crate::tui::keys::HELP;
use crate::tui::textwidth::{fit, truncate_end, width};

pub fn render(theme: &Theme, full: Rect, frame: &mut Frame) {
    let keys_w = HELP.iter().map(|(k, _)| width(k)).max().unwrap_or(0);
    let text_w = HELP.iter().map(|(_, t)| width(t)).max().unwrap_or(0);
    let w = ((keys_w + 2 + text_w + 4) as u16).min(full.width);
    let h = ((HELP.len() + 4) as u16).min(full.height);
    let area = Rect::new(full.x + (full.width - w) / 2, full.y + (full.height - h) / 2, w, h);
    let inner_w = usize::from(w.saturating_sub(4));
    let mut lines = vec![Line::from("")];
    for (key, text) in HELP {
        let key = fit(key, keys_w.min(inner_w));
        let rest = inner_w.saturating_sub(width(&key) + 2);
        lines.push(Line::from(vec![
            Span::styled(key, theme.prompt()),
            Span::raw("  "),
            Span::raw(truncate_end(text, rest)),
        ]));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" qsearch keys ")
        .title_style(theme.heading())
        .border_style(theme.dim());
    frame.render_widget(Clear, area);
    frame.render_widget(Paragraph::new(lines).block(block.padding(ratatui::widgets::Padding::horizontal(1))), area);
}

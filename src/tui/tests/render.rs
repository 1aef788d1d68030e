//! Drawing into ratatui's `TestBackend`: 80x24 and wide, CJK text, NO_COLOR, every message.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

use super::fixtures::*;
use crate::tui::app::{App, Event};
use crate::tui::keys::HELP;
use crate::tui::textwidth::width;
use crate::tui::ui;
use crate::tui::worker::{IndexState, ModelState, Reply};

fn draw(app: &App) -> Buffer {
    let (w, h) = app.size;
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| ui::render(app, f)).unwrap();
    terminal.backend().buffer().clone()
}

/// The screen as text, one string per row; a wide character's second cell is skipped.
fn rows(buffer: &Buffer) -> Vec<String> {
    let area = buffer.area;
    (0..area.height)
        .map(|y| {
            let mut line = String::new();
            let mut x = 0;
            while x < area.width {
                let symbol = buffer[(x, y)].symbol();
                line.push_str(symbol);
                x += width(symbol).max(1) as u16;
            }
            line
        })
        .collect()
}

fn screen(buffer: &Buffer) -> String {
    rows(buffer).join("\n")
}

fn searched(w: u16, h: u16, query: &str) -> App {
    let mut app = app(w, h);
    type_text(&mut app, query);
    app
}

#[test]
fn results_preview_and_status_at_80x24() {
    let mut app = searched(80, 24, "reflog");
    app.update(Event::Worker(Reply::Index(ready(Some("watch")))));
    app.update(answer(6, true, hits(12)));
    let buffer = draw(&app);
    let rows = rows(&buffer);
    assert!(rows[0].starts_with("search › reflog"), "{}", rows[0]);
    assert!(rows[0].trim_end().ends_with("hybrid"), "{}", rows[0]);
    assert!(rows[1].starts_with("── 12 results · hybrid ──"), "{}", rows[1]);
    assert!(rows[2].starts_with("› Note 0"), "{}", rows[2]);
    assert!(rows[2].contains("note-0.md:1") && rows[2].contains("0.0325") && rows[2].contains("both"), "{}", rows[2]);
    assert!(rows[9].starts_with("  Note 7"), "8 rows of results: {}", rows[9]);
    assert!(rows[10].starts_with("── note-0.md:1 · Note 0 · 2026-11-01 ──"), "the day of the note: {}", rows[10]);
    assert!(rows[11].starts_with("1 line 0 of note 0 about git reflog"), "{}", rows[11]);
    let status = &rows[23];
    for part in ["3 files · 7 chunks", "watching", "stand-in", "4.0 ms", "F1 help"] {
        assert!(status.contains(part), "{part} in {status}");
    }
    let reflog = rows[11].find("reflog").unwrap();
    let cell = &buffer[(reflog as u16, 11)];
    assert_eq!(cell.fg, Color::Yellow, "query words are marked");
    assert!(buffer[(2, 2)].modifier.contains(Modifier::REVERSED), "the selected row is reversed");
    for row in &rows {
        assert!(width(row) <= 80, "{row}");
    }
}

#[test]
fn cjk_text_lines_up_at_80x24_and_wide() {
    for (w, h) in [(80, 24), (160, 40)] {
        let mut app = searched(w, h, "検索");
        app.update(cjk_answer(2));
        let buffer = draw(&app);
        let text = screen(&buffer);
        let rows = rows(&buffer);
        assert!(rows[2].starts_with("› 日本語のノート"), "{w}x{h}: {}", rows[2]);
        assert!(rows[2].contains("日本語/ノート.md:4"), "{w}x{h}: {}", rows[2]);
        assert!(rows[3].contains("English") && rows[3].contains("english.md:2"), "{}", rows[3]);
        assert!(text.contains("3 前の段落です。"), "{w}x{h}: the previous chunk's text\n{text}");
        assert!(text.contains("4 全文検索の道具を作ります。検索は速い。"), "{w}x{h}: the hit\n{text}");
        assert!(text.contains("5 次の段落です。"), "{w}x{h}: the next chunk\n{text}");
        for row in &rows {
            assert_eq!(width(row), usize::from(w), "{w}x{h}: every row fills the width exactly: {row}");
        }
        // The list's score column lines up with an ASCII row's.
        assert_eq!(
            rows[2].find("0.0325").map(|i| width(&rows[2][..i])),
            rows[3].find("0.0325").map(|i| width(&rows[3][..i]))
        );
        let y = rows.iter().position(|r| r.contains("全文検索")).unwrap();
        let x = width(&rows[y][..rows[y].find("検索").unwrap()]);
        assert_eq!(buffer[(x as u16, y as u16)].symbol(), "検");
        assert_eq!(buffer[(x as u16, y as u16)].fg, Color::Yellow, "{w}x{h}: CJK words are marked");
        let after = rows[y + 1].find("次").map(|i| width(&rows[y + 1][..i])).unwrap();
        assert_eq!(buffer[(after as u16, (y + 1) as u16)].fg, Color::DarkGray, "{w}x{h}: neighbours are dimmed");
        assert_eq!(buffer[(x as u16 - 2, y as u16)].fg, Color::Reset, "{w}x{h}: the hit is not");
    }
}

#[test]
fn wide_terminals_put_the_preview_beside_the_list() {
    let mut app = searched(160, 40, "reflog");
    app.update(answer(6, true, hits(3)));
    let rows = rows(&draw(&app));
    let title = &rows[1];
    assert!(title.starts_with("── 3 results"), "{title}");
    let preview_at = title.find("── note-0.md:1").expect("the preview's title on the same row");
    assert_eq!(width(&title[..preview_at]), 81, "after 80 list columns and the divider");
    assert!(rows[2].contains("│1 line 0 of note 0"), "{}", rows[2]);
}

#[test]
fn no_color_draws_without_colours() {
    let mut app = searched(80, 24, "reflog");
    app.color = false;
    app.update(answer(6, true, hits(3)));
    app.update(Event::Worker(Reply::Model(ModelState::Failed { model: "m".into(), error: "no model".into() })));
    let buffer = draw(&app);
    for cell in buffer.content() {
        assert_eq!((cell.fg, cell.bg), (Color::Reset, Color::Reset), "{cell:?}");
    }
    let rows = rows(&buffer);
    let y = 12;
    let x = rows[y].find("reflog").unwrap() as u16;
    assert!(
        buffer[(x, y as u16)].modifier.contains(Modifier::BOLD | Modifier::UNDERLINED),
        "marks still show: {}",
        rows[y]
    );
}

#[test]
fn missing_and_broken_indexes_say_what_to_do() {
    let mut app = app(80, 24);
    app.update(Event::Worker(Reply::Index(IndexState::Missing)));
    let text = screen(&draw(&app));
    assert!(text.contains("No index at /data/index yet.") && text.contains("qsearch index ~/notes"), "{text}");
    assert!(rows(&draw(&app))[23].contains("no index"));
    app.update(Event::Worker(Reply::Index(IndexState::Broken("file is not a database".into()))));
    let text = screen(&draw(&app));
    assert!(
        text.contains("cannot be read") && text.contains("file is not a database") && text.contains("qsearch doctor"),
        "{text}"
    );
}

#[test]
fn loading_model_and_empty_states() {
    let mut app = app(100, 24);
    app.update(Event::Worker(Reply::Model(ModelState::Loading {
        model: "qwen3-embedding-0.6b".into(),
        step: "model.onnx 40%".into(),
    })));
    let lines = rows(&draw(&app));
    assert!(lines[23].contains("qwen3-embedding-0.6b: model.onnx 40%"), "{}", lines[23]);
    assert!(lines[2].contains("Type to search 3 files"), "{}", lines[2]);
    let mut app = searched(80, 24, "zzz");
    assert!(screen(&draw(&app)).contains("Searching…"));
    app.update(answer(3, true, Vec::new()));
    assert!(screen(&draw(&app)).contains("No results for “zzz”."));
    let mut app = searched(80, 24, "reflog");
    app.update(answer(6, false, hits(2)));
    let rows = rows(&draw(&app));
    assert!(rows[1].contains("2 results · keyword, hybrid on its way…"), "{}", rows[1]);
    assert!(rows[23].contains("(keyword)"), "{}", rows[23]);
}

#[test]
fn help_lists_every_key() {
    let mut app = app(80, 24);
    app.update(key(crossterm::event::KeyCode::F(1)));
    let text = screen(&draw(&app));
    for (keys, what) in HELP {
        assert!(text.contains(keys) && text.contains(what), "{keys} {what}\n{text}");
    }
}

#[test]
fn the_cursor_sits_after_the_typed_text() {
    let app = searched(80, 24, "日本");
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|f| ui::render(&app, f)).unwrap();
    terminal.backend_mut().assert_cursor_position((9 + 4, 0));
}

#[test]
fn tiny_and_odd_sizes_do_not_panic() {
    for (w, h) in [(1, 1), (2, 2), (10, 3), (20, 5), (40, 10), (119, 30), (120, 30), (300, 80)] {
        let mut app = searched(w, h, "reflog");
        app.update(cjk_answer(6));
        app.update(key(crossterm::event::KeyCode::F(1)));
        draw(&app);
        app.update(key(crossterm::event::KeyCode::F(1)));
        app.update(ctrl('f'));
        draw(&app);
    }
}

#[test]
fn a_crowded_status_line_leaves_out_whole_parts() {
    let mut app = searched(80, 24, "reflog");
    let IndexState::Ready(mut info) = ready(Some("index")) else { unreachable!() };
    info.stats.documents = 579;
    info.stats.chunks = 5299;
    info.stats.pending = 4144;
    app.update(Event::Worker(Reply::Index(IndexState::Ready(info))));
    app.update(Event::Worker(Reply::Model(ModelState::Ready {
        model: "all-minilm-l6-v2".into(),
        device: "CPU".into(),
        notes: vec![],
    })));
    app.update(answer(6, true, hits(2)));
    let status = rows(&draw(&app))[23].clone();
    assert!(status.contains("579 files · 5299 chunks · 4144 pending │ all-minilm-l6-v2 │ indexing…"), "{status}");
    assert!(!status.contains("……") && status.ends_with("F1 help "), "{status}");
}

#[test]
fn the_status_line_says_reranking_is_on_and_how_many_were_reranked() {
    let mut app = searched(120, 24, "reflog");
    app.reranker = Some("qwen3-reranker-0.6b".into());
    app.update(ctrl('r'));
    app.update(answer(6, true, hits(3)));
    let status = rows(&draw(&app))[23].clone();
    assert!(status.contains("rerank on"), "{status}");
    let Event::Worker(Reply::Answer(mut reranked)) = answer(6, true, hits(3)) else { unreachable!() };
    reranked.outcome.as_mut().unwrap().reranked = Some(Box::new(crate::rerank::Reranked {
        reranker: "qwen3-reranker-0.6b".into(),
        count: 3,
        ms: 41.0,
        budget_ms: 100,
    }));
    app.update(Event::Worker(Reply::Answer(reranked)));
    let status = rows(&draw(&app))[23].clone();
    assert!(status.contains("reranked 3 in 41 ms") && !status.contains("rerank on"), "{status}");
}

//! The app's update function: keys and worker answers in, state and effects out.

use crossterm::event::KeyModifiers;
use crossterm::event::{KeyCode, MouseButton, MouseEvent, MouseEventKind};

use super::fixtures::*;
use crate::search::Mode;
use crate::tui::app::{Effect, Event, Focus};
use crate::tui::worker::{Answer, IndexState, ModelState, Reply};

fn searches(effects: &[Effect]) -> Vec<(u64, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Search { generation, query } => Some((*generation, query.text.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn every_keystroke_searches_with_a_new_generation() {
    let mut app = app(80, 24);
    let effects = type_text(&mut app, "git");
    assert_eq!(searches(&effects), vec![(1, "g".into()), (2, "gi".into()), (3, "git".into())]);
    assert!(app.searching);
    let effects = app.update(key(KeyCode::Backspace));
    assert_eq!(searches(&effects), vec![(4, "gi".into())]);
}

#[test]
fn answers_to_older_queries_are_dropped() {
    let mut app = app(80, 24);
    type_text(&mut app, "re");
    app.update(answer(1, true, hits(3)));
    assert!(app.shown.is_none(), "generation 1 is stale once 2 was asked");
    app.update(answer(2, false, hits(2)));
    assert_eq!(app.hits().len(), 2);
    type_text(&mut app, "f");
    app.update(answer(2, true, hits(5)));
    assert_eq!(app.hits().len(), 2, "the complete answer to generation 2 came too late");
    assert_eq!(app.shown.as_ref().unwrap().generation, 2, "old results stay until new ones come");
}

#[test]
fn keyword_results_first_then_semantic_results_replace_them() {
    let mut app = app(80, 24);
    type_text(&mut app, "reflog");
    app.update(answer(6, false, hits(2)));
    let shown = app.shown.as_ref().unwrap();
    assert!(!shown.complete);
    assert!(app.searching, "the semantic answer is still to come");
    app.update(answer(6, true, hits(4)));
    assert!(app.shown.as_ref().unwrap().complete);
    assert!(!app.searching);
    assert_eq!(app.hits().len(), 4);
    assert_eq!(app.selected, 0);
}

#[test]
fn the_selected_hit_survives_a_refreshed_answer() {
    let mut app = app(80, 24);
    type_text(&mut app, "git");
    app.update(answer(3, true, hits(5)));
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Down));
    let chosen = app.selected_hit().unwrap().0.chunk_id;
    let mut reordered = hits(5);
    reordered.reverse();
    app.update(answer(3, true, reordered));
    assert_eq!(app.selected_hit().unwrap().0.chunk_id, chosen);
    assert_eq!(app.selected, 2);
}

#[test]
fn arrows_and_pages_move_the_selection_within_bounds() {
    let mut app = app(80, 24);
    type_text(&mut app, "x");
    app.update(answer(1, true, hits(30)));
    app.update(key(KeyCode::Up));
    assert_eq!(app.selected, 0);
    app.update(key(KeyCode::PageDown));
    assert_eq!(app.selected, 8, "a page is the list's height at 80x24");
    assert_eq!(app.list_top, 1, "the selection stays on screen");
    for _ in 0..10 {
        app.update(key(KeyCode::PageDown));
    }
    assert_eq!(app.selected, 29);
    assert_eq!(app.list_top, 22);
    app.update(key(KeyCode::PageUp));
    assert_eq!(app.selected, 21);
    app.update(ctrl('p'));
    assert_eq!(app.selected, 20);
    assert_eq!(app.list_top, 20);
}

#[test]
fn enter_opens_the_selected_hit_at_its_line() {
    let mut app = app(80, 24);
    assert!(app.update(key(KeyCode::Enter)).is_empty(), "nothing to open yet");
    type_text(&mut app, "x");
    let mut h = hits(2);
    h[1].line = 42;
    app.update(answer(1, true, h));
    app.update(key(KeyCode::Down));
    let effects = app.update(key(KeyCode::Enter));
    assert!(matches!(&effects[..], [Effect::Open { path, line: 42 }] if path == "/notes/note-1.md"), "{effects:?}");
    app.update(Event::EditorDone(Err("cannot start the editor `nope`".into())));
    assert!(app.notice_line().unwrap().contains("nope"));
}

#[test]
fn tab_cycles_the_mode_and_searches_again() {
    let mut app = app(80, 24);
    type_text(&mut app, "x");
    let effects = app.update(key(KeyCode::Tab));
    assert!(matches!(&effects[..], [Effect::Search { generation: 2, query }] if query.mode == Mode::Semantic));
    app.update(key(KeyCode::Tab));
    assert_eq!(app.mode, Mode::Keyword);
    app.update(key(KeyCode::Tab));
    assert_eq!(app.mode, Mode::Hybrid);
    app.update(key(KeyCode::BackTab));
    assert_eq!(app.mode, Mode::Keyword);
}

#[test]
fn the_path_filter_is_a_glob_or_text_anywhere() {
    let mut app = app(80, 24);
    type_text(&mut app, "x");
    app.update(ctrl('f'));
    assert_eq!(app.focus, Focus::Filter);
    let effects = type_text(&mut app, "git");
    assert!(
        matches!(effects.last(), Some(Effect::Search { query, .. }) if query.filter.path.as_deref() == Some("*git*") && query.text == "x")
    );
    assert_eq!(app.query.text(), "x", "typing went into the filter");
    app.update(key(KeyCode::Esc));
    assert_eq!(app.focus, Focus::Query, "Esc leaves the filter, it does not quit");
    app.update(ctrl('f'));
    app.update(ctrl('u'));
    let effects = type_text(&mut app, "*.md");
    assert!(
        matches!(effects.last(), Some(Effect::Search { query, .. }) if query.filter.path.as_deref() == Some("*.md"))
    );
    app.update(key(KeyCode::Enter));
    assert_eq!(app.focus, Focus::Query);
    assert!(app.filter_shown(), "a set filter stays visible");
}

#[test]
fn the_filter_line_takes_type_tag_and_time_and_a_bad_value_stops_the_search_with_the_reason() {
    let mut app = app(80, 24);
    type_text(&mut app, "x");
    app.update(ctrl('f'));
    let effects = type_text(&mut app, "src type:rust tag:#Ops");
    assert!(matches!(effects.last(), Some(Effect::Search { query, .. })
        if query.filter.path.as_deref() == Some("*src*") && query.filter.types.len() == 1 && query.filter.tags == ["ops"]));
    type_text(&mut app, " since:soo");
    let effects = type_text(&mut app, "n");
    assert!(effects.iter().all(|e| !matches!(e, Effect::Search { .. })), "nothing is searched with a bad filter");
    let notice = app.notice_line().unwrap_or_default();
    assert!(notice.starts_with("filter: cannot read `soon` as a date"), "{notice}");
    assert!(app.shown.is_none() && !app.searching);
    for _ in 0.."soon".len() {
        app.update(key(KeyCode::Backspace));
    }
    let effects = type_text(&mut app, "7d");
    assert!(matches!(effects.last(), Some(Effect::Search { query, .. }) if query.filter.since_ns.is_some()));
    assert_eq!(app.notice_line(), None);
}

#[test]
fn clearing_the_query_clears_the_results_without_a_search() {
    let mut app = app(80, 24);
    type_text(&mut app, "x");
    app.update(answer(1, true, hits(3)));
    let effects = app.update(ctrl('u'));
    assert!(effects.is_empty());
    assert!(app.shown.is_none());
    assert!(!app.searching);
}

#[test]
fn esc_and_ctrl_c_quit_and_help_shows_and_hides() {
    let mut app = app(80, 24);
    app.update(key(KeyCode::Char('?')));
    assert!(app.help, "? on an empty query is help");
    assert!(app.update(key(KeyCode::Esc)).is_empty());
    assert!(!app.help, "Esc closes the help first");
    app.update(key(KeyCode::F(1)));
    assert!(app.help);
    assert!(app.update(key(KeyCode::Char('q'))).is_empty());
    assert!(!app.help, "any key closes it");
    assert!(app.query.is_empty(), "and is not typed");
    type_text(&mut app, "why?");
    assert_eq!(app.query.text(), "why?", "? in a query is a character");
    assert!(matches!(app.update(key(KeyCode::Esc))[..], [Effect::Quit]));
    assert!(matches!(app.update(ctrl('c'))[..], [Effect::Quit]));
}

#[test]
fn the_mouse_scrolls_the_list_and_the_preview_and_clicks_select() {
    let mut app = app(80, 24);
    type_text(&mut app, "x");
    let mut h = hits(5);
    h[0].text = (0..60).map(|i| format!("line {i}\n")).collect();
    app.update(answer(1, true, h));
    let a = app.areas();
    let mouse = |kind, row| Event::Mouse(MouseEvent { kind, column: 5, row, modifiers: KeyModifiers::NONE });
    app.update(mouse(MouseEventKind::ScrollDown, a.preview.y + 1));
    assert_eq!(app.preview_top, Some(3), "the wheel scrolls the preview three rows");
    app.update(mouse(MouseEventKind::ScrollDown, a.list.y));
    assert_eq!(app.selected, 1);
    assert_eq!(app.preview_top, None, "a new selection shows its own match");
    app.update(mouse(MouseEventKind::Down(MouseButton::Left), a.list.y + 3));
    assert_eq!(app.selected, 3);
    app.update(mouse(MouseEventKind::Down(MouseButton::Left), a.list.y + 7));
    assert_eq!(app.selected, 3, "a click below the last hit selects nothing");
}

#[test]
fn the_preview_scrolls_within_its_text() {
    let mut app = app(80, 24);
    type_text(&mut app, "x");
    let mut h = hits(1);
    h[0].text = (0..30).map(|i| format!("line {i}\n")).collect();
    app.update(answer(1, true, h));
    for _ in 0..50 {
        app.update(shift(KeyCode::Down));
    }
    let height = usize::from(app.areas().preview.height);
    assert_eq!(app.preview_top, Some(30 - height));
    app.update(shift(KeyCode::PageUp));
    assert_eq!(app.preview_top, Some(30 - height - (height - 1)));
}

#[test]
fn a_resize_keeps_the_selection_on_screen() {
    let mut app = app(80, 24);
    type_text(&mut app, "x");
    app.update(answer(1, true, hits(20)));
    for _ in 0..7 {
        app.update(key(KeyCode::Down));
    }
    assert_eq!(app.list_top, 0);
    app.update(Event::Resize(80, 12));
    let rows = usize::from(app.areas().list.height);
    assert!(
        app.selected >= app.list_top && app.selected < app.list_top + rows,
        "{} {} {rows}",
        app.selected,
        app.list_top
    );
}

#[test]
fn failures_become_notices() {
    let mut app = app(80, 24);
    type_text(&mut app, "[");
    app.update(Event::Worker(Reply::Answer(Answer {
        generation: 1,
        complete: true,
        latency: Default::default(),
        outcome: Err("invalid glob".into()),
    })));
    assert!(!app.searching);
    assert_eq!(app.notice_line().unwrap(), "search failed: invalid glob");
    app.update(ctrl('u'));
    app.update(Event::Worker(Reply::Model(ModelState::Failed {
        model: "m".into(),
        error: "no model files\nmore detail".into(),
    })));
    let notice = app.notice_line().unwrap();
    assert!(
        notice.contains("no model files") && !notice.contains("more detail") && notice.contains("qsearch doctor"),
        "{notice}"
    );
    app.update(Event::Worker(Reply::Index(IndexState::Missing)));
    assert!(matches!(app.index, IndexState::Missing));
    app.update(Event::Worker(Reply::Crashed("qsearch-search: boom".into())));
    assert!(app.notice_line().unwrap().contains("boom"));
}

#[test]
fn paste_goes_into_the_query_as_one_line() {
    let mut app = app(80, 24);
    let effects = app.update(Event::Paste("git\nreflog".into()));
    assert_eq!(searches(&effects), vec![(1, "git reflog".into())]);
}

fn reranks(effects: &[Effect]) -> Vec<(u64, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Rerank { generation, query } => Some((*generation, query.text.clone())),
            _ => None,
        })
        .collect()
}

fn ticks(app: &mut crate::tui::app::App, n: usize) -> Vec<Effect> {
    (0..n).flat_map(|_| app.update(Event::Tick)).collect()
}

#[test]
fn ctrl_r_reranks_the_shown_list_once_typing_pauses() {
    use crate::tui::app::RERANK_PAUSE_TICKS;
    let pause = RERANK_PAUSE_TICKS as usize;
    let mut app = app(80, 24);
    // Without a reranker Ctrl+R says what to set.
    app.update(ctrl('r'));
    assert!(!app.rerank && app.notice.as_deref().unwrap().contains("no reranker"), "{:?}", app.notice);
    app.reranker = Some("qwen3-reranker-0.6b".into());
    app.update(ctrl('r'));
    assert!(app.rerank, "on");
    type_text(&mut app, "git");
    // Not before the complete answer is shown.
    assert!(reranks(&ticks(&mut app, pause + 1)).is_empty());
    app.update(answer(3, false, hits(3)));
    assert!(reranks(&ticks(&mut app, pause + 1)).is_empty(), "keyword results first: not yet");
    app.update(answer(3, true, hits(3)));
    // Typing again before the pause: the old list is not reranked.
    type_text(&mut app, "s");
    app.update(answer(4, true, hits(3)));
    assert!(reranks(&ticks(&mut app, pause - 1)).is_empty(), "typing has not paused yet");
    assert_eq!(reranks(&ticks(&mut app, 1)), vec![(4, "gits".into())]);
    assert!(reranks(&ticks(&mut app, pause * 3)).is_empty(), "asked once");
    // The reranked answer replaces the list, the selection kept by chunk.
    app.update(key(KeyCode::Down));
    let selected = app.selected_hit().unwrap().0.chunk_id;
    let mut reranked = hits(3);
    reranked.reverse();
    let event = answer(4, true, reranked);
    let Event::Worker(Reply::Answer(mut a)) = event else { unreachable!() };
    a.outcome.as_mut().unwrap().reranked = Some(Box::new(crate::rerank::Reranked {
        reranker: "qwen3-reranker-0.6b".into(),
        count: 3,
        ms: 40.0,
        budget_ms: 100,
    }));
    app.update(Event::Worker(Reply::Answer(a)));
    assert_eq!(app.hits()[0].chunk_id, 3);
    assert_eq!(app.selected_hit().unwrap().0.chunk_id, selected);
    assert!(reranks(&ticks(&mut app, pause * 3)).is_empty());
    // Off: no more reranking.
    app.update(ctrl('r'));
    type_text(&mut app, "x");
    app.update(answer(5, true, hits(3)));
    assert!(reranks(&ticks(&mut app, pause * 3)).is_empty());
}

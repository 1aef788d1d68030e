//! Building blocks for the TUI's tests: an app at a given size, index states, hits, answers.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::search::{Hit, MatchKind, Mode, Results};
use crate::store::Stats;
use crate::tui::app::{App, Config, Effect, Event};
use crate::tui::preview::{Context, Piece};
use crate::tui::worker::{Answer, Found, IndexInfo, IndexState, ModelState, Reply};

pub fn app(w: u16, h: u16) -> App {
    let mut app = App::new(Config {
        index_dir: "/data/index".into(),
        mode: Mode::Hybrid,
        k: 50,
        per_doc: 2,
        color: true,
        size: (w, h),
        reranker: None,
    });
    app.update(Event::Worker(Reply::Index(ready(None))));
    app.update(Event::Worker(Reply::Model(ModelState::Ready {
        model: "stand-in".into(),
        device: "CPU".into(),
        notes: Vec::new(),
    })));
    app
}

pub fn ready(writer: Option<&str>) -> IndexState {
    IndexState::Ready(Box::new(IndexInfo {
        stats: Stats {
            roots: vec!["/notes".into()],
            documents: 3,
            chunks: 7,
            pending: 0,
            vectors: 7,
            bytes_on_disk: 0,
            vector_type: None,
            fingerprint: None,
            tags_total: 0,
            skipped: 0,
            failed: 0,
            tags: Vec::new(),
        },
        writer: writer.map(String::from),
        vectors_error: None,
    }))
}

pub fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub fn ctrl(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

pub fn shift(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::SHIFT))
}

/// Types `text` and returns every effect.
pub fn type_text(app: &mut App, text: &str) -> Vec<Effect> {
    text.chars().flat_map(|c| app.update(key(KeyCode::Char(c)))).collect()
}

pub fn hit(chunk_id: i64, path: &str, heading: &str, line: usize, text: &str) -> Hit {
    Hit {
        chunk_id,
        doc_id: chunk_id,
        path: path.into(),
        title: heading.into(),
        heading: heading.into(),
        line,
        end_line: line + text.trim_end_matches('\n').matches('\n').count(),
        score: 0.0325,
        rerank_score: None,
        kind: MatchKind::Both,
        snippet: text.into(),
        marks: Vec::new(),
        tags: Vec::new(),
        date: "2026-11-01T10:30:00+00:00".into(),
        text: text.into(),
    }
}

/// `n` hits in `/notes/note-N.md`, each a few lines long.
pub fn hits(n: usize) -> Vec<Hit> {
    (0..n)
        .map(|i| {
            let text: String = (0..6).map(|l| format!("line {l} of note {i} about git reflog\n")).collect();
            hit(i as i64 + 1, &format!("/notes/note-{i}.md"), &format!("Note {i}"), 1, &text)
        })
        .collect()
}

pub fn answer(generation: u64, complete: bool, hits: Vec<Hit>) -> Event {
    let context = vec![None; hits.len()];
    Event::Worker(Reply::Answer(Answer {
        generation,
        complete,
        latency: Duration::from_millis(4),
        outcome: Ok(Found { results: Results { hits, ..Default::default() }, context, ..Default::default() }),
    }))
}

/// A Japanese note whose hit chunk sits between two neighbours.
pub fn cjk_answer(generation: u64) -> Event {
    let doc = "# 日本語のノート\n\n前の段落です。\n全文検索の道具を作ります。検索は速い。\n次の段落です。\n";
    let cut = |a: usize, b: usize, id: i64| Piece {
        chunk_id: id,
        start_byte: a,
        end_byte: b,
        start_line: doc[..a].matches('\n').count() + 1,
        text: doc[a..b].to_string(),
    };
    let p1 = doc.find("前").unwrap();
    let p2 = doc.find("全").unwrap();
    let p3 = doc.find("次").unwrap();
    let pieces = vec![cut(0, p2, 10), cut(p1, p3, 11), cut(p3, doc.len(), 12)];
    let mut h = hit(11, "/notes/日本語/ノート.md", "日本語のノート", 4, &doc[p1..p3]);
    h.end_line = 4;
    let other = hit(20, "/notes/english.md", "English", 2, "full text search tools\n");
    Event::Worker(Reply::Answer(Answer {
        generation,
        complete: true,
        latency: Duration::from_millis(12),
        outcome: Ok(Found {
            results: Results { hits: vec![h, other], ..Default::default() },
            context: vec![Some(Context { neighbours: pieces, lines: None }), None],
            ..Default::default()
        }),
    }))
}

//! The UI's state and the one function that changes it: [`App::update`] takes an event (a key,
//! the mouse, a resize, a worker's answer) and returns the effects the runner should carry out
//! (search, open an editor, quit). No IO happens here, so tests drive it directly.

use std::time::Duration;

use crossterm::event::{KeyEvent, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

use crate::search::filter::FilterError;
use crate::search::{Filter, Hit, Mode, Query};
use crate::text::fts;

use super::input::LineInput;
use super::keys::{self, Action, KeyContext};
use super::layout::{self, Areas};
use super::preview::{self, Context, Preview};
use super::worker::{Found, IndexState, ModelState, Reply};

/// What the app starts from.
#[derive(Debug, Clone)]
pub struct Config {
    pub index_dir: String,
    pub mode: Mode,
    pub k: usize,
    pub per_doc: usize,
    /// False under `NO_COLOR`.
    pub color: bool,
    pub size: (u16, u16),
    /// The reranker Ctrl+R reranks with (its name), when one is set.
    pub reranker: Option<String>,
}

/// Ticks (250 ms) without a keystroke before the list is reranked.
pub const RERANK_PAUSE_TICKS: u64 = 2;

#[derive(Debug, Clone)]
pub enum Event {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Paste(String),
    Resize(u16, u16),
    Tick,
    Worker(Reply),
    /// The editor returned (or could not start, and why).
    EditorDone(Result<(), String>),
}

#[derive(Debug, Clone)]
pub enum Effect {
    /// Compute `query`'s results; answers carry `generation`.
    Search {
        generation: u64,
        query: Query,
    },
    /// Rerank `query`'s results (generation `generation`, whose complete answer is shown).
    Rerank {
        generation: u64,
        query: Query,
    },
    Open {
        path: String,
        line: usize,
    },
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Query,
    Filter,
}

/// Results on screen and what they answer.
#[derive(Debug, Clone)]
pub struct Shown {
    pub generation: u64,
    pub text: String,
    pub mode: Mode,
    /// False while these are the keyword results shown until the semantic ones come.
    pub complete: bool,
    pub found: Found,
    pub latency: Duration,
}

#[derive(Debug, Clone)]
pub struct App {
    pub index_dir: String,
    pub color: bool,
    pub query: LineInput,
    pub filter: LineInput,
    pub focus: Focus,
    pub mode: Mode,
    pub k: usize,
    pub per_doc: usize,
    /// The current query's generation: answers with another are stale and dropped.
    pub generation: u64,
    pub shown: Option<Shown>,
    /// The complete answer for `generation` is still to come.
    pub searching: bool,
    /// Why the current query failed.
    pub error: Option<String>,
    /// What is wrong with the filter line (nothing is searched until it is fixed).
    pub filter_error: Option<String>,
    pub selected: usize,
    /// The first result row on screen.
    pub list_top: usize,
    /// The first preview row on screen; None follows the selected hit's first match.
    pub preview_top: Option<usize>,
    pub help: bool,
    pub index: IndexState,
    pub model: ModelState,
    /// A passing message (the editor failed, a worker crashed).
    pub notice: Option<String>,
    pub size: (u16, u16),
    pub ticks: u64,
    /// The reranker Ctrl+R reranks with, when one is set.
    pub reranker: Option<String>,
    /// Rerank the list when typing pauses (Ctrl+R).
    pub rerank: bool,
    /// `ticks` at the last keystroke that changed the query.
    pub edited_at: u64,
    /// The generation a reranking was asked for (once each).
    pub rerank_asked: Option<u64>,
}

impl App {
    pub fn new(config: Config) -> App {
        App {
            index_dir: config.index_dir,
            color: config.color,
            query: LineInput::default(),
            filter: LineInput::default(),
            focus: Focus::Query,
            mode: config.mode,
            k: config.k,
            per_doc: config.per_doc,
            generation: 0,
            shown: None,
            searching: false,
            error: None,
            filter_error: None,
            selected: 0,
            list_top: 0,
            preview_top: None,
            help: false,
            index: IndexState::Opening,
            model: ModelState::None,
            notice: None,
            size: config.size,
            ticks: 0,
            reranker: config.reranker,
            rerank: false,
            edited_at: 0,
            rerank_asked: None,
        }
    }

    pub fn update(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Key(key) => {
                let cx = KeyContext {
                    help: self.help,
                    query_empty: self.query.is_empty(),
                    filter_focus: self.focus == Focus::Filter,
                };
                match keys::action(&key, cx) {
                    Some(action) => self.apply(action),
                    None => Vec::new(),
                }
            }
            Event::Mouse(mouse) => {
                self.on_mouse(mouse);
                Vec::new()
            }
            Event::Paste(text) => {
                self.input_mut().insert_str(&text);
                self.edited()
            }
            Event::Resize(w, h) => {
                self.size = (w, h);
                self.keep_visible();
                Vec::new()
            }
            Event::Tick => {
                self.ticks += 1;
                self.rerank_when_paused()
            }
            Event::Worker(reply) => {
                self.on_reply(reply);
                Vec::new()
            }
            Event::EditorDone(result) => {
                self.notice = result.err();
                Vec::new()
            }
        }
    }

    fn apply(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Quit => return vec![Effect::Quit],
            Action::Back if self.help => self.help = false,
            Action::Back if self.focus == Focus::Filter => self.focus = Focus::Query,
            Action::Back => return vec![Effect::Quit],
            Action::Help => self.help = !self.help,
            Action::Insert(c) => {
                self.input_mut().insert(c);
                return self.edited();
            }
            Action::Backspace => return self.edit(LineInput::backspace),
            Action::Delete => return self.edit(LineInput::delete),
            Action::ClearLine => return self.edit(LineInput::clear),
            Action::DeleteWord => return self.edit(LineInput::delete_word),
            Action::Left => self.input_mut().left(),
            Action::Right => self.input_mut().right(),
            Action::Home => self.input_mut().home(),
            Action::End => self.input_mut().end(),
            Action::Up => self.select_by(-1),
            Action::Down => self.select_by(1),
            Action::PageUp => self.select_by(-(self.list_page() as isize)),
            Action::PageDown => self.select_by(self.list_page() as isize),
            Action::PreviewUp => self.scroll_preview(-1),
            Action::PreviewDown => self.scroll_preview(1),
            Action::PreviewPageUp => self.scroll_preview(-(self.preview_page() as isize)),
            Action::PreviewPageDown => self.scroll_preview(self.preview_page() as isize),
            Action::Open if self.focus == Focus::Filter => self.focus = Focus::Query,
            Action::Open => {
                if let Some((hit, _)) = self.selected_hit() {
                    return vec![Effect::Open { path: hit.path.clone(), line: hit.line }];
                }
            }
            Action::NextMode => {
                self.mode = self.mode.next();
                return self.search();
            }
            Action::PrevMode => {
                self.mode = self.mode.next().next();
                return self.search();
            }
            Action::ToggleRerank => match &self.reranker {
                Some(name) => {
                    self.rerank = !self.rerank;
                    let state = if self.rerank { "on" } else { "off" };
                    self.notice = Some(format!("reranking with {name}: {state}"));
                }
                None => {
                    self.notice =
                        Some("no reranker: set `reranker` in the config (qwen3-reranker, a folder, openai:NAME)".into())
                }
            },
            Action::ToggleFilter => {
                self.focus = if self.focus == Focus::Filter { Focus::Query } else { Focus::Filter };
            }
        }
        Vec::new()
    }

    fn input_mut(&mut self) -> &mut LineInput {
        match self.focus {
            Focus::Query => &mut self.query,
            Focus::Filter => &mut self.filter,
        }
    }

    fn edit(&mut self, f: fn(&mut LineInput) -> bool) -> Vec<Effect> {
        if f(self.input_mut()) { self.edited() } else { Vec::new() }
    }

    fn edited(&mut self) -> Vec<Effect> {
        self.notice = None;
        self.edited_at = self.ticks;
        self.search()
    }

    /// A new generation for what is typed now: searched unless the query is blank.
    fn search(&mut self) -> Vec<Effect> {
        self.generation += 1;
        self.error = None;
        self.selected = 0;
        self.list_top = 0;
        self.preview_top = None;
        let filter = self.filter_spec();
        self.filter_error = filter.as_ref().err().map(ToString::to_string);
        let (Ok(filter), false) = (filter, self.query.text().trim().is_empty()) else {
            self.shown = None;
            self.searching = false;
            return Vec::new();
        };
        self.searching = true;
        let query = Query {
            text: self.query.text().trim().to_string(),
            k: self.k,
            mode: self.mode,
            filter,
            per_doc: self.per_doc,
        };
        vec![Effect::Search { generation: self.generation, query }]
    }

    /// With reranking on, once typing paused and the current query's complete answer is shown
    /// (not reranked yet): ask for it reranked, once.
    fn rerank_when_paused(&mut self) -> Vec<Effect> {
        let Some(shown) = &self.shown else { return Vec::new() };
        let ready = self.rerank
            && !self.searching
            && shown.complete
            && shown.generation == self.generation
            && shown.found.reranked.is_none()
            && self.rerank_asked != Some(self.generation)
            && self.ticks.saturating_sub(self.edited_at) >= RERANK_PAUSE_TICKS;
        let (true, Ok(filter)) = (ready, self.filter_spec()) else { return Vec::new() };
        self.rerank_asked = Some(self.generation);
        let query = Query { text: shown.text.clone(), k: self.k, mode: shown.mode, filter, per_doc: self.per_doc };
        vec![Effect::Rerank { generation: self.generation, query }]
    }

    /// The filter line (Ctrl+F): `type:`, `tag:`, `since:`, `until:`, and a path, a glob when it
    /// has glob characters, else text found anywhere in the path ([`Filter::parse_line`]).
    pub fn filter_spec(&self) -> Result<Filter, FilterError> {
        Filter::parse_line(self.filter.text(), chrono::Local::now())
    }

    fn on_reply(&mut self, reply: Reply) {
        match reply {
            Reply::Index(state) => self.index = state,
            Reply::Model(state) => self.model = state,
            Reply::Crashed(why) => self.notice = Some(format!("internal error, please report it: {why}")),
            Reply::Answer(answer) => {
                if answer.generation != self.generation {
                    return;
                }
                self.searching = !answer.complete;
                let found = match answer.outcome {
                    Ok(found) => found,
                    Err(e) => {
                        self.error = Some(e);
                        self.searching = false;
                        return;
                    }
                };
                self.error = None;
                let before = self.selected_hit().map(|(h, _)| h.chunk_id);
                let same_query = self.shown.as_ref().is_some_and(|s| s.generation == answer.generation);
                if same_query && self.selected > 0 {
                    let kept = before.and_then(|id| found.results.hits.iter().position(|h| h.chunk_id == id));
                    self.selected = kept.unwrap_or(0);
                } else {
                    self.selected = 0;
                }
                self.shown = Some(Shown {
                    generation: answer.generation,
                    text: self.query.text().trim().to_string(),
                    mode: self.mode,
                    complete: answer.complete,
                    found,
                    latency: answer.latency,
                });
                if self.selected_hit().map(|(h, _)| h.chunk_id) != before {
                    self.preview_top = None;
                }
                self.keep_visible();
            }
        }
    }

    fn on_mouse(&mut self, mouse: MouseEvent) {
        if self.help {
            if matches!(mouse.kind, MouseEventKind::Down(_)) {
                self.help = false;
            }
            return;
        }
        let a = self.areas();
        let at = Position::new(mouse.column, mouse.row);
        let in_preview = a.preview.contains(at) || a.preview_title.contains(at);
        match mouse.kind {
            MouseEventKind::ScrollDown if a.list.contains(at) => self.select_by(1),
            MouseEventKind::ScrollUp if a.list.contains(at) => self.select_by(-1),
            MouseEventKind::ScrollDown if in_preview => self.scroll_preview(3),
            MouseEventKind::ScrollUp if in_preview => self.scroll_preview(-3),
            MouseEventKind::Down(MouseButton::Left) => {
                if a.list.contains(at) {
                    let row = self.list_top + usize::from(mouse.row - a.list.y);
                    if row < self.hits().len() {
                        self.select(row);
                    }
                } else if a.query.contains(at) {
                    self.focus = Focus::Query;
                } else if a.filter.is_some_and(|f| f.contains(at)) {
                    self.focus = Focus::Filter;
                }
            }
            _ => {}
        }
    }

    pub fn hits(&self) -> &[Hit] {
        self.shown.as_ref().map(|s| s.found.results.hits.as_slice()).unwrap_or_default()
    }

    pub fn selected_hit(&self) -> Option<(&Hit, Option<&Context>)> {
        let shown = self.shown.as_ref()?;
        let hit = shown.found.results.hits.get(self.selected)?;
        Some((hit, shown.found.context.get(self.selected).and_then(Option::as_ref)))
    }

    fn select(&mut self, index: usize) {
        let index = index.min(self.hits().len().saturating_sub(1));
        if index != self.selected {
            self.selected = index;
            self.preview_top = None;
        }
        self.keep_visible();
    }

    fn select_by(&mut self, delta: isize) {
        self.select(self.selected.saturating_add_signed(delta));
    }

    /// Moves the list's window so the selected row is on screen.
    fn keep_visible(&mut self) {
        let rows = self.list_page().max(1);
        if self.selected < self.list_top {
            self.list_top = self.selected;
        } else if self.selected >= self.list_top + rows {
            self.list_top = self.selected + 1 - rows;
        }
        let last_top = self.hits().len().saturating_sub(rows);
        self.list_top = self.list_top.min(last_top);
    }

    fn list_page(&self) -> usize {
        usize::from(self.areas().list.height)
    }

    fn preview_page(&self) -> usize {
        usize::from(self.areas().preview.height).saturating_sub(1).max(1)
    }

    fn scroll_preview(&mut self, delta: isize) {
        let area = self.areas().preview;
        if let Some((p, top)) = self.preview_in(area) {
            let last = p.rows.len().saturating_sub(usize::from(area.height));
            self.preview_top = Some(top.saturating_add_signed(delta).min(last));
        }
    }

    /// Where things go on this app's screen.
    pub fn areas(&self) -> Areas {
        self.areas_in(Rect::new(0, 0, self.size.0, self.size.1))
    }

    pub fn areas_in(&self, full: Rect) -> Areas {
        layout::areas(full, self.filter_shown(), self.notice_line().is_some())
    }

    pub fn filter_shown(&self) -> bool {
        self.focus == Focus::Filter || !self.filter.is_empty()
    }

    /// The selected hit's preview for a preview area, and its first row on screen.
    pub fn preview_in(&self, area: Rect) -> Option<(Preview, usize)> {
        let (hit, context) = self.selected_hit()?;
        let text = self.shown.as_ref().map(|s| s.text.as_str()).unwrap_or_default();
        let p = preview::build(hit, context, &fts::query_terms(text), usize::from(area.width));
        let last = p.rows.len().saturating_sub(usize::from(area.height));
        let top = self.preview_top.unwrap_or(p.lead).min(last);
        Some((p, top))
    }

    /// The one line of news worth a row under the query, most important first.
    pub fn notice_line(&self) -> Option<String> {
        if let Some(n) = &self.notice {
            return Some(n.clone());
        }
        if let Some(e) = &self.filter_error {
            return Some(format!("filter: {e}"));
        }
        if let Some(e) = &self.error {
            return Some(format!("search failed: {e}"));
        }
        if let ModelState::Failed { error: e, .. } = &self.model {
            let first = e.lines().next().unwrap_or_default();
            return Some(format!("no semantic search ({first}); keyword search works. `qsearch doctor` tells more"));
        }
        if let Some(note) =
            self.shown.as_ref().filter(|s| s.complete).and_then(|s| s.found.results.semantic_note.as_ref())
        {
            return Some(note.to_string());
        }
        match &self.index {
            IndexState::Ready(info) => info.vectors_error.as_ref().map(|e| format!("semantic search is off: {e}")),
            _ => None,
        }
    }

    /// `path` without the indexed folder it lies in, for display.
    pub fn relative<'a>(&self, path: &'a str) -> &'a str {
        if let IndexState::Ready(info) = &self.index {
            for root in &info.stats.roots {
                if let Some(rest) =
                    path.strip_prefix(root.as_str()).and_then(|r| r.strip_prefix(std::path::MAIN_SEPARATOR))
                {
                    return rest;
                }
            }
        }
        path
    }
}

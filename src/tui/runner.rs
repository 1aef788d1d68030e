//! The loop: read the channel (input, ticks, worker answers), update the app, carry out its
//! effects (search, open an editor, quit), draw. The first frame is drawn before anything loads.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::search::Mode;

use super::app::{App, Config, Effect, Event};
use super::event::{Events, Message};
use super::terminal::Session;
use super::worker::{Setup, Sink, Worker};
use super::{editor, ui};

/// How often the screen is redrawn without input (the loading spinner).
const TICK: Duration = Duration::from_millis(250);
/// How often the worker looks for changes in the index.
const REFRESH: Duration = Duration::from_millis(1000);

pub struct Options {
    pub index_dir: PathBuf,
    pub mode: Mode,
    /// Results per query.
    pub k: usize,
    pub per_doc: usize,
    /// False under `NO_COLOR`.
    pub color: bool,
    /// How the index's model is chosen and loaded.
    pub model: crate::embed::load::Plan,
    /// Where log lines go while the terminal belongs to the UI.
    pub log: tracing::Dispatch,
    /// What Ctrl+R reranks with, and the time it may take a list.
    pub reranker: Option<super::worker::Reranking>,
}

pub fn run(options: Options) -> Result<()> {
    let _log = tracing::dispatcher::set_default(&options.log);
    let size = crossterm::terminal::size().unwrap_or((80, 24));
    let mut session = Session::start().context("cannot set up the terminal")?;
    let (tx, rx) = mpsc::channel();
    let events = Events::spawn(tx.clone(), TICK)?;
    let reranker = options.reranker.as_ref().map(|(r, _)| r.id());
    let worker = Worker::spawn_reranking(
        Setup { index_dir: options.index_dir.clone(), model: options.model, refresh_every: REFRESH, log: options.log },
        sink(tx.clone()),
        options.reranker,
    );
    let interrupt = tx.clone();
    // Raw mode turns Ctrl-C into a key; this catches SIGTERM and SIGHUP (and SIGINT from `kill`).
    let _ = ctrlc::set_handler(move || {
        let _ = interrupt.send(Message::Interrupt);
    });
    let mut app = App::new(Config {
        index_dir: options.index_dir.display().to_string(),
        mode: options.mode,
        k: options.k,
        per_doc: options.per_doc,
        color: options.color,
        size,
        reranker,
    });
    draw(&mut session, &app)?;
    loop {
        let first = rx.recv().context("the UI's event channel closed")?;
        let mut effects = VecDeque::new();
        for message in std::iter::once(first).chain(rx.try_iter()) {
            let event = match message {
                Message::Input(input) => match from_terminal(input) {
                    Some(event) => event,
                    None => continue,
                },
                Message::Tick => Event::Tick,
                Message::Worker(reply) => Event::Worker(reply),
                Message::Interrupt => return Ok(()),
            };
            effects.extend(app.update(event));
        }
        while let Some(effect) = effects.pop_front() {
            match effect {
                Effect::Search { generation, query } => worker.search(generation, query),
                Effect::Rerank { generation, query } => worker.rerank(generation, query),
                Effect::Open { path, .. } if editor::opens_in_viewer(&path) => {
                    effects.extend(app.update(Event::EditorDone(editor::open_in_viewer(&path))));
                }
                Effect::Open { path, line } => {
                    events.pause();
                    let opened = session.suspend(|| editor::open(&path, line));
                    events.resume();
                    let opened = opened.context("cannot take the terminal back from the editor")?;
                    effects.extend(app.update(Event::EditorDone(opened)));
                }
                Effect::Quit => return Ok(()),
            }
        }
        draw(&mut session, &app)?;
    }
}

fn draw(session: &mut Session, app: &App) -> Result<()> {
    session.terminal.draw(|frame| ui::render(app, frame)).context("cannot draw")?;
    Ok(())
}

fn sink(tx: Sender<Message>) -> Sink {
    Arc::new(move |reply| {
        let _ = tx.send(Message::Worker(reply));
    })
}

/// The terminal events the app cares about.
pub fn from_terminal(input: crossterm::event::Event) -> Option<Event> {
    use crossterm::event::Event as T;
    match input {
        T::Key(key) => Some(Event::Key(key)),
        T::Mouse(mouse) => Some(Event::Mouse(mouse)),
        T::Paste(text) => Some(Event::Paste(text)),
        T::Resize(w, h) => Some(Event::Resize(w, h)),
        T::FocusGained | T::FocusLost => None,
    }
}

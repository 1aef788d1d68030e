//! The terminal while the UI runs: raw mode, the alternate screen, mouse and paste reporting.
//! All of it is undone on every way out: a normal return, an error (the [`Session`] is dropped),
//! and a panic (a panic hook restores the terminal before the message is printed).

use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crossterm::cursor::Show;
use crossterm::event::{DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture};
use crossterm::execute;
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

type Hook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Whether the terminal is in the UI's state (raw, alternate screen).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// The panic hook that was there before the UI started, put back when it ends.
static PREVIOUS_HOOK: Mutex<Option<Arc<Hook>>> = Mutex::new(None);

pub struct Session {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Session {
    pub fn start() -> io::Result<Session> {
        install_panic_hook();
        let started = enter().and_then(|()| Terminal::new(CrosstermBackend::new(io::stdout())));
        match started {
            Ok(terminal) => Ok(Session { terminal }),
            Err(e) => {
                let _ = leave();
                restore_panic_hook();
                Err(e)
            }
        }
    }

    /// Gives the terminal to `f` (an editor) as a normal terminal, then takes it back.
    pub fn suspend<T>(&mut self, f: impl FnOnce() -> T) -> io::Result<T> {
        leave()?;
        let out = f();
        enter()?;
        self.terminal.clear()?;
        Ok(out)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = leave();
        // While unwinding from a panic the hook cannot be swapped (that would abort); the
        // process is on its way out anyway.
        if !std::thread::panicking() {
            restore_panic_hook();
        }
    }
}

fn enter() -> io::Result<()> {
    ACTIVE.store(true, Ordering::SeqCst);
    terminal::enable_raw_mode()?;
    execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture, EnableBracketedPaste)
}

/// Puts the terminal back as the shell had it. Only the first call after [`enter`] acts: leaving
/// the alternate screen twice would move the cursor back up over what was printed since.
pub fn leave() -> io::Result<()> {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return Ok(());
    }
    let screen = execute!(io::stdout(), DisableBracketedPaste, DisableMouseCapture, LeaveAlternateScreen, Show);
    let raw = terminal::disable_raw_mode();
    screen.and(raw)
}

fn install_panic_hook() {
    let previous: Arc<Hook> = Arc::new(std::panic::take_hook());
    *PREVIOUS_HOOK.lock().unwrap_or_else(|e| e.into_inner()) = Some(previous.clone());
    let ui_thread = std::thread::current().id();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == ui_thread {
            let _ = leave();
            previous(info);
        } else {
            // The UI's own threads catch their panics and report them on screen; printing here
            // would scribble over the UI.
            tracing::error!("{info}");
        }
    }));
}

fn restore_panic_hook() {
    if let Some(previous) = PREVIOUS_HOOK.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| previous(info)));
    }
}

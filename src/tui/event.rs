//! The event thread: terminal input and ticks, merged into the one channel the runner reads.
//! It can be paused, so that an editor started from the UI gets the keyboard to itself.

use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossterm::event;

/// What the runner's channel carries.
#[derive(Debug)]
pub enum Message {
    Input(event::Event),
    Tick,
    Worker(super::worker::Reply),
    /// SIGTERM, SIGHUP or SIGINT: leave cleanly.
    Interrupt,
}

#[derive(Default)]
struct Gate {
    paused: bool,
    /// The thread is between its pause check and the end of a poll.
    polling: bool,
    stop: bool,
}

/// Controls the event thread.
pub struct Events {
    gate: Arc<(Mutex<Gate>, Condvar)>,
}

impl Events {
    pub fn spawn(tx: Sender<Message>, tick: Duration) -> std::io::Result<Events> {
        let gate: Arc<(Mutex<Gate>, Condvar)> = Arc::default();
        let g = gate.clone();
        std::thread::Builder::new().name("qsearch-input".into()).spawn(move || run(&tx, tick, &g))?;
        Ok(Events { gate })
    }

    /// Stops reading the terminal; returns once the thread is not reading it.
    pub fn pause(&self) {
        let (lock, changed) = &*self.gate;
        let mut gate = lock.lock().unwrap_or_else(|e| e.into_inner());
        gate.paused = true;
        while gate.polling {
            gate = changed.wait(gate).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub fn resume(&self) {
        let (lock, changed) = &*self.gate;
        lock.lock().unwrap_or_else(|e| e.into_inner()).paused = false;
        changed.notify_all();
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let (lock, changed) = &*self.gate;
        lock.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        changed.notify_all();
    }
}

fn run(tx: &Sender<Message>, tick: Duration, gate: &(Mutex<Gate>, Condvar)) {
    let (lock, changed) = gate;
    let mut next_tick = Instant::now() + tick;
    loop {
        {
            let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
            while g.paused && !g.stop {
                g = changed.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            if g.stop {
                return;
            }
            g.polling = true;
        }
        // Short polls, so a pause never waits long.
        let wait = next_tick.saturating_duration_since(Instant::now()).min(Duration::from_millis(50));
        let message = match event::poll(wait) {
            Ok(true) => match event::read() {
                Ok(e) => Some(Message::Input(e)),
                Err(_) => Some(Message::Interrupt),
            },
            Ok(false) => None,
            Err(_) => Some(Message::Interrupt),
        };
        {
            let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
            g.polling = false;
            changed.notify_all();
        }
        let mut sent = match message {
            Some(m) => tx.send(m).is_ok(),
            None => true,
        };
        if Instant::now() >= next_tick {
            next_tick = Instant::now() + tick;
            sent &= tx.send(Message::Tick).is_ok();
        }
        if !sent {
            return;
        }
    }
}

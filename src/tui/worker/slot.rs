//! "Latest job wins": a slot holding at most one pending request. Putting a new one replaces the
//! one still waiting, so a worker that falls behind skips straight to the newest.

use std::sync::{Condvar, Mutex};

pub struct Slot<T> {
    state: Mutex<State<T>>,
    changed: Condvar,
}

struct State<T> {
    pending: Option<T>,
    closed: bool,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot { state: Mutex::new(State { pending: None, closed: false }), changed: Condvar::new() }
    }
}

impl<T> Slot<T> {
    /// Leaves `job` for the worker; true when it replaced one that was still waiting.
    pub fn put(&self, job: T) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let replaced = state.pending.replace(job).is_some();
        self.changed.notify_one();
        replaced
    }

    /// The newest job, waiting for one; None once the slot is closed.
    pub fn take(&self) -> Option<T> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if state.closed {
                return None;
            }
            if let Some(job) = state.pending.take() {
                return Some(job);
            }
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_newest_job_wins() {
        let slot = Slot::default();
        assert!(!slot.put(1));
        assert!(slot.put(2));
        assert_eq!(slot.take(), Some(2));
    }

    #[test]
    fn close_wakes_a_waiting_worker() {
        let slot: Arc<Slot<u32>> = Arc::default();
        let s = slot.clone();
        let worker = std::thread::spawn(move || s.take());
        std::thread::sleep(std::time::Duration::from_millis(20));
        slot.close();
        assert_eq!(worker.join().unwrap(), None);
    }
}

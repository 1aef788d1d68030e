//! The interactive terminal UI: search as you type over an index, with a preview of each hit.
//!
//! Shaped like the ratatui templates and gitui: an event thread merges terminal input and ticks
//! into one channel ([`event`]); [`app::App::update`] turns each event into new state and a list
//! of effects; [`ui::render`] only reads the state; a background [`worker`] owns the searcher and
//! the embedder and answers only the newest query. [`runner`] is the loop that ties them
//! together, [`terminal`] the raw-mode setup that is undone on every exit, a panic included.

pub mod app;
pub mod editor;
pub mod event;
pub mod input;
pub mod keys;
pub mod layout;
pub mod preview;
pub mod runner;
pub mod terminal;
pub mod textwidth;
pub mod ui;
pub mod worker;
pub mod wrap;

#[cfg(test)]
mod tests;

pub use runner::{Options, run};

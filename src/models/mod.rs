//! Models described, not run: the catalog, where their files come from, and the one-time rewrite
//! of a decoder export into the graph qsearch runs. The `embed` module runs them; nothing here
//! depends on it.

pub mod catalog;
pub mod choice;
pub mod prepare;
pub mod reference;
pub mod source;

//! Models: the catalog, where their files come from, and loading one as an [`Embedder`].

pub mod catalog;
pub mod choice;
pub mod load;
pub mod prepare;
pub mod source;

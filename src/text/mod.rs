//! From raw bytes to chunks: decoding, file kinds, chunking, and keyword-index text.

pub mod chunk;
pub mod code;
pub mod decode;
pub mod fts;
pub mod ident;
pub mod kind;
pub mod tokens;

//! From raw bytes to chunks: decoding, file kinds, chunking, and keyword-index text.

pub mod chunk;
pub mod code;
pub mod decode;
pub mod frontmatter;
pub mod fts;
pub mod ident;
pub mod kind;
pub mod pdf;
pub mod tokens;

use kind::Kind;

/// A file's text as qsearch reads it: what chunks, line numbers and the MCP `get` tool refer to.
#[derive(Debug)]
pub struct Readable {
    pub text: String,
    /// Invalid bytes were replaced.
    pub lossy: bool,
    /// Something of the file could not be read (pages of a PDF), for the index report.
    pub note: Option<String>,
}

/// Why a file has no text to index.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    #[error("binary content")]
    Binary,
    #[error(transparent)]
    Pdf(#[from] pdf::PdfError),
}

/// The text a person reads in a file of this kind: HTML without its tags, a PDF's pages.
pub fn readable(bytes: &[u8], kind: Kind) -> Result<Readable, Unreadable> {
    if kind == Kind::Pdf {
        let pdf = pdf::text_of(bytes)?;
        let note = (pdf.failed_pages > 0).then(|| format!("{} of its {} pages could not be read", pdf.failed_pages, pdf.pages));
        return Ok(Readable { text: pdf.text, lossy: false, note });
    }
    let decoded = decode::decode(bytes).map_err(|decode::DecodeError::Binary| Unreadable::Binary)?;
    let text = match kind {
        Kind::Html => kind::html_to_text(&decoded.text),
        _ => decoded.text,
    };
    Ok(Readable { text, lossy: decoded.lossy, note: None })
}

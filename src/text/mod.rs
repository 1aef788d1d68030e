//! From raw bytes to chunks: decoding, file kinds, chunking, and keyword-index text.

pub mod chunk;
#[cfg(feature = "tree-sitter")]
pub mod code;
pub mod decode;
pub mod frontmatter;
pub mod fts;
#[cfg(feature = "html")]
pub mod html;
pub mod html_plain;
pub mod ident;
pub mod kind;
pub mod pdf;
pub mod tokens;

/// Code chunking in a build without the `tree-sitter` feature (`--no-default-features`): no
/// grammar, so every code file is chunked as plain text, as files of languages without a grammar
/// are in the default build.
#[cfg(not(feature = "tree-sitter"))]
pub mod code {
    use super::chunk::{Chunk, Settings};
    use super::kind::Lang;
    use text_splitter::ChunkSizer;

    /// Always `None`: the caller chunks the code as text.
    pub fn split<S: ChunkSizer>(_text: &str, _lang: Lang, _settings: Settings, _sizer: &S) -> Option<Vec<Chunk>> {
        None
    }
}

use std::borrow::Cow;
use std::sync::LazyLock;

use kind::Kind;
use regex::Regex;

/// A file's text as qsearch reads it: what chunks, line numbers and the MCP `get` tool refer to.
#[derive(Debug)]
pub struct Readable {
    pub text: String,
    /// Invalid bytes were replaced.
    pub lossy: bool,
    /// Something of the file could not be read (pages of a PDF), for the index report.
    pub note: Option<String>,
    /// The title the file gives itself outside its text (an HTML page's `<title>`).
    pub title: Option<String>,
}

/// Why a file has no text to index.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    #[error("binary content")]
    Binary,
    /// Code whose lines are far longer than a person writes: minified or generated (a bundle,
    /// a search index, a JSON dump). Its words are not a reader's, and cutting such lines into
    /// chunks takes minutes.
    #[error("minified or generated code (its lines average {line_bytes} bytes)")]
    Minified { line_bytes: usize },
    #[error(transparent)]
    Pdf(#[from] pdf::PdfError),
}

/// The text a person reads in a file of this kind: an HTML page's text (as Markdown), a PDF's
/// pages; in any of them, a data URI's base64 payload as `…` ([`without_data_payloads`]).
pub fn readable(bytes: &[u8], kind: Kind) -> Result<Readable, Unreadable> {
    if kind == Kind::Pdf {
        let pdf = pdf::read(bytes)?;
        let note = (pdf.failed_pages > 0)
            .then(|| format!("{} of its {} pages could not be read", pdf.failed_pages, pdf.pages));
        return Ok(Readable { text: pdf.text, lossy: false, note, title: None });
    }
    let mut decoded = decode::decode(bytes).map_err(|decode::DecodeError::Binary| Unreadable::Binary)?;
    if kind != Kind::Html
        && let Cow::Owned(text) = without_data_payloads(&decoded.text)
    {
        decoded.text = text;
    }
    if let Kind::Code(_) = kind
        && let Some(line_bytes) = minified(&decoded.text)
    {
        return Err(Unreadable::Minified { line_bytes });
    }
    if kind == Kind::Html {
        #[cfg(feature = "html")]
        let page = html::page(&decoded.text);
        // Without html5ever (`--no-default-features`), a plain scan drops the tags.
        #[cfg(not(feature = "html"))]
        let page = html_plain::page(&decoded.text);
        return Ok(Readable { text: page.text, lossy: decoded.lossy, note: None, title: page.title });
    }
    Ok(Readable { text: decoded.text, lossy: decoded.lossy, note: None, title: None })
}

/// `text` with the base64 payload of each data URI (`data:image/png;base64,iVBOR…`, an image
/// pasted into a note) as `…`. A 750 KB photo pasted so is a line of a million letters: about
/// 700 chunks of noise, and minutes of a model's time, for nothing anyone would search. Lines
/// stay where they were (a payload holds no line break). Short payloads (under 256 letters, an
/// icon) are left as they are.
pub fn without_data_payloads(text: &str) -> Cow<'_, str> {
    static DATA_URI: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(data:[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+(?:;[A-Za-z0-9.+=-]+)*;base64,)[A-Za-z0-9+/]{256,}=*")
            .expect("a valid pattern")
    });
    DATA_URI.replace_all(text, "${1}…")
}

/// The average line length of code that is minified or generated, if `code` is: at least 8 KiB
/// whose lines average 1,000 bytes or more (hand-written code keeps to about 100).
fn minified(code: &str) -> Option<usize> {
    const SMALLEST: usize = 8 * 1024;
    const LINE_BYTES: usize = 1000;
    if code.len() < SMALLEST {
        return None;
    }
    let lines = code.trim_end().lines().count().max(1);
    let average = code.len() / lines;
    (average >= LINE_BYTES).then_some(average)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kind::Lang;

    #[test]
    fn a_data_uri_keeps_its_type_and_loses_its_payload() {
        let photo = "iVBORw0KGgo".repeat(100);
        let note = format!(
            "# Trip\n\n![lake](data:image/png;base64,{photo}==) and ![icon](data:image/gif;base64,R0lGOD==)\nCold water.\n"
        );
        let read = readable(note.as_bytes(), Kind::Markdown).unwrap().text;
        assert_eq!(
            read,
            "# Trip\n\n![lake](data:image/png;base64,…) and ![icon](data:image/gif;base64,R0lGOD==)\nCold water.\n"
        );
        let css = format!("@font-face {{ src: url(data:font/woff2;charset=utf-8;base64,{photo}) }}\n");
        assert_eq!(without_data_payloads(&css), "@font-face { src: url(data:font/woff2;charset=utf-8;base64,…) }\n");
        assert!(matches!(without_data_payloads("no uri here; base64, plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn minified_code_is_left_out_and_hand_written_code_and_prose_are_not() {
        let bundle = format!("!function(e){{{}}}();\n", "var a=1;".repeat(2000));
        let js = Kind::Code(Some(Lang::JavaScript));
        assert!(
            matches!(readable(bundle.as_bytes(), js), Err(Unreadable::Minified { line_bytes }) if line_bytes > 15_000)
        );
        let code = "fn main() {\n    println!(\"hi\");\n}\n".repeat(500);
        assert!(readable(code.as_bytes(), Kind::Code(Some(Lang::Rust))).is_ok());
        // A small one-liner, and prose written one paragraph a line, are read.
        assert!(readable(b"module.exports={a:1};", js).is_ok());
        let prose = format!("{}\n\n", "A long paragraph without hard wraps. ".repeat(40)).repeat(20);
        assert!(readable(prose.as_bytes(), Kind::Markdown).is_ok());
    }
}

//! The text of a PDF, page by page (pdf-extract over lopdf). Pages are joined by a form feed, as
//! pdftotext does, so chunks can say which page they start on ([`page_starts`]).
//!
//! A PDF that cannot be read is an answer, not a crash: pdf-extract panics on some malformed
//! fonts and streams, so each page is read under `catch_unwind` (quietly: the panic message
//! would break the progress line), and a page that fails is counted and left out.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use pdf_extract::{Document, PlainTextOutput};
use unicode_normalization::UnicodeNormalization;

/// Between two pages' text.
pub const PAGE_BREAK: char = '\u{c}';

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    #[error("not a readable PDF ({0})")]
    Broken(String),
    #[error("encrypted PDF: qsearch reads only PDFs that open without a password")]
    Encrypted,
    #[error("PDF without a text layer (scanned pages need OCR before they can be searched)")]
    NoText,
}

/// A PDF's text, and how many of its pages could not be read.
#[derive(Debug)]
pub struct PdfText {
    pub text: String,
    pub pages: usize,
    pub failed_pages: usize,
}

pub fn text_of(bytes: &[u8]) -> Result<PdfText, PdfError> {
    let doc = match quietly(|| Document::load_mem(bytes)) {
        Some(Ok(doc)) => doc,
        Some(Err(e)) => return Err(PdfError::Broken(e.to_string())),
        None => return Err(PdfError::Broken("the PDF reader failed on its structure".into())),
    };
    // lopdf decrypts on loading when the empty password opens the file (encrypted only for its
    // permissions, as many are); decrypting again would scramble it.
    if doc.is_encrypted() && !matches!(quietly(|| doc.authenticate_password("")), Some(Ok(()))) {
        return Err(PdfError::Encrypted);
    }
    let numbers: Vec<u32> = doc.get_pages().into_keys().collect();
    if numbers.is_empty() {
        return Err(PdfError::Broken("it has no pages".into()));
    }
    let mut text = String::new();
    let mut failed_pages = 0;
    for (i, &number) in numbers.iter().enumerate() {
        if i > 0 {
            text.push(PAGE_BREAK);
        }
        let page = quietly(|| {
            let mut page = String::new();
            pdf_extract::output_doc_page(&doc, &mut PlainTextOutput::new(&mut page), number).map(|()| page)
        });
        match page {
            Some(Ok(page)) => text.push_str(&plain(&page)),
            _ => failed_pages += 1,
        }
    }
    if failed_pages == numbers.len() {
        return Err(PdfError::Broken(format!("the PDF reader failed on all {} of its pages", numbers.len())));
    }
    if text.chars().all(|c| c.is_whitespace()) {
        return Err(PdfError::NoText);
    }
    Ok(PdfText { text, pages: numbers.len(), failed_pages })
}

/// A page's text as searched: typesetting's compatibility characters folded (NFKC: the "ﬁ"
/// ligature is "fi", so keyword search finds "profile"), no page break inside.
fn plain(page: &str) -> String {
    page.nfkc().map(|c| if c == PAGE_BREAK { '\n' } else { c }).collect()
}

/// Where each page starts in a PDF's text (page 1 at byte 0).
pub fn page_starts(text: &str) -> Vec<usize> {
    std::iter::once(0).chain(text.match_indices(PAGE_BREAK).map(|(i, _)| i + PAGE_BREAK.len_utf8())).collect()
}

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// `f`, or `None` if it panicked; its panic message is not printed.
fn quietly<T>(f: impl FnOnce() -> T) -> Option<T> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let out = catch_unwind(AssertUnwindSafe(f)).ok();
    QUIET.with(|q| q.set(was));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_start_after_each_break() {
        assert_eq!(page_starts("one\u{c}two\u{c}"), vec![0, 4, 8]);
        assert_eq!(page_starts("only"), vec![0]);
    }

    #[test]
    fn ligatures_are_letters_and_a_page_holds_no_break() {
        assert_eq!(plain("The misﬁts\u{c}ﬂow"), "The misfits\nflow");
    }

    #[test]
    fn bytes_that_are_no_pdf_are_broken() {
        assert!(matches!(text_of(b"%PDF-1.4\nnot really"), Err(PdfError::Broken(_))));
        assert!(matches!(text_of(b"hello"), Err(PdfError::Broken(_))));
    }

    #[test]
    fn a_panic_inside_is_caught_and_not_printed() {
        assert_eq!(quietly(|| -> u8 { panic!("inside the reader") }), None);
        assert_eq!(quietly(|| 7), Some(7));
    }
}

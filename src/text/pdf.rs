//! The text of a PDF, page by page (pdf-extract over lopdf). Pages are joined by a form feed, as
//! pdftotext does, so chunks can say which page they start on ([`page_starts`]).
//!
//! A PDF that cannot be read is an answer, not a crash: pdf-extract panics on some malformed
//! fonts and streams, so each page is read under `catch_unwind` (quietly: the panic message
//! would break the progress line), and a page that fails is counted and left out. What no
//! `catch_unwind` stops, a stack overflow (a form that draws itself: 600 bytes abort the process)
//! or a reader that never ends, is stopped by reading in a child process ([`read_in_child`]):
//! the `qsearch` binary reads every PDF so, the child killed after [`CHILD_LIMIT`].
//!
//! pdf-extract is built with the `pdf` feature (on by default). Without it every PDF is
//! [`PdfError::NotBuilt`]: passed over, and the index report says why.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

#[cfg(feature = "pdf")]
use pdf_extract::{Document, PlainTextOutput};
#[cfg(feature = "pdf")]
use unicode_normalization::UnicodeNormalization;

/// Between two pages' text.
pub const PAGE_BREAK: char = '\u{c}';

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum PdfError {
    #[error("not a readable PDF ({0})")]
    Broken(String),
    #[error("encrypted PDF: qsearch reads only PDFs that open without a password")]
    Encrypted,
    #[error("PDF without a text layer (scanned pages need OCR before they can be searched)")]
    NoText,
    /// This build has no PDF reader (`--no-default-features`).
    #[error(
        "this qsearch was built without PDF support (the `pdf` feature): PDFs are read by one \
         installed with `cargo install qsearch` (default features) or `--features pdf`"
    )]
    NotBuilt,
}

/// A PDF's text, and how many of its pages could not be read.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct PdfText {
    pub text: String,
    pub pages: usize,
    pub failed_pages: usize,
}

/// How long a child may read one PDF: pdf-extract reads a 300-page book in seconds here.
pub const CHILD_LIMIT: Duration = Duration::from_secs(120);

/// The program (and its arguments) that reads a PDF from its stdin and writes [`ChildAnswer`]
/// as JSON, when PDFs are read in a child process.
static CHILD: OnceLock<(PathBuf, Vec<String>)> = OnceLock::new();

/// From now on, this process reads PDFs in a child: `program args...` (the `qsearch` binary
/// passes itself and the argument [`child_main`] answers to).
pub fn read_in_child(program: PathBuf, args: Vec<String>) {
    let _ = CHILD.set((program, args));
}

/// A PDF's text: in a child process if [`read_in_child`] was called, else here.
pub fn read(bytes: &[u8]) -> Result<PdfText, PdfError> {
    if cfg!(not(feature = "pdf")) {
        return Err(PdfError::NotBuilt);
    }
    match CHILD.get() {
        Some((program, args)) => in_child(bytes, program, args, CHILD_LIMIT),
        None => text_of(bytes),
    }
}

/// What a child answers.
pub type ChildAnswer = Result<PdfText, PdfError>;

/// The child's side: the PDF on stdin, the answer on stdout.
pub fn child_main() -> std::io::Result<()> {
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes)?;
    let answer: ChildAnswer = text_of(&bytes);
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &answer)?;
    out.flush()
}

/// Reads `bytes` with `program args...`, killed after `limit`. A child that crashes, hangs or
/// answers nonsense makes the PDF [`PdfError::Broken`], with what happened.
pub fn in_child(
    bytes: &[u8],
    program: &std::path::Path,
    args: &[String],
    limit: Duration,
) -> Result<PdfText, PdfError> {
    use wait_timeout::ChildExt;
    let failed = |what: String| PdfError::Broken(format!("the PDF reader {what}"));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| failed(format!("could not be started ({}: {e})", program.display())))?;
    let (mut stdin, mut stdout) = (child.stdin.take().expect("piped"), child.stdout.take().expect("piped"));
    let answer = std::thread::scope(|s| {
        // Fed and drained beside the wait, so that neither pipe fills and blocks the child. A
        // child that stops reading early breaks the pipe: its exit says why.
        s.spawn(move || {
            block_sigpipe();
            let _ = stdin.write_all(bytes);
        });
        let reader = s.spawn(move || {
            let mut out = Vec::new();
            stdout.read_to_end(&mut out).map(|_| out)
        });
        let status = match child.wait_timeout(limit) {
            Ok(Some(status)) => status,
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!("took longer than {} s on it and was stopped", limit.as_secs())));
            }
        };
        let out = reader.join().expect("the reader thread does not panic").unwrap_or_default();
        if !status.success() {
            return Err(failed(format!("crashed on it: {}", exit_words(status))));
        }
        serde_json::from_slice::<ChildAnswer>(&out).map_err(|e| failed(format!("gave no answer ({e})")))
    });
    answer?
}

/// A write into the pipe of a child that died gives this thread an error, not the process its
/// SIGPIPE (which the `qsearch` binary leaves fatal, so that `qsearch search | head` ends quietly).
/// The signal a write raises goes to the thread that wrote; blocked here, it is dropped with it.
fn block_sigpipe() {
    #[cfg(unix)]
    // SAFETY: plain libc calls on a signal set this function owns; only this thread's mask
    // changes.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

fn exit_words(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return match signal {
            libc::SIGABRT => "it aborted: a stack overflow, say".into(),
            libc::SIGSEGV => "a segmentation fault".into(),
            libc::SIGKILL => "it was killed: out of memory, say".into(),
            _ => format!("signal {signal}"),
        };
    }
    status.to_string()
}

/// A PDF's text, read in this process.
#[cfg(not(feature = "pdf"))]
pub fn text_of(_bytes: &[u8]) -> Result<PdfText, PdfError> {
    Err(PdfError::NotBuilt)
}

/// A PDF's text, read in this process.
#[cfg(feature = "pdf")]
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
#[cfg(feature = "pdf")]
fn plain(page: &str) -> String {
    page.nfkc().map(|c| if c == PAGE_BREAK { '\n' } else { c }).collect()
}

/// Where each page starts in a PDF's text (page 1 at byte 0).
pub fn page_starts(text: &str) -> Vec<usize> {
    std::iter::once(0).chain(text.match_indices(PAGE_BREAK).map(|(i, _)| i + PAGE_BREAK.len_utf8())).collect()
}

#[cfg(feature = "pdf")]
thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// `f`, or `None` if it panicked; its panic message is not printed.
#[cfg(feature = "pdf")]
fn quietly<T>(f: impl FnOnce() -> T) -> Option<T> {
    use std::cell::Cell;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::Once;
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
    #[cfg(feature = "pdf")]
    fn ligatures_are_letters_and_a_page_holds_no_break() {
        assert_eq!(plain("The misﬁts\u{c}ﬂow"), "The misfits\nflow");
    }

    #[test]
    #[cfg(feature = "pdf")]
    fn bytes_that_are_no_pdf_are_broken() {
        assert!(matches!(text_of(b"%PDF-1.4\nnot really"), Err(PdfError::Broken(_))));
        assert!(matches!(text_of(b"hello"), Err(PdfError::Broken(_))));
    }

    #[test]
    #[cfg(feature = "pdf")]
    fn a_panic_inside_is_caught_and_not_printed() {
        assert_eq!(quietly(|| -> u8 { panic!("inside the reader") }), None);
        assert_eq!(quietly(|| 7), Some(7));
    }

    #[test]
    #[cfg(not(feature = "pdf"))]
    fn a_build_without_the_reader_says_so() {
        assert_eq!(read(b"%PDF-1.4\n").unwrap_err(), PdfError::NotBuilt);
        assert!(PdfError::NotBuilt.to_string().contains("--features pdf"));
    }
}

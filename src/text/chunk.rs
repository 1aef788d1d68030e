//! Documents to chunks. Code in a language qsearch has a grammar for is split along its syntax
//! tree ([`super::code`]); Markdown along its structure (headings, code fences, lists) by
//! `text-splitter`'s markdown splitter; other text along paragraphs and lines. Chunks are bounded
//! in tokens by the embedder's own tokenizer. Each chunk knows its byte range, line range and
//! heading path.

use text_splitter::{ChunkConfig, ChunkSizer, MarkdownSplitter, TextSplitter};

use super::kind::Kind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    /// Largest chunk, in tokens.
    pub tokens: usize,
    /// Tokens shared between neighbouring chunks.
    pub overlap: usize,
}

impl Settings {
    /// Bumped whenever the splitting rules change, so indexes know to re-chunk.
    /// 2: code chunked along its syntax tree; identifiers split in the keyword index.
    pub const VERSION: u32 = 2;
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub seq: usize,
    /// Heading path, outermost first.
    pub heading: Vec<String>,
    pub start_byte: usize,
    pub end_byte: usize,
    /// 1-based, inclusive.
    pub start_line: usize,
    pub end_line: usize,
    pub text: String,
}

impl Chunk {
    pub fn heading_path(&self) -> String {
        self.heading.join(HEADING_SEP)
    }
}

pub const HEADING_SEP: &str = " > ";

/// The text given to the embedder: the heading path as context, then the chunk's own text. A
/// chunk that opens with its own heading gets only the headings above it.
pub fn embed_text(heading_path: &str, text: &str) -> String {
    let (parents, last) = match heading_path.rsplit_once(HEADING_SEP) {
        Some((p, l)) => (p, l),
        None => ("", heading_path),
    };
    let opens_with_heading = !last.is_empty() && text.trim_start().trim_start_matches('#').trim_start().starts_with(last);
    let context = if opens_with_heading { parents } else { heading_path };
    if context.is_empty() { text.to_string() } else { format!("{context}\n\n{text}") }
}

/// Token counting for the splitter: the embedder's tokenizer, or about four bytes a token.
#[derive(Clone, Copy)]
pub enum Sizer<'a> {
    Tokenizer(&'a tokenizers::Tokenizer),
    Approx,
}

impl ChunkSizer for Sizer<'_> {
    fn size(&self, chunk: &str) -> usize {
        match self {
            Sizer::Tokenizer(t) => t.encode_fast(chunk, false).map(|e| e.len()).unwrap_or(chunk.len() / 4),
            Sizer::Approx => chunk.len().div_ceil(4),
        }
    }
}

pub fn split(text: &str, kind: Kind, settings: Settings, sizer: Sizer<'_>) -> Vec<Chunk> {
    if let Kind::Code(Some(lang)) = kind {
        if let Some(chunks) = super::code::split(text, lang, settings, sizer) {
            return chunks;
        }
    }
    let overlap = settings.overlap.min(settings.tokens.saturating_sub(1));
    let config = ChunkConfig::new(settings.tokens.max(1))
        .with_sizer(sizer)
        .with_overlap(overlap)
        .expect("overlap is below capacity");
    let pieces: Vec<(usize, &str)> = match kind {
        Kind::Markdown => MarkdownSplitter::new(config).chunk_indices(text).collect(),
        _ => TextSplitter::new(config).chunk_indices(text).collect(),
    };
    let lines = LineIndex::new(text);
    let headings = if kind == Kind::Markdown { markdown_headings(text) } else { Vec::new() };
    pieces
        .into_iter()
        .filter(|(_, piece)| !piece.trim().is_empty())
        .enumerate()
        .map(|(seq, (start, piece))| {
            let end = start + piece.len();
            Chunk {
                seq,
                heading: heading_path_at(&headings, start),
                start_byte: start,
                end_byte: end,
                start_line: lines.line_of(start),
                end_line: lines.line_of(end.saturating_sub(1).max(start)),
                text: piece.to_string(),
            }
        })
        .collect()
}

/// A document's title: its first markdown heading, else its file name.
pub fn title(text: &str, kind: Kind, file_name: &str) -> String {
    if kind == Kind::Markdown {
        if let Some((_, _, t)) = markdown_headings(text).into_iter().next() {
            return t;
        }
    }
    file_name.to_string()
}

/// Line numbers of byte offsets.
pub(super) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(super) fn new(text: &str) -> Self {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        LineIndex { starts }
    }

    /// The 1-based line that holds `byte`.
    pub(super) fn line_of(&self, byte: usize) -> usize {
        self.starts.partition_point(|&s| s <= byte)
    }
}

/// ATX headings outside code fences: (byte offset, level, title).
fn markdown_headings(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut fence: Option<&str> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(f), Some(m)) if f == m => fence = None,
            (None, None) => {
                let level = trimmed.bytes().take_while(|&b| b == b'#').count();
                let rest = &trimmed[level..];
                if (1..=6).contains(&level) && (rest.starts_with(' ') || rest.trim().is_empty()) {
                    let title = rest.trim().trim_end_matches('#').trim().to_string();
                    if !title.is_empty() {
                        out.push((offset, level, title));
                    }
                }
            }
            _ => {}
        }
        offset += line.len();
    }
    out
}

fn heading_path_at(headings: &[(usize, usize, String)], byte: usize) -> Vec<String> {
    let mut stack: Vec<(usize, &str)> = Vec::new();
    for (at, level, title) in headings {
        if *at > byte {
            break;
        }
        while stack.last().is_some_and(|(l, _)| l >= level) {
            stack.pop();
        }
        stack.push((*level, title));
    }
    stack.into_iter().map(|(_, t)| t.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Guide\n\nIntro text.\n\n## Install\n\nRun the installer.\n\n```sh\n# not a heading\nmake\n```\n\n## Use\n\nType a query.\n";

    #[test]
    fn chunks_know_heading_path_and_lines() {
        let chunks = split(DOC, Kind::Markdown, Settings { tokens: 8, overlap: 0 }, Sizer::Approx);
        assert!(chunks.len() >= 3, "{chunks:#?}");
        for c in &chunks {
            assert_eq!(&DOC[c.start_byte..c.end_byte], c.text);
            let first_line = DOC.lines().nth(c.start_line - 1).unwrap();
            assert!(first_line.contains(c.text.lines().next().unwrap()), "{c:?}");
        }
        let run = chunks.iter().find(|c| c.text.contains("Run the installer")).unwrap();
        assert_eq!(run.heading, vec!["Guide", "Install"]);
        let typed = chunks.iter().find(|c| c.text.contains("Type a query")).unwrap();
        assert_eq!(typed.heading, vec!["Guide", "Use"]);
        assert_eq!(typed.start_line, 14);
        assert!(!chunks.iter().any(|c| c.heading.iter().any(|h| h.contains("not a heading"))));
    }

    #[test]
    fn big_budget_keeps_a_small_file_whole() {
        let chunks = split(DOC, Kind::Markdown, Settings { tokens: 1000, overlap: 0 }, Sizer::Approx);
        assert_eq!(chunks.len(), 1);
        assert_eq!((chunks[0].start_line, chunks[0].end_line), (1, 16));
        assert_eq!(title(DOC, Kind::Markdown, "x.md"), "Guide");
    }

    #[test]
    fn embed_text_carries_context() {
        let chunks = split(DOC, Kind::Markdown, Settings { tokens: 8, overlap: 0 }, Sizer::Approx);
        let run = chunks.iter().find(|c| c.text.contains("Run the installer")).unwrap();
        assert_eq!(run.heading_path(), "Guide > Install");
        let embedded = embed_text(&run.heading_path(), &run.text);
        assert!(embedded.starts_with("Guide\n\n") || embedded.starts_with("Guide > Install\n\n"), "{embedded}");
        assert_eq!(embed_text("A > B", "text"), "A > B\n\ntext");
        assert_eq!(embed_text("A > B", "## B\ntext"), "A\n\n## B\ntext");
        assert_eq!(embed_text("Guide", "# Guide\nhi"), "# Guide\nhi");
        assert_eq!(embed_text("", "plain"), "plain");
    }
}

//! Documents to chunks. Code in a language qsearch has a grammar for is split along its syntax
//! tree ([`super::code`]); Markdown along its structure (headings, code fences, lists) by
//! `text-splitter`'s markdown splitter; other text along paragraphs and lines. Chunks are bounded
//! in tokens by the embedder's own tokenizer. Each chunk knows its byte range, line range and
//! heading path.

pub use text_splitter::ChunkSizer;
use text_splitter::{ChunkConfig, MarkdownSplitter, TextSplitter};

use super::kind::Kind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    /// Largest chunk, in tokens.
    pub tokens: usize,
    /// Tokens shared between neighbouring chunks.
    pub overlap: usize,
    /// Tokens the embedder reads of a chunk with its heading path in front ([`embed_text`]): a
    /// chunk whose heading would push its end past this is cut shorter. `usize::MAX` when no
    /// model is in view.
    #[serde(default = "unlimited")]
    pub room: usize,
}

fn unlimited() -> usize {
    usize::MAX
}

impl Settings {
    /// Bumped whenever the splitting rules change, so indexes know to re-chunk.
    /// 2: code chunked along its syntax tree; identifiers split in the keyword index.
    /// 3: token counts from one tokenization of the document ([`split_tokens`]).
    /// 4: a chunk leaves room for its heading path ([`Settings::room`]).
    pub const VERSION: u32 = 4;

    /// Chunks of at most `tokens`, `overlap` shared, with no model's limit in view.
    pub fn new(tokens: usize, overlap: usize) -> Settings {
        Settings { tokens, overlap, room: usize::MAX }
    }

    /// Tokens a chunk may hold whose heading context takes `context` tokens: what the model
    /// reads once the context is in front, within `tokens`. Never under half of `tokens`: a
    /// heading that long still pushes the chunk's end out, and chunks of a few words would be
    /// worse.
    fn budget(&self, context: usize) -> usize {
        let left = self.room.saturating_sub(context);
        self.tokens.min(left.max(self.tokens / 2)).max(1)
    }
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
    let opens_with_heading =
        !last.is_empty() && text.trim_start().trim_start_matches('#').trim_start().starts_with(last);
    let context = if opens_with_heading { parents } else { heading_path };
    if context.is_empty() { text.to_string() } else { format!("{context}\n\n{text}") }
}

/// Token counting for the splitter: from one tokenization of the document, or about four bytes
/// a token.
pub enum Sizer<'a> {
    Tokens(TokenOffsets<'a>),
    Approx,
}

impl<'a> Sizer<'a> {
    /// Counts with `tokenizer`, which runs once over the whole of `doc`.
    pub fn tokens(doc: &'a str, tokenizer: &'a tokenizers::Tokenizer) -> Sizer<'a> {
        Sizer::Tokens(TokenOffsets::new(doc, tokenizer))
    }
}

impl ChunkSizer for Sizer<'_> {
    fn size(&self, chunk: &str) -> usize {
        match self {
            Sizer::Tokens(t) => t.size(chunk),
            Sizer::Approx => chunk.len().div_ceil(4),
        }
    }
}

/// Tokens of room a chunk must leave to be taken without tokenizing it alone: a token whose
/// leading space the splitter trimmed may tokenize differently without it.
const EDGE_ROOM: usize = 2;

/// Counts by tokenizing each span on its own: exact, and slow when the splitter asks about many
/// candidate spans (it was the chunker's cost before [`TokenOffsets`]). Used to cut again the
/// rare chunk that comes out over the budget.
pub struct Exact<'a>(pub &'a tokenizers::Tokenizer);

impl ChunkSizer for Exact<'_> {
    fn size(&self, chunk: &str) -> usize {
        self.0.encode_fast(chunk, false).map(|e| e.len()).unwrap_or(chunk.len())
    }
}

/// `text` cut into chunks of at most `settings.tokens` tokens of `tokenizer`. The document is
/// tokenized once to size the cuts. A chunk whose edges fall on the document's token boundaries
/// (give or take the whitespace the splitter trims) and that leaves a little room is taken as it
/// is; any other is tokenized alone to check it, and if it comes out over the budget (a cut word
/// can tokenize longer than its share of the whole) it is cut again by exact counts.
pub fn split_tokens(text: &str, kind: Kind, settings: Settings, tokenizer: &tokenizers::Tokenizer) -> Vec<Chunk> {
    let offsets = TokenOffsets::new(text, tokenizer);
    let exact = Exact(tokenizer);
    let mut budgets = Budgets::new(settings);
    let mut out: Vec<Chunk> = Vec::new();
    // Cut with the edge's room to spare, so that a chunk snug on token boundaries is taken as
    // it is: tokenizing chunks alone was a tenth of indexing's time when most came out full.
    let spare = Settings {
        tokens: settings.tokens.saturating_sub(EDGE_ROOM).max(1),
        room: if settings.room == usize::MAX { usize::MAX } else { settings.room.saturating_sub(EDGE_ROOM) },
        ..settings
    };
    for c in split(text, kind, spare, &offsets) {
        let budget = budgets.of(&c, &offsets);
        let roomy = offsets.count_range(c.start_byte, c.end_byte) + EDGE_ROOM <= budget;
        // A chunk cut inside a token (text-splitter may cut between a backquote and the
        // semicolon after it, one token here) is widened to the token's edges: the same
        // tokens, now snug.
        let c = if roomy && !offsets.snug(c.start_byte, c.end_byte) { widened(text, c, &offsets) } else { c };
        if (roomy && offsets.snug(c.start_byte, c.end_byte)) || exact.size(&c.text) <= budget {
            out.push(c);
        } else {
            cut_again(&c.text, &c, budget, &exact, &mut out);
        }
    }
    numbered(out)
}

/// `chunk` of `doc` widened over the tokens it cuts into at its edges, when that makes it snug.
fn widened(doc: &str, chunk: Chunk, offsets: &TokenOffsets) -> Chunk {
    let Some((start, end)) = offsets.token_edges(chunk.start_byte, chunk.end_byte) else { return chunk };
    // The token after the edge may carry whitespace (`;\n`): the chunk ends before it.
    let end = start + doc[start..end].trim_end().len();
    if (start, end) == (chunk.start_byte, chunk.end_byte) || !offsets.snug(start, end) {
        return chunk;
    }
    Chunk {
        start_line: chunk.start_line - doc[start..chunk.start_byte].matches('\n').count(),
        end_line: chunk.end_line + doc[chunk.end_byte.min(end)..end].matches('\n').count(),
        start_byte: start,
        end_byte: end,
        text: doc[start..end].to_string(),
        ..chunk
    }
}

/// Each chunk's budget: [`Settings::budget`] for the tokens its heading path takes in front of
/// it ([`embed_text`]), the last path's count remembered (neighbouring chunks mostly share it).
struct Budgets {
    settings: Settings,
    path: String,
    tokens: usize,
}

impl Budgets {
    fn new(settings: Settings) -> Budgets {
        Budgets { settings, path: String::new(), tokens: 0 }
    }

    fn of(&mut self, chunk: &Chunk, sizer: &impl ChunkSizer) -> usize {
        let s = self.settings;
        // A path takes at most a token a byte (and one for the blank line after it): when even
        // that many fit, there is nothing to count.
        let bytes: usize = chunk.heading.iter().map(|h| h.len() + HEADING_SEP.len()).sum();
        if s.room == usize::MAX || s.tokens + bytes < s.room {
            return s.tokens;
        }
        let path = chunk.heading_path();
        if path != self.path {
            // The whole path (a chunk that opens with its own heading gets less).
            self.tokens = sizer.size(&path) + 1;
            self.path = path;
        }
        s.budget(self.tokens)
    }
}

/// `chunk` cut into parts of at most `budget` tokens of `sizer`, each with its heading; `span`
/// is the chunk's text (a slice of the document where the sizer counts from the document).
fn cut_again<S: ChunkSizer>(span: &str, chunk: &Chunk, budget: usize, sizer: &S, out: &mut Vec<Chunk>) {
    for part in split_structure(span, Kind::Text, Settings::new(budget, 0), sizer) {
        let lines_before = span[..part.start_byte].matches('\n').count();
        out.push(Chunk {
            seq: 0,
            heading: chunk.heading.clone(),
            start_byte: chunk.start_byte + part.start_byte,
            end_byte: chunk.start_byte + part.end_byte,
            start_line: chunk.start_line + lines_before,
            end_line: chunk.start_line + lines_before + part.text.trim_end_matches('\n').matches('\n').count(),
            text: part.text,
        });
    }
}

fn numbered(mut chunks: Vec<Chunk>) -> Vec<Chunk> {
    for (seq, c) in chunks.iter_mut().enumerate() {
        c.seq = seq;
    }
    chunks
}

/// `chunks` of `doc`, those whose heading path would push their end past what the model reads
/// cut shorter.
fn fit_context<S: ChunkSizer>(doc: &str, chunks: Vec<Chunk>, settings: Settings, sizer: &S) -> Vec<Chunk> {
    if settings.room == usize::MAX {
        return chunks;
    }
    let mut budgets = Budgets::new(settings);
    let mut out = Vec::with_capacity(chunks.len());
    for c in chunks {
        let budget = budgets.of(&c, sizer);
        if budget >= settings.tokens {
            out.push(c);
            continue;
        }
        let span = doc.get(c.start_byte..c.end_byte).filter(|s| *s == c.text).unwrap_or(&c.text);
        if sizer.size(span) <= budget {
            out.push(c);
        } else {
            cut_again(span, &c, budget, sizer, &mut out);
        }
    }
    numbered(out)
}

impl ChunkSizer for TokenOffsets<'_> {
    fn size(&self, chunk: &str) -> usize {
        self.count(chunk)
    }
}

/// Where a document's tokens lie, from one tokenization: the splitter asks for the size of
/// many candidate spans, and each is answered by two binary searches instead of tokenizing the
/// span again. A span counts every token that overlaps it, so a token cut by the span's edge
/// counts whole: a chunk tokenized on its own comes out at most as long, as long as its edges
/// fall where the tokenizer splits words anyway (the splitter cuts at whitespace and
/// punctuation); [`split_tokens`] checks every chunk, and `tests/chunk_tokens.rs` checks the
/// whole with the real tokenizer.
pub struct TokenOffsets<'a> {
    doc: &'a str,
    tokenizer: &'a tokenizers::Tokenizer,
    /// Byte offset where each token starts, and (non-decreasing) where it ends.
    starts: Vec<usize>,
    ends: Vec<usize>,
}

impl<'a> TokenOffsets<'a> {
    pub fn new(doc: &'a str, tokenizer: &'a tokenizers::Tokenizer) -> TokenOffsets<'a> {
        let (mut starts, mut ends) = (Vec::new(), Vec::new());
        // `encode` (not `encode_fast`, which leaves offsets out) gives byte offsets; the fast
        // path gives the same ones without the tokenizer's regex.
        let offsets = super::tokens::offsets(tokenizer, doc)
            .or_else(|| tokenizer.encode(doc, false).ok().map(|e| e.get_offsets().to_vec()));
        let mut last_end = 0;
        for (s, e) in offsets.unwrap_or_default() {
            last_end = last_end.max(e);
            starts.push(s);
            ends.push(last_end);
        }
        TokenOffsets { doc, tokenizer, starts, ends }
    }

    /// Whether `start..end` begins where a token begins and ends where one ends, once widened
    /// over whitespace (the splitter trims the spaces and newlines that tokens carry).
    pub fn snug(&self, start: usize, end: usize) -> bool {
        self.token_edges(start, end) == Some((start, end))
    }

    /// The start of the token holding `start` and the end of the one holding the byte before
    /// `end`, where either edge falls inside a token (not on whitespace before or after it).
    pub fn token_edges(&self, start: usize, end: usize) -> Option<(usize, usize)> {
        let bytes = self.doc.as_bytes();
        let blank = |a: usize, b: usize| bytes.get(a..b).is_some_and(|r| r.iter().all(u8::is_ascii_whitespace));
        let first = self.starts.partition_point(|&s| s <= start).checked_sub(1)?;
        let last = *self.ends.get(self.ends.partition_point(|&e| e < end))?;
        let from = if blank(self.starts[first], start) { start } else { self.starts[first] };
        let to = if blank(end, last) { end } else { last };
        Some((from, to))
    }

    /// Tokens overlapping `span`, a slice of the document; any other text is tokenized.
    pub fn count(&self, span: &str) -> usize {
        let base = self.doc.as_ptr() as usize;
        let at = span.as_ptr() as usize;
        if at < base || at + span.len() > base + self.doc.len() || (self.starts.is_empty() && !self.doc.is_empty()) {
            return self.tokenizer.encode_fast(span, false).map(|e| e.len()).unwrap_or(span.len().div_ceil(4));
        }
        self.count_range(at - base, at - base + span.len())
    }

    /// Tokens overlapping the document's bytes `start..end`.
    pub fn count_range(&self, start: usize, end: usize) -> usize {
        if start >= end {
            return 0;
        }
        // Tokens starting before the span's end, less those ending at or before its start.
        let before_end = self.starts.partition_point(|&s| s < end);
        let done_before = self.ends.partition_point(|&e| e <= start);
        before_end.saturating_sub(done_before)
    }
}

/// `text` cut into chunks of at most `settings.tokens` tokens as `sizer` counts them (a
/// [`Sizer`] in the product; any [`ChunkSizer`] for comparisons).
pub fn split(text: &str, kind: Kind, settings: Settings, sizer: impl ChunkSizer) -> Vec<Chunk> {
    fit_context(text, split_structure(text, kind, settings, &sizer), settings, &sizer)
}

/// `text` cut along its structure into chunks of at most `settings.tokens`, headings aside.
fn split_structure<S: ChunkSizer>(text: &str, kind: Kind, settings: Settings, sizer: &S) -> Vec<Chunk> {
    if let Kind::Code(Some(lang)) = kind
        && let Some(chunks) = super::code::split(text, lang, settings, sizer)
    {
        return chunks;
    }
    if kind == Kind::Pdf {
        return pdf_pages(text, settings, sizer);
    }
    let overlap = settings.overlap.min(settings.tokens.saturating_sub(1));
    let config = ChunkConfig::new(settings.tokens.max(1))
        .with_sizer(sizer)
        .with_overlap(overlap)
        .expect("overlap is below capacity");
    let markdown = kind.reads_as_markdown();
    let pieces: Vec<(usize, &str)> = if markdown {
        let splitter = MarkdownSplitter::new(config);
        by_sections(text, true, |s| splitter.chunk_indices(s).collect())
    } else {
        let splitter = TextSplitter::new(config);
        by_sections(text, false, |s| splitter.chunk_indices(s).collect())
    };
    let lines = LineIndex::new(text);
    let headings = if markdown { markdown_headings(text) } else { Vec::new() };
    let mut paths = HeadingPaths::new(&headings);
    pieces
        .into_iter()
        .filter(|(_, piece)| !piece.trim().is_empty())
        .enumerate()
        .map(|(seq, (start, piece))| {
            let end = start + piece.len();
            Chunk {
                seq,
                heading: paths.at(start),
                start_byte: start,
                end_byte: end,
                start_line: lines.line_of(start),
                end_line: lines.line_of(end.saturating_sub(1).max(start)),
                text: piece.to_string(),
            }
        })
        .collect()
}

/// A PDF's pages cut one at a time, so that no chunk spans two and each is headed by its page.
fn pdf_pages<S: ChunkSizer>(text: &str, settings: Settings, sizer: &S) -> Vec<Chunk> {
    let lines = LineIndex::new(text);
    let starts = super::pdf::page_starts(text);
    let mut out = Vec::new();
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(text.len(), |&next| next - super::pdf::PAGE_BREAK.len_utf8());
        let first_line = lines.line_of(start) - 1;
        for c in split_structure(&text[start..end], Kind::Text, settings, sizer) {
            out.push(Chunk {
                seq: out.len(),
                heading: vec![format!("page {}", i + 1)],
                start_byte: start + c.start_byte,
                end_byte: start + c.end_byte,
                start_line: first_line + c.start_line,
                end_line: first_line + c.end_line,
                text: c.text,
            });
        }
    }
    out
}

/// A document's first heading, the title it shows its reader.
pub fn first_heading(text: &str, kind: Kind) -> Option<String> {
    if !kind.reads_as_markdown() {
        return None;
    }
    markdown_headings(text).into_iter().next().map(|(_, _, t)| t)
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

/// The heading path at each of a run of byte offsets, walking the headings once while the
/// offsets grow (from the start again when one goes back): each chunk looked through every
/// heading before it, and a note of 100,000 headings took minutes.
struct HeadingPaths<'h> {
    headings: &'h [(usize, usize, String)],
    /// Headings taken into `stack`.
    next: usize,
    stack: Vec<(usize, &'h str)>,
    last: usize,
}

impl<'h> HeadingPaths<'h> {
    fn new(headings: &'h [(usize, usize, String)]) -> Self {
        HeadingPaths { headings, next: 0, stack: Vec::new(), last: 0 }
    }

    fn at(&mut self, byte: usize) -> Vec<String> {
        if byte < self.last {
            (self.next, self.last) = (0, 0);
            self.stack.clear();
        }
        self.last = byte;
        while let Some((_, level, title)) = self.headings.get(self.next).filter(|h| h.0 <= byte) {
            while self.stack.last().is_some_and(|(l, _)| l >= level) {
                self.stack.pop();
            }
            self.stack.push((*level, title));
            self.next += 1;
        }
        self.stack.iter().map(|(_, t)| t.to_string()).collect()
    }
}

/// Text longer than about twice this is cut into sections of about this size, each split alone:
/// the splitter looks through every break left in its text for each chunk it makes, so its work
/// grew with the square of the length (a 2.4 MB note of short sections took a minute, 10 MB a
/// quarter of an hour).
const SECTION_BYTES: usize = 32 * 1024;

/// The pieces `split` makes of `text`, section by section ([`sections`]), at their offsets in
/// `text`.
pub(super) fn by_sections<'t>(
    text: &'t str,
    markdown: bool,
    mut split: impl FnMut(&'t str) -> Vec<(usize, &'t str)>,
) -> Vec<(usize, &'t str)> {
    let mut out = Vec::new();
    for (at, section) in sections(text, markdown) {
        out.extend(split(section).into_iter().map(|(i, piece)| (at + i, piece)));
    }
    out
}

/// `text` in sections of at least [`SECTION_BYTES`], each cut where a chunk would end anyway: at
/// the first heading or blank line after that much (outside code fences, in Markdown), else at
/// the line break before twice that much, else (a line that long) at a space or anywhere on a
/// character boundary.
fn sections(text: &str, markdown: bool) -> Vec<(usize, &str)> {
    let mut cuts = vec![0];
    let mut start = 0;
    let mut offset = 0;
    let mut fence: Option<&str> = None;
    let mut after_blank = false;
    for line in text.split_inclusive('\n') {
        let at = offset;
        offset += line.len();
        let trimmed = line.trim_start();
        let good = fence.is_none() && (after_blank || (markdown && trimmed.starts_with('#')));
        if at > start && ((good && at - start >= SECTION_BYTES) || offset - start > 2 * SECTION_BYTES) {
            cuts.push(at);
            start = at;
        }
        // A line longer than that alone.
        while offset - start > 2 * SECTION_BYTES {
            let from = floor_char_boundary(text, start + SECTION_BYTES);
            let to = floor_char_boundary(text, start + 2 * SECTION_BYTES);
            let cut = text[from..to].find(char::is_whitespace).map_or(to, |i| from + i).max(start + 1);
            let cut = floor_char_boundary(text, cut).max(from);
            cuts.push(cut);
            start = cut;
        }
        if markdown && let Some(m) = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m)) {
            fence = match fence {
                None => Some(m),
                Some(f) if f == m => None,
                open => open,
            };
        }
        after_blank = trimmed.is_empty();
    }
    cuts.push(text.len());
    cuts.dedup();
    cuts.windows(2).map(|w| (w[0], &text[w[0]..w[1]])).collect()
}

/// The greatest character boundary of `text` at or before `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Guide\n\nIntro text.\n\n## Install\n\nRun the installer.\n\n```sh\n# not a heading\nmake\n```\n\n## Use\n\nType a query.\n";

    #[test]
    fn chunks_know_heading_path_and_lines() {
        let chunks = split(DOC, Kind::Markdown, Settings::new(8, 0), Sizer::Approx);
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
        let chunks = split(DOC, Kind::Markdown, Settings::new(1000, 0), Sizer::Approx);
        assert_eq!(chunks.len(), 1);
        assert_eq!((chunks[0].start_line, chunks[0].end_line), (1, 16));
        assert_eq!(first_heading(DOC, Kind::Markdown).as_deref(), Some("Guide"));
        assert_eq!(first_heading(DOC, Kind::Text), None);
    }

    #[test]
    fn a_long_heading_leaves_its_chunks_less_room() {
        let title = "A heading that goes on ".repeat(8);
        let doc = format!("# {title}\n\n{}", "Body text goes on here. ".repeat(100));
        let free = split(&doc, Kind::Markdown, Settings::new(100, 0), Sizer::Approx);
        let fitted = split(&doc, Kind::Markdown, Settings { room: 120, ..Settings::new(100, 0) }, Sizer::Approx);
        assert!(fitted.len() > free.len(), "{} chunks, {} without the room rule", fitted.len(), free.len());
        assert!(free.iter().any(|c| Sizer::Approx.size(&embed_text(&c.heading_path(), &c.text)) > 120));
        for c in &fitted {
            let n = Sizer::Approx.size(&embed_text(&c.heading_path(), &c.text));
            assert!(n <= 120, "{n} tokens with the heading: {:?}", c.text);
            assert_eq!(&doc[c.start_byte..c.end_byte], c.text);
            assert_eq!(c.start_line, doc[..c.start_byte].matches('\n').count() + 1, "lines count from 1");
        }
        assert!(fitted.iter().enumerate().all(|(i, c)| c.seq == i));
    }

    /// The splitter's work grew with the square of a document's length, and each chunk's heading
    /// path with the number of headings (issue 25): long documents are split in sections, cut
    /// where a chunk ends anyway, and heading paths are found in one walk.
    #[test]
    fn splitter_quadratic_in_document_length() {
        let small = "# A\n\ntext\n\n".repeat(2_000);
        assert_eq!(sections(&small, true).len(), 1, "documents under 64 KB are split whole");
        let fence = format!("```\n{}```\n", "code\n\n".repeat(10_000));
        let doc = format!("{}{fence}{}", "# H\n\nsome text here\n\n".repeat(5_000), "one long line ".repeat(20_000));
        let parts = sections(&doc, true);
        assert!(parts.len() > 5, "{} sections", parts.len());
        assert_eq!(parts.iter().map(|(_, s)| *s).collect::<String>(), doc);
        let fence_at = doc.find("```").unwrap();
        for pair in parts.windows(2) {
            let ((_, before), (at, _)) = (pair[0], pair[1]);
            assert!(before.len() <= 2 * SECTION_BYTES + 20, "{}", before.len());
            let in_fence = at > fence_at && at < fence_at + fence.len();
            let at_break = doc[..at].ends_with('\n') || doc[at..].starts_with(' ');
            let forced = before.len() > 2 * SECTION_BYTES - 100;
            assert!(
                at_break && (!in_fence || forced),
                "cut at {at} ({fence_at}, {}): {:?}",
                before.len(),
                &doc[at - 10..at + 10]
            );
        }
        let chunks = split(&doc, Kind::Markdown, Settings::new(64, 8), Sizer::Approx);
        let naive = |byte: usize| {
            let mut stack: Vec<(usize, String)> = Vec::new();
            for (at, level, title) in markdown_headings(&doc) {
                if at <= byte {
                    stack.retain(|(l, _)| *l < level);
                    stack.push((level, title));
                }
            }
            stack.into_iter().map(|(_, t)| t).collect::<Vec<_>>()
        };
        for c in &chunks {
            assert_eq!(&doc[c.start_byte..c.end_byte], c.text);
            assert_eq!(c.heading, naive(c.start_byte));
        }
    }

    #[test]
    fn embed_text_carries_context() {
        let chunks = split(DOC, Kind::Markdown, Settings::new(8, 0), Sizer::Approx);
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

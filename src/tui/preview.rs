//! The preview of one hit, as rows ready to draw: the hit's chunk with its neighbours around it
//! (the document's own text, overlaps removed), document line numbers, the query's words marked,
//! wrapped to the preview's width. Pure, so the app can scroll it and tests can read it.

use std::ops::Range;

use crate::search::Hit;

use super::textwidth;
use super::wrap::wrap;

/// A chunk of a document, for the preview.
pub type Piece = crate::store::read::ChunkSpan;

/// A hit's chunk and its neighbours, in document order.
pub type Context = crate::session::HitContext;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Text of a neighbouring chunk.
    Around,
    /// Text of the hit's chunk.
    Hit,
    /// A query word.
    Mark,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The document line number, on the first row of each line.
    pub number: Option<usize>,
    pub spans: Vec<(String, Tone)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub rows: Vec<Row>,
    /// The first row of the line with the hit's first matched word (else of the hit's start).
    pub anchor: usize,
    /// The row to show at the top by default: two lines above the anchor's line.
    pub lead: usize,
    /// Cells taken by line numbers and the space after them.
    pub gutter: usize,
}

impl Preview {
    pub fn text(&self) -> String {
        self.rows.iter().map(|r| r.spans.iter().map(|(s, _)| s.as_str()).collect::<String>() + "\n").collect()
    }
}

/// Rows for `hit`, wrapped to `width` cells (line numbers included).
pub fn build(hit: &Hit, context: Option<&Context>, terms: &[String], width: usize) -> Preview {
    let doc = assemble(hit, context);
    let marks = find_marks(&doc.text, terms);
    let anchor_byte = marks.iter().map(|m| m.start).find(|s| doc.hit.contains(s)).unwrap_or(doc.hit.start);
    let body = doc.text.strip_suffix('\n').unwrap_or(&doc.text);
    let last_line = doc.first_line + body.matches('\n').count();
    let gutter = last_line.to_string().len() + 1;
    let text_width = width.saturating_sub(gutter).max(1);
    let mut rows = Vec::new();
    let mut line_starts = Vec::new();
    let mut anchor_line = 0;
    let mut offset = 0;
    for (i, line) in body.split('\n').enumerate() {
        let range = offset..offset + line.len();
        if range.contains(&anchor_byte) || range.end == anchor_byte {
            anchor_line = i;
        }
        line_starts.push(rows.len());
        let segments = tone_runs(line, offset, &doc.hit, &marks);
        for (j, spans) in wrap(&segments, text_width).into_iter().enumerate() {
            rows.push(Row { number: (j == 0).then_some(doc.first_line + i), spans });
        }
        offset = range.end + 1;
    }
    let anchor = line_starts.get(anchor_line).copied().unwrap_or(0);
    let lead = line_starts.get(anchor_line.saturating_sub(2)).copied().unwrap_or(0);
    Preview { rows, anchor, lead, gutter }
}

struct Assembled {
    text: String,
    first_line: usize,
    /// Where the hit's chunk lies in `text`.
    hit: Range<usize>,
}

/// The pieces joined back into the document's text: overlaps are dropped, and a gap (blank text
/// between chunks) is replaced by the right number of line breaks.
fn assemble(hit: &Hit, context: Option<&Context>) -> Assembled {
    let pieces = context.map(|c| c.neighbours.as_slice()).unwrap_or_default();
    let fallback = || Assembled {
        text: hit.text.clone(),
        first_line: hit.end_line.saturating_sub(hit.text.trim_end_matches('\n').matches('\n').count()).max(1),
        hit: 0..hit.text.len(),
    };
    if !pieces.iter().any(|p| p.chunk_id == hit.chunk_id) {
        return fallback();
    }
    let mut text = String::new();
    let mut hit_range = 0..0;
    let mut end_byte = 0;
    let first_line = pieces[0].start_line;
    for (i, p) in pieces.iter().enumerate() {
        let start_in_text = if i == 0 {
            text.push_str(&p.text);
            0
        } else if p.start_byte < end_byte {
            let skip = end_byte - p.start_byte;
            if skip > p.text.len() || !p.text.is_char_boundary(skip) {
                return fallback();
            }
            let at = text.len() - skip;
            text.push_str(&p.text[skip..]);
            at
        } else {
            let line_now = first_line + text.matches('\n').count();
            let breaks = p.start_line.saturating_sub(line_now);
            if breaks == 0 && p.start_byte > end_byte && !text.ends_with(['\n', ' ']) {
                text.push(' ');
            }
            text.extend(std::iter::repeat_n('\n', breaks));
            let at = text.len();
            text.push_str(&p.text);
            at
        };
        if p.chunk_id == hit.chunk_id {
            hit_range = start_in_text..start_in_text + p.text.len();
        }
        end_byte = end_byte.max(p.end_byte);
    }
    Assembled { text, first_line, hit: hit_range }
}

/// Byte ranges of the query's words in `text`, the way the searcher marks its snippets.
fn find_marks(text: &str, terms: &[String]) -> Vec<Range<usize>> {
    let lower = text.to_lowercase();
    if lower.len() != text.len() {
        return Vec::new();
    }
    let mut marks: Vec<Range<usize>> = terms
        .iter()
        .filter(|t| !t.is_empty())
        .flat_map(|t| lower.match_indices(t.as_str()).map(|(i, m)| i..i + m.len()).collect::<Vec<_>>())
        .collect();
    marks.sort_by_key(|m| m.start);
    marks
}

/// One line of text split into runs of the same tone, cleaned for the terminal.
fn tone_runs(line: &str, offset: usize, hit: &Range<usize>, marks: &[Range<usize>]) -> Vec<(String, Tone)> {
    let mut runs: Vec<(String, Tone)> = Vec::new();
    for (i, c) in line.char_indices() {
        let at = offset + i;
        let tone = if marks.iter().any(|m| m.contains(&at)) {
            Tone::Mark
        } else if hit.contains(&at) {
            Tone::Hit
        } else {
            Tone::Around
        };
        let shown = textwidth::clean(c.encode_utf8(&mut [0; 4]));
        match runs.last_mut() {
            Some((s, t)) if *t == tone => s.push_str(&shown),
            _ => runs.push((shown, tone)),
        }
    }
    runs.retain(|(s, _)| !s.is_empty());
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::MatchKind;

    fn hit(chunk_id: i64, text: &str, line: usize, end_line: usize) -> Hit {
        Hit {
            chunk_id,
            doc_id: 1,
            path: "/notes/a.md".into(),
            title: "A".into(),
            heading: "A".into(),
            line,
            end_line,
            score: 1.0,
            rerank_score: None,
            kind: MatchKind::Keyword,
            snippet: text.into(),
            marks: Vec::new(),
            tags: Vec::new(),
            date: "2026-11-01T10:30:00+00:00".into(),
            text: text.into(),
        }
    }

    fn piece(chunk_id: i64, doc: &str, range: Range<usize>) -> Piece {
        let start_line = doc[..range.start].matches('\n').count() + 1;
        Piece { chunk_id, start_byte: range.start, end_byte: range.end, start_line, text: doc[range].to_string() }
    }

    #[test]
    fn neighbours_join_without_their_overlap() {
        let doc = "one\ntwo\nthree reflog\nfour\nfive\n";
        let context =
            Context { neighbours: vec![piece(1, doc, 0..8), piece(2, doc, 4..26), piece(3, doc, 21..31)], lines: None };
        let h = hit(2, &doc[4..26], 3, 4);
        let p = build(&h, Some(&context), &["reflog".into()], 40);
        assert_eq!(p.text(), doc);
        let numbers: Vec<Option<usize>> = p.rows.iter().map(|r| r.number).collect();
        assert_eq!(numbers, vec![Some(1), Some(2), Some(3), Some(4), Some(5)]);
        assert_eq!(p.anchor, 2, "the row of the first matched word");
        assert_eq!(p.lead, 0, "two lines above it");
        assert_eq!(p.rows[0].spans, vec![("one".to_string(), Tone::Around)]);
        assert_eq!(p.rows[1].spans, vec![("two".to_string(), Tone::Hit)]);
        assert_eq!(p.rows[2].spans, vec![("three ".to_string(), Tone::Hit), ("reflog".to_string(), Tone::Mark)]);
        assert_eq!(p.rows[4].spans, vec![("five".to_string(), Tone::Around)]);
    }

    #[test]
    fn without_context_the_hit_stands_alone() {
        let h = hit(7, "alpha\nbeta gamma\n", 11, 11);
        let p = build(&h, None, &["gamma".into()], 80);
        assert_eq!(p.rows[0].number, Some(10));
        assert_eq!(p.anchor, 1);
        assert_eq!(p.gutter, 3);
    }

    #[test]
    fn wide_text_wraps_inside_the_width() {
        let text = "日本語の文章を検索する道具です";
        let h = hit(1, text, 1, 1);
        let p = build(&h, None, &["検索".into()], 12);
        for row in &p.rows {
            let w: usize = row.spans.iter().map(|(s, _)| textwidth::width(s)).sum();
            assert!(w <= 12 - p.gutter, "{row:?}");
        }
        assert!(p.rows.iter().flat_map(|r| &r.spans).any(|(s, t)| s == "検索" && *t == Tone::Mark));
    }
}

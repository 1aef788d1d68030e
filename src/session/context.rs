//! Context around a hit, as a client asks for it: the lines before and after the hit's line in
//! its file (`search -C N`, as grep users expect), and the neighbouring chunks of its document
//! (`--neighbours`, the TUI's preview). Lines are counted in the text as indexed (an HTML page's
//! text, a PDF's pages), the text chunks' line numbers refer to.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};

use crate::search::{Hit, Searcher};
use crate::store::read::ChunkSpan;

/// What to give with each hit besides its snippet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Around {
    /// Lines before and after the hit's line (0: none).
    pub lines: usize,
    /// The chunks before and after the hit's chunk in its document.
    pub neighbours: bool,
}

impl Around {
    pub fn any(self) -> bool {
        self.lines > 0 || self.neighbours
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HitContext {
    /// The hit's line with the lines around it, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<Lines>,
    /// The hit's chunk and its neighbours (the chunk before and after, when there are), in
    /// document order; empty when not asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub neighbours: Vec<ChunkSpan>,
}

/// Consecutive lines of a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Lines {
    /// The number of the first line (1-based).
    pub start_line: usize,
    pub end_line: usize,
    /// The lines, each ending with a line break.
    pub text: String,
}

/// Each hit's context as `around` asks (None: nothing asked, or it could not be read: a file
/// changed or gone since it was indexed).
pub fn of_hits(searcher: &Searcher, hits: &[Hit], around: Around) -> Vec<Option<HitContext>> {
    if !around.any() {
        return vec![None; hits.len()];
    }
    let mut texts: HashMap<&str, Option<String>> = HashMap::new();
    hits.iter()
        .map(|hit| {
            let lines = if around.lines > 0 {
                let text = texts.entry(hit.path.as_str()).or_insert_with(|| indexed_text(Path::new(&hit.path)).ok());
                Some(lines_around(text.as_deref()?, hit.line, around.lines)?)
            } else {
                None
            };
            let neighbours =
                if around.neighbours { searcher.neighbours(hit.chunk_id).ok().flatten()? } else { Vec::new() };
            Some(HitContext { lines, neighbours })
        })
        .collect()
}

/// A file's text as it was indexed: what chunks' lines and byte offsets refer to.
pub fn indexed_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let kind = crate::text::kind::of(path).unwrap_or(crate::text::kind::Kind::Text);
    let readable = crate::text::readable(&bytes, kind).with_context(|| format!("cannot show {}", path.display()))?;
    Ok(readable.text)
}

/// Line `line` of `text` with `n` lines on each side (fewer at the file's ends); None when the
/// file no longer has that line.
pub fn lines_around(text: &str, line: usize, n: usize) -> Option<Lines> {
    let all: Vec<&str> = text.lines().collect();
    if line == 0 || line > all.len() {
        return None;
    }
    let start = line.saturating_sub(n).max(1);
    let end = (line + n).min(all.len());
    let mut out = String::new();
    for l in &all[start - 1..end] {
        out.push_str(l);
        out.push('\n');
    }
    Some(Lines { start_line: start, end_line: end, text: out })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_around_a_line_stop_at_the_file_ends() {
        let text = "one\ntwo\nthree\nfour\nfive\n";
        let mid = lines_around(text, 3, 1).unwrap();
        assert_eq!((mid.start_line, mid.end_line, mid.text.as_str()), (2, 4, "two\nthree\nfour\n"));
        let top = lines_around(text, 1, 2).unwrap();
        assert_eq!((top.start_line, top.end_line), (1, 3));
        let bottom = lines_around(text, 5, 9).unwrap();
        assert_eq!((bottom.start_line, bottom.end_line), (1, 5));
        assert_eq!(lines_around(text, 6, 1), None, "a line the file no longer has");
        assert_eq!(lines_around(text, 0, 1), None);
    }
}

//! Reads a hit's neighbourhood from the index: its chunk and the chunks just before and after it
//! in the same document, for the preview.

use anyhow::Result;

use crate::store::Store;
use crate::tui::preview::{Context, Piece};

/// The chunk `chunk_id` with its neighbours (sequence ±1), in document order; None when the chunk
/// is gone (a writer removed it since the search).
pub fn context(store: &Store, chunk_id: i64) -> Result<Option<Context>> {
    let mut stmt = store.conn.prepare_cached(
        "SELECT c.id, c.start_byte, c.end_byte, c.start_line, c.text
         FROM chunks h JOIN chunks c ON c.doc_id = h.doc_id AND c.seq BETWEEN h.seq - 1 AND h.seq + 1
         WHERE h.id = ?1 ORDER BY c.seq",
    )?;
    let rows = stmt.query_map([chunk_id], |r| {
        Ok(Piece {
            chunk_id: r.get(0)?,
            start_byte: r.get::<_, i64>(1)? as usize,
            end_byte: r.get::<_, i64>(2)? as usize,
            start_line: r.get::<_, i64>(3)? as usize,
            text: r.get(4)?,
        })
    })?;
    let pieces: Vec<Piece> = rows.collect::<Result<_, _>>()?;
    Ok((!pieces.is_empty()).then_some(Context { pieces }))
}

//! What searches read from SQLite: keyword matches, term frequencies, chunk paths for a path
//! filter, the rows behind hits and a hit's neighbouring chunks. Every statement lives here, so
//! `search` works with typed rows and never with SQL.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use anyhow::Result;
use rusqlite::{OptionalExtension, params, params_from_iter};

use super::{Store, TagCount};

/// What a hit shows of its chunk and document.
#[derive(Debug, Clone)]
pub struct HitRow {
    pub doc_id: i64,
    pub path: String,
    pub title: String,
    pub heading: String,
    pub start_line: usize,
    pub end_line: usize,
    pub text: String,
    /// The document's tags, sorted.
    pub tags: Vec<String>,
    /// The note's own date, else the file's mtime (ns since the epoch): what time filters take.
    pub date_ns: i64,
}

/// A chunk of a document with its place in the document (for previews).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChunkSpan {
    pub chunk_id: i64,
    pub start_byte: usize,
    pub end_byte: usize,
    pub start_line: usize,
    pub text: String,
}

/// A document's id, path (as people see it) and kind, for a search filter.
#[derive(Debug, Clone)]
pub struct DocKind {
    pub id: i64,
    pub path: String,
    pub kind: String,
}

/// Ids as one `rarray(?)` value.
fn id_array(ids: impl Iterator<Item = i64>) -> Rc<Vec<rusqlite::types::Value>> {
    Rc::new(ids.map(rusqlite::types::Value::from).collect())
}

/// What SQLite narrows a filter's chunks by: modification time and frontmatter tags (each tag
/// itself or a tag nested under it, `tag/...`).
#[derive(Debug, Clone, Default)]
pub struct DocConditions<'a> {
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    pub tags: &'a [String],
}

impl Store {
    /// SQLite's `data_version`: changes whenever another connection commits.
    pub fn data_version(&self) -> Result<i64> {
        Ok(self.conn.pragma_query_value(None, "data_version", |r| r.get(0))?)
    }

    /// The highest chunk id ever given: an upper bound of the chunk count, read for free.
    pub fn max_chunk_id(&self) -> Result<i64> {
        Ok(self.conn.query_row("SELECT coalesce(max(id), 0) FROM chunks", [], |r| r.get(0))?)
    }

    /// The chunks an FTS5 expression (one query word: see `fts::terms_expr`)
    /// matches, stemmed and phrased exactly as the keyword index matches it, ids ascending.
    pub fn matching_chunks(&self, expr: &str) -> Result<Vec<i64>> {
        let mut stmt =
            self.conn.prepare_cached("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?1 ORDER BY rowid")?;
        let rows = stmt.query_map([expr], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many chunks an FTS5 expression matches, counted no further than `limit` (inside
    /// SQLite, which counts in about half the time it takes to hand the ids over).
    pub fn count_matching(&self, expr: &str, limit: usize) -> Result<i64> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ?1 LIMIT ?2)")?;
        Ok(stmt.query_row(params![expr, limit as i64], |r| r.get(0))?)
    }

    /// Chunks matching an FTS5 expression, best BM25 first: (chunk id, score, higher is better).
    /// With `among`, only those chunks are ranked (a search filter's), however few they are.
    pub fn keyword_match(&self, expr: &str, limit: usize, among: Option<&HashSet<i64>>) -> Result<Vec<(i64, f32)>> {
        let row = |r: &rusqlite::Row| Ok((r.get::<_, i64>(0)?, -r.get::<_, f64>(1)? as f32));
        let rows: Vec<(i64, f32)> = match among {
            None => {
                let mut stmt = self.conn.prepare_cached(
                    "SELECT rowid, bm25(chunks_fts, 2.0, 1.0, 0.5) AS s FROM chunks_fts WHERE chunks_fts MATCH ?1 ORDER BY s LIMIT ?2",
                )?;
                stmt.query_map(params![expr, limit as i64], row)?.collect::<Result<_, _>>()?
            }
            Some(ids) => {
                let ids = id_array(ids.iter().copied());
                // `+rowid`: the ids filter what the full-text query finds. Offered to FTS5 as a
                // rowid constraint they would drive the query instead, one full-text lookup per
                // id (a second per search on 100,000 chunks).
                let mut stmt = self.conn.prepare_cached(
                    "SELECT rowid, bm25(chunks_fts, 2.0, 1.0, 0.5) AS s FROM chunks_fts \
                     WHERE chunks_fts MATCH ?1 AND +rowid IN rarray(?3) ORDER BY s LIMIT ?2",
                )?;
                stmt.query_map(params![expr, limit as i64, ids], row)?.collect::<Result<_, _>>()?
            }
        };
        Ok(rows)
    }

    /// Every document that meets `when`, with its path and kind.
    pub fn docs_where(&self, when: &DocConditions) -> Result<Vec<DocKind>> {
        if !when.tags.is_empty() && !self.has_table("doc_tags")? {
            anyhow::bail!(
                "this index was made before qsearch read tags: run `qsearch index` once (it reads Markdown notes \
                 again for their tags; nothing is embedded again)"
            );
        }
        // A note's own date where it gives one; else the file's. An index from before note
        // dates (read-only, not migrated yet) has only the file's.
        let timed = when.since_ns.is_some() || when.until_ns.is_some();
        let (mut sql, date) = if timed && self.has_table("doc_dates")? {
            let from =
                "SELECT d.id, d.display, d.kind FROM documents d LEFT JOIN doc_dates n ON n.doc_id = d.id WHERE 1";
            (String::from(from), "coalesce(n.stated_ns, d.mtime_ns)")
        } else {
            (String::from("SELECT d.id, d.display, d.kind FROM documents d WHERE 1"), "d.mtime_ns")
        };
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(ns) = when.since_ns {
            sql.push_str(&format!(" AND {date} >= ?"));
            args.push(ns.into());
        }
        if let Some(ns) = when.until_ns {
            sql.push_str(&format!(" AND {date} < ?"));
            args.push(ns.into());
        }
        for tag in when.tags {
            // `tag/` up to `tag0` ('0' follows '/') are the tags nested under it.
            sql.push_str(" AND d.id IN (SELECT doc_id FROM doc_tags WHERE tag = ? OR (tag >= ? AND tag < ?))");
            args.extend([tag.clone().into(), format!("{tag}/").into(), format!("{tag}0").into()]);
        }
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map(params_from_iter(args), |r| Ok(DocKind { id: r.get(0)?, path: r.get(1)?, kind: r.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The chunk ids of these documents.
    pub fn chunks_of(&self, doc_ids: &[i64]) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare_cached("SELECT id FROM chunks WHERE doc_id IN rarray(?1)")?;
        let rows = stmt.query_map([id_array(doc_ids.iter().copied())], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many distinct tags there are, and the `limit` that most documents carry, most first
    /// (then by name). None in an index from before tags.
    pub fn tag_counts(&self, limit: usize) -> Result<(u64, Vec<TagCount>)> {
        if !self.has_table("doc_tags")? {
            return Ok((0, Vec::new()));
        }
        let total: i64 = self.conn.query_row("SELECT count(DISTINCT tag) FROM doc_tags", [], |r| r.get(0))?;
        let mut stmt =
            self.conn.prepare("SELECT tag, count(*) AS n FROM doc_tags GROUP BY tag ORDER BY n DESC, tag LIMIT ?1")?;
        let rows =
            stmt.query_map([limit as i64], |r| Ok(TagCount { tag: r.get(0)?, documents: r.get::<_, i64>(1)? as u64 }))?;
        Ok((total as u64, rows.collect::<Result<_, _>>()?))
    }

    /// Files read and not indexed: (skipped, failed). An index from before they were
    /// remembered (read-only, not migrated yet) has none.
    pub fn passed_over_counts(&self) -> Result<(u64, u64)> {
        if !self.has_table("passed_over")? {
            return Ok((0, 0));
        }
        let (skipped, failed): (i64, i64) = self.conn.query_row(
            "SELECT count(*) FILTER (WHERE NOT failed), count(*) FILTER (WHERE failed) FROM passed_over",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((skipped as u64, failed as u64))
    }

    pub(crate) fn has_table(&self, name: &str) -> Result<bool> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// The rows behind these chunk ids; ids whose chunk is gone are simply absent.
    pub fn hit_rows(&self, ids: &[i64]) -> Result<HashMap<i64, HitRow>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let placeholders = vec!["?"; ids.len()].join(",");
        // An index from before tags (read-only, not migrated yet) has no tag table.
        let tags = if self.has_table("doc_tags")? {
            "(SELECT group_concat(tag, char(10)) FROM doc_tags WHERE doc_id = d.id)"
        } else {
            "NULL"
        };
        let date = if self.has_table("doc_dates")? {
            "coalesce((SELECT stated_ns FROM doc_dates WHERE doc_id = d.id), d.mtime_ns)"
        } else {
            "d.mtime_ns"
        };
        let sql = format!(
            "SELECT c.id, c.doc_id, d.display, d.title, c.heading, c.start_line, c.end_line, c.text, {tags}, {date}
             FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({placeholders})"
        );
        // Searches ask for batches of a few sizes: their statements are kept prepared.
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(ids.iter()), |r| {
            let row = HitRow {
                doc_id: r.get(1)?,
                path: r.get(2)?,
                title: r.get(3)?,
                heading: r.get(4)?,
                start_line: r.get::<_, i64>(5)? as usize,
                end_line: r.get::<_, i64>(6)? as usize,
                text: r.get(7)?,
                tags: {
                    let mut tags: Vec<String> =
                        r.get::<_, Option<String>>(8)?.unwrap_or_default().lines().map(str::to_string).collect();
                    tags.sort();
                    tags
                },
                date_ns: r.get(9)?,
            };
            Ok((r.get::<_, i64>(0)?, row))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The vectors SQLite keeps of the chunks `ids` that have one (to rank again the candidates of
    /// an i8 or binary vector graph).
    pub fn vectors_of(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.id, v.data FROM chunks c JOIN vectors v ON v.hash = c.hash
             WHERE c.id IN rarray(?1) AND c.vec_seq IS NOT NULL",
        )?;
        let rows = stmt.query_map([id_array(ids.iter().copied())], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, super::blob::StoredBlob>(1)?.0))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether a file (by its absolute path) is a document of the index.
    pub fn has_document(&self, path: &std::path::Path) -> Result<bool> {
        let found = self
            .conn
            .query_row("SELECT 1 FROM documents WHERE path = ?1", [crate::util::path_bytes(path)], |_| Ok(()))
            .optional()?;
        Ok(found.is_some())
    }

    /// The chunk `chunk_id` with the chunks just before and after it in its document, in document
    /// order; empty when the chunk is gone.
    pub fn neighbours(&self, chunk_id: i64) -> Result<Vec<ChunkSpan>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.id, c.start_byte, c.end_byte, c.start_line, c.text
             FROM chunks h JOIN chunks c ON c.doc_id = h.doc_id AND c.seq BETWEEN h.seq - 1 AND h.seq + 1
             WHERE h.id = ?1 ORDER BY c.seq",
        )?;
        let rows = stmt.query_map([chunk_id], |r| {
            Ok(ChunkSpan {
                chunk_id: r.get(0)?,
                start_byte: r.get::<_, i64>(1)? as usize,
                end_byte: r.get::<_, i64>(2)? as usize,
                start_line: r.get::<_, i64>(3)? as usize,
                text: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

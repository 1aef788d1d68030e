-- qsearch index schema. SQLite is the source of truth; the usearch file is derived from it.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE roots (
    id       INTEGER PRIMARY KEY,
    path     BLOB NOT NULL UNIQUE,   -- raw OS bytes of the absolute path
    display  TEXT NOT NULL,
    added_at INTEGER NOT NULL
) STRICT;

CREATE TABLE documents (
    id         INTEGER PRIMARY KEY,
    root_id    INTEGER NOT NULL REFERENCES roots(id),
    path       BLOB NOT NULL UNIQUE, -- raw OS bytes of the absolute path
    display    TEXT NOT NULL,        -- the path for people (lossy for non-UTF-8 names)
    size       INTEGER NOT NULL,
    mtime_ns   INTEGER NOT NULL,
    hash       TEXT NOT NULL,        -- blake3 of the raw bytes
    kind       TEXT NOT NULL,        -- markdown, text, code, html...
    title      TEXT NOT NULL,
    lossy      INTEGER NOT NULL DEFAULT 0, -- 1 when invalid bytes were replaced on decoding
    indexed_at INTEGER NOT NULL
) STRICT;
CREATE INDEX documents_by_root ON documents(root_id);

CREATE TABLE chunks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT, -- ids are never reused: they key the vector index
    doc_id     INTEGER NOT NULL REFERENCES documents(id),
    seq        INTEGER NOT NULL,
    hash       TEXT NOT NULL,        -- blake3 of the text as embedded: vectors are shared by it
    heading    TEXT NOT NULL,        -- heading path, " > " separated
    start_byte INTEGER NOT NULL,
    end_byte   INTEGER NOT NULL,
    start_line INTEGER NOT NULL,     -- 1-based, inclusive
    end_line   INTEGER NOT NULL,
    text       TEXT NOT NULL,
    vec_seq    INTEGER               -- NULL while its vector is pending; else when it was attached
) STRICT;
CREATE INDEX chunks_by_doc ON chunks(doc_id, seq);
CREATE INDEX chunks_by_hash ON chunks(hash);
CREATE INDEX chunks_by_vec_seq ON chunks(vec_seq);

-- One vector per distinct chunk text (little-endian f32), so renames and unchanged chunks of a
-- changed file reuse vectors instead of recomputing them.
CREATE TABLE vectors (
    hash TEXT PRIMARY KEY,
    data BLOB NOT NULL
) STRICT;

-- Keyword index. Chinese, Japanese and Korean characters are written as separate tokens
-- before they get here (see text/fts.rs), so unicode61 finds them.
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    heading, body, path,
    tokenize = 'unicode61 remove_diacritics 2',
    content = '',
    contentless_delete = 1
);

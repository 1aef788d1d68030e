-- The keyword index stems English words (Porter: "formatting", "formatter" -> "format"), so a
-- question finds code and prose that use another form of its words. Contentless tables cannot
-- be re-tokenized in place: the table is made anew and filled from the chunks as stored (plain
-- text; the next `--rebuild`, which the chunker version asks for, writes identifiers and CJK
-- text split as `text/fts.rs` does).
DROP TABLE chunks_vocab;
DROP TABLE chunks_fts;
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    heading, body, path,
    tokenize = 'porter unicode61 remove_diacritics 2',
    content = '',
    contentless_delete = 1
);
INSERT INTO chunks_fts(rowid, heading, body, path)
    SELECT c.id, c.heading, c.text, d.display FROM chunks c JOIN documents d ON d.id = c.doc_id;
CREATE VIRTUAL TABLE chunks_vocab USING fts5vocab(chunks_fts, 'row');

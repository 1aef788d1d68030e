-- Tags of Markdown notes, from their frontmatter (`tags:`, `keywords:`...) and their text
-- (`#tag`), normalised as text/frontmatter.rs does, for the search filter `tag:`.
CREATE TABLE doc_tags (
    tag    TEXT NOT NULL,
    doc_id INTEGER NOT NULL REFERENCES documents(id),
    PRIMARY KEY (tag, doc_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX doc_tags_by_doc ON doc_tags(doc_id);
-- Notes indexed before this have their tags read at the next sync: a size no file has makes the
-- sync read them again. Their chunks come out the same, so their vectors are kept.
UPDATE documents SET size = -1, hash = '' WHERE kind = 'markdown';

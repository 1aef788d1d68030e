-- The date a Markdown note gives itself in its frontmatter (`date`, `updated`, `lastmod`...: the
-- latest of them, text/frontmatter.rs). The `since` and `until` filters take it instead of the
-- file's mtime, which a copy or a `git clone` sets to the moment of the copy.
CREATE TABLE IF NOT EXISTS doc_dates (
    doc_id    INTEGER PRIMARY KEY REFERENCES documents(id),
    stated_ns INTEGER NOT NULL   -- nanoseconds since the Unix epoch
) STRICT;
-- Notes that open with a frontmatter block are read again at the next sync for their date (a
-- size no file has makes the sync read them). Their chunks come out the same, so their vectors
-- are kept.
UPDATE documents SET size = -1, hash = ''
WHERE kind = 'markdown'
  AND id IN (SELECT doc_id FROM chunks WHERE seq = 0 AND (text LIKE '---%' OR text LIKE '+++%'));

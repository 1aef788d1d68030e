-- How many chunks have their vector attached (`vec_seq` set), kept by triggers in the same
-- transaction as the change: a reader compares its graph's count with it at every open and
-- after every commit it catches up with, and counting the chunks took ~24 ms at a million.
-- `qsearch doctor` counts them and compares; `qsearch index --repair` sets it again.
CREATE TABLE IF NOT EXISTS embedded_count (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    n   INTEGER NOT NULL
) STRICT;
INSERT OR REPLACE INTO embedded_count(one, n) SELECT 1, count(*) FROM chunks WHERE vec_seq IS NOT NULL;
CREATE TRIGGER IF NOT EXISTS chunks_embedded_insert AFTER INSERT ON chunks
WHEN NEW.vec_seq IS NOT NULL
BEGIN
    UPDATE embedded_count SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS chunks_embedded_delete AFTER DELETE ON chunks
WHEN OLD.vec_seq IS NOT NULL
BEGIN
    UPDATE embedded_count SET n = n - 1;
END;
CREATE TRIGGER IF NOT EXISTS chunks_embedded_update AFTER UPDATE OF vec_seq ON chunks
WHEN (OLD.vec_seq IS NULL) <> (NEW.vec_seq IS NULL)
BEGIN
    UPDATE embedded_count SET n = n + (NEW.vec_seq IS NOT NULL) - (OLD.vec_seq IS NOT NULL);
END;

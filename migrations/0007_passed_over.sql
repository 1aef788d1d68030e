-- Files that were read and could not be indexed: no text in them (a scan, minified code, binary
-- content) or a PDF the reader fails on. With the size and mtime they had, an unchanged one is
-- not read again at every sync or watcher batch (a PDF that hangs the reader costs its time
-- limit each time); it is reported as before. A file that changes is read again.
CREATE TABLE IF NOT EXISTS passed_over (
    path     BLOB PRIMARY KEY,    -- raw OS bytes of the absolute path
    root_id  INTEGER NOT NULL REFERENCES roots(id),
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    failed   INTEGER NOT NULL,    -- 1: could not be read (an error); 0: skipped on purpose
    reason   TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS passed_over_by_root ON passed_over(root_id);

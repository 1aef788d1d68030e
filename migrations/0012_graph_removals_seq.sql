-- The vector number (`vec_seq`) each removed chunk's vector had: a reader that maps the vector
-- file tells from it alone whether the file holds the chunk (it does when the number is at most
-- the one the file is named after; numbers are given once and never change), so its view of the
-- file needs no table from keys to vectors, which took two thirds of its open at a million
-- chunks. Rows from before have none: a reader that finds one looks keys up as before, until
-- the next save clears them. The table is made again rather than altered, so that the
-- migration runs again cleanly over an index that has the column (the numbers are then lost,
-- which costs only the faster open until the next save).
DROP TABLE IF EXISTS graph_removals_numbered;
CREATE TABLE graph_removals_numbered (
    chunk_id INTEGER PRIMARY KEY,
    vec_seq  INTEGER
) STRICT;
INSERT INTO graph_removals_numbered(chunk_id) SELECT chunk_id FROM graph_removals;
DROP TABLE graph_removals;
ALTER TABLE graph_removals_numbered RENAME TO graph_removals;

-- Chunks removed since the vector file was last saved. The file is no longer rewritten after
-- every change (a watcher rewrote hundreds of megabytes per saved note): whoever loads it adds
-- the vectors attached after the file's sequence number and removes these, and saving the
-- file clears them. Chunk ids are never reused, so an id here is gone for good.
CREATE TABLE IF NOT EXISTS graph_removals (
    chunk_id INTEGER PRIMARY KEY
) STRICT;

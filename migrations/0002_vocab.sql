-- Document frequency of each keyword-index term, so queries can leave out words that nearly
-- every chunk contains (they cost a scan of the whole index and rank nothing).
CREATE VIRTUAL TABLE chunks_vocab USING fts5vocab(chunks_fts, 'row');

-- HTML pages are now read as Markdown-shaped text (src/text/html.rs): headings, fenced code,
-- list items. Their chunks and byte offsets change, so every page indexed before is read, cut
-- and embedded again at the next sync (a size no file has makes the sync read it).
UPDATE documents SET size = -1, hash = '' WHERE kind = 'html';

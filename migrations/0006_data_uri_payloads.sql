-- A data URI's base64 payload (an image pasted into a note) is now read as `…` (text::readable):
-- documents whose chunks hold one are read, cut and embedded again at the next sync, so their
-- hundreds of chunks of base64 go (a size no file has makes the sync read them).
UPDATE documents SET size = -1, hash = ''
WHERE id IN (SELECT DISTINCT doc_id FROM chunks WHERE instr(text, ';base64,') > 0);

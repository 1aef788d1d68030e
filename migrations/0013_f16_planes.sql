-- From this version on, `vectors.data` holds new vectors as "planes" (src/store/blob.rs): the
-- f16 values' high bytes entropy-coded by zstd, then their low bytes, then the tag byte 0x17;
-- bit for bit the f16 of before in about seven eighths of the bytes. Rows written before keep
-- their format (f16 with tag 0x16, or f32) and are read as they are until `qsearch index
-- --rebuild` writes them again. Nothing changes in the tables: this step is here so that an
-- older qsearch, which cannot read the new rows, refuses the index as written by a newer one.
SELECT 1;

-- From this version on, `vectors.data` holds new vectors as little-endian f16 followed by one tag
-- byte (an odd length); rows of older versions keep their f32 (a length divisible by 4) until
-- `qsearch index --rebuild` writes them again. Nothing changes in the tables: this step is here
-- so that an older qsearch, which would read an f16 row as f32, refuses the index as written by
-- a newer one instead.
SELECT 1;

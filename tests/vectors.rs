//! The vector file as readers open it (issue 26, item 2): mapped, not loaded; what the writer
//! attached and removed since the file was saved answers as in the writer's own graph; the
//! writer's checksum stamp spares readers the reading of the whole file, and `doctor`'s checked
//! open still reads it.

use std::path::Path;

use qsearch::embed::stand_in::StandIn;
use qsearch::indexer::{self, Writer};
use qsearch::store::Store;
use qsearch::store::docs::{NewChunk, NewDocument};
use qsearch::store::lock::Role;
use qsearch::store::vectors::{FileDamage, VectorIndex, VectorType};

const DIMS: usize = 32;

fn unit(seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let v: Vec<f32> = (0..DIMS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.into_iter().map(|a| a / n).collect()
}

fn writer(dir: &Path) -> Writer {
    writer_of(dir, VectorType::F16)
}

fn writer_of(dir: &Path, vector_type: VectorType) -> Writer {
    writer_with(dir, Some(vector_type), indexer::Rebuild::No)
}

/// A writer given `vector_type` (`None`: unset in the configuration), rebuilding or not.
fn writer_with(dir: &Path, vector_type: Option<VectorType>, rebuild: indexer::Rebuild) -> Writer {
    let options = indexer::Options { vector_type, ..indexer::Options::default() };
    let settings = indexer::Settings { role: Role::Index, rebuild, options };
    Writer::open(dir, settings, |_| Ok(Box::new(StandIn::new(DIMS)))).unwrap()
}

/// Document `d` with `chunks` chunks, their vectors made from `salt`.
fn write(w: &mut Writer, root: i64, dir: &Path, d: usize, chunks: usize, salt: u64) {
    write_with(w, root, dir, d, chunks, salt, |i| unit(salt * 1000 + (d * 10 + i) as u64));
}

/// Document `d` with `chunks` chunks, chunk `i`'s vector `vector(i)`.
fn write_with(
    w: &mut Writer,
    root: i64,
    dir: &Path,
    d: usize,
    chunks: usize,
    salt: u64,
    vector: impl Fn(usize) -> Vec<f32>,
) {
    let chunks: Vec<NewChunk> = (0..chunks)
        .map(|seq| {
            let text = format!("document {d} part {seq} salt {salt}");
            NewChunk::new(seq, format!("Doc {d}"), 0, text.len(), 1, 1, text)
        })
        .collect();
    let doc = NewDocument {
        root_id: root,
        path: dir.join(format!("docs/{d}.md")),
        size: 1,
        mtime_ns: salt as i64,
        hash: format!("{d}-{salt}"),
        kind: "markdown",
        title: "t".into(),
        lossy: false,
        tags: Vec::new(),
        stated_ns: None,
    };
    let items: Vec<(String, Vec<f32>)> = chunks.iter().enumerate().map(|(i, c)| (c.hash.clone(), vector(i))).collect();
    w.write_document(doc, chunks).unwrap();
    w.attach_vectors(&items).unwrap();
}

fn top(vi: &VectorIndex, q: &[f32]) -> Vec<i64> {
    vi.search(q, 5, None).unwrap().into_iter().map(|h| h.0).collect()
}

/// A saved index of documents 0..`docs`, five chunks each (salt 1), and its writer still open.
fn saved(docs: usize) -> (tempfile::TempDir, std::path::PathBuf, Writer, i64) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let mut w = writer(&dir);
    let root = w.add_root(&dir).unwrap();
    for d in 0..docs {
        write(&mut w, root, &dir, d, 5, 1);
    }
    w.save().unwrap();
    (tmp, dir, w, root)
}

#[test]
fn readers_map_the_file_and_see_what_was_attached_and_removed_since() {
    let (_tmp, dir, mut w, root) = saved(40);
    let store = Store::open_read(&dir).unwrap();
    let mut reader = VectorIndex::open_for_search(&store, DIMS).unwrap();
    assert!(reader.is_mapped(), "a reader maps the vector file");
    assert!(!reader.looks_up_keys(), "a reader's map builds no table of keys");
    assert!(reader.damage().is_none());
    assert_eq!(reader.len(), 200);

    // Changes the writer commits and does not save: document 3 rewritten (its five chunks
    // removed, two new ones), ten new documents.
    write(&mut w, root, &dir, 3, 2, 2);
    for d in 40..50 {
        write(&mut w, root, &dir, d, 5, 1);
    }
    reader.refresh(&store).unwrap();
    assert!(reader.is_mapped(), "a refresh keeps the map");
    assert_eq!(reader.len(), 200 - 5 + 2 + 50);
    // Removals the file does not hold, without keys to ask it: document 41 (beside the map in
    // this reader) and document 3's two chunks of after the save rewritten again, document 50
    // written and rewritten between two refreshes; and documents 7 and 39 (in the file).
    write(&mut w, root, &dir, 41, 3, 3);
    write(&mut w, root, &dir, 3, 1, 3);
    write(&mut w, root, &dir, 50, 4, 1);
    write(&mut w, root, &dir, 50, 2, 3);
    write(&mut w, root, &dir, 7, 1, 3);
    // Document 39's last chunk has the very number the file is named after.
    write(&mut w, root, &dir, 39, 1, 3);
    reader.refresh(&store).unwrap();
    assert!(reader.is_mapped() && reader.damage().is_none(), "counts agree: the map stays");
    let expected = 200 - 5 + 2 + 50 - 5 + 3 - 2 + 1 + 2 - 5 + 1 - 5 + 1;
    assert_eq!(reader.len(), expected);
    assert_eq!(store.embedded_chunks().unwrap(), expected as u64);
    // Every query answers as a graph loaded from SQLite's vectors answers.
    let fresh = VectorIndex::open_for_search(&store, DIMS).unwrap();
    assert!(fresh.is_mapped() && fresh.damage().is_none());
    assert_eq!(fresh.len(), expected);
    // ... and as exact cosine over SQLite's vectors does.
    for i in 0..30 {
        let q = unit(777 + i);
        assert_eq!(top(&reader, &q), exact_top(&reader, &q), "query {i}");
        assert_eq!(top(&fresh, &q), exact_top(&reader, &q), "query {i}");
    }
    // The new chunks are found by their own vectors; the removed ones are not found at all.
    let new_vector = unit(3 * 1000 + 30);
    let hit = reader.search(&new_vector, 1, None).unwrap()[0];
    assert!(hit.1 > 0.999, "{hit:?}");
    let old_vector = unit(1000 + 30);
    let hits = reader.search(&old_vector, 300, None).unwrap();
    assert!(hits.iter().all(|h| h.1 < 0.999), "a removed chunk answers: {hits:?}");
    assert_eq!(hits.len(), expected);
    drop(w);
}

#[test]
fn removals_listed_before_they_were_numbered_are_told_from_the_files_keys() {
    let (_tmp, dir, mut w, root) = saved(20);
    write(&mut w, root, &dir, 20, 5, 1);
    write(&mut w, root, &dir, 2, 1, 2);
    write(&mut w, root, &dir, 20, 1, 2);
    drop(w);
    // As an index written before migration 0012 left them: the chunks, not their numbers.
    let db = rusqlite::Connection::open(dir.join("index.sqlite")).unwrap();
    let listed = db.execute("UPDATE graph_removals SET vec_seq = NULL", []).unwrap();
    assert_eq!(listed, 5 + 5);
    drop(db);
    let store = Store::open_read(&dir).unwrap();
    let reader = VectorIndex::open_for_search(&store, DIMS).unwrap();
    assert!(reader.is_mapped() && reader.looks_up_keys());
    assert!(reader.damage().is_none(), "{:?}", reader.damage());
    assert_eq!(reader.len(), 100 - 5 + 1 + 1);
    for i in 0..20 {
        let q = unit(555 + i);
        assert_eq!(top(&reader, &q), exact_top(&reader, &q), "query {i}");
    }
}

#[test]
fn the_writers_stamp_spares_readers_the_checksum_and_doctor_still_reads_the_whole_file() {
    let (_tmp, dir, w, _) = saved(20);
    drop(w);
    let file = qsearch::store::vectors::newest_path(&dir).unwrap();
    let stamped = std::fs::metadata(&file).unwrap().modified().unwrap();
    // Bytes changed with the writer's time put back (what decay under a kept time looks like):
    // the last vector's bytes, which the graph's structure does not read.
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let f = std::fs::File::options().write(true).open(&file).unwrap();
    f.set_modified(stamped).unwrap();
    drop(f);
    let store = Store::open_read(&dir).unwrap();
    let reader = VectorIndex::open_for_search(&store, DIMS).unwrap();
    assert!(reader.damage().is_none(), "a stamped file is trusted by a reader: {:?}", reader.damage());
    let checked = VectorIndex::open_checked(&store, DIMS).unwrap();
    assert!(
        matches!(checked.damage(), Some((_, FileDamage::Checksum { .. }))),
        "doctor's open reads the whole file: {:?}",
        checked.damage()
    );
    // Cut short under the kept time: refused by the map itself, rebuilt from SQLite.
    for cut in [bytes.len() - 1, bytes.len() / 2, 100] {
        std::fs::write(&file, &bytes[..cut]).unwrap();
        let f = std::fs::File::options().write(true).open(&file).unwrap();
        f.set_modified(stamped).unwrap();
        drop(f);
        let reader = VectorIndex::open_for_search(&store, DIMS).unwrap();
        let damage = reader.damage();
        assert!(matches!(damage, Some((_, FileDamage::Unreadable { .. }))), "cut at {cut}: {damage:?}");
        assert!(!reader.is_mapped() && reader.len() == 100, "cut at {cut}");
    }
    // Without the stamp (any write sets the time to now), a reader checks the whole file too.
    std::fs::write(&file, &bytes).unwrap();
    let reader = VectorIndex::open_for_search(&store, DIMS).unwrap();
    assert!(matches!(reader.damage(), Some((_, FileDamage::Checksum { .. }))), "{:?}", reader.damage());
    assert!(!reader.is_mapped(), "a damaged file is rebuilt in memory from SQLite");
    assert_eq!(reader.len(), 100);
}

/// The exact top 5 of `q` over every chunk's vector, by brute force.
fn exact_top(vi: &VectorIndex, q: &[f32]) -> Vec<i64> {
    let all: std::collections::HashSet<i64> = (0..1000).collect();
    vi.search_among(q, 5, &all).unwrap().into_iter().map(|h| h.0).collect()
}

#[test]
fn i8_and_binary_graphs_rank_their_candidates_by_the_exact_vectors_and_a_change_of_type_rewrites_only_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let mut w = writer_of(&dir, VectorType::B1);
    let root = w.add_root(&dir).unwrap();
    for d in 0..40 {
        write(&mut w, root, &dir, d, 5, 1);
    }
    w.save().unwrap();
    drop(w);
    for ty in [VectorType::B1, VectorType::I8, VectorType::F16] {
        // The writer's open writes the file again as the type it is given.
        drop(writer_of(&dir, ty));
        let store = Store::open_read(&dir).unwrap();
        let reader = VectorIndex::open_for_search(&store, DIMS).unwrap();
        assert!(reader.damage().is_none(), "{ty:?}: {:?}", reader.damage());
        assert!(reader.is_mapped());
        assert_eq!(reader.vector_type(), ty);
        assert_eq!(reader.len(), 200);
        let mut agree = 0;
        for i in 0..20 {
            let q = unit(555 + i);
            let hits = reader.search(&q, 5, None).unwrap();
            // The similarities are the exact cosines, whatever the graph keeps.
            let exact = reader.search_among(&q, 5, &hits.iter().map(|h| h.0).collect()).unwrap();
            for (h, e) in hits.iter().zip(&exact) {
                assert!((h.1 - e.1).abs() < 1e-3, "{ty:?}: {h:?} vs {e:?}");
            }
            agree += (hits.iter().map(|h| h.0).collect::<Vec<_>>() == exact_top(&reader, &q)) as usize;
        }
        assert!(agree >= 18, "{ty:?}: {agree} of 20 queries answered as exact search does");
        // A vector's own chunk comes first.
        let own = unit(1000 + 123);
        assert_eq!(reader.search(&own, 1, None).unwrap()[0].0, exact_top(&reader, &own)[0], "{ty:?}");
    }
}

/// One document of five chunks written by `w` under its own root `dir`, and saved.
fn one_document(mut w: Writer, dir: &Path, salt: u64) {
    let root = w.add_root(dir).unwrap();
    write(&mut w, root, dir, 0, 5, salt);
    w.save().unwrap();
}

fn reader_type(dir: &Path) -> VectorType {
    let store = Store::open_read(dir).unwrap();
    VectorIndex::open_for_search(&store, DIMS).unwrap().vector_type()
}

#[test]
fn a_new_index_gets_i8_one_made_with_f16_keeps_it_until_rebuilt_or_told() {
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("fresh");
    one_document(writer_with(&fresh, None, indexer::Rebuild::No), &fresh, 1);
    assert_eq!(reader_type(&fresh), VectorType::I8);
    // An index made as f16 (an older version's default) stays f16 when no type is set: its file
    // is not written again at every open.
    let old = tmp.path().join("old");
    one_document(writer_of(&old, VectorType::F16), &old, 1);
    drop(writer_with(&old, None, indexer::Rebuild::No));
    assert_eq!(reader_type(&old), VectorType::F16);
    // Rebuilt, it is made as a new one is.
    one_document(writer_with(&old, None, indexer::Rebuild::Always), &old, 2);
    assert_eq!(reader_type(&old), VectorType::I8);
}

#[test]
fn a_small_index_answers_exactly_though_many_chunks_share_a_vector_or_a_filter_allows_few() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let mut w = writer(&dir);
    let root = w.add_root(&dir).unwrap();
    // 1,500 chunks, most of them copies of twelve vectors (notes made from one template): a walk
    // of the graph gets lost among copies; a scan does not.
    for d in 0..300 {
        if d % 5 == 0 {
            write(&mut w, root, &dir, d, 5, 1);
        } else {
            write_with(&mut w, root, &dir, d, 5, 3, |i| unit(3000 + ((d + i) % 12) as u64));
        }
    }
    w.save().unwrap();
    // Unsaved changes: a reader hides the removed chunks and searches the attached ones apart.
    write(&mut w, root, &dir, 7, 3, 4);
    let store = Store::open_read(&dir).unwrap();
    let reader = VectorIndex::open_for_search(&store, DIMS).unwrap();
    assert!(reader.is_mapped());
    let all: std::collections::HashSet<i64> = (0..5000).collect();
    let few: std::collections::HashSet<i64> = all.iter().copied().filter(|id| id % 97 == 0).collect();
    let keep = |id: i64| id % 97 == 0;
    // The similarities of the top 10 (copies tie: which of them comes 10th is open), within the
    // rounding of usearch's f16 arithmetic.
    let same = |a: Vec<(i64, f32)>, b: Vec<(i64, f32)>| {
        a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| (x.1 - y.1).abs() < 5e-4)
    };
    for i in 0..40 {
        let q = unit(999 + i);
        let (got, exact) = (reader.search(&q, 10, None).unwrap(), reader.search_among(&q, 10, &all).unwrap());
        assert!(same(got.clone(), exact.clone()), "query {i}: {got:?} vs {exact:?}");
        let (got, exact) = (reader.search(&q, 10, Some(&keep)).unwrap(), reader.search_among(&q, 10, &few).unwrap());
        assert!(same(got.clone(), exact.clone()), "query {i}, filtered: {got:?} vs {exact:?}");
    }
    drop(w);
}

/// An index written before vectors were kept as f16 holds f32 blobs (4 bytes a dimension, no
/// tag). They are read as they are and not converted (`qsearch index --rebuild` writes them again
/// as f16): the graph is built from them, an i8 graph ranks its candidates by their f32 cosines,
/// and the vectors attached after them are f16.
#[test]
fn an_index_of_f32_vectors_still_searches_and_the_vectors_attached_after_them_are_f16() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let mut w = writer_of(&dir, VectorType::I8);
    let root = w.add_root(&dir).unwrap();
    for d in 0..40 {
        write(&mut w, root, &dir, d, 5, 1);
    }
    drop(w);
    // Each blob as qsearch wrote it before: the f32 bytes of the vector `write` gave.
    let db = rusqlite::Connection::open(dir.join("index.sqlite")).unwrap();
    let mut exact = std::collections::HashMap::new();
    for d in 0..40 {
        for seq in 0..5 {
            let text = format!("document {d} part {seq} salt 1");
            let hash = NewChunk::new(seq, format!("Doc {d}"), 0, text.len(), 1, 1, text).hash;
            let v = unit(1000 + (d * 10 + seq) as u64);
            let old: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            let set = db.execute("UPDATE vectors SET data = ?2 WHERE hash = ?1", rusqlite::params![hash, old]).unwrap();
            assert_eq!(set, 1);
            let id: i64 = db.query_row("SELECT id FROM chunks WHERE hash = ?1", [&hash], |r| r.get(0)).unwrap();
            exact.insert(id, v);
        }
    }
    // No vector file: the graph is built from SQLite's blobs.
    qsearch::store::vectors::remove_files(&dir).unwrap();
    let store = Store::open_read(&dir).unwrap();
    let reader = VectorIndex::open_for_search(&store, DIMS).unwrap();
    assert!(reader.damage().is_none(), "{:?}", reader.damage());
    assert_eq!(reader.len(), 200);
    let all: std::collections::HashSet<i64> = exact.keys().copied().collect();
    for i in 0..20 {
        let q = unit(555 + i);
        // The cosines of the f32 vectors as they are: rounded to f16 they would move by ~1e-5.
        for (id, s) in reader.search_among(&q, 10, &all).unwrap() {
            let cosine: f32 = q.iter().zip(&exact[&id]).map(|(a, b)| a * b).sum();
            assert!((s - cosine).abs() < 1e-6, "query {i}, chunk {id}: {s} vs {cosine}");
        }
        let hits: Vec<i64> = reader.search(&q, 5, None).unwrap().into_iter().map(|h| h.0).collect();
        assert_eq!(hits, exact_top(&reader, &q), "query {i}");
    }
    for (id, v) in exact.iter().take(20) {
        assert_eq!(reader.search(v, 1, None).unwrap()[0].0, *id, "a vector's own chunk comes first");
    }
    drop(reader);

    let mut w = writer_of(&dir, VectorType::I8);
    for d in 40..50 {
        write(&mut w, root, &dir, d, 5, 2);
    }
    w.save().unwrap();
    drop(w);
    let lengths: Vec<(usize, usize)> = db
        .prepare("SELECT length(data), count(*) FROM vectors GROUP BY 1 ORDER BY 1")
        .unwrap()
        .query_map([], |r| Ok((r.get::<_, i64>(0)? as usize, r.get::<_, i64>(1)? as usize)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(lengths, [(2 * DIMS + 1, 50), (4 * DIMS, 200)], "new vectors f16, the old ones left f32");
    let reader = VectorIndex::open_for_search(&store, DIMS).unwrap();
    assert!(reader.damage().is_none(), "{:?}", reader.damage());
    assert_eq!(reader.len(), 250);
    let hit = reader.search(&unit(2 * 1000 + 400), 1, None).unwrap()[0];
    assert!(hit.1 > 0.999, "a new chunk is found by its own vector: {hit:?}");
    let (id, v) = exact.iter().next().unwrap();
    assert_eq!(reader.search(v, 1, None).unwrap()[0].0, *id, "and an old one by its own");
}

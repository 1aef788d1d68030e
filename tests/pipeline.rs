//! The indexing pipeline on real files, a real SQLite file and a real usearch index, with the
//! deterministic stand-in embedder (the model itself is tested in the fidelity tests).

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use qsearch::embed::stand_in::StandIn;
use qsearch::embed::{Embedder, InputKind};
use qsearch::indexer::{self, Rebuild, Report, Writer};
use qsearch::search::{MatchKind, Mode, Query, Searcher};
use qsearch::store::Store;
use qsearch::store::lock::Role;

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    index: PathBuf,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("notes");
    std::fs::create_dir_all(&root).unwrap();
    let index = tmp.path().join("index");
    Env { root: root.canonicalize().unwrap(), index, _tmp: tmp }
}

/// Opens the index for writing with the stand-in embedder of `dims` dimensions.
fn writer(env: &Env, dims: usize, options: indexer::Options, rebuild: Rebuild) -> anyhow::Result<Writer> {
    let settings = indexer::Settings { role: Role::Index, rebuild, options };
    Writer::open(&env.index, settings, |_| Ok(Box::new(StandIn::new(dims))))
}

fn index_with(env: &Env, options: indexer::Options) -> Report {
    let mut w = writer(env, 64, options, Rebuild::No).unwrap();
    w.update(std::slice::from_ref(&env.root), &mut |_| {}, &AtomicBool::new(false)).unwrap()
}

fn index(env: &Env) -> Report {
    index_with(env, indexer::Options::default())
}

fn search(env: &Env, text: &str, mode: Mode) -> Vec<String> {
    search_kinds(env, text, mode).into_iter().map(|h| h.0).collect()
}

/// Each hit's file name and how it was found.
fn search_kinds(env: &Env, text: &str, mode: Mode) -> Vec<(String, MatchKind)> {
    let mut s = Searcher::open(&env.index).unwrap();
    s.load_vectors().unwrap();
    let v = StandIn::new(64).embed(&[text], InputKind::Query).unwrap().vectors.remove(0);
    let q = Query { text: text.into(), k: 10, mode, filter: Default::default(), per_doc: 2 };
    s.search(&q, Some(&v)).unwrap().hits.into_iter().map(|h| (file_name(&h.path), h.kind)).collect()
}

fn file_name(p: &str) -> String {
    Path::new(p).file_name().unwrap().to_string_lossy().into_owned()
}

/// Invariants that must hold after any run, finished or not.
fn assert_consistent(index: &Path) {
    // As a reader loads it (the saved file and what SQLite attached since, never rebuilt).
    let mut s = Searcher::open(index).unwrap();
    s.load_vectors().unwrap();
    let stats = s.stats().unwrap();
    let graph = s.vectors().map_or(0, |v| v.len()) as u64;
    assert_eq!(graph, stats.chunks - stats.pending, "the vector graph holds every embedded chunk, no more");
    let orphans: i64 = store_orphans(index);
    assert_eq!(orphans, 0, "every embedded chunk's vector row exists");
}

fn store_orphans(index: &Path) -> i64 {
    let conn = rusqlite::Connection::open(index.join(qsearch::store::DB_FILE)).unwrap();
    conn.query_row(
        "SELECT count(*) FROM chunks c LEFT JOIN vectors v ON v.hash = c.hash WHERE c.vec_seq IS NOT NULL AND v.hash IS NULL",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn add_change_delete_and_rename() {
    let env = env();
    common::write(&env.root, "rust.md", "# Rust\n\nThe borrow checker keeps references valid.\n");
    common::write(&env.root, "bread.md", "# Bread\n\nSourdough needs a starter and patience.\n");
    common::write(&env.root, "sub/tea.txt", "Green tea is steeped at 80 degrees.\n");
    let r = index(&env);
    assert_eq!((r.indexed, r.unchanged, r.removed), (3, 0, 0));
    assert!(r.embedded >= 3);
    assert_eq!(search(&env, "borrow checker", Mode::Hybrid)[0], "rust.md");
    assert_eq!(search(&env, "sourdough starter", Mode::Semantic)[0], "bread.md");

    // Unchanged tree: nothing redone.
    let r = index(&env);
    assert_eq!((r.indexed, r.unchanged, r.embedded), (0, 3, 0));

    // Change one file: only its new chunk is embedded.
    common::write(&env.root, "bread.md", "# Bread\n\nRye bread is dense and sour.\n");
    let r = index(&env);
    assert_eq!((r.indexed, r.unchanged), (1, 2));
    assert_eq!(r.embedded, 1);
    assert!(search(&env, "sourdough", Mode::Keyword).is_empty());
    assert_eq!(search(&env, "rye", Mode::Keyword), vec!["bread.md"]);

    // Rename: the content is the same, so no model time.
    std::fs::rename(env.root.join("rust.md"), env.root.join("rust-notes.md")).unwrap();
    let r = index(&env);
    assert_eq!((r.indexed, r.removed, r.embedded), (1, 1, 0));
    assert_eq!(search(&env, "borrow checker", Mode::Semantic)[0], "rust-notes.md");

    // Delete: no chunk or vector left behind.
    std::fs::remove_file(env.root.join("sub/tea.txt")).unwrap();
    let r = index(&env);
    assert_eq!(r.removed, 1);
    assert!(search(&env, "green tea", Mode::Hybrid).iter().all(|f| f != "tea.txt"));
    let store = Store::open_read(&env.index).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!(stats.documents, 2);
    assert_eq!(stats.vectors, stats.chunks, "unused vectors are collected");
    drop(store);
    assert_consistent(&env.index);
}

/// The indexed files, relative to the root, each with its content hash.
fn indexed_files(env: &Env) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(env.index.join(qsearch::store::DB_FILE)).unwrap();
    let mut stmt = conn.prepare("SELECT display, hash FROM documents ORDER BY display").unwrap();
    let root = format!("{}/", env.root.display());
    stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .map(|(p, h)| (p.strip_prefix(&root).unwrap_or(&p).to_string(), h))
        .collect()
}

#[test]
fn a_batch_looks_only_where_it_is_told_and_ends_as_a_whole_sync_would() {
    let env = env();
    let w = |rel: &str, text: &str| common::write(&env.root, rel, text);
    w("a.md", "# A\n\napples\n");
    w("dir/b.md", "# B\n\nbananas\n");
    w("dir/gone.md", "# Gone\n\ngooseberries\n");
    w("dir-old/c.md", "# C\n\ncherries\n");
    w("deep/x/y/z.md", "# Z\n\nzucchini\n");
    w("sub/.gitignore", "skip.md\n");
    w("sub/keep.md", "# Keep\n\nkale\n");
    index(&env);
    let before = indexed_files(&env);
    assert_eq!(before.len(), 6, "{before:?}");

    w("a.md", "# A\n\napricots, outside the batch\n");
    w("dir/b.md", "# B\n\nblueberries\n");
    std::fs::remove_file(env.root.join("dir/gone.md")).unwrap();
    w("deep/x/y/new.md", "# New\n\nnectarines\n");
    w("sub/skip.md", "# Skip\n\nignored by sub/.gitignore\n");
    w(".hidden/h.md", "# Hidden\n\nnot read\n");
    let mut within = qsearch::scan::Within::default();
    for rel in ["dir", "deep/x/y/new.md", "sub/skip.md", ".hidden/h.md", "dir/b.md"] {
        within.insert(env.root.join(rel));
    }
    assert_eq!(within.len(), 4, "a path inside another is not kept twice");
    let area = indexer::Area { root: env.root.clone(), within: Some(within) };
    let mut writer = writer(&env, 64, indexer::Options::default(), Rebuild::No).unwrap();
    let r = writer.update_areas(&[area], &mut |_| {}, &AtomicBool::new(false)).unwrap();
    writer.save().unwrap();
    drop(writer);
    assert_eq!((r.indexed, r.removed), (2, 1), "b.md and new.md written, gone.md removed");
    let after = indexed_files(&env);
    let names: Vec<&str> = after.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(names, ["a.md", "deep/x/y/new.md", "deep/x/y/z.md", "dir-old/c.md", "dir/b.md", "sub/keep.md"]);
    assert_eq!(after[0], before[0], "a.md, outside the batch, is not looked at");
    assert!(search(&env, "apricots", Mode::Keyword).is_empty());
    assert_eq!(search(&env, "blueberries", Mode::Keyword), vec!["b.md"]);
    assert_consistent(&env.index);

    // The whole sync sees the rest, and the index equals a fresh one.
    let r = index(&env);
    assert_eq!((r.indexed, r.removed), (1, 0));
    let whole = indexed_files(&env);
    let fresh = Env { _tmp: tempfile::tempdir().unwrap(), root: env.root.clone(), index: PathBuf::new() };
    let fresh = Env { index: fresh._tmp.path().join("index"), ..fresh };
    index(&fresh);
    assert_eq!(whole, indexed_files(&fresh));
    assert_consistent(&env.index);
}

/// Runs `f` with this thread's (and the threads it starts') file-permission override dropped
/// (`CAP_DAC_OVERRIDE`, `CAP_DAC_READ_SEARCH`), so that a mode-000 file cannot be read even by
/// root; the capabilities are taken back afterwards. Capabilities are per thread on Linux, and a
/// thread starts with its creator's: the indexer's readers are started by the calling thread.
#[cfg(target_os = "linux")]
fn without_permission_override<T>(f: impl FnOnce() -> T) -> T {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const DAC: u32 = 1 << 1 | 1 << 2; // CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    let mut header = Header { version: VERSION_3, pid: 0 };
    let mut caps = [Data::default(); 2];
    // SAFETY: capget/capset on this thread with a version-3 header and two data words.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, caps.as_mut_ptr()) };
    assert_eq!(rc, 0, "capget: {}", std::io::Error::last_os_error());
    let saved = caps;
    caps[0].effective &= !DAC;
    let set = |caps: &[Data; 2]| {
        let header = Header { version: VERSION_3, pid: 0 };
        // SAFETY: as above; lowering or restoring the effective set within the permitted one.
        let rc = unsafe { libc::syscall(libc::SYS_capset, &header, caps.as_ptr()) };
        assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
    };
    set(&caps);
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    set(&saved);
    out.unwrap_or_else(|e| std::panic::resume_unwind(e))
}

#[cfg(all(unix, not(target_os = "linux")))]
fn without_permission_override<T>(f: impl FnOnce() -> T) -> T {
    f()
}

#[test]
fn hostile_files_are_reported_and_nothing_is_lost() {
    let env = env();
    common::write(&env.root, "good.md", "# Good\n\nA normal note about kayaks.\n");
    common::write(&env.root, "binary.txt", b"\x00\x01\x02\x03ELF binary\x00\x00");
    common::write(&env.root, "latin1.txt", b"caf\xe9 cr\xe8me br\xfbl\xe9e recipe\n");
    common::write(&env.root, "empty.md", "");
    let utf16: Vec<u8> =
        [0xFF, 0xFE].into_iter().chain("utf sixteen kayaks".encode_utf16().flat_map(u16::to_le_bytes)).collect();
    common::write(&env.root, "utf16.txt", utf16);
    common::write(&env.root, "bom.md", b"\xEF\xBB\xBF# Bom\n\nbyte order mark text\n");
    common::write(&env.root, "huge.txt", vec![b'a'; 11 * 1024 * 1024]);
    common::write(&env.root, "photo.jpg", [0xFFu8, 0xD8, 0xFF, 0xE0]);
    common::write(&env.root, "ignored/skip.md", "ignored by gitignore");
    common::write(&env.root, ".gitignore", "ignored/\n");
    common::write(&env.root, ".qsearchignore", "private.md\n");
    common::write(&env.root, "private.md", "confidential");
    common::write(&env.root, ".hidden/note.md", "hidden note");
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::os::unix::fs::symlink(&env.root, env.root.join("loop")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", env.root.join("outside.txt")).unwrap();
        let name = std::ffi::OsStr::from_bytes(b"non-utf8-\xff.md");
        std::fs::write(env.root.join(name), "# Odd name\n\nkayaks again\n").unwrap();
        common::write(&env.root, "locked/secret.md", "no access");
        std::fs::set_permissions(
            env.root.join("locked/secret.md"),
            std::os::unix::fs::PermissionsExt::from_mode(0o000),
        )
        .unwrap();
    }
    // An unreadable file must fail to read for root too (CI runs as root): the index runs
    // without the capabilities that let root read past a file's mode.
    #[cfg(unix)]
    let r = without_permission_override(|| {
        assert!(std::fs::read(env.root.join("locked/secret.md")).is_err(), "the file is unreadable now");
        index(&env)
    });
    #[cfg(not(unix))]
    let r = index(&env);
    let skipped: Vec<String> = r.skipped.iter().map(|s| file_name(&s.path.to_string_lossy())).collect();
    assert!(skipped.contains(&"binary.txt".into()), "{skipped:?}");
    assert!(skipped.contains(&"huge.txt".into()), "{skipped:?}");
    assert!(r.lossy.iter().any(|p| p.ends_with("latin1.txt")));
    let hits = search(&env, "kayaks", Mode::Keyword);
    assert!(hits.contains(&"good.md".into()) && hits.contains(&"utf16.txt".into()), "{hits:?}");
    assert!(hits.iter().any(|h| h.starts_with("non-utf8-")), "{hits:?}");
    assert!(
        search(&env, "crème", Mode::Keyword).contains(&"latin1.txt".into())
            || !search(&env, "recipe", Mode::Keyword).is_empty()
    );
    assert!(search(&env, "ignored gitignore", Mode::Keyword).is_empty());
    assert!(search(&env, "confidential", Mode::Keyword).is_empty());
    assert!(search(&env, "hidden", Mode::Keyword).is_empty());
    assert_eq!(search(&env, "byte order mark", Mode::Keyword), vec!["bom.md"]);
    #[cfg(unix)]
    {
        assert!(r.failed.iter().any(|f| f.path.ends_with("secret.md")), "{:?}", r.failed);
        assert!(r.skipped.iter().any(|s| s.path.ends_with("outside.txt") && s.why == qsearch::scan::Skip::Symlink));
    }
    assert_consistent(&env.index);
}

#[test]
fn cjk_text_is_found_by_keyword() {
    let env = env();
    common::write(&env.root, "zh.md", "# 笔记\n\n今天学习了向量数据库和语义搜索。\n");
    common::write(&env.root, "ja.md", "# メモ\n\n東京で寿司を食べました。\n");
    common::write(&env.root, "en.md", "# Notes\n\nNothing in Chinese here.\n");
    index(&env);
    assert_eq!(search(&env, "向量数据库", Mode::Keyword), vec!["zh.md"]);
    assert_eq!(search(&env, "寿司", Mode::Keyword), vec!["ja.md"]);
    // Hybrid keeps the keyword hit (where it ranks depends on the stand-in's random vectors).
    // The semantic side returns all three notes, so presence alone proves nothing: `ja.md` must
    // be there as found by its words too (`Both`), and the other two by meaning alone.
    // The two characters in order are a phrase: `Phrase`, where a note holding them apart
    // would be `Both`.
    let hits = search_kinds(&env, "寿司", Mode::Hybrid);
    let kind = |name: &str| hits.iter().find(|h| h.0 == name).map(|h| h.1);
    assert_eq!(kind("ja.md"), Some(MatchKind::Phrase), "{hits:?}");
    assert_eq!(kind("zh.md"), Some(MatchKind::Semantic), "{hits:?}");
    assert_eq!(kind("en.md"), Some(MatchKind::Semantic), "{hits:?}");
    let hits = search_kinds(&env, "学习了向量", Mode::Hybrid);
    assert_eq!(hits[0], ("zh.md".to_string(), MatchKind::Phrase), "{hits:?}");
    let hits = search_kinds(&env, "\"向量学习\"", Mode::Hybrid);
    assert!(hits.iter().all(|h| h.1 != MatchKind::Phrase), "the characters apart are no phrase: {hits:?}");
}

/// Notes that hold the words of "the quick brown fox jumps over the lazy dog", each more often
/// (so BM25 ranks them above) but never in that order; `fox.md` holds the sentence itself.
fn phrase_notes(env: &Env) {
    common::write(
        &env.root,
        "fox.md",
        "# Typing\n\nA pangram: the quick brown fox jumps over the lazy dog, they say.\n\nIt holds every letter of the alphabet, which makes it handy for testing keyboards and fonts.\n",
    );
    for i in 0..6 {
        common::write(
            &env.root,
            &format!("mixed{i}.md"),
            format!(
                "# Mixed {i}\n\nThe lazy dog jumps. The brown dog is quick over the fox; the quick fox jumps over brown dogs, lazy fox, lazy dog.\n"
            ),
        );
    }
    common::write(&env.root, "brown.md", "# Colours\n\nBrown fox fur, a brown fox den, the brown fox again.\n");
    index(env);
}

#[test]
fn a_typed_sentence_finds_its_note_first_though_others_hold_its_words_more_often() {
    let env = env();
    phrase_notes(&env);
    let query = "the quick brown fox jumps over the lazy dog";
    // Keyword search alone prefers the notes that repeat the words...
    let by_words = search_kinds(&env, query, Mode::Keyword);
    assert_ne!(by_words[0].0, "fox.md", "{by_words:?}");
    // ...but the note holding the sentence is marked, and hybrid puts it first.
    assert!(by_words.contains(&("fox.md".to_string(), MatchKind::Phrase)), "{by_words:?}");
    assert_eq!(by_words.iter().filter(|h| h.1 == MatchKind::Phrase).count(), 1, "{by_words:?}");
    let hybrid = search_kinds(&env, query, Mode::Hybrid);
    assert_eq!(hybrid[0], ("fox.md".to_string(), MatchKind::Phrase), "{hybrid:?}");
    // Punctuation and case between the words do not matter.
    let hybrid = search_kinds(&env, "Quick, brown fox -- jumps over", Mode::Hybrid);
    assert_eq!(hybrid[0], ("fox.md".to_string(), MatchKind::Phrase), "{hybrid:?}");
}

#[test]
fn quoted_words_must_appear_as_a_phrase_in_every_hit() {
    let env = env();
    phrase_notes(&env);
    for mode in [Mode::Hybrid, Mode::Keyword, Mode::Semantic] {
        let hits = search(&env, "\"brown fox\" den", mode);
        let mut found = hits.clone();
        found.sort();
        assert_eq!(found, ["brown.md", "fox.md"], "{mode}: {hits:?}");
    }
    // Without quotes, the notes holding the words apart are found too.
    assert!(search(&env, "brown fox den", Mode::Keyword).len() > 2);
    // A quoted phrase nothing holds: the hits are without it, and the answer says so.
    let mut s = Searcher::open(&env.index).unwrap();
    s.load_vectors().unwrap();
    let text = "\"fox brown den\" keyboards";
    let v = StandIn::new(64).embed(&[text], InputKind::Query).unwrap().vectors.remove(0);
    let q = Query { text: text.into(), k: 10, mode: Mode::Hybrid, filter: Default::default(), per_doc: 2 };
    let results = s.search(&q, Some(&v)).unwrap();
    assert_eq!(results.phrases_missing.as_deref(), Some("\"fox brown den\""));
    assert!(!results.hits.is_empty());
    let q = Query { text: "\"brown fox\"".into(), ..q };
    assert_eq!(s.search(&q, Some(&v)).unwrap().phrases_missing, None);
}

#[test]
fn a_different_model_is_refused_without_rebuild() {
    let env = env();
    common::write(&env.root, "a.md", "alpha");
    index(&env);
    let err = writer(&env, 32, indexer::Options::default(), Rebuild::No).err().unwrap().to_string();
    assert!(err.contains("--rebuild"), "{err}");
    let w = writer(&env, 32, indexer::Options::default(), Rebuild::IfOther).unwrap();
    assert_eq!(w.stats().unwrap().chunks, 0, "rebuild starts from nothing");
}

#[test]
fn a_rebuild_with_the_same_model_starts_afresh_and_eval_keeps_what_it_can() {
    let env = env();
    common::write(&env.root, "a.md", "# A\n\nalpha\n");
    common::write(&env.root, "b.md", "# B\n\nbeta\n");
    let first = index(&env);
    let update = |rebuild| {
        let mut w = writer(&env, 64, indexer::Options::default(), rebuild).unwrap();
        let r = w.update(std::slice::from_ref(&env.root), &mut |_| {}, &AtomicBool::new(false)).unwrap();
        w.save().unwrap();
        r
    };
    let r = update(Rebuild::IfOther);
    assert_eq!((r.indexed, r.unchanged, r.embedded), (0, 2, 0), "the same model: nothing redone");
    let r = update(Rebuild::Always);
    assert_eq!((r.indexed, r.embedded), (2, first.embedded), "every file read and every chunk embedded again");
    assert_consistent(&env.index);
}

#[test]
fn one_document_cannot_flood_results_and_path_filter_applies() {
    let env = env();
    let long: String = (0..60).map(|i| format!("## Part {i}\n\nlighthouse keeper log entry {i}\n\n")).collect();
    common::write(&env.root, "log.md", format!("# Log\n\n{long}"));
    common::write(&env.root, "other/lighthouse.md", "# Lighthouse\n\nA lighthouse keeper.\n");
    let mut opts = indexer::Options::default();
    opts.chunk.tokens = 16;
    opts.chunk.overlap = 0;
    index_with(&env, opts);
    let hits = search(&env, "lighthouse keeper", Mode::Hybrid);
    assert_eq!(hits.iter().filter(|h| *h == "log.md").count(), 2, "{hits:?}");
    assert!(hits.contains(&"lighthouse.md".into()));
    let mut s = Searcher::open(&env.index).unwrap();
    s.load_vectors().unwrap();
    let q = Query {
        text: "lighthouse".into(),
        k: 10,
        mode: Mode::Keyword,
        filter: qsearch::search::Filter { path: Some("other/**".into()), ..Default::default() },
        per_doc: 5,
    };
    let hits = s.search(&q, None).unwrap().hits;
    assert_eq!(hits.len(), 1);
    assert!(hits[0].path.ends_with("other/lighthouse.md"));
}

/// A filter that allows a chunk ranked far below the index's best still finds it: by keyword
/// (its chunks alone are ranked when the index's best matches hold too few of them) and by
/// meaning (its few chunks are compared one by one), the same as it would alone.
#[test]
fn a_narrow_filter_finds_its_chunk_however_low_the_index_ranks_it() {
    let env = env();
    for i in 0..1000 {
        common::write(
            &env.root,
            &format!("many/{i}.md"),
            format!(
                "# Beacon {i}

beacon beacon beacon {i}
"
            ),
        );
    }
    let filler: String = (0..40).map(|i| format!("word{i} ")).collect();
    common::write(
        &env.root,
        "other/rare.md",
        format!(
            "# Notes

{filler} beacon {filler}
"
        ),
    );
    index(&env);
    let mut s = Searcher::open(&env.index).unwrap();
    s.load_vectors().unwrap();
    let filter = qsearch::search::Filter { path: Some("other/**".into()), ..Default::default() };
    let unfiltered =
        Query { text: "beacon".into(), k: 1000, mode: Mode::Keyword, filter: Default::default(), per_doc: 1 };
    let ranked = s.search(&unfiltered, None).unwrap().hits;
    let at = ranked.iter().position(|h| h.path.ends_with("other/rare.md"));
    assert!(at.is_none_or(|at| at >= 800), "the note ranks below the 800 best: {at:?}");
    for mode in [Mode::Keyword, Mode::Semantic, Mode::Hybrid] {
        let v = StandIn::new(64).embed(&["beacon"], InputKind::Query).unwrap().vectors.remove(0);
        let q = Query { text: "beacon".into(), k: 10, mode, filter: filter.clone(), per_doc: 2 };
        let hits = s.search(&q, Some(&v)).unwrap().hits;
        assert_eq!(hits.iter().map(|h| file_name(&h.path)).collect::<Vec<_>>(), ["rare.md"], "{mode}");
    }
}

#[test]
fn one_writer_at_a_time() {
    let env = env();
    let settings =
        |role| indexer::Settings { role, rebuild: indexer::Rebuild::No, options: indexer::Options::default() };
    let held = Writer::open(&env.index, settings(Role::Watch), |_| Ok(Box::new(StandIn::new(64)))).unwrap();
    let err =
        Writer::open(&env.index, settings(Role::Index), |_| Ok(Box::new(StandIn::new(64)))).err().unwrap().to_string();
    assert!(err.contains("watcher"), "{err}");
    assert_eq!(qsearch::store::lock::holder(&env.index).unwrap().role, Role::Watch);
    drop(held);
    assert!(qsearch::store::lock::holder(&env.index).is_none(), "the lock goes with the writer");
    assert!(Writer::open(&env.index, settings(Role::Index), |_| Ok(Box::new(StandIn::new(64)))).is_ok());
}

#[test]
// The definition ranks first by its syntax-tree heading (`fn parse_config`).
#[cfg(feature = "tree-sitter")]
fn identifiers_are_found_by_their_parts_and_whole() {
    let env = env();
    let def = "pub struct HttpClient {\n    base: String,\n}\n\n\
               /// Reads the settings file into a map of keys and values.\n\
               pub fn parse_config(path: &Path) -> Config {\n    let text = read(path);\n    let mut config = Config::new();\n    \
               for line in text.lines() {\n        config.add(line);\n    }\n    config\n}\n";
    common::write(&env.root, "config.rs", def);
    common::write(
        &env.root,
        "main.rs",
        "fn main() {\n    let c = parse_config(Path::new(\"a.toml\"));\n    let h = HttpClient::new();\n}\n",
    );
    common::write(&env.root, "notes.md", "# Notes\n\nWe parse the config file, then the http client starts.\n");
    index(&env);
    // The exact identifier ranks its definition first (its heading names it), then its uses.
    assert_eq!(search(&env, "parse_config", Mode::Keyword), vec!["config.rs", "main.rs"]);
    assert_eq!(search(&env, "parseConfig", Mode::Keyword), vec!["config.rs", "main.rs"]);
    assert_eq!(search(&env, "HttpClient", Mode::Keyword)[..2], ["config.rs", "main.rs"]);
    // Words find identifiers written in any style.
    let words = search(&env, "http client", Mode::Keyword);
    assert_eq!(words.len(), 3, "{words:?}");
    assert!(search(&env, "parse config", Mode::Keyword).contains(&"config.rs".to_string()));
}

#[test]
fn an_index_of_an_older_chunker_is_told_to_rebuild() {
    let env = env();
    common::write(&env.root, "a.rs", "fn alpha() {}\n");
    index(&env);
    let conn = rusqlite::Connection::open(env.index.join(qsearch::store::DB_FILE)).unwrap();
    let fp: String = conn.query_row("SELECT value FROM meta WHERE key = 'fingerprint'", [], |r| r.get(0)).unwrap();
    let mut fp: serde_json::Value = serde_json::from_str(&fp).unwrap();
    assert_eq!(fp["chunker_version"], qsearch::text::chunk::Settings::VERSION, "the index records its chunker");
    fp["chunker_version"] = 1.into();
    conn.execute("UPDATE meta SET value = ?1 WHERE key = 'fingerprint'", [fp.to_string()]).unwrap();
    drop(conn);
    let err = writer(&env, 64, indexer::Options::default(), Rebuild::No).err().unwrap().to_string();
    assert!(err.contains("chunker v1") && err.contains("--rebuild"), "{err}");
    assert!(writer(&env, 64, indexer::Options::default(), Rebuild::Always).is_ok());
}

/// Sets a file's content without changing its size or modification time: the sync sees no
/// change unless it reads the file.
fn rewrite_unseen(path: &Path, content: &[u8]) {
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().len(), content.len() as u64, "same size");
    std::fs::write(path, content).unwrap();
    std::fs::File::options().write(true).open(path).unwrap().set_modified(mtime).unwrap();
}

fn passed_over_rows(index: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(index.join(qsearch::store::DB_FILE)).unwrap();
    let mut stmt = conn.prepare("SELECT path FROM passed_over ORDER BY path").unwrap();
    stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|p| file_name(&String::from_utf8(p.unwrap()).unwrap()))
        .collect()
}

#[test]
fn a_file_that_cannot_be_indexed_is_not_read_again_until_it_changes() {
    // Before, every sync (each watcher batch too) read every skipped or failed file again: a
    // folder of scanned PDFs was parsed at each saved note, a PDF that hangs the reader cost
    // its time limit each time.
    let env = env();
    let binary = b"\x00\x01 kayak manifest \x00\x02";
    let text = b"the kayak manifest.\n";
    assert_eq!(binary.len(), text.len());
    common::write(&env.root, "good.md", "# Good\n\nA note about kayaks.\n");
    common::write(&env.root, "manifest.txt", binary);
    common::write(&env.root, "gone.txt", binary);
    let first = index(&env);
    let skipped = |r: &Report| {
        r.skipped.iter().map(|s| (file_name(&s.path.to_string_lossy()), s.why.to_string())).collect::<Vec<_>>()
    };
    assert_eq!(
        skipped(&first),
        [("gone.txt".into(), "binary content".into()), ("manifest.txt".into(), "binary content".into())]
    );
    assert_eq!(passed_over_rows(&env.index), ["gone.txt", "manifest.txt"]);
    let stats = Searcher::open(&env.index).unwrap().stats().unwrap();
    assert_eq!((stats.documents, stats.skipped, stats.failed), (1, 2, 0), "status counts them");

    // Text now, but the same size and mtime: not read, reported as before.
    rewrite_unseen(&env.root.join("manifest.txt"), text);
    std::fs::remove_file(env.root.join("gone.txt")).unwrap();
    let second = index(&env);
    assert_eq!(skipped(&second), [("manifest.txt".into(), "binary content".into())]);
    assert_eq!((second.indexed, second.unchanged), (0, 1));
    assert!(search(&env, "manifest", Mode::Keyword).is_empty());
    assert_eq!(passed_over_rows(&env.index), ["manifest.txt"], "a file gone from disk is forgotten");

    // Once it changes (its mtime here), it is read again, indexed and no longer passed over.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options().write(true).open(env.root.join("manifest.txt")).unwrap().set_modified(later).unwrap();
    let third = index(&env);
    assert!(third.skipped.is_empty(), "{:?}", third.skipped);
    assert_eq!(third.indexed, 1);
    assert_eq!(search(&env, "manifest", Mode::Keyword), ["manifest.txt"]);
    assert!(passed_over_rows(&env.index).is_empty());

    // Binary again: its text version goes, and it is remembered; a rebuild (another model)
    // reads everything.
    common::write(&env.root, "manifest.txt", binary);
    assert_eq!(skipped(&index(&env)).len(), 1);
    assert!(search(&env, "manifest", Mode::Keyword).is_empty());
    rewrite_unseen(&env.root.join("manifest.txt"), text);
    let mut w = writer(&env, 32, indexer::Options::default(), Rebuild::IfOther).unwrap();
    let rebuilt = w.update(std::slice::from_ref(&env.root), &mut |_| {}, &AtomicBool::new(false)).unwrap();
    assert_eq!((rebuilt.indexed, rebuilt.skipped.len()), (2, 0));
    drop(w);
    assert!(passed_over_rows(&env.index).is_empty());
}

#[test]
fn unused_vectors_are_collected_by_what_went_and_all_of_them_after_a_stop() {
    // Before, every run (each watcher batch too) looked at every vector for use: 0.5 s a batch
    // with 250,000 of them. Now a run looks at the texts whose chunks it removed, and at every
    // vector only when an earlier run stopped before its collection.
    let env = env();
    common::write(&env.root, "a.md", "# A\n\nAlpha text.\n");
    common::write(&env.root, "b.md", "# B\n\nBravo text.\n");
    index(&env);
    let db = || rusqlite::Connection::open(env.index.join(qsearch::store::DB_FILE)).unwrap();
    let count = |sql: &str| db().query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    // A vector no chunk uses, left by an earlier writer that collected its garbage.
    db().execute("INSERT INTO vectors(hash, data) VALUES ('stray', x'00000000')", []).unwrap();

    common::write(&env.root, "b.md", "# B\n\nBravo changed.\n");
    index(&env);
    let unused = "SELECT count(*) FROM vectors WHERE hash NOT IN (SELECT hash FROM chunks)";
    assert_eq!(count(unused), 1, "b.md's old vector is collected; the stray one is not looked at");
    assert_eq!(count("SELECT count(*) FROM meta WHERE key = 'garbage_due'"), 0);

    // A writer that removed chunks and stopped before collecting leaves the mark behind.
    db().execute("INSERT INTO meta(key, value) VALUES ('garbage_due', '1')", []).unwrap();
    let r = index(&env);
    assert_eq!((r.indexed, r.removed), (0, 0), "nothing changed on disk");
    assert_eq!(count(unused), 0, "every vector is looked at once");
    assert_eq!(count("SELECT count(*) FROM meta WHERE key = 'garbage_due'"), 0);
    assert_consistent(&env.index);
}

fn vector_files(index: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(index)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("vectors-"))
        .collect();
    names.sort();
    names
}

#[test]
fn the_vector_file_is_written_once_changes_add_up_and_readers_follow_without_it() {
    // Before, every sync wrote the whole vector file (hundreds of MB for a large index) and
    // every open reader loaded it again: a watcher paid both at each saved note.
    let env = env();
    common::write(&env.root, "a.md", "# A\n\nAlpha text.\n");
    common::write(&env.root, "b.md", "# B\n\nBravo text.\n");
    let update =
        |w: &mut Writer| w.update(std::slice::from_ref(&env.root), &mut |_| {}, &AtomicBool::new(false)).unwrap();
    let mut w = writer(&env, 64, indexer::Options::default(), Rebuild::No).unwrap();
    update(&mut w);
    w.save().unwrap();
    let saved = vector_files(&env.index);
    assert_eq!(saved.len(), 1);
    let mut reader = Searcher::open(&env.index).unwrap();
    reader.load_vectors().unwrap();

    // A watcher's batch: one note changed, one gone, one new.
    common::write(&env.root, "b.md", "# B\n\nBravo changed.\n");
    std::fs::remove_file(env.root.join("a.md")).unwrap();
    common::write(&env.root, "c.md", "# C\n\nCharlie text.\n");
    update(&mut w);
    assert_eq!(vector_files(&env.index), saved, "the file is not written again");
    let removals = |index: &Path| -> i64 {
        let db = rusqlite::Connection::open(index.join(qsearch::store::DB_FILE)).unwrap();
        db.query_row("SELECT count(*) FROM graph_removals", [], |r| r.get(0)).unwrap()
    };
    assert_eq!(removals(&env.index), 2, "a.md's chunk and b.md's old one");
    // The open reader follows, and so does a new one, from the old file and SQLite.
    assert!(reader.refresh().unwrap());
    let chunks = reader.stats().unwrap().chunks as usize;
    assert_eq!(reader.vectors().unwrap().len(), chunks);
    let semantic = |s: &Searcher, text: &str| {
        let v = StandIn::new(64).embed(&[text], InputKind::Query).unwrap().vectors.remove(0);
        let q = Query { text: text.into(), k: 10, mode: Mode::Semantic, filter: Default::default(), per_doc: 2 };
        s.search(&q, Some(&v)).unwrap().hits.into_iter().map(|h| file_name(&h.path)).collect::<Vec<_>>()
    };
    assert_eq!(semantic(&reader, "# C\n\nCharlie text.\n").len(), 2, "b.md and c.md, not a.md");
    assert_consistent(&env.index);

    // A writer that stops without saving (killed): the next one starts from the file and SQLite.
    drop(w);
    let mut w = writer(&env, 64, indexer::Options::default(), Rebuild::No).unwrap();
    assert_eq!(w.vector_count(), chunks);
    // Saving writes a file holding everything, and clears the removals it holds.
    w.save().unwrap();
    assert_ne!(vector_files(&env.index), saved);
    assert_eq!(removals(&env.index), 0);
    // A reader that saw removals the saved file dropped loads the file again.
    std::fs::remove_file(env.root.join("c.md")).unwrap();
    update(&mut w);
    w.save().unwrap();
    assert!(reader.refresh().unwrap());
    assert_eq!(reader.vectors().unwrap().len(), 1);
    assert_eq!(semantic(&reader, "anything"), ["b.md"]);

    // Enough changes waiting, and a sync writes the file by itself.
    let before = vector_files(&env.index);
    for i in 0..qsearch::store::vectors::SAVE_AFTER {
        common::write(&env.root, &format!("many/{i}.md"), format!("Note number {i}.\n"));
    }
    update(&mut w);
    assert_ne!(vector_files(&env.index), before);
    assert_consistent(&env.index);
}

/// The stand-in behind a server that can stop: each batch spends one of `budget`'s calls, and
/// with none left the batch fails as a server that went away does.
struct Stopping {
    inner: StandIn,
    budget: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl Embedder for Stopping {
    fn fingerprint(&self) -> String {
        self.inner.fingerprint()
    }
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    fn dims(&self) -> usize {
        self.inner.dims()
    }
    fn max_tokens(&self) -> usize {
        self.inner.max_tokens()
    }
    fn device(&self) -> qsearch::embed::device::Placement {
        self.inner.device()
    }
    fn tokenizer(&self) -> Option<&tokenizers::Tokenizer> {
        None
    }
    fn embed(&mut self, texts: &[&str], kind: InputKind) -> anyhow::Result<qsearch::embed::Embedded> {
        if self.budget.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) <= 0 {
            anyhow::bail!("cannot reach the embedding server: connection refused");
        }
        self.inner.embed(texts, kind)
    }
}

fn stopping_writer(env: &Env, budget: &std::sync::Arc<std::sync::atomic::AtomicI64>, role: Role) -> Writer {
    let settings = indexer::Settings { role, rebuild: Rebuild::No, options: indexer::Options::default() };
    let budget = budget.clone();
    Writer::open(&env.index, settings, move |_| Ok(Box::new(Stopping { inner: StandIn::new(64), budget }))).unwrap()
}

#[test]
fn a_model_that_stops_midway_leaves_every_file_written_and_the_rest_pending() {
    let env = env();
    for i in 0..300 {
        common::write(&env.root, &format!("n{i:03}.md"), format!("# Note {i}\n\nword{i} about gardening\n"));
    }
    let budget = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(1));
    let mut w = stopping_writer(&env, &budget, Role::Index);
    let r = w.update(std::slice::from_ref(&env.root), &mut |_| {}, &AtomicBool::new(false)).unwrap();
    drop(w);
    let error = r.embed_error.as_deref().expect("the model's failure is reported");
    assert!(error.contains("connection refused"), "{error}");
    assert_eq!(r.indexed, 300, "every file is written though the model stopped");
    assert!(
        r.embedded > 0 && r.pending > 0 && r.embedded + r.pending == 300,
        "{} embedded, {} pending",
        r.embedded,
        r.pending
    );
    assert_eq!(search(&env, "word299", Mode::Keyword), vec!["n299.md"], "keyword search has them all");
    assert_consistent(&env.index);

    // The model is back: the next run embeds what waited, and reads no file again.
    budget.store(1_000, std::sync::atomic::Ordering::SeqCst);
    let mut w = stopping_writer(&env, &budget, Role::Index);
    let again = w.update(std::slice::from_ref(&env.root), &mut |_| {}, &AtomicBool::new(false)).unwrap();
    w.save().unwrap();
    drop(w);
    assert_eq!((again.indexed, again.embed_error.as_deref()), (0, None));
    assert_eq!((again.embedded, again.pending), (r.pending, 0));
    assert_consistent(&env.index);
    assert_eq!(search(&env, "word299 gardening", Mode::Semantic)[0], "n299.md");
}

#[test]
fn a_watcher_tries_a_stopped_model_again_without_events_until_it_is_back() {
    let env = env();
    for i in 0..5 {
        common::write(&env.root, &format!("n{i}.md"), format!("# Note {i}\n\nword{i}\n"));
    }
    let budget = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let mut w = stopping_writer(&env, &budget, Role::Watch);
    let cancel = std::sync::Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let (root, stop) = (env.root.clone(), cancel.clone());
    let watcher = std::thread::spawn(move || {
        let opts = qsearch::watch::Options { retry: std::time::Duration::from_millis(100), ..Default::default() };
        qsearch::watch::run(&mut w, &[root], &opts, &stop, &mut |report, state| {
            let _ = tx.send((report.embed_error.is_some(), report.pending, state.model_error.clone()));
        })
    });
    let next = || rx.recv_timeout(std::time::Duration::from_secs(20)).expect("a batch within 20 s");
    let (failed, pending, said) = next();
    assert!(failed && pending == 5 && said.is_some_and(|e| e.contains("connection refused")));
    let (failed, pending, _) = next();
    assert!(failed && pending == 5, "tried again with no event");
    budget.store(1_000, std::sync::atomic::Ordering::SeqCst);
    let back = loop {
        let (failed, pending, said) = next();
        if !failed {
            break (pending, said);
        }
    };
    assert_eq!(back, (0, None), "embedded once the model is back, and the error is cleared");
    cancel.store(true, std::sync::atomic::Ordering::SeqCst);
    watcher.join().unwrap().unwrap();
    assert_consistent(&env.index);
}

/// The "some of the words" list of a query whose words fill more chunks than SQLite is given to
/// rank: the chunks holding its rarest word are ranked by SQLite, those holding several of the
/// other words are found from the words' chunk lists, and the top of the list is what ranking
/// every chunk gives.
#[test]
fn a_query_of_common_words_ranks_few_chunks_and_keeps_its_best() {
    let env = env();
    let filler = "lorem ipsum dolor sit amet consectetur";
    let note = |name: String, words: &str| {
        common::write(&env.root, &format!("{name}.md"), format!("# {name}\n\n{words} {filler}\n"));
    };
    // alpha, beta and delta in notes of their own (200, 150, 50), gamma in seven; three notes
    // hold alpha, beta and delta; one gamma and alpha. None holds all four.
    for i in 0..400 {
        note(format!("n{i}"), ["alpha", "beta", "delta"][(i >= 200) as usize + (i >= 350) as usize]);
    }
    for i in 0..6 {
        note(format!("g{i}"), "gamma");
    }
    note("ga".into(), "gamma alpha");
    for i in 0..3 {
        note(format!("t{i}"), "alpha beta delta");
    }
    index(&env);
    let mut s = Searcher::open(&env.index).unwrap();
    let names = |s: &Searcher, k: usize| -> Vec<String> {
        let hits = s.keyword("alpha beta gamma delta", k, None).unwrap();
        assert!(hits.iter().all(|h| !h.every_word));
        let rows = hits.iter().map(|h| s.chunk(h.chunk_id).unwrap().unwrap().path).collect::<Vec<_>>();
        rows.iter().map(|p| file_name(p)).collect()
    };
    s.set_some_words_ranked(i64::MAX);
    let every = names(&s, 10);
    s.set_some_words_ranked(50);
    let cut = names(&s, 10);
    assert_eq!(cut, every, "the same ten, in the same order");
    assert!(every[..7].iter().all(|n| n.starts_with('g')), "the seven with gamma first: {every:?}");
    assert!(every[7..].iter().all(|n| n.starts_with('t')), "then the three with three words: {every:?}");
    // Further down, ranking every chunk goes on with notes of delta alone; the cut leaves out
    // chunks holding one common word and nothing else.
    assert_eq!(names(&s, 20), cut);
    s.set_some_words_ranked(i64::MAX);
    assert_eq!(names(&s, 20).len(), 20);
}

/// Words in more chunks than a searcher keeps (a test sets that to 10) are dropped from a keyword
/// query while rarer words are left; when every word is that common the rarest is kept, which
/// takes counting each in full (a word's count is otherwise only known to be over the line).
#[test]
fn too_common_words_are_dropped_and_of_only_common_ones_the_rarest_is_kept() {
    let env = env();
    for (prefix, count, word) in [("a", 30, "alpha"), ("b", 20, "beta"), ("g", 3, "gamma")] {
        for i in 0..count {
            common::write(&env.root, &format!("{prefix}{i}.md"), format!("# Note\n\n{word} lorem ipsum\n"));
        }
    }
    index(&env);
    let prefixes = |s: &Searcher, query: &str| -> Vec<char> {
        let hits = s.keyword(query, 60, None).unwrap();
        let mut firsts: Vec<char> = hits
            .iter()
            .map(|h| file_name(&s.chunk(h.chunk_id).unwrap().unwrap().path).chars().next().unwrap())
            .collect();
        firsts.dedup();
        firsts.sort();
        firsts.dedup();
        firsts
    };
    let s = Searcher::open(&env.index).unwrap();
    assert_eq!(prefixes(&s, "alpha beta"), vec!['a', 'b'], "nothing is too common in a small index");
    // A new searcher: one remembers each word's chunks as it read them.
    let mut s = Searcher::open(&env.index).unwrap();
    s.set_common_term_chunks(10);
    assert_eq!(prefixes(&s, "alpha beta gamma"), vec!['g'], "the two common words are dropped");
    assert_eq!(s.keyword("alpha beta gamma", 60, None).unwrap().len(), 3);
    for query in ["alpha beta", "beta alpha"] {
        assert_eq!(prefixes(&s, query), vec!['b'], "{query}: the rarer of two common words is kept");
        assert_eq!(s.keyword(query, 60, None).unwrap().len(), 20, "{query}");
    }
}

/// Keyword search under a filter whose chunks are not among the query's best matches: a filter
/// allowing few chunks has SQLite rank only those (their ids handed over), one allowing many has
/// more of the best matches read until enough are allowed; both give the allowed chunks' best.
#[test]
fn a_filter_whose_chunks_rank_low_gets_their_best_by_either_way() {
    let env = env();
    // One "alpha" in notes of growing length: BM25 ranks the short ones first.
    for i in 0..120 {
        let filler = "lorem ipsum ".repeat(i);
        common::write(&env.root, &format!("n{i}.md"), format!("# Note\n\nalpha {filler}\n"));
    }
    index(&env);
    let s = Searcher::open(&env.index).unwrap();
    let ranked: Vec<i64> = s.keyword("alpha", 200, None).unwrap().iter().map(|h| h.chunk_id).collect();
    assert_eq!(ranked.len(), 120);
    // The five ranked last: past the first read (20 times the 3 asked for).
    let allowed: std::collections::HashSet<i64> = ranked[115..].iter().copied().collect();
    let best = |s: &Searcher| -> Vec<i64> {
        s.keyword("alpha", 3, Some(&allowed)).unwrap().iter().map(|h| h.chunk_id).collect()
    };
    assert_eq!(best(&s), ranked[115..118].to_vec(), "ranked among the allowed ids");
    let mut wider = Searcher::open(&env.index).unwrap();
    wider.set_ids_to_sqlite_max(4);
    assert_eq!(best(&wider), ranked[115..118].to_vec(), "read wider until enough are allowed");
}

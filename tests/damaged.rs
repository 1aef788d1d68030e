//! A damaged index, made for real: an index is built with the stand-in model, then its files are
//! damaged the way disks and crashes damage them (bytes garbled in the vector file, SQLite pages
//! overwritten, the WAL deleted after a kill, a schema from a newer qsearch, a full disk), and each
//! time the message must say what is wrong and what to do, and the index left by the automatic
//! path or by `qsearch index --repair` must answer searches exactly as an undamaged one does.

#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

/// The chunking every run here uses (an index refuses another without --rebuild).
const CHUNKING: [&str; 4] = ["--chunk-tokens", "32", "--chunk-overlap", "0"];

const QUERIES: [&str; 5] =
    ["words about topic3", "Note 17 paragraph 2", "item 120 section", "topic41 and item", "quick brown fox"];

fn index(index: &Path, extra: &[&str], root: Option<&Path>) -> Output {
    let mut cmd = common::qsearch(index);
    cmd.args(["index", "--model", "stand-in"]).args(CHUNKING).args(extra);
    if let Some(root) = root {
        cmd.arg(root);
    }
    cmd.output().unwrap()
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status.code());
    stderr
}

type Hits = Vec<(String, u64, String)>;

/// Every query's hits by mode: (mode, hits as (path, line, score)). Hits of equal score are in
/// chunk-id order, and a re-read file's chunks get new ids: so hits are sorted within a score,
/// and the last score's hits (a tie that `-k` may cut anywhere) are left out.
fn answers(index: &Path) -> (Vec<(&'static str, Hits)>, String) {
    let mut all = Vec::new();
    let mut stderr = String::new();
    for mode in ["hybrid", "semantic", "keyword"] {
        for q in QUERIES {
            let out =
                common::qsearch(index).args(["search", "--json", "-k", "10", "--mode", mode, q]).output().unwrap();
            stderr += &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.code() == Some(0) || out.status.code() == Some(1), "search failed: {stderr}");
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let mut hits: Hits = v["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    let score = format!("{:.4}", h["score"].as_f64().unwrap());
                    (h["path"].as_str().unwrap().to_string(), h["line"].as_u64().unwrap(), score)
                })
                .collect();
            if let Some(last) = hits.last().map(|h| h.2.clone()) {
                hits.retain(|h| h.2 != last);
            }
            hits.sort_by(|a, b| b.2.parse::<f64>().unwrap().total_cmp(&a.2.parse::<f64>().unwrap()).then(a.cmp(b)));
            all.push((mode, hits));
        }
    }
    assert!(all.iter().any(|(_, hits)| !hits.is_empty()), "the queries find something");
    (all, stderr)
}

/// The answers as far as they do not depend on chunk ids, which change when files are read
/// again: ties are in chunk-id order, so hybrid fusion (the first 40 of each list) and which of a
/// document's chunks of equal score the per-document cap keeps do; the other modes' hits are
/// compared by document and score.
fn by_content(answers: &[(&'static str, Hits)]) -> Vec<(&'static str, Vec<(String, String)>)> {
    answers
        .iter()
        .filter(|(mode, _)| *mode != "hybrid")
        .map(|(mode, hits)| {
            let mut hits: Vec<(String, String)> = hits.iter().map(|(p, _, s)| (p.clone(), s.clone())).collect();
            hits.sort();
            (*mode, hits)
        })
        .collect()
}

fn copy_index(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn vector_file(index: &Path) -> PathBuf {
    qsearch::store::vectors::newest_path(index).expect("a vector file")
}

/// A clean index of a tree of `notes` notes, and its answers.
struct Clean {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    index: PathBuf,
    answers: Vec<(&'static str, Hits)>,
}

fn clean(notes: usize) -> Clean {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    common::note_tree(&root, notes, 8, 6);
    let idx = tmp.path().join("clean");
    ok(&index(&idx, &["--quiet"], Some(&root)));
    let (answers, stderr) = answers(&idx);
    assert!(!stderr.contains("damaged"), "{stderr}");
    Clean { _tmp: tmp, root, index: idx, answers }
}

fn doctor_integrity(index: &Path) -> serde_json::Value {
    let out = common::qsearch(index).args(["doctor", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("doctor --json: {}", String::from_utf8_lossy(&out.stderr)));
    v["integrity"].clone()
}

#[test]
fn a_garbled_vector_file_is_found_by_its_checksum_rebuilt_and_repaired() {
    let clean = clean(60);
    let good = std::fs::read(vector_file(&clean.index)).unwrap();
    // Same length, bytes changed at random offsets: usearch itself would load most of these.
    let mut rng = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for trial in 0..12 {
        let idx = clean.index.parent().unwrap().join(format!("garbled-{trial}"));
        copy_index(&clean.index, &idx);
        let file = vector_file(&idx);
        let mut bytes = good.clone();
        for _ in 0..1 + trial * 8 {
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] = bytes[at].wrapping_add(1 + (next() % 255) as u8);
        }
        std::fs::write(&file, &bytes).unwrap();
        let (got, stderr) = answers(&idx);
        assert!(stderr.contains("is damaged: its bytes changed on disk"), "trial {trial}: {stderr}");
        assert!(stderr.contains("rebuilt from the database"), "{stderr}");
        assert_eq!(got, clean.answers, "trial {trial}: searches with a garbled vector file");
        if trial == 0 {
            let integrity = doctor_integrity(&idx);
            assert_eq!(integrity["state"], "damaged", "{integrity}");
            assert_eq!(integrity["details"]["vector_damage"]["kind"], "checksum", "{integrity}");
            let stderr = ok(&index(&idx, &["--repair"], None));
            assert!(stderr.contains("vector file: written again from the database"), "{stderr}");
            assert_eq!(doctor_integrity(&idx)["state"], "sound");
        } else {
            // The writer's own open writes a good file at once.
            ok(&index(&idx, &["--quiet"], None));
        }
        let (got, stderr) = answers(&idx);
        assert!(!stderr.contains("damaged"), "after the repair: {stderr}");
        assert_eq!(got, clean.answers);
    }
}

/// The leaf pages of `tables` in the database file (SQLite's `dbstat`).
fn leaf_pages(db: &Path, tables: &[&str]) -> Vec<u64> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare("SELECT name, pageno FROM dbstat WHERE pagetype = 'leaf' ORDER BY pageno").unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).unwrap();
    rows.map(Result::unwrap).filter(|(name, _)| tables.contains(&name.as_str())).map(|(_, p)| p as u64).collect()
}

#[test]
fn a_corrupt_sqlite_page_is_said_as_damage_and_repaired_from_the_files() {
    let clean = clean(480);
    let idx = clean.index.parent().unwrap().join("corrupt");
    copy_index(&clean.index, &idx);
    let db = idx.join(qsearch::store::DB_FILE);
    // Pages in the middle of the file: some of the chunks and of the keyword index.
    let chunks = leaf_pages(&db, &["chunks"]);
    let keywords = leaf_pages(&db, &["chunks_fts_data"]);
    assert!(chunks.len() > 4 && keywords.len() > 4, "{chunks:?} {keywords:?}");
    let mut bytes = std::fs::read(&db).unwrap();
    // The page size, from the file's header (bytes 16-17, big-endian).
    let size = u16::from_be_bytes([bytes[16], bytes[17]]) as usize;
    for page in [chunks[chunks.len() / 2], chunks[chunks.len() / 2 + 1], keywords[keywords.len() / 2]] {
        let at = (page as usize - 1) * size;
        for (i, b) in bytes[at..at + size].iter_mut().enumerate() {
            *b = (i * 31 + 7) as u8;
        }
    }
    std::fs::write(&db, &bytes).unwrap();

    let integrity = doctor_integrity(&idx);
    assert_eq!(integrity["state"], "damaged", "{integrity}");
    assert!(integrity["fix"].as_str().unwrap().contains("qsearch index --repair"), "{integrity}");

    // A search that reads a damaged page says so, and what to do; never SQLite's words alone.
    let mut said = false;
    for q in QUERIES {
        let out = common::qsearch(&idx).args(["search", "--json", "--mode", "keyword", q]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() == Some(2) {
            assert!(stderr.contains("is damaged (") && stderr.contains("qsearch index --repair --index"), "{stderr}");
            said = true;
        }
    }
    assert!(said, "no search read a damaged page");

    let stderr = ok(&index(&idx, &["--repair"], None));
    assert!(stderr.contains("database: damaged") && stderr.contains("the damaged file is kept at"), "{stderr}");
    let kept =
        std::fs::read_dir(&idx).unwrap().flatten().any(|e| e.file_name().to_string_lossy().contains(".damaged-"));
    assert!(kept, "the damaged database is kept");
    assert_eq!(doctor_integrity(&idx)["state"], "sound");
    let (got, stderr) = answers(&idx);
    assert!(!stderr.contains("damaged"), "{stderr}");
    assert_eq!(by_content(&got), by_content(&clean.answers), "after the repair");
}

#[test]
fn a_keyword_index_that_lost_rows_is_rebuilt_by_repair() {
    let clean = clean(40);
    let idx = clean.index.parent().unwrap().join("fts");
    copy_index(&clean.index, &idx);
    let conn = rusqlite::Connection::open(idx.join(qsearch::store::DB_FILE)).unwrap();
    conn.execute("DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE id % 3 = 0)", []).unwrap();
    // And a document whose chunks stayed behind.
    conn.execute_batch("PRAGMA foreign_keys = OFF; DELETE FROM documents WHERE id = 5;").unwrap();
    drop(conn);
    let integrity = doctor_integrity(&idx);
    assert_eq!(integrity["state"], "damaged", "{integrity}");
    assert!(integrity["details"]["orphans"]["chunks_without_document"].as_u64().unwrap() > 0, "{integrity}");
    let stderr = ok(&index(&idx, &["--repair"], None));
    assert!(stderr.contains("keyword index: written again from the chunks"), "{stderr}");
    assert!(stderr.contains("chunks of no document"), "{stderr}");
    assert_eq!(doctor_integrity(&idx)["state"], "sound");
    assert_eq!(by_content(&answers(&idx).0), by_content(&clean.answers));
}

#[test]
fn a_vector_count_changed_behind_qsearch_is_said_searches_stay_right_and_repair_counts_again() {
    let clean = clean(40);
    let idx = clean.index.parent().unwrap().join("count");
    copy_index(&clean.index, &idx);
    let conn = rusqlite::Connection::open(idx.join(qsearch::store::DB_FILE)).unwrap();
    conn.execute("UPDATE embedded_count SET n = n + 3", []).unwrap();
    drop(conn);
    let integrity = doctor_integrity(&idx);
    assert_eq!(integrity["state"], "damaged", "{integrity}");
    let said = integrity.to_string();
    assert!(said.contains("counts") && said.contains("chunks with a vector"), "{integrity}");
    // Readers find their graph short of the count and build it from SQLite's vectors.
    assert_eq!(by_content(&answers(&idx).0), by_content(&clean.answers));
    ok(&index(&idx, &["--repair"], None));
    assert_eq!(doctor_integrity(&idx)["state"], "sound");
    let (after, stderr) = answers(&idx);
    assert!(!stderr.contains("damaged"), "{stderr}");
    assert_eq!(by_content(&after), by_content(&clean.answers));
}

#[test]
fn a_deleted_wal_loses_only_the_work_in_it_and_the_vector_file_is_not_trusted() {
    let clean_v1 = clean(60);
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("live");
    copy_index(&clean_v1.index, &live);
    // A connection held open keeps the next run from checkpointing its WAL when it ends, as a
    // killed run leaves it.
    let held = rusqlite::Connection::open(live.join(qsearch::store::DB_FILE)).unwrap();
    held.query_row("SELECT count(*) FROM meta", [], |r| r.get::<_, i64>(0)).unwrap();
    // More notes, one changed, one gone.
    common::note_tree(&clean_v1.root, 90, 8, 6);
    common::write(&clean_v1.root, "dir1/note1.md", "# Note 1\n\nRewritten: quick brown fox.\n");
    std::fs::remove_file(clean_v1.root.join("dir2/note2.md")).unwrap();
    ok(&index(&live, &["--quiet"], None));
    let wal = live.join(format!("{}-wal", qsearch::store::DB_FILE));
    assert!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) > 0, "the run's work is in the WAL");
    // The WAL deleted: the database as checkpointed, and the vector file the run saved.
    let lost = tmp.path().join("lost-wal");
    std::fs::create_dir_all(&lost).unwrap();
    std::fs::copy(live.join(qsearch::store::DB_FILE), lost.join(qsearch::store::DB_FILE)).unwrap();
    let file = vector_file(&live);
    std::fs::copy(&file, lost.join(file.file_name().unwrap())).unwrap();
    drop(held);

    // Searches answer from the database as it stands (the first tree), never from vectors of
    // chunks it lost.
    let (got, stderr) = answers(&lost);
    assert!(stderr.contains("the database lost its latest commits"), "{stderr}");
    assert_eq!(got, clean_v1.answers, "searches after the WAL was deleted");
    // The next run reads again what was lost and ends as a clean index of the new tree.
    ok(&index(&lost, &["--quiet"], None));
    let clean_v2 = tmp.path().join("clean-v2");
    ok(&index(&clean_v2, &["--quiet"], Some(&clean_v1.root)));
    assert_eq!(by_content(&answers(&lost).0), by_content(&answers(&clean_v2).0), "after the rerun");
    assert_eq!(doctor_integrity(&lost)["state"], "sound");
}

#[test]
fn an_index_of_a_newer_qsearch_is_refused_untouched_and_rebuilt_beside_it() {
    let clean = clean(30);
    let idx = clean.index.parent().unwrap().join("newer");
    copy_index(&clean.index, &idx);
    let newer = qsearch::store::SCHEMA_VERSION as u32 + 1;
    common::set_schema(&idx, newer);
    let db = idx.join(qsearch::store::DB_FILE);
    let before = std::fs::read(&db).unwrap();
    let expected = format!(
        "written by a newer qsearch (schema {newer}, this one knows {}): upgrade qsearch",
        qsearch::store::SCHEMA_VERSION
    );
    for args in [vec!["search", "topic3"], vec!["index", "--model", "stand-in"], vec!["index", "--repair"]] {
        let out = common::qsearch(&idx).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(&expected) && stderr.contains("qsearch index --rebuild"), "{args:?}: {stderr}");
    }
    assert!(std::fs::read(&db).unwrap() == before, "the newer index is left as it was");
    ok(&index(&idx, &["--rebuild", "--quiet"], None));
    let aside = idx.join(format!("{}.schema-{newer}", qsearch::store::DB_FILE));
    assert!(std::fs::read(&aside).unwrap() == before, "kept beside the rebuilt index");
    assert_eq!(by_content(&answers(&idx).0), by_content(&clean.answers));
}

/// A tmpfs of `size` mounted at `at` (unmounted when dropped), or None where this process may not
/// mount (not root): the caller skips, except under CI, which runs as root and must run it.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .ok()?;
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            assert!(std::env::var_os("CI").is_none(), "CI must run the disk-full test: mount failed: {why}");
            eprintln!("SKIPPED: cannot mount a small tmpfs here (root needed): {why}");
            return None;
        }
        Some(Tmpfs(at.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let out = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_says_where_how_much_and_that_nothing_was_lost_then_a_rerun_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    common::note_tree(&root, 300, 8, 6);
    let Some(disk) = Tmpfs::mount(&tmp.path().join("small"), "2560k") else { return };
    let idx = disk.0.join("idx");

    let out = index(&idx, &["--quiet"], Some(&root));
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("the disk holding the index at {} (mounted at {})", idx.display(), disk.0.display())),
        "{stderr}"
    );
    assert!(stderr.contains(" free, and this run needs about "), "{stderr}");
    assert!(stderr.contains("Nothing was lost") && stderr.contains("run `qsearch index` again"), "{stderr}");
    assert!(!stderr.contains("database or disk is full"), "SQLite's words alone: {stderr}");

    // What was committed stands, and the database is sound.
    let checked = qsearch::store::check::check(&idx).unwrap();
    assert!(checked.database.is_empty() && checked.keyword_index.is_none(), "{checked:?}");
    let before = checked.chunks;
    assert!(before > 0, "some batches were committed before the disk filled");

    disk.resize("64m");
    ok(&index(&idx, &["--quiet"], None));
    let clean = tmp.path().join("clean");
    ok(&index(&clean, &["--quiet"], Some(&root)));
    assert_eq!(
        by_content(&answers(&idx).0),
        by_content(&answers(&clean).0),
        "after space was freed and the run was redone"
    );
    assert!(qsearch::store::check::check(&idx).unwrap().is_ok());
}

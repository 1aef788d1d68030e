//! Search filters end to end through the CLI, on a real index (SQLite, usearch, the stand-in
//! embedder): frontmatter tags and titles, file types, modification times, what a filter that
//! holds no file says, values that cannot be read, and an index from before tags.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime};

fn corpus(root: &Path) {
    common::write(
        root,
        "notes/hugo.md",
        "---\ntitle: \"Deploying with Fly\"\ntags: [Deploy, fly.io]\n---\n\nHow we deploy the app.\n\n## Steps\n\nRun fly deploy.\n",
    );
    common::write(
        root,
        "notes/recipes/carbonara.md",
        "---\ntags:\n  - recipe\n  - '#cooking/italian'\n---\n# Carbonara\n\nEggs, guanciale and pecorino; never cream. #Weeknight\n",
    );
    common::write(
        root,
        "notes/gopher.md",
        "+++\ntitle = \"Go notes\"\ntags = [\"go\", \"cooking\"]\n+++\nGo deploy scripts and a carbonara.\n",
    );
    common::write(root, "notes/golang.md", "---\ntags: [go]\n---\nGoroutines and channels.\n");
    common::write(
        root,
        "notes/broken.md",
        "---\ntags: [a, b\n---\nA broken header, but the deploy notes are still found.\n",
    );
    common::write(root, "code/deploy.rs", "/// Deploys the app.\nfn deploy() {}\n");
    common::write(root, "code/deploy.py", "def deploy():\n    \"\"\"Deploys the app.\"\"\"\n");
    // Copied today, written in 2020: its frontmatter says so.
    common::write(root, "notes/plain.md", "# Plain\n\nA note without a header block.\n");
    common::write(root, "notes/retro.md", "---\ndate: 2020-03-01\n---\nThe 2020 deploy retrospective.\n");
    // An old file, for the time filters.
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_836_800); // 2020-01-01
    std::fs::File::options().write(true).open(root.join("code/deploy.rs")).unwrap().set_modified(old).unwrap();
}

fn search_json(index: &Path, query: &str, args: &[&str]) -> (Output, serde_json::Value) {
    let out = common::qsearch(index)
        .args(["search", "--mode", "keyword", "--json", "-k", "20", query])
        .args(args)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, json)
}

fn search(index: &Path, query: &str, args: &[&str]) -> (Output, Vec<String>) {
    let (out, json) = search_json(index, query, args);
    let mut files = Vec::new();
    for h in json["hits"].as_array().into_iter().flatten() {
        files.push(h["path"].as_str().unwrap().rsplit('/').next().unwrap().to_string());
    }
    files.sort();
    (out, files)
}

fn files(index: &Path, query: &str, args: &[&str]) -> Vec<String> {
    let (out, files) = search(index, query, args);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    files
}

fn index(index: &Path, root: &Path) -> serde_json::Value {
    let (code, report) = common::index_json(index, root);
    assert_eq!(code, Some(0), "{report}");
    report
}

/// The corpus in a fresh folder, indexed: the folder, the index and the index report.
fn indexed_corpus() -> (tempfile::TempDir, PathBuf, PathBuf, serde_json::Value) {
    let tmp = tempfile::tempdir().unwrap();
    let (root, idx) = (tmp.path().join("root"), tmp.path().join("index"));
    corpus(&root);
    let report = index(&idx, &root);
    (tmp, root, idx, report)
}

#[test]
fn filters_narrow_a_search_by_tag_type_and_modification_time() {
    let (_tmp, root, idx, report) = indexed_corpus();
    let partial = report["partial"].to_string();
    assert!(partial.contains("broken.md") && partial.contains("frontmatter is not valid YAML"), "{report}");

    let all = files(&idx, "deploy", &[]);
    assert_eq!(all, ["broken.md", "deploy.py", "deploy.rs", "gopher.md", "hugo.md", "retro.md"]);
    // Tags: as written or with `#`, any case; a tag takes in the tags nested under it, and only those.
    assert_eq!(files(&idx, "deploy", &["--tag", "deploy"]), ["hugo.md"]);
    assert_eq!(files(&idx, "carbonara", &["--tag", "#Cooking"]), ["carbonara.md", "gopher.md"]);
    assert_eq!(files(&idx, "carbonara", &["--tag", "cooking/italian"]), ["carbonara.md"]);
    assert_eq!(files(&idx, "carbonara", &["--tag", "cooking", "--tag", "go"]), ["gopher.md"], "every tag given");
    assert!(files(&idx, "carbonara", &["--tag", "cook"]).is_empty());
    assert_eq!(files(&idx, "carbonara", &["--tag", "weeknight"]), ["carbonara.md"], "a #tag in the text");
    // `status` lists the tags there are to filter by, the most used first.
    let out = common::qsearch(&idx).args(["status", "--json"]).output().unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["stats"]["tags_total"], 7, "{status}");
    assert_eq!(status["stats"]["tags"][0], serde_json::json!({"tag": "go", "documents": 2}), "{status}");
    let out = common::qsearch(&idx).arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("tags:     7: go (2), cooking (1), cooking/italian (1), deploy (1)"), "{text}");
    // A hit lists its note's tags, for agents and scripts that filter next by them.
    let (_, json) = search_json(&idx, "guanciale", &[]);
    assert_eq!(json["hits"][0]["tags"], serde_json::json!(["cooking/italian", "recipe", "weeknight"]), "{json}");
    assert_eq!(search_json(&idx, "fn deploy", &["--type", "rust"]).1["hits"][0]["tags"], serde_json::json!([]));
    // Types: a language, extensions, a kind.
    assert_eq!(files(&idx, "deploy", &["--type", "rust"]), ["deploy.rs"]);
    assert_eq!(files(&idx, "deploy", &["-t", "py,rs"]), ["deploy.py", "deploy.rs"]);
    assert_eq!(files(&idx, "deploy", &["--type", "md"]), ["broken.md", "gopher.md", "hugo.md", "retro.md"]);
    // Modification time: a time ago, a date (that day included in `until`). A note's own date
    // (its frontmatter's) comes before its file's.
    assert_eq!(files(&idx, "deploy", &["--since", "30d"]), ["broken.md", "deploy.py", "gopher.md", "hugo.md"]);
    assert_eq!(files(&idx, "deploy", &["--until", "2020-01-01"]), ["deploy.rs"]);
    assert_eq!(files(&idx, "deploy", &["--until", "2020-03-01"]), ["deploy.rs", "retro.md"]);
    assert_eq!(files(&idx, "deploy", &["--since", "2020-03-02", "--until", "2020-12-31"]), Vec::<String>::new());
    assert!(files(&idx, "deploy", &["--until", "2019-12-30"]).is_empty());
    // A hit says the date the filters go by: the note's own (a bare date is local midnight),
    // else the file's modification time; RFC 3339 in local time.
    let date = |query| search_json(&idx, query, &[]).1["hits"][0]["date"].as_str().unwrap().to_string();
    assert!(date("retrospective").starts_with("2020-03-01T00:00:00"), "{}", date("retrospective"));
    let mtime = chrono::DateTime::from_timestamp(1_577_836_800, 0).unwrap().with_timezone(&chrono::Local);
    assert_eq!(date("fn deploy"), mtime.to_rfc3339_opts(chrono::SecondsFormat::Secs, false));
    // With the path glob: every part holds.
    assert_eq!(files(&idx, "deploy", &["--path", "code/**", "--since", "30d"]), ["deploy.py"]);

    // A filter that holds no file says so, and the exit code is "no results".
    let (out, hits) = search(&idx, "deploy", &["--tag", "deploy", "--type", "rust"]);
    assert!(hits.is_empty() && out.status.code() == Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let notes = json["notes"].to_string();
    assert!(
        notes.contains("no indexed file matches the filter (type rust, tag deploy): nothing was searched"),
        "{notes}"
    );

    // Values that cannot be read: an error (exit 2) that says what is accepted.
    for (args, wording) in [
        (["--type", "no/such"], "unknown file type `no/such`: use markdown, text, html, pdf, code"),
        (["--since", "soon"], "cannot read `soon` as a date (2026-11-01, today, yesterday) or a time ago"),
        (["--tag", "#"], "`#` is not a tag"),
    ] {
        let (out, _) = search(&idx, "deploy", &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(wording), "{args:?}: {stderr}");
    }

    // The frontmatter's title is the document's title; a note without one keeps its heading.
    let (out, _) = search(&idx, "deploy", &["--tag", "deploy"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["hits"][0]["title"], "Deploying with Fly");
    let (out, _) = search(&idx, "guanciale", &[]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["hits"][0]["title"], "Carbonara");

    // A note's tags change with it, and go with it.
    common::write(&root, "notes/hugo.md", "---\ntags: [ops]\n---\nHow we deploy the app.\n");
    index(&idx, &root);
    assert!(files(&idx, "deploy", &["--tag", "deploy"]).is_empty());
    assert_eq!(files(&idx, "deploy", &["--tag", "ops"]), ["hugo.md"]);
    std::fs::remove_file(root.join("notes/hugo.md")).unwrap();
    index(&idx, &root);
    assert!(files(&idx, "deploy", &["--tag", "ops"]).is_empty());
    let db = rusqlite::Connection::open(idx.join("index.sqlite")).unwrap();
    let orphans: i64 = db
        .query_row("SELECT count(*) FROM doc_tags WHERE doc_id NOT IN (SELECT id FROM documents)", [], |r| r.get(0))
        .unwrap();
    assert_eq!(orphans, 0, "a removed note's tags go with it");
}

/// An index written before qsearch read frontmatter (schema 3, no tag table): a tag filter
/// says what to do; the next `index` reads the Markdown notes again, embeds nothing again, and
/// the filter works.
#[test]
fn an_index_from_before_tags_reads_its_notes_frontmatter_once_and_keeps_every_vector() {
    let (_tmp, root, idx, first) = indexed_corpus();
    let db = rusqlite::Connection::open(idx.join("index.sqlite")).unwrap();
    db.execute_batch("DROP TABLE doc_tags; PRAGMA user_version = 3;").unwrap();
    drop(db);

    let (out, _) = search(&idx, "deploy", &["--tag", "deploy"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("run `qsearch index` once"), "{stderr}");
    assert_eq!(files(&idx, "deploy", &["--type", "rust"]), ["deploy.rs"], "filters without tags work meanwhile");

    let again = index(&idx, &root);
    assert_eq!(again["indexed"], 7, "the seven Markdown notes are read again: {again}");
    assert_eq!(again["unchanged"], first["indexed"].as_u64().unwrap() - 7, "{again}");
    assert_eq!(again["embedded"], 0, "their chunks keep their vectors: {again}");
    assert_eq!(files(&idx, "deploy", &["--tag", "deploy"]), ["hugo.md"]);
    let out = common::qsearch(&idx)
        .args(["search", "--mode", "semantic", "--json", "--tag", "deploy", "deploy"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["hits"][0]["title"], "Deploying with Fly", "semantic search finds the re-read note: {json}");
    assert_eq!(json["pending"], 0, "{json}");
}

/// An index written before notes' dates were read (schema 7, no date table): time filters
/// go by the files' mtimes meanwhile; the next `index` reads the notes with a frontmatter
/// block again, embeds nothing again, and their own dates count.
#[test]
fn an_index_from_before_note_dates_reads_them_once_and_keeps_every_vector() {
    let (_tmp, root, idx, _) = indexed_corpus();
    let db = rusqlite::Connection::open(idx.join("index.sqlite")).unwrap();
    db.execute_batch("DROP TABLE doc_dates; PRAGMA user_version = 7;").unwrap();
    drop(db);
    assert_eq!(files(&idx, "retrospective", &["--since", "30d"]), ["retro.md"], "its file's mtime, meanwhile");

    let again = index(&idx, &root);
    assert_eq!(again["indexed"], 6, "the six notes with a frontmatter block are read again, not plain.md: {again}");
    assert_eq!(again["embedded"], 0, "their chunks keep their vectors: {again}");
    assert!(files(&idx, "retrospective", &["--since", "30d"]).is_empty());
    assert_eq!(files(&idx, "retrospective", &["--until", "2020-03-01"]), ["retro.md"]);
    let db = rusqlite::Connection::open(idx.join("index.sqlite")).unwrap();
    let orphans: i64 = db
        .query_row("SELECT count(*) FROM doc_dates WHERE doc_id NOT IN (SELECT id FROM documents)", [], |r| r.get(0))
        .unwrap();
    assert_eq!(orphans, 0, "a note read again has one date");
}

//! The `qsearch` binary as a user meets it: index, search (human and JSON), status, and the
//! messages for what goes wrong.

mod common;

use serde_json::Value;

fn stand_in_index(index: &std::path::Path, root: &std::path::Path) -> std::process::Output {
    common::qsearch(index).args(["index", "--model", "stand-in"]).arg(root).output().unwrap()
}

#[test]
fn index_then_search_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("notes");
    common::write(&root, "git.md", "# Git\n\n## Undo\n\nUse git reflog to find a lost commit.\n");
    common::write(&root, "cook.md", "# Cooking\n\nRisotto needs constant stirring.\n");
    let index = tmp.path().join("index");
    let out = stand_in_index(&index, &root);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("indexed 2 files"), "{stderr}");

    let out = common::qsearch(&index).args(["search", "lost commit reflog", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["mode"], "hybrid");
    assert_eq!(json["partial"], false);
    let hit = &json["hits"][0];
    assert!(hit["path"].as_str().unwrap().ends_with("git.md"));
    assert_eq!(hit["heading"], "Git");
    assert_eq!(hit["line"], 5, "the line of the first matched word");
    assert_eq!(hit["rank"], 1);
    assert_eq!(hit["match"], "both");
    let snippet = hit["snippet"].as_str().unwrap();
    let (a, b) = (hit["marks"][0][0].as_u64().unwrap() as usize, hit["marks"][0][1].as_u64().unwrap() as usize);
    assert!(["lost", "commit", "reflog"].contains(&&snippet[a..b]));

    let out = common::qsearch(&index).args(["search", "risotto"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("cook.md:3") && text.contains("Risotto"), "{text}");

    let out = common::qsearch(&index).args(["search", "zzzzqqq", "--mode", "keyword"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "no results exits 1");

    let out = common::qsearch(&index).args(["status", "--json"]).output().unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["stats"]["documents"], 2);
    assert_eq!(json["stats"]["pending"], 0);
    // A new index keeps i8 vectors in its vector file, and says so.
    assert_eq!(json["stats"]["vector_type"], "i8");
    let out = common::qsearch(&index).arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("(vectors as i8 in the vector file)"), "{text}");
}

/// An HTML page is read as the Markdown its author would have written: its headings head its
/// hits, its first heading is its title (its `<title>` when it has none), and what a reader does
/// not see as its text (scripts, the site's menu, link addresses) is not searched. Minified code
/// beside it is left out with the reason. An index from before this (schema 4) reads its pages
/// again at the next `index`.
#[test]
#[cfg(feature = "html")]
fn an_html_page_is_searched_by_its_text_and_headed_by_its_headings() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("site");
    common::write(
        &root,
        "install.html",
        "<!doctype html><html><head><title>Install &mdash; Foo 1.2 documentation</title>\
         <script>var telemetry = 1;</script></head><body><nav><a href='/'>Sitemap</a></nav>\
         <h1>Install</h1><p>Foo runs anywhere.</p><h2>On Linux</h2>\
         <p>Run the <a href='https://dl.example.org/x'>installer</a> with sudo.</p></body></html>",
    );
    common::write(&root, "changes.html", "<title>Changelog of Foo</title><p>Fixed the frobnicator.</p>");
    // Such sites ship their search index as one line of code (4.7 MB in the Rust book's): it is
    // left out, and said to be.
    common::write(&root, "searchindex.js", format!("window.search={};\n", "{\"doc\":\"frobnicator\"},".repeat(1000)));
    let index = tmp.path().join("index");
    let (code, report) = common::index_json(&index, &root);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["indexed"], 2, "{report}");
    let skipped = &report["skipped"][0];
    assert!(skipped[0].as_str().unwrap().ends_with("searchindex.js"), "{report}");
    assert!(skipped[1].as_str().unwrap().starts_with("minified or generated code"), "{report}");
    let search = |query: &str| {
        let out = common::qsearch(&index).args(["search", "--mode", "keyword", "--json", query]).output().unwrap();
        (out.status.code(), serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null))
    };
    let (code, json) = search("installer sudo");
    assert_eq!(code, Some(0), "{json}");
    let hit = &json["hits"][0];
    assert_eq!(hit["title"], "Install", "{hit}");
    assert_eq!(hit["heading"], "Install", "the page's heading heads its chunk: {hit}");
    assert_eq!(hit["line"], 7, "the line of the Markdown text the preview shows: {hit}");
    assert_eq!(search("frobnicator").1["hits"][0]["title"], "Changelog of Foo");
    for unseen in ["telemetry", "Sitemap", "dl.example.org", "documentation"] {
        assert_eq!(search(unseen).0, Some(1), "{unseen} is not the page's text");
    }

    common::set_schema(&index, 4);
    let (_, report) = common::index_json(&index, &root);
    assert_eq!((report["indexed"].as_u64(), report["unchanged"].as_u64()), (Some(2), Some(0)), "{report}");
}

/// A photo pasted into a note as a data URI is a line of a million base64 letters: it is read as
/// `…`, so it costs no chunks and no model time, and its letters are not searched. An index from
/// before this (schema 5) reads such notes again.
#[test]
fn an_image_pasted_into_a_note_is_not_read_as_text() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("notes");
    let payload = "iVBORw0KGgoAAAANSUhEUgAAB".repeat(12_000);
    common::write(
        &root,
        "trip.md",
        format!("# Trip\n\nThe lake was cold.\n\n![lake](data:image/png;base64,{payload}=)\n\nWe swam anyway.\n"),
    );
    let index = tmp.path().join("index");
    let (_, report) = common::index_json(&index, &root);
    assert_eq!(report["chunks_written"], 1, "{report}");
    let search =
        |query: &str| common::qsearch(&index).args(["search", "--mode", "keyword", "--json", query]).output().unwrap();
    let out = search("swam anyway");
    let hit = &serde_json::from_slice::<Value>(&out.stdout).unwrap()["hits"][0];
    assert_eq!(hit["line"], 7, "lines are where they are in the file: {hit}");
    assert_eq!(search("iVBORw0KGgoAAAANSUhEUgAAB").status.code(), Some(1), "the payload is not searched");
    let db = rusqlite::Connection::open(index.join("index.sqlite")).unwrap();
    let text: String = db.query_row("SELECT text FROM chunks", [], |r| r.get(0)).unwrap();
    assert!(text.contains("![lake](data:image/png;base64,…)") && text.len() < 200, "{text}");
    drop(db);

    common::set_schema(&index, 5);
    let (_, report) = common::index_json(&index, &root);
    assert_eq!(
        (report["indexed"].as_u64(), report["embedded"].as_u64()),
        (Some(1), Some(0)),
        "read again, same chunk: {report}"
    );
}

#[test]
fn estimate_measures_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("notes");
    for i in 0..20 {
        common::write(&root, &format!("n{i}.md"), format!("# Note {i}\n\nsome words about topic {i}\n"));
    }
    let index = tmp.path().join("index");
    let out = common::qsearch(&index)
        .args(["index", "--estimate", "--json", "--model", "stand-in"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let est: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(est["files"], 20);
    assert_eq!(est["chunks"], 20);
    assert!(est["tokens"].as_u64().unwrap() > 20 * 5);
    assert!(est["sample_chunks"].as_u64().unwrap() >= 20);
    assert!(est["disk_bytes"].as_u64().unwrap() > 0);
    assert!(!index.exists(), "an estimate writes no index");
}

#[test]
fn clear_messages_for_common_mistakes() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    let out = common::qsearch(&index).args(["search", "anything"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("qsearch index PATH"), "{err}");

    let out = common::qsearch(&index)
        .args(["index", "--model", "stand-in"])
        .arg(tmp.path().join("missing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot index"), "{}", String::from_utf8_lossy(&out.stderr));

    let out = common::qsearch(&index).args(["index", "--model", "no-such-model"]).arg(tmp.path()).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("known models"));

    let root = tmp.path().join("notes");
    common::write(&root, "a.md", "alpha");
    assert!(stand_in_index(&index, &root).status.success());
    let out = common::qsearch(&index).args(["index", "--model", "all-minilm-l6-v2"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rebuild"), "{}", String::from_utf8_lossy(&out.stderr));
    // `--rebuild` alone starts afresh with the index's own model.
    let out = common::qsearch(&index).args(["index", "--rebuild", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((report["indexed"].as_u64(), report["embedded"].as_u64()), (Some(1), Some(1)), "{report}");
    let status = common::qsearch(&index).args(["status", "--json"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("stand-in"),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
}

#[test]
fn without_its_model_search_still_answers_by_keyword_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("notes");
    common::write(&root, "k.md", "# Kayak\n\nkayak paddling notes\n");
    let index = tmp.path().join("index");
    assert!(stand_in_index(&index, &root).status.success());
    // The index says it was built with a model this qsearch cannot load.
    let conn = rusqlite::Connection::open(index.join(qsearch::store::DB_FILE)).unwrap();
    let fp: String = conn.query_row("SELECT value FROM meta WHERE key = 'fingerprint'", [], |r| r.get(0)).unwrap();
    conn.execute("UPDATE meta SET value = ?1 WHERE key = 'fingerprint'", [fp.replace("stand-in:", "gone-model:")])
        .unwrap();
    drop(conn);
    let out = common::qsearch(&index).args(["search", "kayak", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["hits"][0]["path"].as_str().unwrap().ends_with("k.md"));
    let notes = json["notes"].to_string();
    assert!(notes.contains("semantic search is unavailable") && notes.contains("gone-model"), "{notes}");
}

/// A model taken from `--model-dir` at indexing is found again by later commands without the
/// flag (the index remembers the folder); the folder holds a graph with its weights inside (no
/// `onnx/model.onnx_data`), which is accepted because the graph references no external file.
/// The model is the tiny Qwen3 fixture standing for the fp32 export; its tokenizer comes from
/// the shared data directory.
#[test]
fn the_index_remembers_where_its_model_came_from() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("notes");
    common::write(&root, "k.md", "# Kayak\n\nkayak paddling notes\n");
    let models = tmp.path().join("models");
    std::fs::create_dir_all(models.join("onnx")).unwrap();
    std::fs::copy(common::fixture("qwen3-tiny/model.onnx"), models.join("onnx/model.onnx")).unwrap();
    let index_with_model_dir = |index: &std::path::Path| {
        common::qsearch(index)
            .args(["--device", "cpu", "--model", "qwen3-embedding-0.6b-fp32", "--model-dir"])
            .arg(&models)
            .arg("index")
            .arg(&root)
            .output()
            .unwrap()
    };
    let index = tmp.path().join("index");
    let out = index_with_model_dir(&index);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = common::qsearch(&index).args(["--device", "cpu", "search", "kayak", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["notes"].as_array().map_or(0, Vec::len), 0, "no keyword-only fallback: {}", json["notes"]);
    assert_eq!(json["mode"], "hybrid");
    assert!(json["hits"][0]["path"].as_str().unwrap().ends_with("k.md"));
    // A folder whose graph does reference an external file still needs that file.
    std::fs::write(models.join("onnx/model.onnx"), b"\x0a\x08location model.onnx_data").unwrap();
    let out = index_with_model_dir(&tmp.path().join("other-index"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("model.onnx_data"), "{stderr}");
}

/// `model prepare --device coreml` (and `cuda`) on a machine without CoreML (or CUDA): the
/// fixed-shape graphs are made and listed with their coverage, CUDA's fp16 graph is made, and
/// `doctor` then reports them per device.
#[test]
fn a_model_is_prepared_ahead_for_a_device_this_machine_lacks() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    std::fs::create_dir_all(models.join("onnx")).unwrap();
    std::fs::copy(common::fixture("qwen3-tiny/model.onnx"), models.join("onnx/model.onnx")).unwrap();
    std::fs::copy(common::qwen3_tokenizer_path(), models.join("tokenizer.json")).unwrap();
    let index = tmp.path().join("index");
    // A data directory of its own: the preparations made are the ones `doctor` sees.
    let data = tmp.path().join("data");
    let prepare = |device: &str| {
        common::qsearch(&index)
            .env("QSEARCH_DATA_DIR", &data)
            .args(["--model", "qwen3-embedding-0.6b-fp32", "--model-dir"])
            .arg(&models)
            .args(["model", "prepare", "qwen3-embedding-0.6b-fp32", "--device", device])
            .output()
            .unwrap()
    };
    let out = prepare("coreml");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("9 fixed-shape graphs, fp16"), "{stdout}");
    assert_eq!(stdout.matches("nodes are CoreML operators").count(), 9, "{stdout}");
    assert!(!stdout.contains("not CoreML"), "{stdout}");
    let out = prepare("cuda");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("the export's attention, fp16"), "{stdout}");
    let out = common::qsearch(&index)
        .env("QSEARCH_DATA_DIR", &data)
        .arg("--model-dir")
        .arg(&models)
        .arg("doctor")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("on coreml: prepared 9 fixed-shape graphs"), "{stdout}");
    assert!(stdout.contains("on cpu: not prepared yet"), "{stdout}");
    assert!(stdout.contains("on cuda: prepared") && stdout.contains("the export's attention, fp16"), "{stdout}");
}

/// A device the user names is an error when it cannot be had (this machine has neither CUDA nor
/// CoreML): exit 2 with the reason and what to do, never a quiet run on the CPU; nothing written
/// with another model's vectors.
#[test]
fn an_explicit_device_that_cannot_be_had_is_an_error_not_a_cpu_run() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("notes");
    common::write(&root, "k.md", "# Kayak\n\nkayak paddling notes\n");
    for device in ["cuda", "coreml"] {
        let index = tmp.path().join(format!("index-{device}"));
        let out = common::qsearch(&index)
            .args(["--device", device, "--model", "all-minilm-l6-v2", "index"])
            .arg(&root)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{device}: {stderr}");
        assert!(stderr.contains(&format!("--device {device} was asked for")), "{stderr}");
        assert!(stderr.contains("qsearch doctor --device"), "the fix: {stderr}");
    }
    // The CPU, named, runs.
    let out = common::qsearch(&tmp.path().join("index-cpu"))
        .args(["--device", "cpu", "--model", "all-minilm-l6-v2", "index", "--quiet"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `doctor --device cpu` and `embed` say where ONNX Runtime ran the graph's nodes, from its own
/// profile: on the CPU provider, all of them ("N/N nodes"), the same count both times.
#[test]
fn doctor_and_embed_show_where_the_graph_ran() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    let pull = common::qsearch(&index).args(["model", "pull", "all-minilm-l6-v2"]).output().unwrap();
    assert!(pull.status.success(), "{}", String::from_utf8_lossy(&pull.stderr));
    let out =
        common::qsearch(&index).args(["--device", "cpu", "--model", "all-minilm-l6-v2", "doctor"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.starts_with("device:")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("all-minilm-l6-v2 on CPU: CPU "), "{line}");
    let counts = line.rsplit("CPU ").next().and_then(|r| r.split(" nodes").next()).unwrap_or_else(|| panic!("{line}"));
    let (ran, of) = counts.split_once('/').unwrap_or_else(|| panic!("{line}"));
    assert_eq!(ran, of, "every node on the CPU: {line}");
    let nodes: usize = ran.parse().unwrap();
    assert!(nodes > 10, "a BERT graph has more nodes than that: {line}");
    // The same checks as data.
    let out = common::qsearch(&index)
        .args(["--device", "cpu", "--model", "all-minilm-l6-v2", "doctor", "--json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["device"]["state"], "ran", "{}", report["device"]);
    assert_eq!(report["device"]["placement"]["Ok"]["providers"], serde_json::json!([["CPU", nodes]]));
    assert!(
        report["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "all-minilm-l6-v2" && m["missing"] == serde_json::json!([]))
    );

    let out = common::qsearch(&index)
        .args(["--device", "cpu", "--model", "all-minilm-l6-v2", "embed", "one text", "another"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "one line per text");
    assert_eq!(lines[1]["text"], "another");
    assert_eq!(lines[0]["placement"]["providers"], serde_json::json!([["CPU", nodes]]), "{}", lines[0]);

    // And the first lines of `index`.
    let root = tmp.path().join("notes");
    common::write(&root, "a.md", "# A\n\nhello world\n");
    let out = common::qsearch(&index)
        .args(["--device", "cpu", "--model", "all-minilm-l6-v2", "index"])
        .arg(&root)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("on CPU: CPU {nodes}/{nodes} nodes")), "{stderr}");
}

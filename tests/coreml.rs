//! The CoreML preparation against ONNX Runtime's own partitioning checker
//! (`onnxruntime.tools.check_onnx_model_mobile_usability`, shipped in the wheel qsearch installs
//! its runtime from; `onnx` and `numpy`, which it needs, are installed into target/check-py by
//! scripts/test.sh): every graph qsearch prepares for CoreML must go to the MLProgram provider
//! whole, one partition, no node refused for its operator or for a dynamic shape. Run on the tiny
//! fixture, on its twin in standard operators (qwen3-plain), and on a full-size Qwen3-shaped graph (scripts/qwen3_graph.py, made in a temporary
//! directory under target/ and deleted after).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use onnx_protobuf::Message;
use qsearch::models::prepare::{self, Target, outside_coreml};

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target")
}

/// PYTHONPATH for the checker: onnx and numpy, and the onnxruntime package of the runtime.
fn python_path() -> String {
    let deps = target_dir().join("check-py");
    assert!(
        deps.join("onnx").is_dir(),
        "onnx and numpy are not installed in {}: run `bash scripts/test.sh` (it installs them there once)",
        deps.display()
    );
    format!("{}:{}", deps.display(), wheel().display())
}

/// The unpacked onnxruntime wheel qsearch runs (the folder holding its `onnxruntime` package).
fn wheel() -> PathBuf {
    let lib = &common::runtime().lib.path;
    lib.ancestors().find(|p| p.join("onnxruntime").join("tools").is_dir()).expect("the runtime's wheel").to_path_buf()
}

/// Every operator qsearch's CoreML preparation may leave in a graph (`COREML_OPS`) is in the
/// wheel's own table of what the MLProgram provider takes, `coreml_supported_mlprogram_ops.md`,
/// read as the checker reads it (`|domain:op|note|` rows, matched exactly), so qsearch's list
/// cannot claim an operator the runtime does not. One spelling differs: the table writes
/// `Argmax` for ONNX's `ArgMax`, so the checker would refuse an `ArgMax` node; qsearch's graphs
/// hold none, and the allowance lapses (fails) once the table spells it right.
#[test]
fn every_operator_qsearch_writes_for_coreml_is_in_the_wheels_own_table() {
    const SPELLED_OTHERWISE: &[(&str, &str)] = &[("ArgMax", "Argmax")];
    let table = wheel().join("onnxruntime/tools/mobile_helpers/coreml_supported_mlprogram_ops.md");
    let text = std::fs::read_to_string(&table).unwrap_or_else(|e| panic!("{}: {e}", table.display()));
    let listed: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with('|'))
        .filter_map(|l| {
            let pieces: Vec<&str> = l.trim().split('|').collect();
            (pieces.len() == 4 && pieces[1].contains(':')).then_some(pieces[1])
        })
        .collect();
    assert!(listed.len() >= 40 && listed.contains(&"ai.onnx:MatMul"), "{}: {listed:?}", table.display());
    let mut missing = Vec::new();
    for &op in prepare::COREML_OPS {
        let spelled = SPELLED_OTHERWISE.iter().find(|s| s.0 == op).map_or(op, |s| s.1);
        if !listed.contains(&format!("ai.onnx:{spelled}").as_str()) {
            missing.push(op);
        }
        if spelled != op {
            assert!(
                !listed.contains(&format!("ai.onnx:{op}").as_str()),
                "the table now spells {op} as ONNX does: drop it from SPELLED_OTHERWISE"
            );
        }
    }
    assert!(missing.is_empty(), "in COREML_OPS, not in {}: {missing:?}", table.display());
}

/// The checker's verdict on the CoreML MLProgram provider: (nodes taken, nodes in all, partitions).
fn mlprogram_partitions(model: &Path) -> (usize, usize, usize, String) {
    let out = Command::new("python3")
        .args(["-m", "onnxruntime.tools.check_onnx_model_mobile_usability"])
        .arg(model)
        .env("PYTHONPATH", python_path())
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the checker failed on {}:\n{text}", model.display());
    let section =
        text.split("Checking CoreML MLProgram").nth(1).unwrap_or_else(|| panic!("no MLProgram section:\n{text}"));
    let line = section.lines().find(|l| l.contains("can be handled by the CoreML MLProgram EP")).expect("verdict line");
    // "1 partitions with a total of 238/238 nodes can be handled by the CoreML MLProgram EP."
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "partitions").expect("partition count");
    let partitions = words[at - 1].parse().unwrap();
    let (taken, all) = words[at + 5].split_once('/').expect("n/n");
    let section = section.split("================").next().unwrap_or("").to_string();
    (taken.parse().unwrap(), all.parse().unwrap(), partitions, section)
}

/// Prepares `source` for CoreML into `root`, runs `prepared` (which may delete the source), then
/// checks every bucket's graph.
fn check_every_bucket(source: &Path, root: &Path, prepared: impl FnOnce()) {
    let p = prepare::prepared(source, root, Target::Coreml, &mut |m| eprintln!("{m}")).unwrap();
    assert!(p.manifest.notes.is_empty(), "{:?}", p.manifest.notes);
    // The graphs read their f16 weights from the prepared directory: none of the source's other
    // files (its fp32 weights) is linked or copied there.
    let source_dir = source.parent().unwrap();
    for entry in std::fs::read_dir(source_dir).unwrap() {
        let name = entry.unwrap().file_name();
        if name != "model.onnx" {
            assert!(!p.dir.join(&name).exists(), "{} was brought into {}", name.to_string_lossy(), p.dir.display());
        }
    }
    prepared();
    assert_eq!(p.buckets().len(), prepare::BUCKETS.len());
    let buckets = p.buckets();
    for (_, file) in &buckets {
        let model = onnx_protobuf::ModelProto::parse_from_bytes(&std::fs::read(file).unwrap()).unwrap();
        // Every node against the operator list, by qsearch's own reading.
        assert_eq!(outside_coreml(model.graph.as_ref().unwrap()), vec![], "{}", file.display());
    }
    // The checker loads each graph into ONNX Runtime and writes it out again (seconds of IO for
    // a full-size one): as many at once as there are cores.
    let at_once = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    for group in buckets.chunks(at_once) {
        std::thread::scope(|s| {
            let runs: Vec<_> =
                group.iter().map(|(bucket, file)| (bucket, file, s.spawn(|| mlprogram_partitions(file)))).collect();
            for (bucket, file, run) in runs {
                let (taken, all, partitions, section) = run.join().unwrap();
                eprintln!("{}x{}: {partitions} partition(s), {taken}/{all} nodes", bucket.rows, bucket.tokens);
                assert!(
                    partitions == 1 && taken == all && all > 0,
                    "{}: CoreML MLProgram takes {taken}/{all} nodes in {partitions} partitions:\n{section}",
                    file.display()
                );
                assert!(!section.to_lowercase().contains("dynamic"), "{}: {section}", file.display());
            }
        });
    }
}

#[test]
fn every_coreml_graph_of_the_tiny_fixture_goes_to_coreml_whole() {
    let root = tempfile::tempdir().unwrap();
    check_every_bucket(&common::fixture("qwen3-tiny/model.onnx"), root.path(), || {});
}

/// The same model exported in standard operators only (scripts/qwen3_graph.py --plain, as
/// torch.onnx writes Qwen3: no RotaryEmbedding, a mask built from dynamic shapes).
#[test]
fn every_coreml_graph_of_the_plain_fixture_goes_to_coreml_whole() {
    let root = tempfile::tempdir().unwrap();
    check_every_bucket(&common::fixture("qwen3-plain/model.onnx"), root.path(), || {});
}

/// The plain fixture with one change, prepared for CoreML: the error (of the first bucket).
fn prepare_plain_changed(change: impl FnOnce(&mut onnx_protobuf::GraphProto)) -> String {
    let mut model =
        onnx_protobuf::ModelProto::parse_from_bytes(&std::fs::read(common::fixture("qwen3-plain/model.onnx")).unwrap())
            .unwrap();
    change(model.graph.as_mut().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("model.onnx");
    std::fs::write(&source, model.write_to_bytes().unwrap()).unwrap();
    let root = dir.path().join("prepared");
    prepare::prepared(&source, &root, Target::Coreml, &mut |_| {}).unwrap_err().to_string()
}

/// What the plain rewrite cannot handle is an error naming what it met, never a graph CoreML
/// would split.
#[test]
fn a_plain_graph_the_rewrite_cannot_handle_is_refused_naming_what_it_met() {
    // position_ids read by something other than a Gather from a constant table.
    let err = prepare_plain_changed(|g| {
        let gather = g.node.iter().position(|n| n.input.iter().any(|i| i == "position_ids")).unwrap();
        let mut cast = g.node[gather].clone();
        cast.name = "/model/rotary_emb/Cast".into();
        cast.op_type = "Cast".into();
        cast.input = vec!["position_ids".into()];
        cast.output = vec!["/model/rotary_emb/Cast_output_0".into()];
        cast.attribute.clear();
        g.node[gather].input[1] = "/model/rotary_emb/Cast_output_0".into();
        g.node.insert(gather, cast);
    });
    assert!(err.contains("/model/rotary_emb/Cast (Cast) reads position_ids"), "{err}");
    // An operator that is not CoreML's and that the rewrite has no standard form for.
    let err = prepare_plain_changed(|g| {
        let sigmoid = g.node.iter_mut().find(|n| n.op_type == "Sigmoid").unwrap();
        sigmoid.op_type = "HardSwish".into();
    });
    assert!(err.contains("HardSwish x1 (first: /model/layers.0/mlp/act_fn/Sigmoid)"), "{err}");
    // Attention without a mask added to its scores.
    let err = prepare_plain_changed(|g| {
        let softmax = g.node.iter().position(|n| n.op_type == "Softmax").unwrap();
        let add = g.node.iter().position(|n| n.output[0] == g.node[softmax].input[0]).unwrap();
        let scores = g.node[add].input[0].clone();
        g.node[softmax].input[0] = scores;
    });
    assert!(err.contains("/model/layers.0/self_attn/Softmax: the Softmax reads Mul"), "{err}");
}

/// The export's operators, for contrast: the checker refuses them (what the preparation is for),
/// so a checker that passes everything would be caught here.
#[test]
fn the_export_as_it_is_is_refused_by_the_checker() {
    let (taken, all, _, _) = mlprogram_partitions(&common::fixture("qwen3-tiny/model.onnx"));
    assert!(taken < all, "the export's contrib operators should not pass: {taken}/{all}");
    // The plain export too: its dynamic shapes, and Gather, Expand, Neg, Range... in its nodes.
    let (taken, all, _, _) = mlprogram_partitions(&common::fixture("qwen3-plain/model.onnx"));
    assert!(taken < all, "the plain export as it is should not pass: {taken}/{all}");
}

/// Full-size Qwen3 shapes (28 layers, 1,024 wide, random weights), made with
/// scripts/qwen3_graph.py (a few minutes), then prepared and checked. Nothing is kept: the fp32
/// source (2.4 GB) is deleted once prepared, before the checker's copies of the f16 graphs
/// (1.2 GB each) are written, so that the test needs about 4 GB of disk at its peak.
#[test]
fn every_coreml_graph_of_a_full_size_qwen3_goes_to_coreml_whole() {
    full_size(&[]);
}

/// The same in standard operators (`--plain`). Not in the suite (minutes, 4 GB of disk): run it
/// with `cargo test --test coreml -- --ignored` after changing the plain rewrite.
#[test]
#[ignore = "minutes and 4 GB of disk; the tiny plain fixture is in the suite"]
fn every_coreml_graph_of_a_full_size_plain_qwen3_goes_to_coreml_whole() {
    full_size(&["--plain"]);
}

fn full_size(flags: &[&str]) {
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let source = work.path().join("source");
    let model = source.join("model.onnx");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join("qwen3_graph.py");
    let status = Command::new("python3")
        .arg(script)
        .args(flags)
        .args(["--size", "full", "--out"])
        .arg(&model)
        .env("PYTHONPATH", python_path())
        .status()
        .unwrap();
    assert!(status.success(), "scripts/qwen3_graph.py failed");
    let prepared = work.path().join("prepared");
    check_every_bucket(&model, &prepared, || std::fs::remove_dir_all(&source).unwrap());
}

/// An int8 export cannot become a CoreML graph: preparing says so and names the way out.
#[test]
fn a_quantised_export_is_refused_with_the_way_out() {
    let root = tempfile::tempdir().unwrap();
    let err =
        prepare::prepared(&common::fixture("qwen3-tiny-int8/model.onnx"), root.path(), Target::Coreml, &mut |_| {})
            .unwrap_err()
            .to_string();
    assert!(err.contains("quantised") && err.contains("qwen3-embedding-0.6b-fp32"), "{err}");
}

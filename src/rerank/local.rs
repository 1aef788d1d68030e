//! Rerankers on this machine, on the ONNX Runtime the embedders use. Two kinds:
//!
//! - [`Kind::YesNo`], Qwen3-Reranker: a decoder reads the model card's prompt (system line,
//!   `<Instruct>`, `<Query>`, `<Document>`, the empty think block) and the score is the
//!   probability of "yes" against "no" at the last position, `softmax([no, yes])[1]`. The graph's
//!   `logits` are either the two columns `[no, yes]` (a graph whose output projection keeps only
//!   those two rows, as the fixtures and `scripts/qwen3_graph.py --reranker` make it) or the
//!   whole vocabulary (an export as it is: the two ids' columns are read, at the cost of the
//!   full projection).
//! - [`Kind::CrossEncoder`], a BERT-style cross-encoder (ms-marco MiniLM, BGE reranker exports):
//!   the pair is one input `[CLS] query [SEP] document [SEP]` (token types 0 then 1), and the
//!   score is the graph's one logit, as it is.
//!
//! Texts past the model's length are cut: the document's end for Qwen3 (the prompt and the
//! query kept), the longer of the two first for a cross-encoder (`longest_first`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use ort::session::{Session, SessionInputValue};
use ort::value::{Tensor, ValueType};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use super::Reranker;
use crate::embed::batch::{self, PadSide};
use crate::embed::device::{self, Device, Placement};
use crate::embed::onnx::empty_past;
use crate::runtime::Runtime;

/// The Qwen3-Reranker model card's system line and the turn around the pair.
pub const QWEN3_PREFIX: &str = "<|im_start|>system\nJudge whether the Document meets the requirements based on the \
     Query and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n";
pub const QWEN3_SUFFIX: &str = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
/// The model card's instruction when none is given.
pub const DEFAULT_INSTRUCTION: &str = "Given a web search query, retrieve relevant passages that answer the query";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// P("yes") against P("no") at the last position (Qwen3-Reranker).
    YesNo,
    /// One logit per pair (a BERT-style cross-encoder).
    CrossEncoder,
}

/// How to load a local reranker.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// As the user named it (a catalog id, a folder).
    pub id: String,
    /// None: from the graph (one logit out: a cross-encoder; else yes/no).
    pub kind: Option<Kind>,
    /// The `<Instruct>` of a yes/no reranker (None: the model card's).
    pub instruction: Option<String>,
    /// Tokens of one pair, prompt included.
    pub max_tokens: usize,
    /// Padded tokens a run.
    pub batch_tokens: usize,
    pub device: Device,
    pub threads: usize,
}

impl LocalOptions {
    pub fn new(id: &str) -> LocalOptions {
        LocalOptions {
            id: id.to_string(),
            kind: None,
            instruction: None,
            max_tokens: 512,
            batch_tokens: 2048,
            device: Device::Cpu,
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        }
    }
}

pub struct LocalReranker {
    id: String,
    kind: Kind,
    session: Session,
    tokenizer: Tokenizer,
    placement: Placement,
    output: String,
    /// Where "no" and "yes" are on the output's last axis (yes/no rerankers).
    columns: (usize, usize),
    /// The prompt's ids before and after the pair (yes/no rerankers).
    prefix: Vec<u32>,
    suffix: Vec<u32>,
    instruction: String,
    pad_id: u32,
    max_tokens: usize,
    batch_tokens: usize,
}

/// One pair's ids, as the model reads it.
struct Pair {
    ids: Vec<u32>,
    types: Vec<u32>,
}

impl LocalReranker {
    /// Loads the graph `model` with its `tokenizer`.
    pub fn load(runtime: &'static Runtime, model: &Path, tokenizer: &Path, opts: &LocalOptions) -> Result<Self> {
        let mut tok = Tokenizer::from_file(tokenizer)
            .map_err(|e| anyhow!("could not read the reranker's tokenizer {}: {e}", tokenizer.display()))?;
        tok.with_padding(None);
        let prepacked = ort::session::builder::PrepackedWeights::new();
        let (session, placement) =
            device::session(runtime, model, opts.device, opts.threads, device::Spin::Idle, &prepacked, None)
                .with_context(|| format!("loading the reranker {}", opts.id))?;
        let output = ["logits", "yes_no", "scores"]
            .into_iter()
            .find(|w| session.outputs().iter().any(|o| o.name() == *w))
            .map(str::to_string)
            .or_else(|| session.outputs().first().map(|o| o.name().to_string()))
            .context("the reranker's graph has no outputs")?;
        let width = session.outputs().iter().find(|o| o.name() == output).and_then(|o| match o.dtype() {
            ValueType::Tensor { shape, .. } => shape.last().copied().filter(|&d| d > 0).map(|d| d as usize),
            _ => None,
        });
        let kind = match (opts.kind, width) {
            (Some(kind), _) => kind,
            (None, Some(1)) => Kind::CrossEncoder,
            (None, _) => Kind::YesNo,
        };
        let id_of = |token: &str| {
            tok.token_to_id(token).with_context(|| format!("the reranker's tokenizer has no token {token:?}"))
        };
        let (columns, prefix, suffix, pad_id) = match kind {
            Kind::YesNo => {
                let (no, yes) = (id_of("no")?, id_of("yes")?);
                let columns = match width {
                    Some(2) => (0, 1),
                    Some(w) if w <= yes.max(no) as usize => bail!(
                        "the reranker {}'s output `{output}` is {w} wide: neither [no, yes] nor the vocabulary",
                        opts.id
                    ),
                    _ => (no as usize, yes as usize),
                };
                let encode = |text: &str| -> Result<Vec<u32>> {
                    Ok(tok.encode(text, false).map_err(|e| anyhow!("tokenizing the prompt: {e}"))?.get_ids().to_vec())
                };
                let pad = tok.token_to_id("<|endoftext|>").unwrap_or(0);
                (columns, encode(QWEN3_PREFIX)?, encode(QWEN3_SUFFIX)?, pad)
            }
            Kind::CrossEncoder => {
                if width.is_some_and(|w| w != 1) {
                    bail!(
                        "the cross-encoder {}'s output `{output}` has {} scores a pair, not one",
                        opts.id,
                        width.unwrap()
                    );
                }
                let pad = tok.get_padding().map(|p| p.pad_id).or_else(|| tok.token_to_id("[PAD]")).unwrap_or(0);
                ((0, 0), Vec::new(), Vec::new(), pad)
            }
        };
        let max_tokens = opts.max_tokens.max(prefix.len() + suffix.len() + 8);
        match kind {
            Kind::YesNo => {
                tok.with_truncation(None).map_err(|e| anyhow!("tokenizer truncation: {e}"))?;
            }
            Kind::CrossEncoder => {
                tok.with_truncation(Some(TruncationParams {
                    max_length: max_tokens,
                    strategy: TruncationStrategy::LongestFirst,
                    direction: TruncationDirection::Right,
                    stride: 0,
                }))
                .map_err(|e| anyhow!("tokenizer truncation: {e}"))?;
            }
        }
        Ok(LocalReranker {
            id: opts.id.clone(),
            kind,
            session,
            tokenizer: tok,
            placement,
            output,
            columns,
            prefix,
            suffix,
            instruction: opts.instruction.clone().unwrap_or_else(|| DEFAULT_INSTRUCTION.to_string()),
            pad_id,
            max_tokens,
            // A whole-vocabulary output is 600 KB a token: smaller batches.
            batch_tokens: if kind == Kind::YesNo && width != Some(2) {
                opts.batch_tokens.min(512)
            } else {
                opts.batch_tokens
            }
            .max(1),
        })
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Where it runs.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// The ids the model reads for a pair (prompt included, cut to the model's length).
    pub fn token_ids(&self, query: &str, document: &str) -> Result<Vec<u32>> {
        Ok(self.pair(query, document)?.ids)
    }

    fn pair(&self, query: &str, document: &str) -> Result<Pair> {
        match self.kind {
            Kind::YesNo => {
                let body = format!("<Instruct>: {}\n<Query>: {query}\n<Document>: {document}", self.instruction);
                let encoded = self.tokenizer.encode(body, true).map_err(|e| anyhow!("tokenizing a pair: {e}"))?;
                let room = self.max_tokens - self.prefix.len() - self.suffix.len();
                let body = &encoded.get_ids()[..encoded.get_ids().len().min(room)];
                let ids: Vec<u32> = [&self.prefix[..], body, &self.suffix[..]].concat();
                Ok(Pair { types: vec![0; ids.len()], ids })
            }
            Kind::CrossEncoder => {
                let encoded =
                    self.tokenizer.encode((query, document), true).map_err(|e| anyhow!("tokenizing a pair: {e}"))?;
                Ok(Pair { ids: encoded.get_ids().to_vec(), types: encoded.get_type_ids().to_vec() })
            }
        }
    }

    /// Scores one batch of pairs (decoders padded on the left, encoders on the right).
    fn run(&mut self, pairs: &[&Pair]) -> Result<Vec<f32>> {
        let side = if self.kind == Kind::YesNo { PadSide::Left } else { PadSide::Right };
        let rows: Vec<&[u32]> = pairs.iter().map(|p| p.ids.as_slice()).collect();
        let padded = batch::pad(&rows, self.pad_id, side);
        let shape = [padded.rows as i64, padded.width as i64];
        let mut feeds: Vec<(String, SessionInputValue)> = Vec::new();
        for input in self.session.inputs() {
            let name = input.name();
            let value: SessionInputValue = match name {
                "input_ids" => Tensor::from_array((shape, padded.ids.clone()))?.into(),
                "attention_mask" => Tensor::from_array((shape, padded.mask.clone()))?.into(),
                "position_ids" => Tensor::from_array((shape, padded.positions()))?.into(),
                "token_type_ids" => {
                    let mut types = vec![0i64; padded.ids.len()];
                    for (r, pair) in pairs.iter().enumerate() {
                        for (c, &t) in pair.types.iter().enumerate() {
                            types[r * padded.width + c] = t as i64;
                        }
                    }
                    Tensor::from_array((shape, types))?.into()
                }
                n if n.starts_with("past_key_values") => empty_past(input.dtype(), padded.rows, n)?.into(),
                other => bail!("the reranker's input `{other}` is not one qsearch knows how to fill"),
            };
            feeds.push((name.to_string(), value));
        }
        let outputs = self.session.run(feeds)?;
        let value = &outputs[self.output.as_str()];
        let (shape, data): (Vec<i64>, Vec<f32>) = match value.try_extract_tensor::<f32>() {
            Ok((shape, data)) => (shape.to_vec(), data.to_vec()),
            Err(_) => {
                let (shape, data) = value.try_extract_tensor::<half::f16>()?;
                (shape.to_vec(), data.iter().map(|x| x.to_f32()).collect())
            }
        };
        let width = *shape.last().context("the reranker's output is a scalar")? as usize;
        // The last position of each row: a [rows, seq, width] output is read at seq - 1 (left
        // padding puts every row's last token there); [rows, width] is one per row already.
        let row = |r: usize| -> Result<&[f32]> {
            let at = match shape.len() {
                3 => (r * shape[1] as usize + shape[1] as usize - 1) * width,
                2 => r * width,
                _ => bail!("the reranker's output `{}` has shape {shape:?}", self.output),
            };
            data.get(at..at + width).context("the reranker's output is short")
        };
        (0..pairs.len())
            .map(|r| {
                let v = row(r)?;
                Ok(match self.kind {
                    Kind::YesNo => {
                        let (no, yes) = (v[self.columns.0] as f64, v[self.columns.1] as f64);
                        // softmax([no, yes])[1]
                        (1.0 / (1.0 + (no - yes).exp())) as f32
                    }
                    Kind::CrossEncoder => v[0],
                })
            })
            .collect()
    }
}

impl Reranker for LocalReranker {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn score(&mut self, query: &str, documents: &[&str]) -> Result<Vec<f32>> {
        let pairs = documents.iter().map(|d| self.pair(query, d)).collect::<Result<Vec<_>>>()?;
        let lens: Vec<usize> = pairs.iter().map(|p| p.ids.len()).collect();
        let mut scores = vec![0f32; pairs.len()];
        for group in batch::plan(&lens, self.batch_tokens, 64) {
            let batch: Vec<&Pair> = group.iter().map(|&i| &pairs[i]).collect();
            for (&i, s) in group.iter().zip(self.run(&batch)?) {
                scores[i] = s;
            }
        }
        Ok(scores)
    }
}

/// A reranker in a folder the user named: its graph (`model.onnx`, or `onnx/model.onnx`) and its
/// `tokenizer.json`.
pub fn folder_files(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let model = ["model.onnx", "onnx/model.onnx", "model_quantized.onnx", "onnx/model_quantized.onnx"]
        .iter()
        .map(|p| dir.join(p))
        .find(|p| p.is_file())
        .with_context(|| format!("the reranker folder {} has no model.onnx (nor onnx/model.onnx)", dir.display()))?;
    let tokenizer = dir.join("tokenizer.json");
    if !tokenizer.is_file() {
        bail!("the reranker folder {} has no tokenizer.json", dir.display());
    }
    Ok((model, tokenizer))
}

/// What loading a reranker by its name needs besides the name.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    /// Where a catalog reranker's files are looked for (`user_dir`: `--model-dir`), and fetched.
    pub sources: crate::models::source::Sources,
    pub ort_lib: Option<PathBuf>,
    pub device: Device,
    /// Threads of ONNX Runtime (None: as many as the machine has).
    pub threads: Option<usize>,
}

/// A reranker on this machine by the name the user gave it: a folder holding its graph and its
/// tokenizer, or a reranker of the catalog (its id or an alias: `qwen3-reranker`), whose files
/// are found (or fetched) as a model's are.
pub fn open(named: &str, setup: &Setup, on: &mut dyn FnMut(crate::models::source::Event)) -> Result<LocalReranker> {
    use crate::models::catalog::{self, Role};
    use crate::models::source::{self, Event};
    let mut opts = LocalOptions::new(named);
    opts.device = setup.device;
    if let Some(threads) = setup.threads {
        opts.threads = threads;
    }
    let dir = Path::new(named);
    let (model, tokenizer) = if dir.is_dir() {
        folder_files(dir)?
    } else if let Some(spec) = catalog::find_reranker(named) {
        let files = source::resolve(&spec.as_model(), &setup.sources, on).with_context(|| {
            let paths: Vec<&str> = spec.files.iter().map(|f| f.path.as_str()).collect();
            format!(
                "the reranker {} is not on this machine (from {}: {}); put those files in a folder and \
                 pass --reranker FOLDER",
                spec.id,
                spec.hf_repo,
                paths.join(", ")
            )
        })?;
        opts = LocalOptions {
            id: spec.id.clone(),
            kind: Some(spec.kind),
            instruction: spec.instruction.clone(),
            max_tokens: spec.max_tokens,
            ..opts
        };
        (files.path(Role::Model).to_path_buf(), files.path(Role::Tokenizer).to_path_buf())
    } else {
        let known: Vec<String> = catalog::rerankers().into_iter().map(|r| r.id).collect();
        bail!(
            "unknown reranker `{named}`: known rerankers are {}; or a folder with model.onnx and tokenizer.json; \
             or openai:NAME, a reranker on a server that speaks /rerank",
            known.join(", ")
        )
    };
    let model = if opts.kind == Some(Kind::CrossEncoder) { model } else { prepared(model, &tokenizer, on) };
    let runtime = crate::runtime::get(setup.ort_lib.as_deref(), &mut |m| on(Event::Message(m)))?;
    LocalReranker::load(runtime, &model, &tokenizer, &opts)
}

/// The export with its output projection cut to the columns of "no" and "yes"
/// ([`super::prepare`]) when it has the whole vocabulary; as it is when it has two already, or
/// when that cannot be done (said through `on`).
fn prepared(model: PathBuf, tokenizer: &Path, on: &mut dyn FnMut(crate::models::source::Event)) -> PathBuf {
    use crate::models::source::Event;
    let ids = Tokenizer::from_file(tokenizer).ok().and_then(|t| Some((t.token_to_id("no")?, t.token_to_id("yes")?)));
    let Some((no, yes)) = ids else { return model };
    match super::prepare::two_columns(&model, &crate::paths::prepared_dir(), "logits", no as usize, yes as usize) {
        Ok(Some(cut)) => cut,
        Ok(None) => model,
        Err(e) => {
            on(Event::Message(&format!("the reranker runs with its whole output projection, slower: {e:#}")));
            model
        }
    }
}

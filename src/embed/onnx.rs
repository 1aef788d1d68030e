//! An [`Embedder`] over an ONNX graph: tokenise with the model's recipe, batch by tokens, build the
//! feeds from what the session declares, run, pool, normalise.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use ort::session::builder::PrepackedWeights;
use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions, Session, SessionInputValue};
use ort::value::{DynValue, Tensor, TensorElementType, ValueType};
use tokenizers::Tokenizer;

use super::batch::{self, PadSide, Padded};
use super::device::{self, Device, Placement};
use super::fixed::{self, Fixed};
use super::placement::{self, NodePlacement};
use super::pool;
use super::recipe::Recipe;
use super::table::Table;
use super::{Embedded, Embedder, InputKind};
use crate::models::catalog::{Family, ModelSpec, Pooling, Role};
use crate::models::prepare::{self, Bucket, EMBEDS_INPUT, TableType, Target};
use crate::models::source::ModelFiles;
use crate::runtime::Runtime;

#[derive(Debug, Clone)]
pub struct Options {
    pub device: Device,
    /// Matryoshka dimensions (<= the model's); `None` keeps them all.
    pub dims: Option<usize>,
    /// Cap on input tokens (<= the model's maximum).
    pub max_tokens: Option<usize>,
    /// Query task for instruction-following models.
    pub task: Option<String>,
    /// Padded tokens per run (rows x longest row); `None`: the device's ([`device::Profile`]).
    pub batch_tokens: Option<usize>,
    pub threads: usize,
    /// Run a decoder export through the preparation step first (`models::prepare`).
    pub prepare: bool,
    /// The preparation to run whatever the device (tests, benchmarks); `None`: the device's
    /// ([`device::Profile`]).
    pub graph: Option<Target>,
    /// What this process will mostly embed: its graph is loaded at once, the other one (prepared
    /// models have one for queries) at first use.
    pub purpose: InputKind,
    /// Where prepared graphs are kept (`None`: the data directory's `prepared/`).
    pub prepared_dir: Option<PathBuf>,
    /// Record where ONNX Runtime runs the first graph's nodes ([`OnnxEmbedder::placement`]):
    /// its profile is written under this prefix until the placement is read.
    pub profile: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            device: Device::Auto,
            dims: None,
            max_tokens: None,
            task: None,
            batch_tokens: None,
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            prepare: true,
            graph: None,
            purpose: InputKind::Document,
            prepared_dir: None,
            profile: None,
        }
    }
}

pub struct OnnxEmbedder {
    /// The slot of the graph loaded first (the one whose placement is recorded).
    first: usize,
    /// Seconds creating the first session took (graph optimisation, a provider's compilation).
    load_secs: f64,
    spec: ModelSpec,
    /// `[documents, queries]`; one graph serves both unless the model was prepared with a
    /// query graph that continues from cached keys and values. Created at first use.
    sessions: [Option<Session>; 2],
    models: [std::path::PathBuf; 2],
    /// The fixed-shape graphs (CoreML preparation), in place of `sessions`.
    fixed: Option<Fixed>,
    /// Shared by the two sessions, so that the packed weights are in memory once.
    prepacked: PrepackedWeights,
    runtime: &'static Runtime,
    options: Options,
    tokenizer: Tokenizer,
    recipe: Recipe,
    hidden: usize,
    dims: usize,
    output: String,
    /// Asks only for the output we pool (not the `present.*` key/value tensors).
    run_options: RunOptions<HasSelectedOutputs>,
    device: Placement,
    batch_tokens: usize,
    /// The token table, when the prepared graph takes `inputs_embeds`.
    table: Option<Table>,
    prepared: Option<prepare::Prepared>,
    /// The query instruction's keys and values, once computed (prepared graphs that continue).
    prefix: Prefix,
    /// Queries that reused the instruction's keys and values (for tests and benchmarks).
    prefix_hits: usize,
}

/// The part every query shares (`Instruct: {task}\nQuery`), run once; each query then runs only
/// its own tokens, continuing from these keys and values. Causal attention makes this exact: the
/// instruction's keys and values do not depend on what follows it.
enum Prefix {
    Unavailable,
    NotYet { ids: Vec<u32> },
    Ready(Cached),
}

struct Cached {
    ids: Vec<u32>,
    /// `past_key_values.*` input name -> the prefix run's `present.*` value.
    past: Vec<(String, DynValue)>,
}

impl OnnxEmbedder {
    pub fn load(runtime: &'static Runtime, files: &ModelFiles, opts: &Options) -> Result<Self> {
        Self::load_with(runtime, files, opts, &mut |_| {})
    }

    /// As [`load`](Self::load); `on` hears about the preparation step and anything it could not do.
    pub fn load_with(
        runtime: &'static Runtime,
        files: &ModelFiles,
        opts: &Options,
        on: &mut dyn FnMut(&str),
    ) -> Result<Self> {
        let spec = files.spec.clone();
        let tokenizer = load_tokenizer(files.path(Role::Tokenizer))?;
        let target = opts.graph.unwrap_or_else(|| device::profile(opts.device).target);
        let prepared = prepared_graphs(files, opts, target, on);
        let right_padding = prepared.as_ref().is_some_and(|p| p.manifest.right_padding());
        let fixed = prepared.as_ref().map(|p| p.buckets()).filter(|b| !b.is_empty()).map(Fixed::new);
        let max_tokens = opts.max_tokens.unwrap_or(spec.max_tokens).min(spec.max_tokens).max(2);
        // Fixed shapes hold texts up to their longest bucket.
        let max_tokens = fixed.as_ref().map_or(max_tokens, |f| max_tokens.min(f.longest()));
        let recipe = Recipe::new(&spec, &tokenizer, opts.task.as_deref(), max_tokens, right_padding)?;
        let model = prepared.as_ref().map_or_else(|| files.path(Role::Model).to_path_buf(), |p| p.model());
        let table = match prepared.as_ref().and_then(|p| Some((p.table()?, p.manifest.table.clone()?))) {
            Some((path, spec)) => Some(Table::open(&path, &spec)?),
            None => None,
        };
        let query_model = prepared.as_ref().and_then(|p| p.continue_model()).unwrap_or_else(|| model.clone());
        let models = [model, query_model];
        let first = slot(&models, opts.purpose);
        let prepacked = PrepackedWeights::new();
        let first_graph = match &fixed {
            Some(f) => f.first().context("no fixed-shape graph")?.1.to_path_buf(),
            None => models[first].clone(),
        };
        let started = std::time::Instant::now();
        let spin = spin(opts.purpose, first);
        let (session, device) = device::session(
            runtime,
            &first_graph,
            opts.device,
            opts.threads,
            spin,
            &prepacked,
            opts.profile.as_deref(),
        )?;
        let load_secs = started.elapsed().as_secs_f64();
        if device.fallback.is_some() && prepared.is_some() && opts.graph.is_none() && target != Target::Cpu {
            // The accelerator could not be used: the CPU runs its own graph, not the one prepared
            // for the accelerator, and the placement still says why.
            drop(session);
            let mut cpu = Self::load_with(runtime, files, &Options { device: Device::Cpu, ..opts.clone() }, on)?;
            cpu.device = device;
            return Ok(cpu);
        }
        let prefix = match (&prepared, &recipe.query_template) {
            (Some(p), Some(_)) if p.manifest.continues() => {
                // The instruction with an empty query, less the end token and the last real
                // token (BPE may merge `:` with the query's first word).
                let (mut ids, _) = recipe.ids(&tokenizer, &recipe.format("", InputKind::Query))?;
                ids.truncate(ids.len().saturating_sub(2));
                if ids.len() >= 2 { Prefix::NotYet { ids } } else { Prefix::Unavailable }
            }
            _ => Prefix::Unavailable,
        };
        let output = pick_output(&session)?;
        let hidden = output_width(&session, &output).unwrap_or(spec.dims);
        let dims = match opts.dims {
            Some(d) if d == 0 || d > hidden => bail!("--dims must be between 1 and {hidden} for {}", spec.id),
            Some(d) => d,
            None => hidden,
        };
        let run_options = RunOptions::new()?.with_outputs(OutputSelector::no_default().with(output.clone()));
        let batch_tokens = opts.batch_tokens.unwrap_or(device.on.profile().batch_tokens);
        let (sessions, fixed) = match fixed {
            Some(mut f) => {
                let (bucket, _) = f.first().expect("checked at load");
                f.put(bucket, session);
                ([None, None], Some(f))
            }
            None if first == 0 => ([Some(session), None], None),
            None => ([None, Some(session)], None),
        };
        Ok(OnnxEmbedder {
            spec,
            sessions,
            fixed,
            models,
            prepacked,
            runtime,
            options: opts.clone(),
            tokenizer,
            recipe,
            hidden,
            dims,
            output,
            run_options,
            device,
            batch_tokens,
            table,
            prepared,
            prefix,
            prefix_hits: 0,
            first,
            load_secs,
        })
    }

    /// Where ONNX Runtime ran the first graph's nodes, from its own profile of the runs so far
    /// (at least one embedding must have run), and how long creating its session took. Profiling
    /// ends here: `None` when it was not asked for ([`Options::profile`]) or already read.
    fn read_placement(&mut self) -> Result<Option<NodePlacement>> {
        if self.options.profile.take().is_none() {
            return Ok(None);
        }
        let file = match self.fixed.as_mut() {
            Some(fixed) => {
                let (bucket, _) = fixed.first().context("no fixed-shape graph")?;
                let mut session = fixed.take(bucket, &mut |_| bail!("the first graph's session is gone"))?;
                let file = session.end_profiling();
                fixed.put(bucket, session);
                file?
            }
            None => self.sessions[self.first].as_mut().context("the first graph's session is gone")?.end_profiling()?,
        };
        let profile = std::fs::read_to_string(&file).with_context(|| format!("cannot read the profile {file}"));
        let _ = std::fs::remove_file(&file);
        let providers = placement::from_profile(&profile?)?;
        Ok(Some(NodePlacement { providers, load_secs: self.load_secs }))
    }

    /// The ids the model sees for a text: instruction or prefix, special tokens, truncation.
    pub fn token_ids(&self, text: &str, kind: InputKind) -> Result<Vec<u32>> {
        Ok(self.recipe.ids(&self.tokenizer, &self.recipe.format(text, kind))?.0)
    }

    /// Padded tokens per model run from now on.
    pub fn set_batch_tokens(&mut self, batch_tokens: usize) {
        self.batch_tokens = batch_tokens.max(1);
    }

    /// What the preparation step made of the export, if it ran.
    pub fn prepared(&self) -> Option<&prepare::Prepared> {
        self.prepared.as_ref()
    }

    fn embeds(&self, padded: &Padded) -> Result<DynValue> {
        let table = self.table.as_ref().context("the model takes inputs_embeds but has no token table")?;
        let shape = [padded.rows as i64, padded.width as i64, table.cols() as i64];
        Ok(match table.feed() {
            TableType::F16 => Tensor::from_array((shape, table.gather_f16(&padded.ids)?))?.into_dyn(),
            _ => Tensor::from_array((shape, table.gather_f32(&padded.ids)?))?.into_dyn(),
        })
    }

    /// How many queries reused the instruction's keys and values.
    pub fn prefix_hits(&self) -> usize {
        self.prefix_hits
    }

    /// The session for `slot` (0 documents, 1 queries), created now if needed.
    fn session(&mut self, slot: usize) -> Result<&mut Session> {
        if self.sessions[slot].is_none() {
            let Options { device, threads, purpose, .. } = self.options;
            let spin = spin(purpose, slot);
            let (session, _) =
                device::session(self.runtime, &self.models[slot], device, threads, spin, &self.prepacked, None)?;
            self.sessions[slot] = Some(session);
        }
        Ok(self.sessions[slot].as_mut().expect("just made"))
    }

    /// Feeds for a batch; with `past`, the batch (one row, no padding) continues after it.
    fn feeds<'a>(
        &self,
        session: &Session,
        padded: &Padded,
        past: Option<&'a Cached>,
    ) -> Result<Vec<(String, SessionInputValue<'a>)>> {
        let mut feeds: Vec<(String, SessionInputValue<'a>)> = Vec::new();
        let shape = [padded.rows as i64, padded.width as i64];
        let offset = past.map_or(0, |p| p.ids.len());
        for input in session.inputs() {
            let name = input.name();
            let value: SessionInputValue<'a> = match name {
                "input_ids" => Tensor::from_array((shape, padded.ids.clone()))?.into(),
                "attention_mask" if offset > 0 => {
                    let width = offset + padded.width;
                    Tensor::from_array(([1, width as i64], vec![1i64; width]))?.into()
                }
                "attention_mask" => Tensor::from_array((shape, padded.mask.clone()))?.into(),
                "position_ids" => {
                    let positions = padded.positions().into_iter().map(|p| p + offset as i64).collect::<Vec<_>>();
                    Tensor::from_array((shape, positions))?.into()
                }
                EMBEDS_INPUT => self.embeds(padded)?.into(),
                "token_type_ids" => Tensor::from_array((shape, vec![0i64; padded.ids.len()]))?.into(),
                n if n.starts_with("past_key_values") => match past {
                    Some(p) => {
                        let (_, v) = p.past.iter().find(|(k, _)| k == n).context("no cached value for a past input")?;
                        v.into()
                    }
                    None => empty_past(input.dtype(), padded.rows, n)?.into(),
                },
                other => bail!("model input `{other}` is not one qsearch knows how to fill"),
            };
            feeds.push((name.to_string(), value));
        }
        Ok(feeds)
    }

    fn run_batch(&mut self, padded: &Padded, kind: InputKind) -> Result<Vec<Vec<f32>>> {
        let slot = slot(&self.models, kind);
        self.session(slot)?;
        let session = self.sessions[slot].as_ref().expect("made above");
        let feeds = self.feeds(session, padded, None)?;
        let session = self.sessions[slot].as_mut().expect("made above");
        let outputs = session.run_with_options(feeds, &self.run_options)?;
        pool_output(&outputs[self.output.as_str()], padded, &self.output, self.recipe.pooling)
    }

    /// One run of a fixed-shape graph; `padded` has the bucket's exact shape.
    fn run_fixed(&mut self, bucket: Bucket, padded: &Padded) -> Result<Vec<Vec<f32>>> {
        let Options { device, threads, purpose, .. } = self.options;
        let (runtime, prepacked) = (self.runtime, &self.prepacked);
        let fixed = self.fixed.as_mut().context("no fixed-shape graphs")?;
        let spin = spin(purpose, 0);
        let mut session = fixed
            .take(bucket, &mut |path| Ok(device::session(runtime, path, device, threads, spin, prepacked, None)?.0))?;
        let result = self.feeds(&session, padded, None).and_then(|feeds| {
            let outputs = session.run_with_options(feeds, &self.run_options)?;
            pool_output(&outputs[self.output.as_str()], padded, &self.output, self.recipe.pooling)
        });
        self.fixed.as_mut().expect("taken from it").put(bucket, session);
        result
    }

    /// A query's vector, continuing from the instruction's cached keys and values; `None` when
    /// the query does not start with the cached tokens (it then runs whole).
    fn run_continued(&mut self, ids: &[u32]) -> Result<Option<Vec<f32>>> {
        if let Prefix::NotYet { ids: prefix } = &self.prefix {
            let prefix = prefix.clone();
            self.prefix = match self.run_prefix(&prefix) {
                Ok(past) => Prefix::Ready(Cached { ids: prefix, past }),
                Err(e) => {
                    tracing::warn!("query instruction not cached, queries run whole: {e:#}");
                    Prefix::Unavailable
                }
            };
        }
        let Prefix::Ready(cached) = &self.prefix else { return Ok(None) };
        if ids.len() <= cached.ids.len() || !ids.starts_with(&cached.ids) {
            return Ok(None);
        }
        let rest = &ids[cached.ids.len()..];
        let padded = batch::pad(&[rest], self.recipe.pad_id, PadSide::Right);
        let feeds = self.feeds(self.sessions[1].as_ref().context("no query session")?, &padded, Some(cached))?;
        let session = self.sessions[1].as_mut().expect("made for the prefix");
        let outputs = session.run_with_options(feeds, &self.run_options)?;
        let mut pooled = pool_output(&outputs[self.output.as_str()], &padded, &self.output, self.recipe.pooling)?;
        self.prefix_hits += 1;
        Ok(pooled.pop())
    }

    /// Runs the instruction alone and keeps its `present.*` outputs as the next runs' past.
    fn run_prefix(&mut self, ids: &[u32]) -> Result<Vec<(String, DynValue)>> {
        let padded = batch::pad(&[ids], self.recipe.pad_id, PadSide::Right);
        // Each `past_key_values.*` input is fed from the `present.*` output of the same name;
        // one missing makes the run below fail, and queries then run whole.
        let pairs: Vec<(String, String)> = self
            .session(1)?
            .inputs()
            .iter()
            .filter_map(|i| {
                i.name().strip_prefix("past_key_values.").map(|rest| (i.name().to_string(), format!("present.{rest}")))
            })
            .collect();
        if pairs.is_empty() {
            bail!("the query graph takes no past keys and values");
        }
        let selector = pairs.iter().fold(OutputSelector::no_default(), |s, (_, out)| s.with(out.clone()));
        let options = RunOptions::new()?.with_outputs(selector);
        let feeds = self.feeds(self.sessions[1].as_ref().expect("made above"), &padded, None)?;
        let session = self.sessions[1].as_mut().expect("made above");
        let mut outputs = session.run_with_options(feeds, &options)?;
        pairs
            .into_iter()
            .map(|(input, output)| Ok((input, outputs.remove(&output).with_context(|| format!("no output {output}"))?)))
            .collect()
    }
}

/// The export rewritten for `target` (a Qwen3 export, when preparing is on), under the
/// options' prepared folder; `None` runs the export as it is (said through `on` when preparing
/// failed).
fn prepared_graphs(
    files: &ModelFiles,
    opts: &Options,
    target: Target,
    on: &mut dyn FnMut(&str),
) -> Option<prepare::Prepared> {
    if !opts.prepare || files.spec.family != Family::Qwen3 {
        return None;
    }
    let root = opts.prepared_dir.clone().unwrap_or_else(crate::paths::prepared_dir);
    match prepare::prepared(files.path(Role::Model), &root, target, on) {
        Ok(p) => Some(p),
        Err(e) => {
            on(&format!("could not prepare the model ({e:#}); running the export as it is, slower"));
            None
        }
    }
}

/// Which session serves `kind`: the query graph when there is one.
fn slot(models: &[std::path::PathBuf; 2], kind: InputKind) -> usize {
    usize::from(kind == InputKind::Query && models[1] != models[0])
}

/// Threads spin between runs only in the documents' session of a process that embeds documents
/// (the indexer); a process that answers queries lets them sleep ([`device::Spin`]).
fn spin(purpose: InputKind, slot: usize) -> device::Spin {
    if purpose == InputKind::Document && slot == 0 { device::Spin::Busy } else { device::Spin::Idle }
}

fn pool_output(value: &DynValue, padded: &Padded, name: &str, pooling: Pooling) -> Result<Vec<Vec<f32>>> {
    fn pool_from<T: Copy + Into<f32>>(
        shape: &[i64],
        data: &[T],
        padded: &Padded,
        pooling: Pooling,
        name: &str,
    ) -> Result<Vec<Vec<f32>>> {
        match shape.len() {
            3 => Ok(pool::pool(data, padded, shape[2] as usize, pooling)),
            2 => Ok(data.chunks(shape[1] as usize).map(|row| row.iter().map(|&x| x.into()).collect()).collect()),
            _ => bail!("model output `{name}` has unexpected shape {shape:?}"),
        }
    }
    if let Ok((shape, data)) = value.try_extract_tensor::<f32>() {
        return pool_from(shape, data, padded, pooling, name);
    }
    // fp16 graphs: only the pooled rows are widened to f32.
    let (shape, data) = value.try_extract_tensor::<half::f16>()?;
    pool_from(shape, data, padded, pooling, name)
}

/// The tokenizer, without padding or truncation: `Recipe::ids` cuts each input itself, and the
/// chunker sizes whole documents with this same tokenizer (`Embedder::tokenizer`), which a
/// truncating one would count short.
fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    let mut tokenizer =
        Tokenizer::from_file(path).map_err(|e| anyhow!("could not read tokenizer {}: {e}", path.display()))?;
    tokenizer.with_padding(None);
    tokenizer.with_truncation(None).map_err(|e| anyhow!("tokenizer truncation: {e}"))?;
    Ok(tokenizer)
}

fn pick_output(session: &Session) -> Result<String> {
    let names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    for wanted in ["sentence_embedding", "last_hidden_state", "token_embeddings"] {
        if names.contains(&wanted) {
            return Ok(wanted.to_string());
        }
    }
    names.first().map(|s| s.to_string()).context("model has no outputs")
}

fn output_width(session: &Session, name: &str) -> Option<usize> {
    let out = session.outputs().iter().find(|o| o.name() == name)?;
    match out.dtype() {
        ValueType::Tensor { shape, .. } => shape.last().filter(|&&d| d > 0).map(|&d| d as usize),
        _ => None,
    }
}

/// A zero-length past key or value input, as an export's `past_key_values.*` declares it.
pub(crate) fn empty_past(dtype: &ValueType, rows: usize, name: &str) -> Result<DynValue> {
    let ValueType::Tensor { ty, shape, .. } = dtype else { bail!("input {name} is not a tensor") };
    if shape.len() != 4 || shape[1] < 1 || shape[3] < 1 {
        bail!("input {name} has shape {shape:?}; expected [batch, heads, past, head_dim]");
    }
    let dims = [rows as i64, shape[1], 0, shape[3]];
    Ok(match ty {
        TensorElementType::Float32 => Tensor::from_array((dims, Vec::<f32>::new()))?.into_dyn(),
        TensorElementType::Float16 => Tensor::from_array((dims, Vec::<half::f16>::new()))?.into_dyn(),
        other => bail!("input {name} has element type {other:?}"),
    })
}

impl Embedder for OnnxEmbedder {
    fn fingerprint(&self) -> String {
        format!("{}:{}d", self.spec.id, self.dims)
    }
    fn model_id(&self) -> &str {
        &self.spec.id
    }
    fn dims(&self) -> usize {
        self.dims
    }
    fn max_tokens(&self) -> usize {
        self.recipe.max_tokens
    }
    fn device(&self) -> Placement {
        self.device.clone()
    }
    fn tokenizer(&self) -> Option<&Tokenizer> {
        Some(&self.tokenizer)
    }

    fn placement(&mut self) -> Result<Option<NodePlacement>> {
        self.read_placement()
    }
    fn embed(&mut self, texts: &[&str], kind: InputKind) -> Result<Embedded> {
        let mut seqs = Vec::with_capacity(texts.len());
        let mut truncated = 0;
        for text in texts {
            let (ids, cut) = self.recipe.ids(&self.tokenizer, &self.recipe.format(text, kind))?;
            truncated += cut as usize;
            seqs.push(ids);
        }
        let lens: Vec<usize> = seqs.iter().map(Vec::len).collect();
        let mut vectors = vec![Vec::new(); texts.len()];
        let mut todo: Vec<usize> = Vec::with_capacity(texts.len());
        for (i, ids) in seqs.iter().enumerate() {
            let continued = if kind == InputKind::Query { self.run_continued(ids)? } else { None };
            match continued {
                Some(v) => vectors[i] = pool::truncate_normalize(v, self.dims),
                None => todo.push(i),
            }
        }
        let todo_lens: Vec<usize> = todo.iter().map(|&i| lens[i]).collect();
        let runs: Vec<(Option<Bucket>, Vec<usize>)> = match &self.fixed {
            Some(f) => fixed::groups(&todo_lens, &f.buckets())?.into_iter().map(|(b, g)| (Some(b), g)).collect(),
            None => batch::plan(&todo_lens, self.batch_tokens, 256).into_iter().map(|g| (None, g)).collect(),
        };
        for (bucket, group) in runs {
            let group: Vec<usize> = group.into_iter().map(|j| todo[j]).collect();
            let rows: Vec<&[u32]> = group.iter().map(|&i| seqs[i].as_slice()).collect();
            let pooled = match bucket {
                Some(b) => self.run_fixed(b, &batch::pad_to(&rows, self.recipe.pad_id, b.rows, b.tokens))?,
                None => self.run_batch(&batch::pad(&rows, self.recipe.pad_id, self.recipe.pad_side), kind)?,
            };
            for (&i, v) in group.iter().zip(pooled) {
                debug_assert_eq!(v.len(), self.hidden);
                vectors[i] = pool::truncate_normalize(v, self.dims);
            }
        }
        Ok(Embedded { vectors, tokens: lens.iter().sum(), truncated })
    }
}

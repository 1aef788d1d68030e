//! The index's model, loaded once in the background and kept warm for every call. Until it is
//! ready, searches are answered with keyword results and a note that says why (as in the TUI).
//! The same warm model embeds documents when the `index` tool refreshes the index: the writer
//! gets a [`Shared`] handle that locks it per batch, so queries interleave with indexing.

use std::sync::{Arc, Mutex};

use anyhow::Result;

use crate::embed::device::Placement;
use crate::embed::load::{self, Settings};
use crate::embed::{Embedded, Embedder, InputKind};
use crate::models::source::Event;
use crate::search::KeywordOnly;
use crate::search::answer::embed_query;
use crate::store::Fingerprint;

/// How the model for an index is chosen (the binary's policy: flags, config, the index's own):
/// the index's fingerprint (none before anything was embedded) and what it will mostly embed.
pub type ModelPlan = Arc<dyn Fn(Option<&Fingerprint>, InputKind) -> Result<Settings> + Send + Sync>;

/// What the model is doing, as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ModelState {
    /// Nothing to load: the index has no embeddings yet.
    None,
    Loading {
        model: String,
    },
    Ready {
        model: String,
        device: String,
        notes: Vec<String>,
    },
    Failed {
        model: String,
        error: String,
    },
}

type Warm = Arc<Mutex<Box<dyn Embedder>>>;

enum Slot {
    Idle,
    Loading { key: String },
    Ready { key: String, embedder: Warm, tokenizer: Option<tokenizers::Tokenizer>, state: ModelState },
    Failed { key: String, state: ModelState },
}

/// The warm model of one index.
pub struct WarmModel {
    plan: ModelPlan,
    slot: Arc<Mutex<Slot>>,
}

/// What a model is loaded for: a different key (another model, other dimensions) reloads.
fn key(fp: &Fingerprint) -> String {
    format!("{}/{}", fp.model, fp.dims)
}

impl WarmModel {
    pub fn new(plan: ModelPlan) -> WarmModel {
        WarmModel { plan, slot: Arc::new(Mutex::new(Slot::Idle)) }
    }

    /// Starts loading the model for `fp` in the background unless it is loaded or loading.
    pub fn ensure(&self, fp: &Fingerprint) {
        let wanted = key(fp);
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        let have = match &*slot {
            Slot::Idle => None,
            Slot::Loading { key } | Slot::Ready { key, .. } | Slot::Failed { key, .. } => Some(key.as_str()),
        };
        if have == Some(wanted.as_str()) {
            return;
        }
        *slot = Slot::Loading { key: wanted.clone() };
        drop(slot);
        let plan = self.plan.clone();
        let fp = fp.clone();
        let target = self.slot.clone();
        let model = fp.model_id().to_string();
        let spawned = std::thread::Builder::new().name("qsearch-mcp-model".into()).spawn(move || {
            let loaded = plan(Some(&fp), InputKind::Query).and_then(|s| load_warm(&s));
            let mut slot = target.lock().unwrap_or_else(|p| p.into_inner());
            // A newer request replaced this one: leave it be.
            if !matches!(&*slot, Slot::Loading { key } if *key == wanted) {
                return;
            }
            *slot = match loaded {
                Ok((embedder, notes)) => {
                    let state = ModelState::Ready {
                        model: embedder.model_id().to_string(),
                        device: embedder.device().to_string(),
                        notes,
                    };
                    let tokenizer = embedder.tokenizer().cloned();
                    Slot::Ready { key: wanted, embedder: Arc::new(Mutex::new(embedder)), tokenizer, state }
                }
                Err(e) => {
                    tracing::warn!("the model {model} could not be loaded: {e:#}");
                    Slot::Failed { key: wanted, state: ModelState::Failed { model, error: format!("{e:#}") } }
                }
            };
        });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the model thread: {e}");
        }
    }

    pub fn state(&self) -> ModelState {
        match &*self.slot.lock().unwrap_or_else(|p| p.into_inner()) {
            Slot::Idle => ModelState::None,
            Slot::Loading { key } => ModelState::Loading { model: key.split('/').next().unwrap_or(key).to_string() },
            Slot::Ready { state, .. } | Slot::Failed { state, .. } => state.clone(),
        }
    }

    /// The query's vector, or why there is none (the search then answers by keyword).
    pub fn query_vector(&self, fp: Option<&Fingerprint>, text: &str) -> Result<Vec<f32>, KeywordOnly> {
        let Some(fp) = fp else { return Err(KeywordOnly::NoModel) };
        self.ensure(fp);
        let warm = match &*self.slot.lock().unwrap_or_else(|p| p.into_inner()) {
            Slot::Ready { embedder, .. } => embedder.clone(),
            Slot::Failed { state: ModelState::Failed { error, .. }, .. } => {
                return Err(KeywordOnly::ModelUnavailable(error.clone()));
            }
            _ => return Err(KeywordOnly::ModelLoading),
        };
        let mut embedder = warm.lock().unwrap_or_else(|p| p.into_inner());
        embed_query(embedder.as_mut(), text).map_err(|e| KeywordOnly::ModelUnavailable(format!("{e:#}")))
    }

    /// An embedder for the index's writer: the warm model when it is ready for `fp`, else one
    /// loaded now for documents.
    pub fn for_writer(&self, fp: Option<&Fingerprint>) -> Result<Box<dyn Embedder>> {
        if let Some(fp) = fp {
            if let Slot::Ready { key: k, embedder, tokenizer, .. } =
                &*self.slot.lock().unwrap_or_else(|p| p.into_inner())
            {
                if *k == key(fp) {
                    return Ok(Box::new(Shared::new(embedder.clone(), tokenizer.clone())));
                }
            }
        }
        let settings = (self.plan)(fp, InputKind::Document)?;
        Ok(load_warm(&settings)?.0)
    }
}

fn load_warm(settings: &Settings) -> Result<(Box<dyn Embedder>, Vec<String>)> {
    let mut on = |event: Event| {
        if let Event::Message(m) = event {
            tracing::info!("model: {m}");
        }
    };
    let loaded = load::load(settings, &mut on)?;
    let mut embedder = loaded.embedder;
    // One query warms the session (and the query graph's cached instruction).
    embed_query(embedder.as_mut(), "warm up")?;
    Ok((embedder, loaded.notes.iter().map(ToString::to_string).collect()))
}

/// The warm model seen as an embedder of its own: each call locks it. What it reports of
/// itself is read once.
pub struct Shared {
    inner: Warm,
    tokenizer: Option<tokenizers::Tokenizer>,
    fingerprint: String,
    model_id: String,
    dims: usize,
    max_tokens: usize,
    device: Placement,
}

impl Shared {
    fn new(inner: Warm, tokenizer: Option<tokenizers::Tokenizer>) -> Shared {
        let (fingerprint, model_id, dims, max_tokens, device) = {
            let e = inner.lock().unwrap_or_else(|p| p.into_inner());
            (e.fingerprint(), e.model_id().to_string(), e.dims(), e.max_tokens(), e.device())
        };
        Shared { inner, tokenizer, fingerprint, model_id, dims, max_tokens, device }
    }
}

impl Embedder for Shared {
    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
    fn model_id(&self) -> &str {
        &self.model_id
    }
    fn dims(&self) -> usize {
        self.dims
    }
    fn max_tokens(&self) -> usize {
        self.max_tokens
    }
    fn device(&self) -> Placement {
        self.device.clone()
    }
    fn tokenizer(&self) -> Option<&tokenizers::Tokenizer> {
        self.tokenizer.as_ref()
    }
    fn embed(&mut self, texts: &[&str], kind: InputKind) -> Result<Embedded> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).embed(texts, kind)
    }
}

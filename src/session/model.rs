//! The index's model for a process that searches: loaded once (in the background, or now when the
//! caller would rather wait), kept warm, and described by one [`ModelState`] that the CLI, the TUI
//! and the MCP server all show. Until it is ready, searches are answered with keyword results and
//! a note that says why. The same warm model embeds documents when the MCP `index` tool refreshes
//! the index: the writer gets a [`Shared`] handle that locks it per batch, so queries interleave
//! with indexing.
//!
//! Another process may hold the same model warm already (`qsearch watch`, `qsearch serve`: the
//! daemon). A [`Remote`] is asked first: while it serves the index's model, queries are embedded
//! there and nothing loads here; when it fails, this process loads its own (once) and goes on.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::embed::device::Placement;
use crate::embed::load::{self, Plan};
use crate::embed::{Embedded, Embedder, InputKind};
use crate::models::reference::ModelRef;
use crate::models::source::Event;
use crate::search::KeywordOnly;
use crate::store::Fingerprint;

/// What the model is doing, as `status`, the TUI's status line and MCP's `status` tool show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ModelState {
    /// Nothing to load: no index, or nothing embedded in it yet.
    None,
    /// Being loaded; `step` is the last thing the loader said (a file being fetched, "warming up").
    Loading {
        model: String,
        step: String,
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

/// Called on every change of [`ModelState`] (from the loading thread).
pub type Listener = Arc<dyn Fn(&ModelState) + Send + Sync>;

type Warm = Arc<WarmCell>;

/// The loaded model, shared by queries and a writer. Queries go first: a writer's batch waits
/// while a query waits, so a query waits at most for the batch the model is on. (A plain mutex
/// let the writer's thread take the model again batch after batch: queries through a watcher's
/// daemon waited for minutes while it embedded a burst of files.)
pub(crate) struct WarmCell {
    embedder: Mutex<Box<dyn Embedder>>,
    queries: AtomicUsize,
}

impl WarmCell {
    fn new(embedder: Box<dyn Embedder>) -> WarmCell {
        WarmCell { embedder: Mutex::new(embedder), queries: AtomicUsize::new(0) }
    }

    /// The model for a query, ahead of any writer's next batch.
    fn for_query(&self) -> MutexGuard<'_, Box<dyn Embedder>> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        let guard = self.embedder.lock().unwrap_or_else(|p| p.into_inner());
        self.queries.fetch_sub(1, Ordering::SeqCst);
        guard
    }

    /// The model for a writer's batch, once no query waits for it.
    fn for_documents(&self) -> MutexGuard<'_, Box<dyn Embedder>> {
        loop {
            while self.queries.load(Ordering::SeqCst) > 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            let guard = self.embedder.lock().unwrap_or_else(|p| p.into_inner());
            if self.queries.load(Ordering::SeqCst) == 0 {
                return guard;
            }
        }
    }
}

/// A warm model in another process (the daemon), asked before this one loads its own.
pub trait Remote: Send + Sync {
    /// Whether it embeds queries for an index whose vectors are `fp` now, and who it is (as
    /// the model's state shows it: "qsearch watch (pid 12)"); asked once, before a load.
    fn serves(&self, fp: &Fingerprint) -> Option<String>;
    /// The query's vector from there. An error (gone, another model, a time-out) means this
    /// process embeds it itself.
    fn query_vector(&self, fp: &Fingerprint, text: &str) -> Result<Vec<f32>>;
}

/// Makes the [`Remote`] of an index folder for a model plan (None: there is none to ask).
pub type RemoteFactory = fn(&Path, &Plan) -> Option<Arc<dyn Remote>>;

static REMOTE: OnceLock<RemoteFactory> = OnceLock::new();

/// Lets every [`Session`](super::Session) this process opens ask `factory`'s remote before
/// loading a model (the binary: the daemon's client, unless `--no-daemon`). Nothing is asked
/// without it (the library's own tests, the daemon itself).
pub fn ask_remote_first(factory: RemoteFactory) {
    let _ = REMOTE.set(factory);
}

/// The factory [`ask_remote_first`] set, if any.
pub fn remote_factory() -> Option<RemoteFactory> {
    REMOTE.get().copied()
}

/// Where the last query vector came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// The daemon's warm model ([`Remote`]).
    Daemon,
    /// This process's own model.
    Process,
}

/// What a model is loaded for: another model or other dimensions load again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    model: ModelRef,
    dims: usize,
}

impl Key {
    fn of(fp: &Fingerprint) -> Key {
        Key { model: fp.model_ref(), dims: fp.dims }
    }
}

enum Slot {
    Idle,
    Loading {
        key: Key,
        step: String,
    },
    Ready {
        key: Key,
        embedder: Warm,
        tokenizer: Box<Option<tokenizers::Tokenizer>>,
        state: ModelState,
    },
    Failed {
        key: Key,
        state: ModelState,
    },
    /// The daemon embeds the queries; `wait`: when it fails, load here on the caller's thread.
    Remote {
        key: Key,
        fp: Box<Fingerprint>,
        who: String,
        remote: Arc<dyn Remote>,
        wait: bool,
    },
}

impl Slot {
    fn key(&self) -> Option<&Key> {
        match self {
            Slot::Idle => None,
            Slot::Loading { key, .. }
            | Slot::Ready { key, .. }
            | Slot::Failed { key, .. }
            | Slot::Remote { key, .. } => Some(key),
        }
    }

    fn state(&self) -> ModelState {
        match self {
            Slot::Idle => ModelState::None,
            Slot::Loading { key, step } => ModelState::Loading { model: key.model.to_string(), step: step.clone() },
            Slot::Ready { state, .. } | Slot::Failed { state, .. } => state.clone(),
            Slot::Remote { key, who, .. } => {
                ModelState::Ready { model: key.model.to_string(), device: who.clone(), notes: Vec::new() }
            }
        }
    }
}

struct Shelf {
    slot: Mutex<Slot>,
    /// Signalled when a load ends (for callers that wait for it).
    settled: Condvar,
    listener: Option<Listener>,
}

impl Shelf {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the slot (when it is still the load for `key`, or `force`) and tells the listener.
    fn set(&self, key: &Key, next: Slot, force: bool) -> bool {
        let mut slot = self.lock();
        let current = matches!(&*slot, Slot::Loading { key: k, .. } if k == key);
        if !current && !force {
            return false;
        }
        *slot = next;
        let state = slot.state();
        drop(slot);
        self.settled.notify_all();
        if let Some(listener) = &self.listener {
            listener(&state);
        }
        true
    }
}

/// The warm model of one index.
pub struct WarmModel {
    plan: Plan,
    shelf: Arc<Shelf>,
    remote: Option<Arc<dyn Remote>>,
    via: Mutex<Option<Via>>,
}

impl WarmModel {
    pub fn new(plan: Plan, listener: Option<Listener>) -> WarmModel {
        let shelf = Shelf { slot: Mutex::new(Slot::Idle), settled: Condvar::new(), listener };
        WarmModel { plan, shelf: Arc::new(shelf), remote: None, via: Mutex::new(None) }
    }

    /// The same, asking `remote` first (see [`Remote`]).
    pub fn with_remote(mut self, remote: Option<Arc<dyn Remote>>) -> WarmModel {
        self.remote = remote;
        self
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Where the last query vector came from (None before any).
    pub fn last_via(&self) -> Option<Via> {
        *self.via.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self) -> ModelState {
        self.shelf.lock().state()
    }

    /// Forgets the model (the index has no embeddings, or is gone).
    pub fn clear(&self) {
        let mut slot = self.shelf.lock();
        if matches!(*slot, Slot::Idle) {
            return;
        }
        *slot = Slot::Idle;
        drop(slot);
        if let Some(listener) = &self.shelf.listener {
            listener(&ModelState::None);
        }
    }

    /// Starts loading the model for `fp` in the background unless it is loaded or loading (or
    /// the daemon serves it).
    pub fn ensure(&self, fp: &Fingerprint) {
        let Some(key) = self.claim(fp) else { return };
        self.spawn_load(key, fp.clone(), self.remote.clone());
    }

    /// Loads the model for `fp` on a thread of its own, after asking `remote` whether it serves it.
    fn spawn_load(&self, key: Key, fp: Fingerprint, remote: Option<Arc<dyn Remote>>) {
        let (plan, shelf) = (self.plan.clone(), self.shelf.clone());
        let spawned = std::thread::Builder::new().name("qsearch-model".into()).spawn(move || {
            if let Some(slot) = remote_slot(remote.as_ref(), &key, &fp, false) {
                shelf.set(&key, slot, false);
                return;
            }
            let mut last: Option<Instant> = None;
            let step = |step: String| shelf.set(&key, Slot::Loading { key: key.clone(), step }, false);
            let loaded = load_warm(
                &plan,
                &fp,
                &mut |event| {
                    if let Some(s) = step_of(event, &mut last) {
                        step(s);
                    }
                },
                &mut || {
                    step("warming up".into());
                },
            );
            shelf.set(&key, settled(&key, loaded), false);
        });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the model thread: {e}");
        }
    }

    /// Loads the model for `fp` on this thread (the CLI, which would rather wait than answer by
    /// keyword), telling `on` what it fetches; nothing happens when it is loaded already. The
    /// outcome is the state's: a model that cannot be loaded leaves [`ModelState::Failed`].
    pub fn load_now(&self, fp: &Fingerprint, on: &mut dyn FnMut(Event)) {
        if let Some(key) = self.claim(fp) {
            if let Some(slot) = remote_slot(self.remote.as_ref(), &key, fp, true) {
                self.shelf.set(&key, slot, false);
                return;
            }
            let loaded = load_warm(&self.plan, fp, on, &mut || {});
            self.shelf.set(&key, settled(&key, loaded), false);
        }
    }

    /// Marks the slot as loading for `fp`, unless it already holds (or loads) that model.
    fn claim(&self, fp: &Fingerprint) -> Option<Key> {
        let key = Key::of(fp);
        let mut slot = self.shelf.lock();
        if slot.key() == Some(&key) {
            return None;
        }
        *slot = Slot::Loading { key: key.clone(), step: "starting".into() };
        let state = slot.state();
        drop(slot);
        if let Some(listener) = &self.shelf.listener {
            listener(&state);
        }
        Some(key)
    }

    /// Waits until a load in progress ends, at most `limit`.
    pub fn wait(&self, limit: Duration) -> ModelState {
        let slot = self.shelf.lock();
        let (slot, _) = self
            .shelf
            .settled
            .wait_timeout_while(slot, limit, |s| matches!(s, Slot::Loading { .. }))
            .unwrap_or_else(|p| p.into_inner());
        slot.state()
    }

    /// The query's vector by the daemon or the model now loaded, or why there is none (the
    /// search then answers by keyword). A daemon that fails costs one load here: on this thread
    /// when the model was loaded with [`WarmModel::load_now`], else in the background (keyword
    /// results meanwhile).
    pub fn query_vector(&self, text: &str) -> Result<Vec<f32>, KeywordOnly> {
        let asked = match &*self.shelf.lock() {
            Slot::Remote { fp, who, remote, wait, .. } => Some((fp.clone(), who.clone(), remote.clone(), *wait)),
            _ => None,
        };
        let Some((fp, who, remote, wait)) = asked else { return self.local_vector(text) };
        match remote.query_vector(&fp, text) {
            Ok(vector) => {
                tracing::debug!("the query was embedded by {who}");
                self.set_via(Via::Daemon);
                Ok(vector)
            }
            Err(e) => {
                tracing::warn!("{who} could not embed the query ({e:#}): loading the model here");
                self.fall_back(&fp, wait);
                self.local_vector(text)
            }
        }
    }

    fn set_via(&self, via: Via) {
        *self.via.lock().unwrap_or_else(|p| p.into_inner()) = Some(via);
    }

    /// The daemon failed: this process loads its own model for `fp` (now when `wait`, else in the
    /// background), and asks the daemon no more.
    fn fall_back(&self, fp: &Fingerprint, wait: bool) {
        let key = Key::of(fp);
        let took = {
            let mut slot = self.shelf.lock();
            let ours = matches!(&*slot, Slot::Remote { key: k, .. } if *k == key);
            if ours {
                *slot = Slot::Loading { key: key.clone(), step: "starting".into() };
            }
            ours
        };
        if !took {
            // Another caller took over already.
            if wait {
                self.wait(Duration::from_secs(24 * 3600));
            }
            return;
        }
        if let Some(listener) = &self.shelf.listener {
            listener(&self.state());
        }
        if wait {
            let loaded = load_warm(&self.plan, fp, &mut |_| {}, &mut || {});
            self.shelf.set(&key, settled(&key, loaded), false);
        } else {
            self.spawn_load(key, fp.clone(), None);
        }
    }

    /// The query's vector by the model loaded here.
    fn local_vector(&self, text: &str) -> Result<Vec<f32>, KeywordOnly> {
        let warm = match &*self.shelf.lock() {
            Slot::Ready { embedder, .. } => embedder.clone(),
            Slot::Failed { state: ModelState::Failed { error, .. }, .. } => {
                return Err(KeywordOnly::ModelUnavailable(error.clone()));
            }
            Slot::Idle => return Err(KeywordOnly::NoModel),
            _ => return Err(KeywordOnly::ModelLoading),
        };
        let mut embedder = warm.for_query();
        let vector = embed_query(embedder.as_mut(), text).map_err(|e| KeywordOnly::ModelUnavailable(format!("{e:#}")));
        drop(embedder);
        if vector.is_ok() {
            self.set_via(Via::Process);
        }
        vector
    }

    /// An embedder for the index's writer: the warm model when it is (or is being) loaded for
    /// `fp` (a load under way is waited for: a second copy would cost as long, and twice the
    /// memory), else one loaded now for documents.
    pub fn for_writer(&self, fp: Option<&Fingerprint>) -> Result<Box<dyn Embedder>> {
        if let Some(fp) = fp {
            let loading = matches!(&*self.shelf.lock(), Slot::Loading { key, .. } if *key == Key::of(fp));
            if loading {
                self.wait(Duration::from_secs(24 * 3600));
            }
            if let Slot::Ready { key, embedder, tokenizer, .. } = &*self.shelf.lock()
                && *key == Key::of(fp)
            {
                return Ok(Box::new(Shared::new(embedder.clone(), tokenizer.as_ref().clone())));
            }
        }
        let settings = self.plan.settings(fp, InputKind::Document)?;
        Ok(load::load(&settings, &mut log_event)?.embedder)
    }
}

/// The slot that says the daemon serves `fp`, when `remote` does.
fn remote_slot(remote: Option<&Arc<dyn Remote>>, key: &Key, fp: &Fingerprint, wait: bool) -> Option<Slot> {
    let remote = remote?;
    let who = remote.serves(fp)?;
    tracing::debug!("queries go to {who}");
    Some(Slot::Remote { key: key.clone(), fp: Box::new(fp.clone()), who, remote: remote.clone(), wait })
}

/// The slot a finished load leaves.
fn settled(key: &Key, loaded: Result<(Box<dyn Embedder>, Vec<String>)>) -> Slot {
    match loaded {
        Ok((embedder, notes)) => {
            let state =
                ModelState::Ready { model: key.model.to_string(), device: embedder.device().to_string(), notes };
            let tokenizer = Box::new(embedder.tokenizer().cloned());
            Slot::Ready { key: key.clone(), embedder: Arc::new(WarmCell::new(embedder)), tokenizer, state }
        }
        Err(e) => {
            tracing::warn!("the model {} could not be loaded: {e:#}", key.model);
            Slot::Failed {
                key: key.clone(),
                state: ModelState::Failed { model: key.model.to_string(), error: format!("{e:#}") },
            }
        }
    }
}

/// What the loader says, as a step to show; byte counts at most every 100 ms.
fn step_of(event: Event, last: &mut Option<Instant>) -> Option<String> {
    match event {
        Event::Message(m) => Some(m.to_string()),
        Event::Bytes { file, done, total } => {
            if last.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) {
                return None;
            }
            *last = Some(Instant::now());
            Some(match total {
                Some(t) if t > 0 => format!("{file} {}%", done * 100 / t),
                _ => format!("{file} {} MB", done / 1_000_000),
            })
        }
    }
}

fn log_event(event: Event) {
    if let Event::Message(m) = event {
        tracing::info!("model: {m}");
    }
}

/// The one loader: the plan's settings for the index, the load (`on` hears what it fetches), and
/// one query that warms the session and the query graph's cached instruction (`warming` is told
/// first).
fn load_warm(
    plan: &Plan,
    fp: &Fingerprint,
    on: &mut dyn FnMut(Event),
    warming: &mut dyn FnMut(),
) -> Result<(Box<dyn Embedder>, Vec<String>)> {
    let settings = plan.settings(Some(fp), InputKind::Query)?;
    let loaded = load::load(&settings, &mut |e| {
        log_event(e);
        on(e)
    })?;
    let mut embedder = loaded.embedder;
    warming();
    embed_query(embedder.as_mut(), "warm up")?;
    Ok((embedder, loaded.notes.iter().map(ToString::to_string).collect()))
}

/// The query's vector, as the index's documents were embedded to be compared with.
pub fn embed_query(embedder: &mut dyn Embedder, text: &str) -> Result<Vec<f32>> {
    let mut embedded = embedder.embed(&[text], InputKind::Query)?;
    embedded.vectors.pop().ok_or_else(|| anyhow::anyhow!("the model returned no vector"))
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
            let e = inner.for_query();
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
    /// About one model batch at a time (the writer asks 64 texts at once, seconds of work), so a
    /// query waits at most for one.
    fn embed(&mut self, texts: &[&str], kind: InputKind) -> Result<Embedded> {
        let mut out = Embedded { vectors: Vec::with_capacity(texts.len()), tokens: 0, truncated: 0 };
        for slice in slices(texts, SLICE_BYTES) {
            let part = self.inner.for_documents().embed(slice, kind)?;
            out.vectors.extend(part.vectors);
            out.tokens += part.tokens;
            out.truncated += part.truncated;
        }
        Ok(out)
    }
}

/// Text a writer's call to the shared model holds it for: about one 512-token batch.
const SLICE_BYTES: usize = 2048;

/// `texts` in runs of at most `max_bytes` (a longer text is a run of its own), in order.
fn slices<'a, 'b>(texts: &'a [&'b str], max_bytes: usize) -> Vec<&'a [&'b str]> {
    let mut runs = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, text) in texts.iter().enumerate() {
        if i > start && bytes + text.len() > max_bytes {
            runs.push(&texts[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += text.len();
    }
    if start < texts.len() {
        runs.push(&texts[start..]);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::slices;

    #[test]
    fn a_writers_texts_go_to_the_model_in_runs_of_about_one_batch() {
        let texts = ["aaaa", "bb", "cccccccc", "d", "ee"];
        let runs = slices(&texts, 6);
        assert_eq!(runs, [&["aaaa", "bb"][..], &["cccccccc"], &["d", "ee"]]);
        assert_eq!(runs.concat(), texts, "every text once, in order");
        assert!(slices(&[], 6).is_empty());
    }
}

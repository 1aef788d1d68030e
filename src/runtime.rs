//! ONNX Runtime, found or installed. qsearch loads the shared library at run time (`ort`'s
//! `load-dynamic`), looking in this order: an explicit path (flag or config), `ORT_DYLIB_PATH`,
//! qsearch's data directory, next to the binary. When none is there it installs the PyPI wheel
//! `onnxruntime` into its data directory with pip.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};
use ort::ep::ExecutionProvider;

use crate::{paths, pip};

pub const ORT_REQUIREMENT: &str = "onnxruntime==1.31.1";

#[cfg(target_os = "macos")]
const LIB_PREFIX: &str = "libonnxruntime";
#[cfg(target_os = "macos")]
const LIB_EXT: &str = ".dylib";
#[cfg(target_os = "windows")]
const LIB_PREFIX: &str = "onnxruntime";
#[cfg(target_os = "windows")]
const LIB_EXT: &str = ".dll";
#[cfg(not(any(target_os = "macos", target_os = "windows")))]
const LIB_PREFIX: &str = "libonnxruntime";
#[cfg(not(any(target_os = "macos", target_os = "windows")))]
const LIB_EXT: &str = ".so";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LibSource {
    Explicit,
    Env,
    DataDir,
    BesideBinary,
    Installed,
}

impl std::fmt::Display for LibSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LibSource::Explicit => "given path",
            LibSource::Env => "ORT_DYLIB_PATH",
            LibSource::DataDir => "qsearch data directory",
            LibSource::BesideBinary => "next to the qsearch binary",
            LibSource::Installed => "installed now with pip",
        })
    }
}

#[derive(Debug, Clone)]
pub struct Located {
    pub path: PathBuf,
    pub source: LibSource,
}

/// Finds the library without installing anything.
pub fn locate(explicit: Option<&Path>) -> Option<Located> {
    if let Some(p) = explicit {
        return Some(Located { path: p.to_path_buf(), source: LibSource::Explicit });
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return Some(Located { path: PathBuf::from(p), source: LibSource::Env });
    }
    if let Some(p) = find_in_pip_tree(&paths::runtime_dir()) {
        return Some(Located { path: p, source: LibSource::DataDir });
    }
    let exe_dir = std::env::current_exe().ok()?.parent()?.to_path_buf();
    find_lib_in(&exe_dir).map(|path| Located { path, source: LibSource::BesideBinary })
}

/// Finds the library, installing it with pip when it is nowhere. `notify` hears what is done.
pub fn locate_or_install(explicit: Option<&Path>, notify: &mut dyn FnMut(&str)) -> Result<Located> {
    if let Some(found) = locate(explicit) {
        return Ok(found);
    }
    let target = paths::runtime_dir().join(pip::folder_name(ORT_REQUIREMENT));
    notify(&format!("ONNX Runtime not found; installing {ORT_REQUIREMENT} from PyPI into {}", target.display()));
    pip::install(ORT_REQUIREMENT, &target).map_err(|e| {
        anyhow!(
            "{e:#}\n\nqsearch needs the ONNX Runtime shared library (1.31 or newer). Get it with\n  \
             python3 -m pip install --no-deps --target DIR {ORT_REQUIREMENT}\n\
             then set ORT_DYLIB_PATH=DIR/onnxruntime/capi/{LIB_PREFIX}{LIB_EXT}.<version> or pass --ort-lib"
        )
    })?;
    let path = find_in_pip_tree(&paths::runtime_dir())
        .context("pip installed onnxruntime, but no shared library was found in it")?;
    Ok(Located { path, source: LibSource::Installed })
}

/// Looks under `root/*/onnxruntime/capi/` for the newest library file.
fn find_in_pip_tree(root: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("onnxruntime").join("capi"))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.iter().rev().find_map(|d| find_lib_in(d))
}

fn find_lib_in(dir: &Path) -> Option<PathBuf> {
    let mut libs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            name.starts_with(LIB_PREFIX)
                && name.contains(LIB_EXT)
                && !name.contains("providers")
                && !name.contains("pybind")
        })
        .collect();
    libs.sort();
    libs.pop()
}

/// A loaded ONNX Runtime. The library can be loaded once per process.
pub struct Runtime {
    pub lib: Located,
    pub env: ort::environment::Environment,
}

static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();

/// Loads ONNX Runtime once for the whole process (installing it if needed).
pub fn get(explicit: Option<&Path>, notify: &mut dyn FnMut(&str)) -> Result<&'static Runtime> {
    let loaded = RUNTIME.get_or_init(|| load(explicit, notify).map_err(|e| format!("{e:#}")));
    loaded.as_ref().map_err(|e| anyhow!("{e}"))
}

fn load(explicit: Option<&Path>, notify: &mut dyn FnMut(&str)) -> Result<Runtime> {
    let lib = locate_or_install(explicit, notify)?;
    let builder = ort::init_from(&lib.path).map_err(|e| {
        anyhow!(
            "could not load ONNX Runtime from {} ({}): {e}\n\
             qsearch needs ONNX Runtime 1.31 or newer; remove that file or point ORT_DYLIB_PATH at a newer one",
            lib.path.display(),
            lib.source
        )
    })?;
    let env = builder.with_name("qsearch").build().map_err(|e| anyhow!("ONNX Runtime environment: {e}"))?;
    Ok(Runtime { lib, env })
}

impl Runtime {
    /// The version, from the library's file name (`libonnxruntime.so.1.31.1`) or the wheel's
    /// `onnxruntime-<version>.dist-info` folder; ONNX Runtime checked it is new enough at load.
    pub fn version(&self) -> String {
        let from_name = self.lib.path.file_name().and_then(|n| {
            let n = n.to_string_lossy();
            n.split(['-', '_'])
                .chain(n.split(".so."))
                .map(|p| p.trim_end_matches(".dylib").to_string())
                .find(|p| is_version(p))
        });
        let from_wheel = || {
            let root = self.lib.path.parent()?.parent()?.parent()?;
            std::fs::read_dir(root).ok()?.flatten().find_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                name.strip_prefix("onnxruntime-")?.strip_suffix(".dist-info").map(str::to_string)
            })
        };
        from_name.or_else(from_wheel).unwrap_or_else(|| "1.31 or newer".into())
    }

    /// Execution providers this build of ONNX Runtime was compiled with (of those qsearch uses).
    pub fn providers(&self) -> Vec<&'static str> {
        let mut out = vec!["CPU"];
        if ort::ep::CUDA::is_available().unwrap_or(false) {
            out.push("CUDA");
        }
        if ort::ep::CoreML::is_available().unwrap_or(false) {
            out.push("CoreML");
        }
        out
    }
}

fn is_version(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() >= 2 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

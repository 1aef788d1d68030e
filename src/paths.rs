//! Where qsearch keeps its state: the data directory (runtime, models, default index) and the
//! config file. Environment variables move each.

use std::path::PathBuf;
use std::sync::OnceLock;

static DATA_DIR_OVERRIDE: OnceLock<PathBuf> = OnceLock::new();

/// Fixes the data directory for this process (tests use it; it wins over the environment).
pub fn set_data_dir(dir: PathBuf) -> bool {
    DATA_DIR_OVERRIDE.set(dir).is_ok()
}

/// The override, else `QSEARCH_DATA_DIR`, else the platform's data directory (`~/.local/share/qsearch` on Linux).
pub fn data_dir() -> PathBuf {
    if let Some(dir) = DATA_DIR_OVERRIDE.get() {
        return dir.clone();
    }
    if let Some(dir) = std::env::var_os("QSEARCH_DATA_DIR") {
        return PathBuf::from(dir);
    }
    directories::ProjectDirs::from("", "", "qsearch")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".qsearch"))
}

/// `QSEARCH_CONFIG`, else `config.toml` in the platform's config directory.
pub fn config_file() -> PathBuf {
    if let Some(file) = std::env::var_os("QSEARCH_CONFIG") {
        return PathBuf::from(file);
    }
    directories::ProjectDirs::from("", "", "qsearch")
        .map(|d| d.config_dir().join("config.toml"))
        .unwrap_or_else(|| PathBuf::from(".qsearch/config.toml"))
}

pub fn default_index_dir() -> PathBuf {
    data_dir().join("index")
}

pub fn runtime_dir() -> PathBuf {
    data_dir().join("runtime")
}

pub fn models_dir() -> PathBuf {
    data_dir().join("models")
}

/// Models rewritten by the preparation step (`models::prepare`).
pub fn prepared_dir() -> PathBuf {
    data_dir().join("prepared")
}

pub fn pip_dir() -> PathBuf {
    data_dir().join("pip")
}

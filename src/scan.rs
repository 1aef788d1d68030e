//! Files under a root that qsearch reads: `.gitignore` and `.qsearchignore` respected, hidden
//! files off unless asked, a size cap, symlinks never followed (so nothing outside the root is
//! reached, and loops cannot happen).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::text::kind::{self, Kind};
use crate::util::mtime_ns;

pub const IGNORE_FILE: &str = ".qsearchignore";

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Options {
    pub max_file_bytes: u64,
    pub hidden: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { max_file_bytes: 10 * 1024 * 1024, hidden: false }
    }
}

#[derive(Debug, Clone)]
pub struct Found {
    pub path: PathBuf,
    pub kind: Kind,
    pub size: u64,
    pub mtime_ns: i64,
}

/// Why a file is left out on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    Symlink,
    TooLarge {
        limit_mb: u64,
    },
    /// Found to be binary when read.
    Binary,
    /// Found when read: no text in it, or none qsearch may read.
    NoText(String),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::Symlink => f.write_str("symbolic link (not followed)"),
            Skip::TooLarge { limit_mb } => write!(f, "larger than the {limit_mb} MB limit (max_file_mb)"),
            Skip::Binary => f.write_str("binary content"),
            Skip::NoText(why) => f.write_str(why),
        }
    }
}

#[derive(Debug, Default)]
pub struct Scan {
    pub files: Vec<Found>,
    /// Files left out on purpose, with why.
    pub skipped: Vec<(PathBuf, Skip)>,
    /// Files or folders that could not be read.
    pub errors: Vec<(PathBuf, String)>,
    /// Files of a type qsearch does not read (counted, not listed).
    pub unsupported: usize,
}

/// Some paths under a root, files or folders: where a scan looks when only they changed. It
/// walks from the root down to them, so the ignore files of every folder on the way apply as
/// in a whole scan, and lists only the folders on the way.
#[derive(Debug, Clone, Default)]
pub struct Within {
    /// None inside another.
    paths: BTreeSet<PathBuf>,
}

impl Within {
    pub fn insert(&mut self, path: PathBuf) {
        if self.holds(&path) {
            return;
        }
        let inside: Vec<PathBuf> =
            self.paths.range(path.clone()..).take_while(|p| p.starts_with(&path)).cloned().collect();
        for p in inside {
            self.paths.remove(&p);
        }
        self.paths.insert(path);
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.paths.iter().map(PathBuf::as_path)
    }

    /// `path` is one of the paths or lies inside one.
    pub fn holds(&self, path: &Path) -> bool {
        path.ancestors().any(|a| self.paths.contains(a))
    }

    /// `path` is a folder on the way to one of the paths (or one of them). Paths under a folder
    /// sort together (`Path` compares by component), so the first path from `path` on decides.
    fn leads_to(&self, path: &Path) -> bool {
        self.paths.range(path.to_path_buf()..).next().is_some_and(|p| p.starts_with(path))
    }
}

/// The walk of a root: what [`scan`] reads, and in what order it finds it.
pub fn walker(root: &Path, opts: &Options, within: Option<Within>) -> ignore::WalkBuilder {
    let mut builder = ignore::WalkBuilder::new(root);
    builder
        .hidden(!opts.hidden)
        .follow_links(false)
        .require_git(false)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(true)
        .add_custom_ignore_filename(IGNORE_FILE)
        .filter_entry(move |e| {
            e.file_name() != ".git" && within.as_ref().is_none_or(|w| w.leads_to(e.path()) || w.holds(e.path()))
        });
    builder
}

/// Every file under `root` qsearch reads, or with `within`, those at or under its paths.
pub fn scan(root: &Path, opts: &Options, within: Option<&Within>) -> Scan {
    let mut out = Scan::default();
    for entry in walker(root, opts, within.cloned()).build() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = error_path(&e).unwrap_or_else(|| root.to_path_buf());
                out.errors.push((path, e.to_string()));
                continue;
            }
        };
        let Some(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            continue;
        }
        let path = entry.path();
        if ft.is_symlink() {
            if kind::of(path).is_some() {
                out.skipped.push((path.to_path_buf(), Skip::Symlink));
            }
            continue;
        }
        if !ft.is_file() {
            continue;
        }
        let Some(kind) = kind::of(path) else {
            out.unsupported += 1;
            continue;
        };
        match entry.metadata() {
            Ok(meta) if meta.len() > opts.max_file_bytes => {
                out.skipped.push((path.to_path_buf(), Skip::TooLarge { limit_mb: opts.max_file_bytes / (1024 * 1024) }))
            }
            Ok(meta) => {
                out.files.push(Found { path: path.to_path_buf(), kind, size: meta.len(), mtime_ns: mtime_ns(&meta) })
            }
            Err(e) => out.errors.push((path.to_path_buf(), e.to_string())),
        }
    }
    out.files.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn error_path(e: &ignore::Error) -> Option<PathBuf> {
    match e {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => error_path(err),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_holds_what_is_under_its_paths_and_leads_to_them() {
        let mut w = Within::default();
        for p in ["/r/notes/a.md", "/r/dir", "/r/dir/b.md", "/r/deep/x/y"] {
            w.insert(PathBuf::from(p));
        }
        assert_eq!(
            w.paths().collect::<Vec<_>>(),
            [Path::new("/r/deep/x/y"), Path::new("/r/dir"), Path::new("/r/notes/a.md")]
        );
        w.insert("/r/deep".into());
        assert_eq!(w.len(), 3, "a folder takes the place of the paths inside it");
        assert!(w.holds(Path::new("/r/dir/sub/c.md")));
        assert!(!w.holds(Path::new("/r/dir-old/c.md")), "a name that only starts alike is elsewhere");
        assert!(!w.holds(Path::new("/r/notes")));
        assert!(w.leads_to(Path::new("/r/notes")));
        assert!(w.leads_to(Path::new("/r")));
        assert!(!w.leads_to(Path::new("/r/note")));
        assert!(!w.leads_to(Path::new("/r/other")));
    }
}

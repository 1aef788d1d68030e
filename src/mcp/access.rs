//! Which files an agent may read through the server: only files under the index's registered
//! folders. A path the agent names is refused when it climbs (`..`), when it is absolute and lies
//! elsewhere, or when a symlink leads it out of the folder it starts in. Each refusal has its own
//! wording, so the agent can tell the user what happened. (The engine then also requires the file
//! to be one the index holds, so ignored files, `.env` under a `.gitignore` included, stay unread.)

use std::path::{Component, Path, PathBuf};

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no path given")]
    Empty,
    #[error("`..` is not allowed in paths: name a file under an indexed folder ({0})")]
    ParentDir(String),
    #[error("{0} is outside the indexed folders ({1})")]
    OutsideRoots(String, String),
    #[error("{0} leads outside its indexed folder (to {1}): symlinks out of a folder are not followed")]
    LeadsOutside(String, String),
    #[error("{0} does not exist under the indexed folders ({1})")]
    NotFound(String, String),
    #[error("{0} is not a file")]
    NotAFile(String),
}

/// The real path of `requested` (absolute, or relative to one of `roots`) when it is a file under
/// the root it starts in. `roots` are the index's folders, absolute and canonical.
pub fn resolve(requested: &str, roots: &[PathBuf]) -> Result<PathBuf, Refused> {
    let listed = || roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ");
    let trimmed = requested.trim();
    if trimmed.is_empty() {
        return Err(Refused::Empty);
    }
    let path = Path::new(trimmed);
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(Refused::ParentDir(listed()));
    }
    // Each candidate with the root it must stay in.
    let candidates: Vec<(PathBuf, &PathBuf)> = if path.is_absolute() {
        match roots.iter().find(|r| path.starts_with(r)) {
            Some(root) => vec![(path.to_path_buf(), root)],
            None => return Err(Refused::OutsideRoots(trimmed.to_string(), listed())),
        }
    } else {
        roots.iter().map(|r| (r.join(path), r)).collect()
    };
    let mut escaped = None;
    for (candidate, root) in candidates {
        let Ok(real) = std::fs::canonicalize(&candidate) else { continue };
        if !real.starts_with(root) {
            escaped.get_or_insert(real);
            continue;
        }
        if !real.is_file() {
            return Err(Refused::NotAFile(trimmed.to_string()));
        }
        return Ok(real);
    }
    match escaped {
        Some(real) => Err(Refused::LeadsOutside(trimmed.to_string(), real.display().to_string())),
        None => Err(Refused::NotFound(trimmed.to_string(), listed())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(tmp.path()).unwrap();
        let root = base.join("notes");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.md"), "a").unwrap();
        std::fs::write(base.join("secret.txt"), "s").unwrap();
        (tmp, base, root)
    }

    #[test]
    fn relative_and_absolute_paths_inside_a_root_resolve() {
        let (_tmp, _base, root) = setup();
        let roots = vec![root.clone()];
        assert_eq!(resolve("sub/a.md", &roots).unwrap(), root.join("sub/a.md"));
        assert_eq!(resolve(root.join("sub/a.md").to_str().unwrap(), &roots).unwrap(), root.join("sub/a.md"));
        assert_eq!(resolve("./sub/a.md", &roots).unwrap(), root.join("sub/a.md"));
    }

    #[test]
    fn climbing_absolute_elsewhere_and_missing_files_are_refused() {
        let (_tmp, base, root) = setup();
        let roots = vec![root.clone()];
        assert!(matches!(resolve("../secret.txt", &roots), Err(Refused::ParentDir(_))));
        assert!(matches!(resolve("sub/../../secret.txt", &roots), Err(Refused::ParentDir(_))));
        let elsewhere = base.join("secret.txt");
        assert!(matches!(resolve(elsewhere.to_str().unwrap(), &roots), Err(Refused::OutsideRoots(..))));
        assert!(matches!(resolve("/etc/passwd", &roots), Err(Refused::OutsideRoots(..))));
        assert!(matches!(resolve("nope.md", &roots), Err(Refused::NotFound(..))));
        assert!(matches!(resolve("sub", &roots), Err(Refused::NotAFile(_))));
        assert_eq!(resolve("  ", &roots), Err(Refused::Empty));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_out_of_a_root_are_refused() {
        let (_tmp, base, root) = setup();
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("link.txt")).unwrap();
        std::os::unix::fs::symlink(&base, root.join("up")).unwrap();
        let roots = vec![root.clone()];
        let err = resolve("link.txt", &roots).unwrap_err();
        assert!(matches!(err, Refused::LeadsOutside(..)), "{err}");
        assert!(err.to_string().contains("symlinks out of a folder"), "{err}");
        assert!(matches!(resolve("up/secret.txt", &roots), Err(Refused::LeadsOutside(..))));
        assert!(matches!(resolve(root.join("link.txt").to_str().unwrap(), &roots), Err(Refused::LeadsOutside(..))));
    }
}

//! Names the commit the binary is built from, for `qsearch --version` and `qsearch doctor`: a bug
//! report then says which code it is about. Sets `QSEARCH_COMMIT` (`c7363cb`, `c7363cb-dirty`
//! when tracked files differed from it, or empty), `QSEARCH_FEATURES` (the optional Cargo
//! features built in, space-separated) and `QSEARCH_VERSION` (`0.1.0 (c7363cb), with mcp pdf
//! html tree-sitter`). Outside a git checkout (a package from the registry, no `git`) the commit
//! is the one `cargo package` recorded, or none: the version stands alone before the features.
//! It never fails the build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    // Without this, Cargo would run the script again after any change in the package.
    println!("cargo:rerun-if-changed=build.rs");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| ".".into()));
    let commit = from_git(&dir).or_else(|| from_package(&dir));
    // The optional parts built in (Cargo sets CARGO_FEATURE_<NAME> for each one enabled).
    let features: Vec<&str> = ["mcp", "pdf", "html", "tree-sitter"]
        .into_iter()
        .filter(|f| std::env::var_os(format!("CARGO_FEATURE_{}", f.to_uppercase().replace('-', "_"))).is_some())
        .collect();
    let features = features.join(" ");
    let long = match &commit {
        Some(c) => format!("{version} ({c})"),
        None => version,
    };
    let long =
        if features.is_empty() { format!("{long}, no optional features") } else { format!("{long}, with {features}") };
    println!("cargo:rustc-env=QSEARCH_COMMIT={}", commit.unwrap_or_default());
    println!("cargo:rustc-env=QSEARCH_VERSION={long}");
    println!("cargo:rustc-env=QSEARCH_FEATURES={features}");
}

/// The checkout's commit, with `-dirty` when tracked files differ from it. None when `git` is
/// missing or this crate is not a tracked part of the tree around it (an unpacked package inside
/// another checkout's `target/`).
fn from_git(dir: &Path) -> Option<String> {
    git(dir, &["ls-files", "--error-unmatch", "Cargo.toml"])?;
    let sha = git(dir, &["rev-parse", "--short", "HEAD"])?;
    // Run again when HEAD moves: a checkout (HEAD), a commit (the branch's ref, loose or packed).
    // Only existing paths: Cargo runs a script every time for a path that is missing. The dirty
    // mark is as of that run (edits alone do not run the script again).
    let mut watch = vec![git_path(dir, "HEAD")];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        let loose = git_path(dir, &branch);
        if let Some(parent) = loose.parent() {
            watch.push(parent.to_path_buf());
        }
        watch.push(loose);
        watch.push(git_path(dir, "packed-refs"));
    }
    for path in watch.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let dirty = git(dir, &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{sha}-dirty") } else { sha })
}

/// A path inside the git directory (worktrees and a moved `.git` included).
fn git_path(dir: &Path, name: &str) -> PathBuf {
    let path = git(dir, &["rev-parse", "--git-path", name]).map(PathBuf::from).unwrap_or_else(|| name.into());
    if path.is_absolute() { path } else { dir.join(path) }
}

/// The commit `cargo package` recorded in `.cargo_vcs_info.json` (a package from the registry).
fn from_package(dir: &Path) -> Option<String> {
    let info = std::fs::read_to_string(dir.join(".cargo_vcs_info.json")).ok()?;
    let rest = &info[info.find("\"sha1\"")? + "\"sha1\"".len()..];
    let rest = &rest[rest.find('"')? + 1..];
    let sha: String = rest.chars().take_while(char::is_ascii_hexdigit).take(7).collect();
    if sha.len() < 7 {
        return None;
    }
    let dirty = info.contains("\"dirty\": true") || info.contains("\"dirty\":true");
    Some(if dirty { format!("{sha}-dirty") } else { sha })
}

/// `git -C dir ARGS`'s output, trimmed; None when git is missing or says no.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

//! What ships around the binary: shell completions and manual pages, generated from the same
//! definitions as `--help`. The commands are read from the binary's own `--help`, so a command
//! added to the CLI and missing from a completion script or a page fails here.

use std::path::Path;
use std::process::Command;

fn qsearch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_qsearch"))
}

fn stdout(args: &[&str]) -> String {
    let out = qsearch().args(args).output().unwrap();
    assert!(out.status.success(), "qsearch {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands `qsearch <path> --help` lists under "Commands:", less clap's own `help`.
fn subcommands(path: &[&str]) -> Vec<String> {
    let mut args = path.to_vec();
    args.push("--help");
    let help = stdout(&args);
    let Some((_, list)) = help.split_once("Commands:\n") else { return Vec::new() };
    list.lines()
        .take_while(|line| !line.trim().is_empty())
        .filter(|line| line.starts_with("  ") && !line[2..].starts_with(' '))
        .map(|line| line.split_whitespace().next().unwrap().to_string())
        .filter(|name| name != "help")
        .collect()
}

/// Every command as its path from the top: `["index"]`, `["model", "list"]`, ...
fn every_command() -> Vec<Vec<String>> {
    let mut all = Vec::new();
    let mut todo: Vec<Vec<String>> = subcommands(&[]).into_iter().map(|n| vec![n]).collect();
    while let Some(path) = todo.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        for child in subcommands(&args) {
            let mut p = path.clone();
            p.push(child);
            todo.push(p);
        }
        all.push(path);
    }
    all.sort();
    all
}

#[test]
fn the_commands_are_read_from_help() {
    let all = every_command();
    // The parsing above finds what is there (an empty list would make the checks below vacuous).
    for expected in
        [&["index"][..], &["search"], &["model", "list"], &["service", "install"], &["completions"], &["man"]]
    {
        assert!(all.iter().any(|p| p == expected), "{expected:?} not among {all:?}");
    }
}

#[test]
fn bash_completion_names_every_command() {
    let script = stdout(&["completions", "bash"]);
    for path in every_command() {
        // clap_complete's bash script has one case per command: `qsearch,index)` for a top-level
        // command, `qsearch__subcmd__model,list)` for `model list`.
        let (name, parents) = path.split_last().unwrap();
        let prefix: String = parents.iter().map(|p| format!("__subcmd__{p}")).collect();
        let case = format!("qsearch{prefix},{name})");
        assert!(script.contains(&case), "the bash completion has no {case} for `qsearch {}`", path.join(" "));
    }
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let script = stdout(&["completions", shell]);
        for path in every_command() {
            let name = path.last().unwrap();
            assert!(
                script.contains(name.as_str()),
                "the {shell} completion does not name `qsearch {}`",
                path.join(" ")
            );
        }
    }
}

#[test]
fn man_pages_name_every_command() {
    let page = stdout(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH qsearch"),
        "not a manual page: {}",
        &page[..200.min(page.len())]
    );
    let all = every_command();
    for path in all.iter().filter(|p| p.len() == 1) {
        // roff escapes the hyphen.
        let see = format!("qsearch\\-{}(1)", path[0]);
        assert!(page.contains(&see), "the top page does not list {see}");
    }

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man1");
    stdout(&["man", "--out", dir.to_str().unwrap()]);
    assert!(dir.join("qsearch.1").is_file());
    for path in &all {
        let file = format!("qsearch-{}.1", path.join("-"));
        let page = std::fs::read_to_string(dir.join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(page.contains(".TH"), "{file} is not a manual page");
    }
    let pages = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(pages, all.len() + 1, "one page per command and the top page in {}", Path::new(&dir).display());
}

/// `git -C <this checkout> ARGS`, None where git is missing or this is not a git checkout.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(env!("CARGO_MANIFEST_DIR")).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The commit named in `... (c7363cb)` / `... (c7363cb-dirty)`, without the mark.
fn named_commit(text: &str) -> Option<String> {
    let inside = text.split_once('(')?.1.split_once(')')?.0;
    let sha = inside.strip_suffix("-dirty").unwrap_or(inside);
    (sha.len() >= 7 && sha.chars().all(|c| c.is_ascii_hexdigit())).then(|| sha.to_string())
}

/// Checks that `sha` is a commit of this checkout and HEAD or before it (others may have committed
/// since the binary was built).
fn assert_commit_of_this_checkout(sha: &str, said: &str) {
    assert!(git(&["cat-file", "-e", &format!("{sha}^{{commit}}")]).is_some(), "{sha} is not a commit here: {said}");
    assert!(git(&["merge-base", "--is-ancestor", sha, "HEAD"]).is_some(), "{sha} is not HEAD or before it: {said}");
}

#[test]
fn version_names_the_commit_when_built_from_git() {
    let said = stdout(&["--version"]);
    let version = env!("CARGO_PKG_VERSION");
    assert!(said.starts_with(&format!("qsearch {version}")), "{said}");
    // The optional features this build has, as the tests were built with them.
    for (name, on) in [
        ("mcp", cfg!(feature = "mcp")),
        ("pdf", cfg!(feature = "pdf")),
        ("html", cfg!(feature = "html")),
        ("tree-sitter", cfg!(feature = "tree-sitter")),
    ] {
        let listed = said.split_once(", with ").is_some_and(|(_, f)| f.split_whitespace().any(|w| w == name));
        assert_eq!(listed, on, "{name}: {said}");
    }
    let in_git = git(&["ls-files", "--error-unmatch", "Cargo.toml"]).is_some();
    match named_commit(&said) {
        Some(sha) => assert_commit_of_this_checkout(&sha, &said),
        None => assert!(!in_git, "built in a git checkout, but --version names no commit: {said}"),
    }
}

#[test]
fn doctor_says_the_version_first() {
    let tmp = tempfile::tempdir().unwrap();
    let doctor = |json: bool| {
        let mut cmd = qsearch();
        cmd.env("QSEARCH_DATA_DIR", tmp.path().join("data"))
            .env("QSEARCH_INDEX", tmp.path().join("index"))
            .env("QSEARCH_CONFIG", tmp.path().join("no-config.toml"))
            .env_remove("QSEARCH_MODEL")
            .env_remove("ORT_DYLIB_PATH")
            .env("NO_COLOR", "1")
            .arg("doctor");
        if json {
            cmd.arg("--json");
        }
        cmd.output().unwrap()
    };
    let version = env!("CARGO_PKG_VERSION");
    let out = doctor(false);
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or_default();
    assert!(first.starts_with(&format!("qsearch:  {version}")), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let out = doctor(true);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["version"], version);
    match report["commit"].as_str() {
        Some(commit) => {
            assert!(first.contains(&format!("({commit})")), "{first} vs {commit}");
            assert_commit_of_this_checkout(named_commit(&format!("({commit})")).as_deref().unwrap_or("?"), commit);
        }
        None => assert!(git(&["ls-files", "--error-unmatch", "Cargo.toml"]).is_none(), "{report}"),
    }
}

//! Opening a hit in the user's editor: `$VISUAL`, else `$EDITOR`, split on whitespace for its
//! own arguments, then `+LINE PATH` (which vi, vim, nvim, emacs, nano, micro, kak and helix all
//! understand). A PDF goes to the desktop's viewer instead, which does not take the terminal.

use std::path::Path;
use std::process::Command;

use crate::text::kind::{self, Kind};

/// Whether a hit in this file opens in the desktop's viewer rather than in the editor.
pub fn opens_in_viewer(path: &str) -> bool {
    kind::of(Path::new(path)) == Some(Kind::Pdf)
}

/// Hands the file to the desktop's default application for it (`xdg-open`, `gio open`, `open`),
/// without waiting for the viewer; a launcher that fails within a second is reported.
pub fn open_in_viewer(path: &str) -> Result<(), String> {
    open::that_detached_with_timeout(path, std::time::Duration::from_secs(1)).map_err(|e| {
        let name = Path::new(path).file_name().map_or(path.into(), |n| n.to_string_lossy());
        format!("no viewer opened {name}: {e}")
    })
}

/// The program and its arguments, or why there is none.
pub fn command(
    visual: Option<&str>,
    editor: Option<&str>,
    path: &str,
    line: usize,
) -> Result<(String, Vec<String>), String> {
    let chosen = [visual, editor].into_iter().flatten().find(|v| !v.trim().is_empty());
    let Some(chosen) = chosen else {
        return Err("set $VISUAL or $EDITOR to open hits (for example: export EDITOR=vim)".into());
    };
    let mut words = chosen.split_whitespace().map(String::from);
    let program = words.next().expect("not blank");
    let mut args: Vec<String> = words.collect();
    args.push(format!("+{line}"));
    args.push(path.to_string());
    Ok((program, args))
}

/// Runs the editor from the environment and waits for it. The caller hands it the terminal.
pub fn open(path: &str, line: usize) -> Result<(), String> {
    let visual = std::env::var("VISUAL").ok();
    let editor = std::env::var("EDITOR").ok();
    let (program, args) = command(visual.as_deref(), editor.as_deref(), path, line)?;
    let status =
        Command::new(&program).args(&args).status().map_err(|e| format!("cannot start the editor `{program}`: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("the editor `{program}` exited with {status}")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visual_wins_and_its_arguments_are_kept() {
        let (p, args) = command(Some("code --wait"), Some("vim"), "/n/a.md", 12).unwrap();
        assert_eq!(p, "code");
        assert_eq!(args, vec!["--wait", "+12", "/n/a.md"]);
        let (p, args) = command(Some("  "), Some("vim"), "/n/a b.md", 3).unwrap();
        assert_eq!((p.as_str(), args), ("vim", vec!["+3".to_string(), "/n/a b.md".to_string()]));
    }

    #[test]
    fn pdfs_go_to_the_viewer() {
        assert!(opens_in_viewer("/n/paper.pdf"));
        assert!(!opens_in_viewer("/n/a.md"));
    }

    #[test]
    fn no_editor_is_explained() {
        assert!(command(None, None, "a", 1).unwrap_err().contains("$EDITOR"));
    }
}

//! The real binary in a real terminal (tmux, 100x30) over a small real index: type a query and
//! see hits, move, open the selected hit in a stand-in editor that records its arguments, quit,
//! and find the shell's terminal as it was. Skipped, saying so, when tmux is not installed, except
//! under CI (`CI` set), where a missing tmux fails.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// A private tmux server (its own socket, no user config), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(width: u16, height: u16) -> Tmux {
        static SERVERS: AtomicUsize = AtomicUsize::new(0);
        let n = SERVERS.fetch_add(1, Ordering::Relaxed);
        let tmux = Tmux { socket: format!("qsearch-e2e-{}-{n}", std::process::id()) };
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "e2e",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "env PS1='$ ' sh",
        ]);
        assert!(out.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&out.stderr));
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux").args(["-L", &self.socket, "-f", "/dev/null"]).args(args).output().expect("tmux runs")
    }

    /// Types text literally.
    fn type_text(&self, text: &str) {
        assert!(self.run(&["send-keys", "-t", "e2e", "-l", text]).status.success());
    }

    /// Presses keys by tmux name (Enter, Down, Escape, C-c).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "e2e"];
        args.extend(keys);
        assert!(self.run(&args).status.success());
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "e2e"]).stdout).into_owned()
    }

    fn format(&self, format: &str) -> String {
        String::from_utf8_lossy(&self.run(&["display-message", "-p", "-t", "e2e", format]).stdout).trim().to_string()
    }

    /// The screen once `ready` holds for it; fails with the last screen after WAIT.
    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("waited {WAIT:?} for {what}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn tmux_missing() -> bool {
    Command::new("tmux").arg("-V").output().map(|o| !o.status.success()).unwrap_or(true)
}

/// Whether to skip for want of tmux: only outside CI, saying so. With `CI` set (to anything but
/// an empty string) a missing tmux fails the test, since CI must run it (`scripts/test.sh`
/// installs tmux with apt-get when it runs as root).
fn skip_without_tmux() -> bool {
    if !tmux_missing() {
        return false;
    }
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    assert!(!ci, "tmux is not installed and CI is set: the terminal tests must run here (apt-get install -y tmux)");
    eprintln!("SKIPPED tui_e2e: tmux is not installed (apt-get install -y tmux)");
    true
}

fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// The shell command that runs the UI with an isolated index, the test data dir and `editor`.
fn command_line(index: &Path, editor: &Path) -> String {
    format!(
        "env QSEARCH_INDEX={} QSEARCH_DATA_DIR={} QSEARCH_CONFIG={} EDITOR={} VISUAL= NO_COLOR=1 {}; echo \"exit=$?\"",
        quoted(index),
        quoted(&common::data_dir()),
        quoted(&index.join("no-config.toml")),
        quoted(editor),
        quoted(Path::new(env!("CARGO_BIN_EXE_qsearch"))),
    )
}

/// A stand-in editor: writes its arguments to `args.txt` beside it.
fn stand_in_editor(dir: &Path) -> (PathBuf, PathBuf) {
    let script = dir.join("editor.sh");
    let record = dir.join("args.txt");
    // Written aside and renamed: the test reads the record as soon as it exists, and `>` alone
    // creates it empty before `echo` writes (a clean-clone CI run once read "").
    let partial = dir.join("args.txt.partial");
    std::fs::write(&script, format!("#!/bin/sh\necho \"$@\" > {0} && mv {0} {1}\n", quoted(&partial), quoted(&record)))
        .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, record)
}

/// The `name.md:LINE` of the selected result row (the one marked `›`).
fn selected(screen: &str) -> (String, usize) {
    let row = screen.lines().find(|l| l.starts_with('›')).unwrap_or_else(|| panic!("no selected row:\n{screen}"));
    let location =
        row.split_whitespace().find(|w| w.contains(".md:")).unwrap_or_else(|| panic!("no path:line in {row}"));
    let (path, line) = location.rsplit_once(':').unwrap();
    (path.to_string(), line.parse().unwrap())
}

#[test]
fn search_move_open_in_editor_and_quit_in_a_real_terminal() {
    if skip_without_tmux() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("notes");
    common::write(&root, "git.md", "# Git\n\nIntro.\n\n## Undo\n\nUse git reflog to find a lost commit.\n");
    common::write(&root, "undo.md", "# Undo\n\nThe reflog remembers\nwhere HEAD was.\n");
    common::write(&root, "cook.md", "# Cooking\n\nRisotto needs constant stirring.\n");
    let index = tmp.path().join("index");
    let out = common::qsearch(&index).args(["index", "--quiet", "--model", "stand-in"]).arg(&root).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (editor, record) = stand_in_editor(tmp.path());

    let tmux = Tmux::start(100, 30);
    tmux.wait_for("the shell", |s| s.contains('$'));
    tmux.type_text(&command_line(&index, &editor));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the first frame", |s| s.contains("search ›") && s.contains("3 files"));
    assert!(screen.contains("Type to search 3 files"), "{screen}");
    assert_eq!(tmux.format("#{alternate_on}"), "1", "the UI draws on the alternate screen");

    tmux.type_text("reflog");
    let screen = tmux.wait_for("hybrid hits", |s| s.contains("results · hybrid") && s.contains("git.md:7"));
    assert!(screen.contains("undo.md:3"), "both notes that say reflog are found:\n{screen}");
    assert!(screen.contains("stand-in"), "the model is in the status line:\n{screen}");
    let first = selected(&screen);

    tmux.keys(&["Down"]);
    let screen = tmux.wait_for("a new selection", |s| s.lines().any(|l| l.starts_with('›')) && selected(s) != first);
    let (name, line) = selected(&screen);

    tmux.keys(&["Enter"]);
    let deadline = Instant::now() + WAIT;
    while !record.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let args = std::fs::read_to_string(&record).expect("the editor ran");
    assert_eq!(args.trim(), format!("+{line} {}", root.join(&name).display()));
    tmux.wait_for("the UI back after the editor", |s| s.contains("search › reflog") && s.contains("results · hybrid"));
    assert_eq!(tmux.format("#{alternate_on}"), "1");

    tmux.keys(&["Escape"]);
    let screen = tmux.wait_for("the shell again", |s| s.contains("exit=0"));
    assert!(!screen.contains("search ›"), "the UI's screen is gone:\n{screen}");
    assert_eq!(tmux.format("#{alternate_on}"), "0", "the alternate screen was left");
    assert_eq!(tmux.format("#{mouse_any_flag}"), "0", "mouse reporting is off");
    let stty = tmp.path().join("stty.txt");
    tmux.type_text(&format!("stty -a > {}", quoted(&stty)));
    tmux.keys(&["Enter"]);
    tmux.wait_for("stty", |_| std::fs::metadata(&stty).is_ok_and(|m| m.len() > 0));
    let modes = std::fs::read_to_string(&stty).unwrap();
    let words: Vec<&str> = modes.split_whitespace().collect();
    assert!(words.contains(&"icanon") && words.contains(&"echo"), "raw mode was left:\n{modes}");
}

#[test]
fn a_missing_index_is_explained_and_ctrl_c_quits() {
    if skip_without_tmux() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (editor, _) = stand_in_editor(tmp.path());
    let tmux = Tmux::start(80, 24);
    tmux.wait_for("the shell", |s| s.contains('$'));
    tmux.type_text(&command_line(&tmp.path().join("no-index"), &editor));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the explanation", |s| s.contains("No index at"));
    assert!(screen.contains("qsearch index ~/notes"), "{screen}");
    tmux.keys(&["C-c"]);
    tmux.wait_for("the shell again", |s| s.contains("exit=0"));
    assert_eq!(tmux.format("#{alternate_on}"), "0");
}

/// Run by the test below inside tmux (ignored otherwise): a panic while the UI owns the terminal.
#[test]
#[ignore = "run inside a terminal by a_panic_restores_the_terminal"]
fn panic_inside_the_ui_helper() {
    let _session = qsearch::tui::terminal::Session::start().expect("a terminal");
    std::thread::sleep(Duration::from_millis(300));
    panic!("a deliberate panic inside the UI");
}

#[test]
fn a_panic_restores_the_terminal() {
    if skip_without_tmux() {
        return;
    }
    let tmux = Tmux::start(80, 24);
    tmux.wait_for("the shell", |s| s.contains('$'));
    let me = std::env::current_exe().unwrap();
    tmux.type_text(&format!(
        "RUST_BACKTRACE=0 {} --ignored --exact panic_inside_the_ui_helper --nocapture; echo \"exit=$?\"",
        quoted(&me)
    ));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the shell again", |s| s.contains("exit=101"));
    assert!(screen.contains("a deliberate panic inside the UI"), "the panic message is readable:\n{screen}");
    assert_eq!(tmux.format("#{alternate_on}"), "0", "the alternate screen was left");
    assert_eq!(tmux.format("#{mouse_any_flag}"), "0", "mouse reporting is off");
    let stty = std::env::temp_dir().join(format!("qsearch-e2e-stty-{}", std::process::id()));
    tmux.type_text(&format!("stty -a > {}", quoted(&stty)));
    tmux.keys(&["Enter"]);
    tmux.wait_for("stty", |_| std::fs::metadata(&stty).is_ok_and(|m| m.len() > 0));
    let modes = std::fs::read_to_string(&stty).unwrap();
    let _ = std::fs::remove_file(&stty);
    let words: Vec<&str> = modes.split_whitespace().collect();
    assert!(words.contains(&"icanon") && words.contains(&"echo"), "raw mode was left:\n{modes}");
}

//! The `qsearch` binary: parse the command line, run, map errors to exit codes.

mod cli;

use std::process::ExitCode;

/// The first argument that makes this process a PDF-reading child: no command of the CLI.
const PDF_CHILD: &str = "__read-pdf";

fn main() -> ExitCode {
    // Like other Unix filters: output piped into `head` ends the program quietly, not in a panic.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // A child reading one PDF for the process that started it (qsearch::text::pdf).
    if std::env::args_os().nth(1).is_some_and(|a| a == PDF_CHILD) {
        return match qsearch::text::pdf::child_main() {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(2),
        };
    }
    // Every PDF this process reads, it reads in such a child: a PDF that crashes or hangs the
    // reader costs that child, not the index.
    if let Some(me) = this_binary() {
        qsearch::text::pdf::read_in_child(me, vec![PDF_CHILD.into()]);
    }
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("qsearch: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// This process's own program. On Linux `/proc/self/exe`, which stays this very binary when an
/// upgrade replaces the file on disk under a watcher that has run for weeks.
fn this_binary() -> Option<std::path::PathBuf> {
    let proc_exe = std::path::Path::new("/proc/self/exe");
    if cfg!(target_os = "linux") && proc_exe.exists() {
        return Some(proc_exe.to_path_buf());
    }
    std::env::current_exe().ok()
}

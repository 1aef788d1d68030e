//! `qsearch completions SHELL` and `qsearch man`: shell completions and manual pages, generated
//! from the same clap definitions as `--help`, so they never drift from the real flags.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    shell: Shell,
}

#[derive(clap::Args)]
pub struct ManArgs {
    /// Write one page per command (qsearch.1, qsearch-index.1, qsearch-model-list.1, ...) into
    /// this folder instead of printing the top page
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Prints the completion script for `args.shell` on stdout.
pub fn completions(args: CompletionsArgs) -> Result<ExitCode> {
    let mut cmd = super::Cli::command();
    let name = cmd.get_name().to_string();
    clap_complete::generate(args.shell, &mut cmd, name, &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// Prints the top manual page on stdout, or writes every command's page into `--out`.
pub fn man(args: ManArgs) -> Result<ExitCode> {
    let cmd = super::Cli::command();
    match args.out {
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(cmd).render(&mut out)?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("cannot write the pages into {}", dir.display()))?;
            eprintln!("manual pages written to {}", dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

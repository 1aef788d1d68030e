//! `qsearch mcp` in a build without the `mcp` feature (`--no-default-features`): the command is
//! still there, so that it says what this build lacks and how to get it, instead of clap's
//! "unrecognized subcommand".

use std::process::ExitCode;

use anyhow::Result;
use qsearch::config::Config;

#[derive(clap::Args)]
#[command(after_help = "Not in this build: it was built without the `mcp` feature.")]
pub struct Args {
    /// Whatever `qsearch mcp` would take (`--http ADDR`, `--allow-remote`, `--token`): the
    /// answer is the same.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    _args: Vec<String>,
}

pub fn run(_config: &Config, _args: Args) -> Result<ExitCode> {
    anyhow::bail!(
        "this qsearch was built without the MCP server (the `mcp` feature, left out by \
         --no-default-features): install one that has it with `cargo install qsearch` (default \
         features) or `cargo install qsearch --features mcp`"
    )
}

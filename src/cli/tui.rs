//! `qsearch` / `qsearch tui`: the interactive terminal UI.

use std::process::ExitCode;

use anyhow::Result;
use qsearch::config::Config;

pub fn run(_config: &Config) -> Result<ExitCode> {
    anyhow::bail!("the interactive UI is not built yet; try `qsearch search QUERY` (see --help)")
}

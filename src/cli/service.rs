//! `qsearch service install | uninstall | status`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use qsearch::config::Config;
use qsearch::service::{self, Manager};

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Write and start a user service running `qsearch watch`
    Install,
    /// Stop and remove it
    Uninstall,
    /// Whether it is installed, and the watcher's state
    Status,
}

pub fn run(config: &Config, cmd: Cmd) -> Result<ExitCode> {
    let manager = Manager::for_this_os().context("no supported service manager on this OS")?;
    let exe = std::env::current_exe()?;
    let unit = service::render(manager, &exe, &config.index_dir(), &qsearch::paths::data_dir());
    let path = manager.unit_path()?;
    match cmd {
        Cmd::Install => match manager.available() {
            Ok(()) => {
                let path = service::install(manager, &unit)?;
                println!("installed and started {}", path.display());
            }
            Err(why) => {
                eprintln!("the service manager is not reachable here ({why}); nothing was installed.");
                eprintln!("This is the unit qsearch would install at {}:\n", path.display());
                print!("{unit}");
                return Ok(ExitCode::from(1));
            }
        },
        Cmd::Uninstall => {
            let path = service::uninstall(manager)?;
            println!("removed {}", path.display());
        }
        Cmd::Status => {
            println!("unit:    {} ({})", path.display(), if path.exists() { "installed" } else { "not installed" });
            if let Err(why) = manager.available() {
                println!("manager: not reachable ({why})");
            }
            match qsearch::watch::State::read(&config.index_dir()) {
                Some(s)
                    if qsearch::store::lock::holder(&config.index_dir())
                        .is_some_and(|h| h.role == qsearch::store::lock::Role::Watch) =>
                {
                    println!("watcher: running, pid {} since {}, {} batches, {}", s.pid, s.since, s.batches, s.backend)
                }
                _ => println!("watcher: not running"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! The watcher as a user service that survives reboots: a systemd user unit on Linux, a launchd
//! agent on macOS. Rendering the unit is pure; installing it runs the service manager.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

pub const SYSTEMD_UNIT: &str = "qsearch-watch.service";
pub const LAUNCHD_LABEL: &str = "dev.qsearch.watch";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    Systemd,
    Launchd,
}

impl Manager {
    pub fn for_this_os() -> Option<Manager> {
        if cfg!(target_os = "macos") {
            Some(Manager::Launchd)
        } else if cfg!(target_os = "linux") {
            Some(Manager::Systemd)
        } else {
            None
        }
    }

    pub fn unit_path(self) -> Result<PathBuf> {
        let home = directories::BaseDirs::new().context("no home directory")?.home_dir().to_path_buf();
        Ok(match self {
            Manager::Systemd => home.join(".config/systemd/user").join(SYSTEMD_UNIT),
            Manager::Launchd => home.join("Library/LaunchAgents").join(format!("{LAUNCHD_LABEL}.plist")),
        })
    }

    /// Whether the service manager can be talked to here (not in most containers).
    pub fn available(self) -> Result<(), String> {
        let out = match self {
            Manager::Systemd => Command::new("systemctl").args(["--user", "show-environment"]).output(),
            Manager::Launchd => Command::new("launchctl").arg("list").output(),
        };
        match out {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The unit file text for `exe watch`, with the index and data directories made explicit.
pub fn render(manager: Manager, exe: &Path, index_dir: &Path, data_dir: &Path) -> String {
    let exe = exe.display();
    match manager {
        Manager::Systemd => format!(
            "[Unit]\nDescription=qsearch watcher: keeps the search index fresh\n\n\
             [Service]\nExecStart={exe} watch\nEnvironment=QSEARCH_INDEX={}\nEnvironment=QSEARCH_DATA_DIR={}\n\
             Restart=on-failure\nRestartSec=10\nNice=10\nIOSchedulingClass=idle\n\n\
             [Install]\nWantedBy=default.target\n",
            index_dir.display(),
            data_dir.display()
        ),
        Manager::Launchd => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
             <plist version=\"1.0\"><dict>\n\
             <key>Label</key><string>{LAUNCHD_LABEL}</string>\n\
             <key>ProgramArguments</key><array><string>{exe}</string><string>watch</string></array>\n\
             <key>EnvironmentVariables</key><dict><key>QSEARCH_INDEX</key><string>{}</string>\
             <key>QSEARCH_DATA_DIR</key><string>{}</string></dict>\n\
             <key>RunAtLoad</key><true/><key>KeepAlive</key><true/><key>Nice</key><integer>10</integer>\n\
             <key>ProcessType</key><string>Background</string>\n\
             </dict></plist>\n",
            index_dir.display(),
            data_dir.display()
        ),
    }
}

fn run_manager(args: &[&str], manager: Manager) -> Result<()> {
    let program = if manager == Manager::Systemd { "systemctl" } else { "launchctl" };
    let out = Command::new(program).args(args).output().with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

pub fn install(manager: Manager, unit: &str) -> Result<PathBuf> {
    let path = manager.unit_path()?;
    std::fs::create_dir_all(path.parent().unwrap())?;
    std::fs::write(&path, unit)?;
    match manager {
        Manager::Systemd => {
            run_manager(&["--user", "daemon-reload"], manager)?;
            run_manager(&["--user", "enable", "--now", SYSTEMD_UNIT], manager)?;
        }
        Manager::Launchd => run_manager(&["load", "-w", &path.to_string_lossy()], manager)?,
    }
    Ok(path)
}

pub fn uninstall(manager: Manager) -> Result<PathBuf> {
    let path = manager.unit_path()?;
    match manager {
        Manager::Systemd => {
            let _ = run_manager(&["--user", "disable", "--now", SYSTEMD_UNIT], manager);
        }
        Manager::Launchd => {
            let _ = run_manager(&["unload", "-w", &path.to_string_lossy()], manager);
        }
    }
    if path.exists() {
        std::fs::remove_file(&path)?;
    }
    if manager == Manager::Systemd {
        let _ = run_manager(&["--user", "daemon-reload"], manager);
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_run_the_watcher_with_explicit_paths() {
        let unit = render(Manager::Systemd, Path::new("/usr/bin/qsearch"), Path::new("/i"), Path::new("/d"));
        assert!(unit.contains("ExecStart=/usr/bin/qsearch watch\n"));
        assert!(unit.contains("Environment=QSEARCH_INDEX=/i\n"));
        assert!(unit.contains("WantedBy=default.target"));
        let plist = render(Manager::Launchd, Path::new("/bin/q"), Path::new("/i"), Path::new("/d"));
        assert!(plist.contains("<string>/bin/q</string><string>watch</string>"));
    }
}

//! `qsearch serve`: one warm model for the index, answering other processes' queries over the
//! index's socket (as a running `qsearch watch` does), without watching. Foreground; Ctrl-C or
//! SIGTERM stops it and removes the socket.

use std::process::ExitCode;

use anyhow::Result;
use qsearch::config::Config;

#[cfg(not(unix))]
pub fn run(_config: &Config) -> Result<ExitCode> {
    anyhow::bail!("qsearch serve is not supported on this platform: searches load the model themselves")
}

#[cfg(unix)]
pub fn run(config: &Config) -> Result<ExitCode> {
    use std::sync::Arc;

    use qsearch::daemon::server::{self, Served};
    use qsearch::session::{ModelState, WarmModel};
    use qsearch::store::Store;

    let dir = config.index_dir();
    let fp = Store::open_read(&dir)?.fingerprint()?;
    let server = server::bind(&dir)?;
    let plan = super::plan(config);
    let model = WarmModel::new(plan.clone(), None);
    match &fp {
        Some(fp) => {
            plan.check(fp)?;
            let mut progress = super::Progress::new(false);
            model.load_now(fp, &mut |e| progress.on(e));
            drop(progress);
            match model.state() {
                ModelState::Ready { notes, .. } => notes.iter().for_each(|n| eprintln!("note: {n}")),
                ModelState::Failed { model, error } => anyhow::bail!("the model {model} could not be loaded: {error}"),
                _ => {}
            }
        }
        None => eprintln!("note: nothing is embedded in the index yet: the model loads with the first query"),
    }
    let served = Arc::new(Served::new(&dir, "serve", model)?);
    let what = fp.as_ref().map_or_else(|| "no model yet".to_string(), |fp| fp.model.clone());
    // The socket is the readiness signal (a test or a script reads this line).
    eprintln!(
        "qsearch serve: answering queries for {} with {what} at {} (Ctrl-C stops)",
        dir.display(),
        server.socket().display()
    );
    let stop = super::stop_on_signal();
    server.run(served, &stop)?;
    drop(server);
    eprintln!("qsearch serve: stopped");
    Ok(ExitCode::SUCCESS)
}

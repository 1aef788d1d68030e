//! The file churn of the soak and what it promises: every step writes a unique token (a word of
//! ten letters, found nowhere else) into a file, or moves or removes a file holding one, and
//! tells the [`Ledger`] what a keyword search for each token it touched must now find: the one
//! file that holds it, at its current path, or nothing. The checker then measures how long each
//! promise takes to hold, and the end of the run checks them all again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use crate::common::Rng;

/// What a keyword search for a token must find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// Exactly this file (no hit at an old path).
    At(PathBuf),
    /// Nothing: the file was deleted, or the token edited out.
    Gone,
}

impl Want {
    pub fn holds(&self, paths: &[String]) -> bool {
        match self {
            Want::At(path) => !paths.is_empty() && paths.iter().all(|p| Path::new(p) == path),
            Want::Gone => paths.is_empty(),
        }
    }
}

struct Promise {
    want: Want,
    made: Instant,
    /// Seconds into the run when it was made.
    at: f64,
    /// Counts the promises made for this token, so a check answers the one it read.
    generation: u64,
    met: bool,
}

#[derive(Default)]
struct Book {
    promises: HashMap<String, Promise>,
    /// (seconds into the run when made, milliseconds until it held).
    delays: Vec<(f64, f64)>,
    /// Promises replaced by a newer one for the same token before they held.
    superseded: u64,
    /// Promises made (the last one's generation).
    generation: u64,
}

/// Every promise made during the run, and how long each took to hold.
#[derive(Default)]
pub struct Ledger(Mutex<Book>);

/// A promise not yet seen to hold.
pub struct Open {
    pub token: String,
    pub want: Want,
    pub generation: u64,
}

impl Ledger {
    pub fn promise(&self, token: &str, want: Want, at: f64) {
        let mut book = self.0.lock().unwrap();
        book.generation += 1;
        let generation = book.generation;
        let promise = Promise { want, made: Instant::now(), at, generation, met: false };
        if book.promises.insert(token.to_string(), promise).is_some_and(|old| !old.met) {
            book.superseded += 1;
        }
    }

    pub fn open(&self) -> Vec<Open> {
        let book = self.0.lock().unwrap();
        let mut open: Vec<(&String, &Promise)> = book.promises.iter().filter(|(_, p)| !p.met).collect();
        open.sort_by_key(|(_, p)| p.made);
        open.into_iter()
            .map(|(token, p)| Open { token: token.clone(), want: p.want.clone(), generation: p.generation })
            .collect()
    }

    /// Whether the token's promise has held (else it is still open, or was never made).
    pub fn settled(&self, token: &str) -> bool {
        self.0.lock().unwrap().promises.get(token).is_some_and(|p| p.met)
    }

    /// Marks the promise checked as holding, if it is still the token's current one.
    pub fn met(&self, open: &Open) {
        let mut book = self.0.lock().unwrap();
        let Some(p) = book.promises.get_mut(&open.token) else { return };
        if p.generation != open.generation || p.met {
            return;
        }
        p.met = true;
        let delay = (p.at, p.made.elapsed().as_secs_f64() * 1e3);
        book.delays.push(delay);
    }

    /// Every token's current promise.
    pub fn all(&self) -> Vec<(String, Want)> {
        let book = self.0.lock().unwrap();
        book.promises.iter().map(|(t, p)| (t.clone(), p.want.clone())).collect()
    }

    pub fn delays(&self) -> Vec<(f64, f64)> {
        self.0.lock().unwrap().delays.clone()
    }

    pub fn made(&self) -> u64 {
        self.0.lock().unwrap().generation
    }

    pub fn superseded(&self) -> u64 {
        self.0.lock().unwrap().superseded
    }

    /// The open promise made longest ago: its age in milliseconds.
    pub fn oldest_open_ms(&self) -> f64 {
        let book = self.0.lock().unwrap();
        book.promises.values().filter(|p| !p.met).map(|p| p.made.elapsed().as_secs_f64() * 1e3).fold(0.0, f64::max)
    }
}

/// Counts of the steps taken.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Ops {
    pub created: u64,
    pub edited_in_place: u64,
    pub edited_by_rename: u64,
    pub corpus_edited: u64,
    pub renamed: u64,
    pub deleted: u64,
    pub folders_moved: u64,
    /// Steps passed over because every file they could take had a promise still open.
    pub passed_over: u64,
}

impl Ops {
    pub fn total(&self) -> u64 {
        self.created
            + self.edited_in_place
            + self.edited_by_rename
            + self.corpus_edited
            + self.renamed
            + self.deleted
            + self.folders_moved
    }
}

/// A corpus file the churn edits: its own text, with one marker line appended at a time.
struct CorpusFile {
    path: PathBuf,
    original: Option<String>,
    token: Option<String>,
}

pub struct Churn {
    root: PathBuf,
    rng: Rng,
    words: Vec<String>,
    /// The churn's own files (under `soak/`) and the token each holds.
    live: Vec<(PathBuf, String)>,
    corpus: Vec<CorpusFile>,
    /// Live files the churn keeps around: it creates more below this, deletes more above.
    target: usize,
    tokens: u64,
    names: u64,
    folders: u64,
    pub ops: Ops,
}

/// The churn's own folders at one time: files go into one of these (moved folders get new names).
const FOLDERS: usize = 6;

impl Churn {
    /// `corpus`: files of the copied folder the churn may edit (Markdown, not too large).
    pub fn new(root: &Path, words: Vec<String>, corpus: Vec<PathBuf>, target: usize, seed: u64) -> Churn {
        let corpus = corpus.into_iter().map(|path| CorpusFile { path, original: None, token: None }).collect();
        Churn {
            root: root.to_path_buf(),
            rng: Rng(seed),
            words,
            live: Vec::new(),
            corpus,
            target,
            tokens: 0,
            names: 0,
            folders: FOLDERS as u64,
            ops: Ops::default(),
        }
    }

    pub fn live(&self) -> usize {
        self.live.len()
    }

    /// A new token: ten letters, `sq` then eight from a bijective scramble of a counter, so
    /// tokens differ early and none is a prefix of another.
    fn token(&mut self) -> String {
        self.tokens += 1;
        let mut n = self.tokens.wrapping_mul(0x9E37_79B9) % 208_827_064_576; // 26^8
        let mut s = String::from("sq");
        for _ in 0..8 {
            s.push((b'a' + (n % 26) as u8) as char);
            n /= 26;
        }
        s
    }

    fn words(&mut self, n: usize) -> String {
        (0..n).map(|_| self.words[self.rng.below(self.words.len())].as_str()).collect::<Vec<_>>().join(" ")
    }

    fn text(&mut self, token: &str) -> String {
        let (before, after) = (self.words(30), self.words(30));
        format!("# Soak note {token}\n\n{before}\n\nThe marker {token} is here.\n\n{after}\n")
    }

    fn folder(&mut self) -> PathBuf {
        let first = self.folders - FOLDERS as u64;
        self.root.join(format!("soak/d{}", first + self.rng.below(FOLDERS) as u64))
    }

    /// A live file's index, preferring one whose promise has held (else `None` when `settled_only`).
    fn pick(&mut self, ledger: &Ledger, settled_only: bool) -> Option<usize> {
        if self.live.is_empty() {
            return None;
        }
        for _ in 0..8 {
            let i = self.rng.below(self.live.len());
            if ledger.settled(&self.live[i].1) {
                return Some(i);
            }
        }
        if settled_only { None } else { Some(self.rng.below(self.live.len())) }
    }

    /// One step, its kind drawn: creates and deletes balance at the target, so the folder (and
    /// the index) keeps its size and growth of memory is not the index growing. In a burst,
    /// files whose promises are still open may be taken (their promise is superseded).
    pub fn step(&mut self, ledger: &Ledger, at: f64, burst: bool) -> std::io::Result<()> {
        let roll = self.rng.below(100);
        let creates = if self.live.len() < self.target { 35 } else { 15 };
        if roll < creates {
            return self.create(ledger, at);
        }
        let Some(i) = self.pick(ledger, !burst) else {
            self.ops.passed_over += 1;
            return Ok(());
        };
        match roll - creates {
            0..=19 => self.edit(i, ledger, at),
            20..=29 => self.edit_corpus(ledger, at, burst),
            30..=49 => self.rename(i, ledger, at),
            _ => self.delete(i, ledger, at),
        }
    }

    /// The churn's files up to the target, at once (the first batch).
    pub fn populate(&mut self, ledger: &Ledger, at: f64) -> std::io::Result<()> {
        while self.live.len() < self.target {
            self.create(ledger, at)?;
        }
        Ok(())
    }

    fn create(&mut self, ledger: &Ledger, at: f64) -> std::io::Result<()> {
        let token = self.token();
        let dir = self.folder();
        std::fs::create_dir_all(&dir)?;
        // File names hold no token: a name is kept through edits, and may be searchable.
        self.names += 1;
        let path = dir.join(format!("n{}.md", self.names));
        let text = self.text(&token);
        std::fs::write(&path, text)?;
        ledger.promise(&token, Want::At(path.clone()), at);
        self.live.push((path, token));
        self.ops.created += 1;
        Ok(())
    }

    /// New text with a new token, written in place or saved as editors do (a temporary file
    /// renamed over it).
    fn edit(&mut self, i: usize, ledger: &Ledger, at: f64) -> std::io::Result<()> {
        let token = self.token();
        let text = self.text(&token);
        let path = self.live[i].0.clone();
        if self.rng.below(2) == 0 {
            std::fs::write(&path, text)?;
            self.ops.edited_in_place += 1;
        } else {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let tmp = path.with_file_name(format!(".{name}.swp"));
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, &path)?;
            self.ops.edited_by_rename += 1;
        }
        let old = std::mem::replace(&mut self.live[i].1, token.clone());
        ledger.promise(&old, Want::Gone, at);
        ledger.promise(&token, Want::At(path), at);
        Ok(())
    }

    /// A corpus file gets a marker line (in place of the one it had).
    fn edit_corpus(&mut self, ledger: &Ledger, at: f64, burst: bool) -> std::io::Result<()> {
        if self.corpus.is_empty() {
            self.ops.passed_over += 1;
            return Ok(());
        }
        let c = self.rng.below(self.corpus.len());
        if !burst && self.corpus[c].token.as_deref().is_some_and(|t| !ledger.settled(t)) {
            self.ops.passed_over += 1;
            return Ok(());
        }
        let token = self.token();
        let file = &mut self.corpus[c];
        if file.original.is_none() {
            file.original = Some(std::fs::read_to_string(&file.path)?);
        }
        let text = format!("{}\n\nSoak marker {token}.\n", file.original.as_deref().unwrap().trim_end());
        std::fs::write(&file.path, text)?;
        if let Some(old) = file.token.replace(token.clone()) {
            ledger.promise(&old, Want::Gone, at);
        }
        ledger.promise(&token, Want::At(file.path.clone()), at);
        self.ops.corpus_edited += 1;
        Ok(())
    }

    /// Renamed within its folder or moved to another.
    fn rename(&mut self, i: usize, ledger: &Ledger, at: f64) -> std::io::Result<()> {
        let (from, token) = self.live[i].clone();
        let dir = if self.rng.below(2) == 0 { from.parent().unwrap().to_path_buf() } else { self.folder() };
        std::fs::create_dir_all(&dir)?;
        self.names += 1;
        let to = dir.join(format!("n{}.md", self.names));
        std::fs::rename(&from, &to)?;
        ledger.promise(&token, Want::At(to.clone()), at);
        self.live[i].0 = to;
        self.ops.renamed += 1;
        Ok(())
    }

    fn delete(&mut self, i: usize, ledger: &Ledger, at: f64) -> std::io::Result<()> {
        let (path, token) = self.live.swap_remove(i);
        std::fs::remove_file(&path)?;
        ledger.promise(&token, Want::Gone, at);
        self.ops.deleted += 1;
        Ok(())
    }

    /// One of the churn's folders renamed to a new name: every file in it moves at once.
    pub fn move_folder(&mut self, ledger: &Ledger, at: f64) -> std::io::Result<()> {
        let first = self.folders - FOLDERS as u64;
        let from = self.root.join(format!("soak/d{first}"));
        let to = self.root.join(format!("soak/d{}", self.folders));
        self.folders += 1;
        if !from.exists() {
            std::fs::create_dir_all(&to)?;
            return Ok(());
        }
        std::fs::rename(&from, &to)?;
        for (path, token) in &mut self.live {
            if let Ok(rest) = path.strip_prefix(&from) {
                *path = to.join(rest);
                ledger.promise(token, Want::At(path.clone()), at);
            }
        }
        self.ops.folders_moved += 1;
        Ok(())
    }
}

//! The soak's folder: a copy of a corpus, or notes generated where none is at hand (a fresh
//! clone without ../shared), and what the churn and the clients take from it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::common::Rng;

pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)?.flatten() {
        let (path, dest) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&path, &dest)?;
        } else if kind.is_file() {
            std::fs::copy(&path, &dest)?;
        }
    }
    Ok(())
}

/// `n` Markdown notes of made-up words, for a checkout without the shared corpora.
pub fn generate_notes(root: &Path, n: usize) -> std::io::Result<()> {
    let mut rng = Rng(0xC0FFEE);
    let syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "de", "pa", "go", "li", "ber", "tan", "mos"];
    let vocabulary: Vec<String> = (0..3000)
        .map(|_| (0..2 + rng.below(3)).map(|_| syllables[rng.below(syllables.len())]).collect::<String>())
        .collect();
    for i in 0..n {
        let dir = root.join(format!("topic{}", i % 12));
        std::fs::create_dir_all(&dir)?;
        let mut text = format!("# Note {i}\n");
        for section in 0..3 {
            text.push_str(&format!("\n## Part {section}\n\n"));
            // Skewed towards the first words, as text is.
            let words: Vec<&str> = (0..80)
                .map(|_| {
                    let upto = rng.below(vocabulary.len()) + 1;
                    vocabulary[rng.below(upto)].as_str()
                })
                .collect();
            text.push_str(&words.join(" "));
            text.push('\n');
        }
        std::fs::write(dir.join(format!("note{i}.md")), text)?;
    }
    Ok(())
}

/// Words to query (from up to 300 of its files) and the Markdown files the churn may edit.
pub fn read_corpus(root: &Path) -> (Vec<String>, Vec<PathBuf>) {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if !entry.file_name().to_string_lossy().starts_with('.') {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut words = HashSet::new();
    for path in files.iter().take(300) {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for w in text.split(|c: char| !c.is_ascii_alphabetic()) {
            if (4..=12).contains(&w.len()) {
                words.insert(w.to_ascii_lowercase());
            }
        }
    }
    let mut words: Vec<String> = words.into_iter().collect();
    words.sort();
    let editable = files.into_iter().filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() < 64 << 10)).collect();
    (words, editable)
}

pub fn count_files(root: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else {
                n += 1;
            }
        }
    }
    n
}

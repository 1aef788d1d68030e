//! The GPU check's bundle rules (issue 23), held by `scripts/gpu/parts.py`, the module that
//! `scripts/gpu/bundle` splits with and `scripts/gpu/run` joins with: no part over the limit,
//! every part's and the whole archive's sha256 in the manifest, a corrupt or missing part refused
//! by name, and the joined archive byte-identical to the original. A small synthetic archive:
//! nothing is downloaded or built.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn parts_py() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gpu/parts.py")
}

fn parts(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = Command::new("python3");
    cmd.arg(parts_py());
    for a in args {
        cmd.arg(a);
    }
    cmd.output().expect("python3 runs")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Bytes that do not repeat, so a part put in the wrong place changes the whole.
fn archive_bytes(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

struct Bundle {
    _tmp: tempfile::TempDir,
    archive: PathBuf,
    dir: PathBuf,
    manifest: serde_json::Value,
}

fn split(len: usize, limit: usize) -> Bundle {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("qsearch-gpu.tar.zst");
    std::fs::write(&archive, archive_bytes(len)).unwrap();
    let dir = tmp.path().join("parts");
    let out = parts(&[&"split", &archive, &dir, &"--limit", &limit.to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    let manifest = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    Bundle { _tmp: tmp, archive, dir, manifest }
}

fn names(b: &Bundle) -> Vec<String> {
    b.manifest["parts"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn parts_stay_under_the_limit_and_join_byte_identical() {
    let (len, limit) = (10 * 1024 + 17, 3000);
    let b = split(len, limit);
    let names = names(&b);
    assert_eq!(names.len(), len.div_ceil(limit), "{}", b.manifest);
    let mut total = 0;
    for (p, name) in b.manifest["parts"].as_array().unwrap().iter().zip(&names) {
        let size = std::fs::metadata(b.dir.join(name)).unwrap().len() as usize;
        assert!(size <= limit, "{name} is {size} bytes, over {limit}");
        assert_eq!(p["size"].as_u64().unwrap() as usize, size);
        assert_eq!(p["sha256"].as_str().unwrap().len(), 64);
        total += size;
    }
    assert_eq!(total, len);
    assert_eq!(b.manifest["size"].as_u64().unwrap() as usize, len);
    assert_eq!(b.manifest["limit"].as_u64().unwrap() as usize, limit);

    let joined = b.dir.parent().unwrap().join("joined.tar.zst");
    let out = parts(&[&"join", &b.dir.join("manifest.json"), &b.dir, &joined]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(std::fs::read(&joined).unwrap() == std::fs::read(&b.archive).unwrap(), "the joined archive differs");

    // An archive that is an exact multiple of the limit gets no empty last part.
    let even = split(2 * limit, limit);
    assert_eq!(self::names(&even).len(), 2, "{}", even.manifest);
}

#[test]
fn a_corrupt_part_is_refused_by_name() {
    let b = split(9000, 2500);
    let names = names(&b);
    let victim = &names[1];
    // Same size, one byte changed: only the checksum can tell.
    let path = b.dir.join(victim);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let joined = b.dir.parent().unwrap().join("joined");
    let out = parts(&[&"join", &b.dir.join("manifest.json"), &b.dir, &joined]);
    let msg = text(&out);
    assert!(!out.status.success(), "a corrupt part was joined: {msg}");
    assert!(msg.contains(&format!("{victim} is corrupt")) && msg.contains("sha256"), "{msg}");
    assert!(!joined.exists(), "nothing is written from a corrupt part");
    // `verify` of one part names it too; the others still pass.
    let out = parts(&[&"verify", &b.dir.join("manifest.json"), &b.dir, victim]);
    assert!(!out.status.success() && text(&out).contains(victim.as_str()), "{}", text(&out));
    let out = parts(&[&"verify", &b.dir.join("manifest.json"), &b.dir, &names[0]]);
    assert!(out.status.success(), "{}", text(&out));
    // A truncated part is refused on its size.
    std::fs::write(&path, &bytes[..10]).unwrap();
    let out = parts(&[&"verify", &b.dir.join("manifest.json"), &b.dir, victim]);
    assert!(!out.status.success() && text(&out).contains(&format!("{victim} is corrupt: 10 bytes")), "{}", text(&out));
}

#[test]
fn a_missing_part_is_refused_by_name_and_parts_are_found_in_either_folder() {
    let b = split(9000, 2500);
    let names = names(&b);
    // The runner keeps earlier runs' parts in one folder; the last run's part arrives in another.
    let kept = b.dir.parent().unwrap().join("kept");
    std::fs::create_dir_all(&kept).unwrap();
    for name in &names[..names.len() - 1] {
        std::fs::rename(b.dir.join(name), kept.join(name)).unwrap();
    }
    let both = format!("{}:{}", kept.display(), b.dir.display());
    let joined = b.dir.parent().unwrap().join("joined");
    let out = parts(&[&"join", &b.dir.join("manifest.json"), &both, &joined]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(std::fs::read(&joined).unwrap() == std::fs::read(&b.archive).unwrap());

    std::fs::remove_file(&joined).unwrap();
    std::fs::remove_file(kept.join(&names[2])).unwrap();
    let out = parts(&[&"join", &b.dir.join("manifest.json"), &both, &joined]);
    let msg = text(&out);
    assert!(!out.status.success(), "joined without {}: {msg}", names[2]);
    assert!(msg.contains(&format!("{} is missing", names[2])), "{msg}");
    assert!(!joined.exists());
}

#[test]
fn the_bundle_script_sizes_parts_from_what_a_run_carries() {
    // The numbers the issue fixes, as scripts/gpu/bundle states them.
    let bundle = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gpu/bundle")).unwrap();
    assert!(bundle.contains("RUN_LIMIT=$((64 * MIB))"), "a run carries 64 MiB");
    assert!(bundle.contains("MAX_PART=$((60 * MIB))"), "parts are at most 60 MiB");
    assert!(bundle.contains("parts.py split"), "the bundle splits with parts.py");
    // The runner's measurement time-outs fit its 8 minutes.
    let out = Command::new("python3")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gpu"))
        .args([
            "-c",
            "import ast,sys; src=open('check.py').read(); t=ast.parse(src); \
                d={n.targets[0].id: ast.literal_eval(n.value) for n in t.body if isinstance(n, ast.Assign) \
                and getattr(n.targets[0], 'id', '') in ('MEASURE_TIMEOUTS','PREP_TIMEOUTS','MEASURE_BUDGET')}; \
                print(sum(d['MEASURE_TIMEOUTS'].values()), d['MEASURE_BUDGET'], sum(d['PREP_TIMEOUTS'].values()))",
        ])
        .output()
        .expect("python3 runs");
    let s = text(&out);
    let v: Vec<u64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert!(v[0] <= v[1] && v[1] <= 480, "measurement time-outs {} s, budget {} s", v[0], v[1]);
    assert!(v[0] + v[2] <= 570, "the whole check must fit a 10-minute command: {} s", v[0] + v[2]);
}

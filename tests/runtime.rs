//! ONNX Runtime discovery: a library that is too old, or not a library at all, is refused with
//! a message that says what is needed, never a crash.

mod common;

fn embed_with(lib: &std::path::Path) -> (Option<i32>, String) {
    let tmp = tempfile::tempdir().unwrap();
    let out = common::qsearch(tmp.path())
        .args(["embed", "hello", "--model", "all-minilm-l6-v2", "--ort-lib"])
        .arg(lib)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn an_old_runtime_is_refused_clearly() {
    let dir = common::data_dir().join("old-onnxruntime-1.20.1");
    qsearch::pip::install("onnxruntime==1.20.1", &dir).expect("pip can fetch the old wheel");
    let capi = dir.join("onnxruntime/capi");
    let lib = std::fs::read_dir(&capi)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with("libonnxruntime.so") && !n.contains("providers")
        })
        .expect("the wheel ships the library");
    let (code, err) = embed_with(&lib);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("1.20") && err.contains("1.31"), "{err}");
}

#[test]
fn a_file_that_is_not_a_library_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("libonnxruntime.so");
    std::fs::write(&fake, "not a library").unwrap();
    let (code, err) = embed_with(&fake);
    assert_eq!(code, Some(2));
    assert!(err.contains("could not load ONNX Runtime"), "{err}");
}

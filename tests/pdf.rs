//! PDFs: real files written by lopdf, read through pdf-extract, indexed and searched with the
//! real store; broken, encrypted and text-less PDFs get their reason and lose nothing.

mod common;

use qsearch::text::pdf::{self, PdfError};

#[test]
fn pages_come_out_in_order_with_a_break_between() {
    let bytes =
        common::pdf::with_pages(&["First page about risotto.", "Second page about\nthe borrow checker.", "Third."]);
    let got = pdf::text_of(&bytes).unwrap();
    assert_eq!((got.pages, got.failed_pages), (3, 0));
    let pages: Vec<&str> = got.text.split(pdf::PAGE_BREAK).collect();
    assert_eq!(pages.len(), 3, "{:?}", got.text);
    assert!(
        pages[0].contains("risotto") && pages[1].contains("borrow checker") && pages[2].contains("Third"),
        "{pages:?}"
    );
    assert_eq!(pdf::page_starts(&got.text).len(), 3);
}

#[test]
fn a_pdf_without_text_or_with_a_password_says_so() {
    assert_eq!(pdf::text_of(&common::pdf::drawing_only()).unwrap_err(), PdfError::NoText);
    let locked = common::pdf::encrypted(&["A locked page."], "secret");
    assert_eq!(pdf::text_of(&locked).unwrap_err(), PdfError::Encrypted);
    // Encrypted for its permissions only: anyone may open it, so it is read.
    let open = common::pdf::encrypted(&["An open page about sourdough."], "");
    assert!(pdf::text_of(&open).unwrap().text.contains("sourdough"));
}

#[test]
fn a_page_the_reader_panics_on_is_left_out_and_counted() {
    let bytes = common::pdf::with_unparsable_pages(&[Some("Page one on sourdough."), None, Some("Page three on rye.")]);
    let got = pdf::text_of(&bytes).unwrap();
    assert_eq!((got.pages, got.failed_pages), (3, 1));
    let pages: Vec<&str> = got.text.split(pdf::PAGE_BREAK).collect();
    assert!(pages[0].contains("sourdough") && pages[1].is_empty() && pages[2].contains("rye"), "{pages:?}");
    let none = common::pdf::with_unparsable_pages(&[None, None]);
    assert_eq!(
        pdf::text_of(&none).unwrap_err(),
        PdfError::Broken("the PDF reader failed on all 2 of its pages".into())
    );
}

#[test]
fn damaged_pdfs_give_an_error_or_text_never_a_panic() {
    let bytes = common::pdf::with_pages(&["Alpha page.", "Beta page.", "Gamma page."]);
    assert!(matches!(pdf::text_of(&bytes[..bytes.len() / 2]), Err(PdfError::Broken(_)) | Ok(_)));
    assert!(matches!(pdf::text_of(b"%PDF-1.5\n%garbage"), Err(PdfError::Broken(_))));
    // Bytes overwritten at random places: whatever pdf-extract makes of them, it is an answer.
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut read, mut refused) = (0, 0);
    for _ in 0..300 {
        let mut damaged = bytes.clone();
        for _ in 0..1 + next() % 8 {
            let at = (next() % damaged.len() as u64) as usize;
            damaged[at] = next() as u8;
        }
        match pdf::text_of(&damaged) {
            Ok(_) => read += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(read > 0 && refused > 0, "read {read}, refused {refused}");
}

/// A PDF that crashes the reader (a stack overflow, which aborts whatever process it is in) is
/// read in a child process: the index goes on, the PDF is reported with what happened, and the
/// other files are indexed. So is a reader that never ends, stopped after its time.
#[test]
fn a_pdf_that_crashes_the_reader_costs_a_child_process_not_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("docs");
    let index = tmp.path().join("index");
    common::write(&root, "notes.md", "# Notes\n\nThe kitchen rota.\n");
    common::write(&root, "paper.pdf", common::pdf::with_pages(&["Risotto needs constant stirring."]));
    common::write(&root, "loop.pdf", common::pdf::self_drawing_form());
    let (code, report) = common::index_json(&index, &root);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["indexed"], 2, "{report}");
    let crashed = why(&report, "failed", "loop.pdf").unwrap();
    assert!(crashed.contains("the PDF reader crashed on it"), "{report}");
    assert!(first_hit(&index, "risotto")["path"].as_str().unwrap().ends_with("paper.pdf"));

    // Unchanged, it is not read again (a PDF that hangs the reader would cost its time limit
    // at every sync and watcher batch): a readable PDF of the same size and mtime in its
    // place is still reported as it was.
    let path = root.join("loop.pdf");
    let (mut good, mut bad) = (common::pdf::with_pages(&["Tagliatelle by hand."]), std::fs::read(&path).unwrap());
    let size = good.len().max(bad.len());
    good.resize(size, b'\n');
    bad.resize(size, b'\n');
    std::fs::write(&path, &bad).unwrap();
    let (code, _) = common::index_json(&index, &root);
    assert_eq!(code, Some(1));
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, &good).unwrap();
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
    let (code, report) = common::index_json(&index, &root);
    assert_eq!((code, &report["indexed"], &report["unchanged"]), (Some(1), &0.into(), &2.into()), "{report}");
    assert_eq!(why(&report, "failed", "loop.pdf"), Some(crashed), "{report}");
    // Once it changes, it is read again.
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime + std::time::Duration::from_secs(5))
        .unwrap();
    let (code, report) = common::index_json(&index, &root);
    assert_eq!((code, &report["indexed"]), (Some(0), &1.into()), "{report}");
    assert!(first_hit(&index, "tagliatelle")["path"].as_str().unwrap().ends_with("loop.pdf"));

    // The time limit, with a reader that never answers (a real child process, killed).
    let started = std::time::Instant::now();
    let never =
        pdf::in_child(b"%PDF", std::path::Path::new("sleep"), &["30".into()], std::time::Duration::from_millis(300));
    assert!(matches!(&never, Err(PdfError::Broken(why)) if why.contains("took longer than")), "{never:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "the child was stopped at its limit");
    let nonsense =
        pdf::in_child(b"%PDF", std::path::Path::new("echo"), &["{}".into()], std::time::Duration::from_secs(10));
    assert!(matches!(&nonsense, Err(PdfError::Broken(why)) if why.contains("gave no answer")), "{nonsense:?}");
}

/// The `why` of the note on `name` in a report's list (`skipped`, `failed`, `partial`).
fn why<'a>(report: &'a serde_json::Value, list: &str, name: &str) -> Option<&'a str> {
    report[list].as_array()?.iter().find(|n| n[0].as_str().unwrap().ends_with(name)).map(|n| n[1].as_str().unwrap())
}

fn first_hit(index: &std::path::Path, query: &str) -> serde_json::Value {
    let out = common::qsearch(index).args(["search", query, "--mode", "keyword", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["hits"][0].clone()
}

#[test]
fn pdfs_are_searched_by_page_and_a_damaged_one_keeps_its_last_version() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("docs");
    let index = tmp.path().join("index");
    common::write(&root, "notes.md", "# Notes\n\nNothing about the kitchen here.\n");
    let paper = common::pdf::with_pages(&[
        "Kitchen science, an introduction.",
        "Risotto needs constant stirring\nand warm stock added slowly.",
        "Conclusion and references.",
    ]);
    common::write(&root, "paper.pdf", &paper);
    common::write(&root, "scan.pdf", common::pdf::drawing_only());
    common::write(&root, "locked.pdf", common::pdf::encrypted(&["A locked page."], "secret"));
    common::write(&root, "broken.pdf", "%PDF-1.5\nthe rest never arrived");
    common::write(&root, "patchy.pdf", common::pdf::with_unparsable_pages(&[Some("Rye bread."), None]));

    let (code, report) = common::index_json(&index, &root);
    assert_eq!(code, Some(1), "a failed file makes the exit code 1: {report}");
    assert_eq!(report["indexed"], 3, "{report}");
    assert_eq!(why(&report, "partial", "patchy.pdf"), Some("1 of its 2 pages could not be read"), "{report}");
    assert!(why(&report, "skipped", "scan.pdf").unwrap().contains("OCR"), "{report}");
    assert!(why(&report, "skipped", "locked.pdf").unwrap().contains("password"), "{report}");
    let broken = why(&report, "failed", "broken.pdf").unwrap();
    assert!(broken.contains("not a readable PDF") && !broken.contains("stays searchable"), "{report}");

    let hit = first_hit(&index, "risotto stirring");
    assert!(hit["path"].as_str().unwrap().ends_with("paper.pdf"), "{hit}");
    assert_eq!(hit["heading"], "page 2", "{hit}");
    // An agent reading the hit gets the page's text at the hit's lines, not the PDF's bytes.
    let got = common::mcp_engine(&index, common::stand_in_plan())
        .get(&qsearch::mcp::engine::GetRequest { chunk_id: hit["chunk_id"].as_i64(), ..Default::default() })
        .unwrap();
    assert!(got.text.contains("Risotto needs constant stirring"), "{}", got.text);
    assert_eq!(got.start_line as u64, hit["line"].as_u64().unwrap(), "{got:?}");

    // The PDF is rewritten and the new file is cut short: the version indexed stays searchable.
    common::write(&root, "paper.pdf", &paper[..paper.len() / 3]);
    let (_, report) = common::index_json(&index, &root);
    assert!(
        why(&report, "failed", "paper.pdf").unwrap().contains("the version indexed before stays searchable"),
        "{report}"
    );
    assert!(first_hit(&index, "risotto stirring")["path"].as_str().unwrap().ends_with("paper.pdf"));

    // Whole again, with a fourth page.
    let longer = common::pdf::with_pages(&[
        "Kitchen science.",
        "Risotto needs stirring.",
        "More.",
        "Saffron threads bloom in warm water.",
    ]);
    common::write(&root, "paper.pdf", longer);
    let (code, report) = common::index_json(&index, &root);
    assert_eq!((code, &report["failed"].as_array().unwrap().len()), (Some(1), &1), "only broken.pdf fails: {report}");
    assert_eq!(first_hit(&index, "saffron")["heading"], "page 4");
}

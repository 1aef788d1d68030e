//! Real PDF files written by lopdf (re-exported by pdf-extract), for the PDF tests: pages of
//! text in a standard font, a page with only a drawing (what a scan without OCR looks like to a
//! text extractor), password encryption, and a form that draws itself.

use pdf_extract::content::{Content, Operation};
use pdf_extract::{Dictionary, Document, Object, Stream, dictionary};

/// A PDF whose pages hold these texts, one line of the page per line of the text.
pub fn with_pages(pages: &[&str]) -> Vec<u8> {
    save(document(pages.iter().map(|p| encode(text_page(p))).collect()))
}

/// Like [`with_pages`], but the pages marked `None` hold a content stream that lopdf cannot
/// parse (a malformed inline image), which pdf-extract panics on.
pub fn with_unparsable_pages(pages: &[Option<&str>]) -> Vec<u8> {
    let contents = pages.iter().map(|p| p.map_or_else(|| b"BI /W 1 ID \xff EI".to_vec(), |p| encode(text_page(p))));
    save(document(contents.collect()))
}

/// A one-page PDF with a filled rectangle and no text.
pub fn drawing_only() -> Vec<u8> {
    let ops =
        vec![Operation::new("re", vec![100.into(), 100.into(), 200.into(), 300.into()]), Operation::new("f", vec![])];
    save(document(vec![encode(ops)]))
}

/// A one-page PDF whose page draws a form that draws itself (`/X1 Do` inside `X1`), as damaged
/// and hostile files do: pdf-extract follows it until the stack overflows, which aborts the
/// process (no `catch_unwind` stops that).
pub fn self_drawing_form() -> Vec<u8> {
    let mut doc = document(vec![b"/X1 Do".to_vec()]);
    let form_id = doc.new_object_id();
    let form = Stream::new(
        dictionary! {
            "Type" => "XObject",
            "Subtype" => "Form",
            "BBox" => vec![0.into(), 0.into(), 10.into(), 10.into()],
            "Resources" => dictionary! { "XObject" => dictionary! { "X1" => form_id } },
        },
        b"/X1 Do".to_vec(),
    );
    doc.objects.insert(form_id, Object::Stream(form));
    let page_id = doc.page_iter().next().expect("one page");
    let page = doc.get_object_mut(page_id).and_then(Object::as_dict_mut).expect("the page");
    page.set("Resources", dictionary! { "XObject" => dictionary! { "X1" => form_id } });
    save(doc)
}

/// A PDF of these pages that opens only with `user_password` ("" opens it for anyone).
pub fn encrypted(pages: &[&str], user_password: &str) -> Vec<u8> {
    let mut doc = document(pages.iter().map(|p| encode(text_page(p))).collect());
    let version = pdf_extract::encryption::EncryptionVersion::V2 {
        document: &doc,
        owner_password: "owner",
        user_password,
        key_length: 128,
        permissions: pdf_extract::encryption::Permissions::all(),
    };
    let state = pdf_extract::encryption::EncryptionState::try_from(version).expect("an encryption state");
    doc.encrypt(&state).expect("encrypts");
    save(doc)
}

fn text_page(text: &str) -> Vec<Operation> {
    let mut ops = vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec!["F1".into(), 12.into()]),
        Operation::new("TL", vec![16.into()]),
        Operation::new("Td", vec![72.into(), 760.into()]),
    ];
    for line in text.lines() {
        ops.push(Operation::new("Tj", vec![Object::string_literal(line)]));
        ops.push(Operation::new("T*", vec![]));
    }
    ops.push(Operation::new("ET", vec![]));
    ops
}

fn encode(operations: Vec<Operation>) -> Vec<u8> {
    Content { operations }.encode().expect("content encodes")
}

fn document(pages: Vec<Vec<u8>>) -> Document {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
    });
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let kids: Vec<Object> = pages
        .into_iter()
        .map(|content| {
            let content_id = doc.add_object(Stream::new(Dictionary::new(), content));
            doc.add_object(dictionary! { "Type" => "Page", "Parent" => pages_id, "Contents" => content_id }).into()
        })
        .collect();
    let count = kids.len() as i64;
    let pages = dictionary! {
        "Type" => "Pages",
        "Kids" => kids,
        "Count" => count,
        "Resources" => resources_id,
        "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
    };
    doc.objects.insert(pages_id, Object::Dictionary(pages));
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let id = Object::string_literal(b"qsearch-test-0001".to_vec());
    doc.trailer.set("ID", vec![id.clone(), id]);
    doc
}

fn save(mut doc: Document) -> Vec<u8> {
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("saves");
    out
}

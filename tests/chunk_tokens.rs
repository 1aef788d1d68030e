//! Chunks sized from one tokenization of the document stay within the budget when each chunk is
//! tokenized on its own, with the real Qwen3 tokenizer, on random documents of every kind:
//! prose, Markdown, code, CJK, emoji, long unbroken runs.

mod common;

use qsearch::text::chunk::{self, Settings, Sizer};
use qsearch::text::kind::{Kind, Lang};
use qsearch::text::pdf;

fn qwen3_tokenizer() -> tokenizers::Tokenizer {
    tokenizers::Tokenizer::from_file(common::qwen3_tokenizer_path()).unwrap()
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const WORDS: &[&str] = &[
    "the",
    "borrow",
    "checker",
    "keeps",
    "references",
    "valid",
    "indexing",
    "semantic",
    "search",
    "über",
    "naïve",
    "café",
    "don't",
    "e.g.",
    "3.14159",
    "2026-11-26",
    "https://example.com/a?b=c",
    "x",
    "I",
    "résumé",
];
const CJK: &[&str] = &["向量数据库", "语义搜索", "東京で寿司を食べました", "한국어 텍스트", "今天学习了", "。", "，"];
const CODE: &[&str] = &[
    "fn parse_config(path: &Path) -> Result<Config> {",
    "    let mut buf = Vec::with_capacity(1 << 20);",
    "    if self.store.max_vec_seq()? > 0 { return Ok(()); }",
    "def fetch_all(self, *args, **kwargs):",
    "        return [x for x in range(10) if x % 2 == 0]",
    "const HttpClient = require('http-client');",
    "}",
    "\t\t// TODO: handle the error case",
    "#include <stdio.h>",
    "SELECT c.id, d.display FROM chunks c JOIN documents d ON d.id = c.doc_id;",
];
const ODD: &[&str] = &[
    "🦀🦀🦀",
    "👩‍👩‍👧‍👦",
    "————",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "0xDEADBEEFCAFEBABE",
    "  \t  ",
    "\u{200b}",
];

fn line(rng: &mut Rng) -> String {
    match rng.below(10) {
        0..=3 => (0..rng.below(30) + 1).map(|_| rng.pick(WORDS)).collect::<Vec<_>>().join(" "),
        4 => (0..rng.below(6) + 1).map(|_| rng.pick(CJK)).collect::<String>(),
        5 | 6 => rng.pick(CODE).to_string(),
        7 => format!(
            "{} {}",
            "#".repeat(rng.below(3) + 1),
            (0..rng.below(12) + 1).map(|_| rng.pick(WORDS)).collect::<Vec<_>>().join(" ")
        ),
        8 => (0..rng.below(8) + 1).map(|_| rng.pick(ODD)).collect::<String>(),
        _ => String::new(),
    }
}

fn document(rng: &mut Rng) -> String {
    let mut doc: String = (0..rng.below(120) + 1).map(|_| line(rng) + "\n").collect();
    if rng.below(4) == 0 {
        // A long run with no whitespace at all: the splitter must cut inside it.
        doc.push_str(&(0..rng.below(400) + 50).map(|_| rng.pick(&["ab", "字", "🦀", "_x", "9"])).collect::<String>());
    }
    doc
}

#[test]
fn every_chunk_fits_the_budget_when_tokenized_alone() {
    let tokenizer = qwen3_tokenizer();
    let mut rng = Rng(0x5DEECE66D);
    let (mut checked, mut squeezed) = (0, 0);
    for round in 0..1000 {
        let kinds = [
            Kind::Markdown,
            Kind::Text,
            Kind::Code(None),
            Kind::Code(Some(Lang::Rust)),
            Kind::Code(Some(Lang::Python)),
            Kind::Pdf,
        ];
        let kind = kinds[round % kinds.len()];
        let mut doc = document(&mut rng);
        if kind == Kind::Pdf {
            // Pages, as `text::pdf` joins them.
            doc = doc
                .lines()
                .map(|l| if rng.below(8) == 0 { format!("{l}{}", pdf::PAGE_BREAK) } else { format!("{l}\n") })
                .collect();
        }
        let mut settings = [Settings::new(16, 0), Settings::new(64, 8), Settings::new(384, 32)][rng.below(3)];
        if (round / kinds.len()) % 2 == 1 {
            // What a model reads, a little more than the chunk: headings take the rest.
            settings.room = settings.tokens + 2 + rng.below(settings.tokens);
        }
        for c in chunk::split_tokens(&doc, kind, settings, &tokenizer) {
            let alone = tokenizer.encode_fast(c.text.as_str(), false).unwrap().len();
            assert!(alone <= settings.tokens, "{alone} tokens > {} in a {kind:?} chunk: {:?}", settings.tokens, c.text);
            let path = c.heading_path();
            let context =
                if path.is_empty() { 0 } else { tokenizer.encode_fast(path.as_str(), false).unwrap().len() + 1 };
            if settings.room != usize::MAX && context + settings.tokens / 2 <= settings.room {
                let embedded = tokenizer.encode_fast(chunk::embed_text(&path, &c.text).as_str(), false).unwrap().len();
                assert!(embedded <= settings.room, "{embedded} tokens with the heading > {}: {c:?}", settings.room);
                squeezed += (context + settings.tokens > settings.room) as usize;
            }
            assert_eq!(&doc[c.start_byte..c.end_byte], c.text, "byte range");
            let first_line = doc.lines().nth(c.start_line - 1).unwrap_or_default();
            assert!(first_line.contains(c.text.lines().next().unwrap_or_default()), "line range of {c:?}");
            assert!(c.end_line >= c.start_line && c.end_line <= doc.lines().count().max(1));
            if kind == Kind::Pdf {
                let page = doc[..c.start_byte].matches(pdf::PAGE_BREAK).count() + 1;
                assert_eq!(c.heading, vec![format!("page {page}")], "{c:?}");
                assert!(!c.text.contains(pdf::PAGE_BREAK), "a chunk spans two pages: {c:?}");
            }
            checked += 1;
        }
    }
    assert!(checked > 1000, "only {checked} chunks");
    assert!(squeezed > 100, "only {squeezed} chunks had less room for their heading");
}

#[test]
fn counts_from_the_whole_agree_with_counts_alone_at_word_boundaries() {
    let tokenizer = qwen3_tokenizer();
    let doc = "The borrow checker keeps references valid.\n\n向量数据库 and semantic search.\n";
    let Sizer::Tokens(offsets) = Sizer::tokens(doc, &tokenizer) else { unreachable!() };
    for (a, b) in [(0, doc.len()), (0, 3), (4, 10), (44, doc.len())] {
        let span = &doc[a..b];
        let alone = tokenizer.encode_fast(span, false).unwrap().len();
        assert_eq!(offsets.count(span), alone, "{span:?}");
    }
    // Text that is not part of the document is tokenized.
    assert_eq!(offsets.count("borrow"), tokenizer.encode_fast("borrow", false).unwrap().len());
}

/// The fast path (the pre-tokenizer's pattern matched by hand, pieces cached) gives exactly the
/// offsets of `Tokenizer::encode`, on random documents and on the real notes of
/// `../shared/corpora` when they are there; documents it does not handle (text NFC would change,
/// an added token such as `<|endoftext|>`) are left to `encode`.
#[test]
fn fast_token_offsets_are_the_tokenizers_own() {
    use qsearch::text::tokens;
    let tokenizer = qwen3_tokenizer();
    let same = |doc: &str| {
        let expected: Vec<(usize, usize)> = tokenizer.encode(doc, false).unwrap().get_offsets().to_vec();
        match tokens::offsets(&tokenizer, doc) {
            Some(fast) => {
                assert_eq!(fast.len(), expected.len(), "token count of {doc:?}");
                assert_eq!(fast, expected, "offsets of {doc:?}");
                true
            }
            None => false,
        }
    };
    let mut rng = Rng(0xC0FFEE);
    let mut fast = 0;
    for _ in 0..500 {
        fast += usize::from(same(&document(&mut rng)));
    }
    assert!(fast >= 450, "the fast path took only {fast} of 500 random documents");
    for odd in ["it's 'S 'Re 'VE 'll 'D \u{17f}", "a \u{3000}b\u{a0}\u{2028}c\r\n\r\n  \t", "e\u{301}", "", " ", "\n"] {
        same(odd);
    }
    assert!(!same("e\u{301}cole"), "not NFC: left to encode");
    // Added tokens: one token each, the text around them tokenized on its own (a space run
    // before one ends there, as at the end of the text).
    for added in [
        "x<|endoftext|>y",
        "a <|im_start|> b",
        "<|endoftext|>",
        "<|endoftext|><|endoftext|>\n\n",
        "text   <|im_end|>\n  <think>\n</think>  fn main() {}",
        "<|endoftext|<|endoftext|>|>",
        "<tool_call><|fim_prefix|>def f():\n    return 1<|fim_suffix|>",
    ] {
        assert!(same(added), "an added token on the fast path: {added:?}");
    }
    let mut rng = Rng(0xADDED);
    for _ in 0..200 {
        let mut doc = document(&mut rng);
        for _ in 0..rng.below(4) + 1 {
            let at = doc.char_indices().map(|(i, _)| i).nth(rng.below(doc.chars().count().max(1))).unwrap_or(doc.len());
            doc.insert_str(
                at,
                rng.pick(&["<|endoftext|>", "<|im_start|>", "<think>", " <|im_end|> ", "\n<|file_sep|>"]),
            );
        }
        assert!(same(&doc), "documents with added tokens stay on the fast path");
    }
    // Real files: this repository's own (Rust, Python, Markdown, SQL, TOML, JSON; always there,
    // a clean clone included), and the notes of `../shared/corpora` where they are.
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let compared = |root: &std::path::Path| {
        let (mut files, mut fast) = (0, 0);
        let walk = ignore::WalkBuilder::new(root).filter_entry(|e| e.file_name() != "target").build();
        for entry in walk.flatten().filter(|e| e.path().is_file()) {
            if let Ok(text) = std::fs::read_to_string(entry.path()) {
                fast += usize::from(same(&text));
                files += 1;
            }
        }
        eprintln!("{}: {fast} of {files} files compared on the fast path", root.display());
        (files, fast)
    };
    let (files, fast) = compared(repo);
    assert!(files >= 50 && fast * 10 >= files * 9, "the repository's own files: {fast} of {files} on the fast path");
    let corpora = repo.join("../shared/corpora");
    if corpora.is_dir() {
        compared(&corpora);
    }
}

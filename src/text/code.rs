//! Code chunked along its syntax tree (tree-sitter). A chunk is a function, method, class, impl
//! or the like, headed by its enclosing path (`impl Store > fn open`); one too long for a chunk
//! is cut inside (a container into its members, anything else by lines), and small neighbours
//! share a chunk up to the size limit. Comments and attributes go with what follows them. Files
//! of other languages, or that do not parse, are left to the plain-text chunker.
//!
//! Built with the `tree-sitter` feature (on by default). Without it, `text::code` is a stub
//! (in `text/mod.rs`) whose `split` answers `None`: every code file is chunked as plain text.

use std::cell::RefCell;
use std::collections::HashMap;

use std::ops::ControlFlow;
use std::time::{Duration, Instant};
use text_splitter::{ChunkConfig, ChunkSizer, TextSplitter};

use tree_sitter::{Language, Node, ParseOptions, ParseState, Parser};

use super::chunk::{Chunk, LineIndex, Settings};
use super::kind::Lang;

/// What one language's tree calls its definitions.
struct Grammar {
    /// Node kinds that start a chunk of their own, with the word that labels them.
    defs: &'static [(&'static str, &'static str)],
    /// Definitions that hold others in their `body`: cut into them when too long.
    containers: &'static [&'static str],
    /// Nodes around a definition (decorators, `export`, `template<>`): labelled by what they wrap.
    wrappers: &'static [&'static str],
}

const COMMENTS: &[&str] = &["comment", "line_comment", "block_comment", "attribute_item", "inner_attribute_item"];

const RUST: Grammar = Grammar {
    defs: &[
        ("function_item", "fn"),
        ("function_signature_item", "fn"),
        ("impl_item", "impl"),
        ("trait_item", "trait"),
        ("struct_item", "struct"),
        ("enum_item", "enum"),
        ("union_item", "union"),
        ("mod_item", "mod"),
        ("macro_definition", "macro_rules!"),
    ],
    containers: &["impl_item", "trait_item", "mod_item"],
    wrappers: &[],
};
const PYTHON: Grammar = Grammar {
    defs: &[("function_definition", "def"), ("class_definition", "class")],
    containers: &["class_definition"],
    wrappers: &["decorated_definition"],
};
const JAVASCRIPT: Grammar = Grammar {
    defs: &[
        ("function_declaration", "function"),
        ("generator_function_declaration", "function*"),
        ("class_declaration", "class"),
        ("abstract_class_declaration", "abstract class"),
        ("method_definition", "method"),
        ("lexical_declaration", "const"),
        ("interface_declaration", "interface"),
        ("type_alias_declaration", "type"),
        ("enum_declaration", "enum"),
        ("internal_module", "namespace"),
        ("function_signature", "function"),
    ],
    containers: &["class_declaration", "abstract_class_declaration", "interface_declaration", "internal_module"],
    wrappers: &["export_statement", "expression_statement"],
};
const GO: Grammar = Grammar {
    defs: &[("function_declaration", "func"), ("method_declaration", "func"), ("type_declaration", "type")],
    containers: &[],
    wrappers: &[],
};
const JAVA: Grammar = Grammar {
    defs: &[
        ("class_declaration", "class"),
        ("interface_declaration", "interface"),
        ("enum_declaration", "enum"),
        ("record_declaration", "record"),
        ("annotation_type_declaration", "@interface"),
        ("method_declaration", "method"),
        ("constructor_declaration", "constructor"),
    ],
    containers: &["class_declaration", "interface_declaration", "enum_declaration", "record_declaration"],
    wrappers: &[],
};
const C_CPP: Grammar = Grammar {
    defs: &[
        ("function_definition", "function"),
        ("class_specifier", "class"),
        ("struct_specifier", "struct"),
        ("union_specifier", "union"),
        ("enum_specifier", "enum"),
        ("namespace_definition", "namespace"),
        ("linkage_specification", "extern"),
    ],
    containers: &["class_specifier", "struct_specifier", "namespace_definition", "linkage_specification"],
    wrappers: &["template_declaration", "declaration", "type_definition"],
};
const SHELL: Grammar = Grammar { defs: &[("function_definition", "function")], containers: &[], wrappers: &[] };

fn grammar(lang: Lang) -> (&'static Grammar, Language) {
    match lang {
        Lang::Rust => (&RUST, tree_sitter_rust::LANGUAGE.into()),
        Lang::Python => (&PYTHON, tree_sitter_python::LANGUAGE.into()),
        Lang::JavaScript => (&JAVASCRIPT, tree_sitter_javascript::LANGUAGE.into()),
        Lang::TypeScript => (&JAVASCRIPT, tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into()),
        Lang::Tsx => (&JAVASCRIPT, tree_sitter_typescript::LANGUAGE_TSX.into()),
        Lang::Go => (&GO, tree_sitter_go::LANGUAGE.into()),
        Lang::Java => (&JAVA, tree_sitter_java::LANGUAGE.into()),
        Lang::C => (&C_CPP, tree_sitter_c::LANGUAGE.into()),
        Lang::Cpp => (&C_CPP, tree_sitter_cpp::LANGUAGE.into()),
        Lang::Shell => (&SHELL, tree_sitter_bash::LANGUAGE.into()),
    }
}

thread_local! {
    /// One parser per language and thread, made at first use.
    static PARSERS: RefCell<HashMap<Lang, Parser>> = RefCell::new(HashMap::new());
}

/// A stretch of the file: one definition (or what lies between definitions), with its path.
#[derive(Debug, Clone)]
struct Unit {
    start: usize,
    end: usize,
    path: Vec<String>,
    tokens: usize,
}

/// Containers cut into their members at most this deep (each level is a call of
/// [`Walker::tile`]): 100,000 nested `mod m {` overflowed the thread's stack and aborted the index.
const MAX_NESTING: usize = 64;

/// Lines longer than this on average mark generated or minified code: it has no structure
/// worth a parse (and parsing it is slow), so it is chunked as text.
const MINIFIED_LINE_BYTES: usize = 250;

/// Chunks of `text` along its syntax tree; `None` when it cannot be parsed or looks minified.
pub fn split<S: ChunkSizer>(text: &str, lang: Lang, settings: Settings, sizer: &S) -> Option<Vec<Chunk>> {
    let lines = text.bytes().filter(|&b| b == b'\n').count() + 1;
    if text.len() / lines > MINIFIED_LINE_BYTES {
        return None;
    }
    let (grammar, language) = grammar(lang);
    let tree = PARSERS.with(|parsers| {
        let mut parsers = parsers.borrow_mut();
        let parser = match parsers.entry(lang) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let mut p = Parser::new();
                p.set_language(&language).ok()?;
                e.insert(p)
            }
        };
        // Given up (the file then chunked as text) past a time that grows with the file:
        // tree-sitter's error recovery ran over 10 s (release build) on 3,000 nested
        // `fn f() {` ... `}` in shell, a 33 KB file, where code parses at megabytes a second.
        let deadline = Instant::now() + Duration::from_millis(1_000 + 20 * (text.len() as u64 / 1024));
        let mut in_time =
            |_: &ParseState| if Instant::now() < deadline { ControlFlow::Continue(()) } else { ControlFlow::Break(()) };
        let bytes = text.as_bytes();
        let options = ParseOptions::new().progress_callback(&mut in_time);
        let tree = parser.parse_with_options(&mut |at, _| &bytes[at.min(bytes.len())..], None, Some(options));
        if tree.is_none() {
            parser.reset();
        }
        tree
    })?;
    let budget = settings.tokens.max(1);
    let walker = Walker { text, grammar, sizer, budget };
    let mut units = Vec::new();
    walker.tile(tree.root_node(), 0, text.len(), &[], 0, &mut units);
    let lines = LineIndex::new(text);
    let mut chunks = Vec::new();
    for (start, end, path) in walker.pack(&units, settings) {
        let piece = &text[start..end];
        let lead = piece.len() - piece.trim_start().len();
        let (start, end) = (start + lead, start + piece.trim_end().len());
        if start >= end {
            continue;
        }
        chunks.push(Chunk {
            seq: chunks.len(),
            heading: path,
            start_byte: start,
            end_byte: end,
            start_line: lines.line_of(start),
            end_line: lines.line_of(end - 1),
            text: text[start..end].to_string(),
        });
    }
    Some(chunks)
}

struct Walker<'a, S> {
    text: &'a str,
    grammar: &'static Grammar,
    sizer: &'a S,
    budget: usize,
}

impl<S: ChunkSizer> Walker<'_, S> {
    fn size(&self, start: usize, end: usize) -> usize {
        self.sizer.size(&self.text[start..end])
    }

    /// Cuts `[from, to)`, the span of `parent`'s named children, into units: each child from
    /// the end of the one before it (so comments join what follows them) to its own end.
    /// `depth`: containers cut into above this one; past [`MAX_NESTING`] one is cut by lines.
    fn tile(&self, parent: Node, from: usize, to: usize, path: &[String], depth: usize, out: &mut Vec<Unit>) {
        let mut cursor = from;
        let mut walk = parent.walk();
        for child in parent.named_children(&mut walk) {
            if child.end_byte() <= from || COMMENTS.contains(&child.kind()) {
                continue;
            }
            let end = child.end_byte().min(to);
            let tokens = self.size(cursor, end);
            match self.definition(child) {
                Some((label, inner)) => {
                    let mut own = path.to_vec();
                    own.push(label);
                    let body = inner.child_by_field_name("body").filter(|b| b.named_child_count() > 0);
                    match body {
                        Some(body)
                            if tokens > self.budget
                                && depth < MAX_NESTING
                                && self.grammar.containers.contains(&inner.kind()) =>
                        {
                            let first = body.named_child(0).map_or(end, |n| n.start_byte());
                            out.push(Unit {
                                start: cursor,
                                end: first,
                                tokens: self.size(cursor, first),
                                path: own.clone(),
                            });
                            self.tile(body, first, end, &own, depth + 1, out);
                        }
                        _ => out.push(Unit { start: cursor, end, path: own, tokens }),
                    }
                }
                None => out.push(Unit { start: cursor, end, path: path.to_vec(), tokens }),
            }
            cursor = end;
        }
        if cursor < to {
            match out.last_mut() {
                Some(last) if last.end == cursor && from < cursor => {
                    last.end = to;
                    last.tokens = self.size(last.start, to);
                }
                _ => out.push(Unit { start: cursor, end: to, path: path.to_vec(), tokens: self.size(cursor, to) }),
            }
        }
    }

    /// The label of a definition (`fn open`, `impl Store`) and the node that holds its body.
    fn definition<'t>(&self, node: Node<'t>) -> Option<(String, Node<'t>)> {
        let kind = node.kind();
        if self.grammar.wrappers.contains(&kind) {
            let mut walk = node.walk();
            let inner = node.named_children(&mut walk).find(|c| self.grammar.defs.iter().any(|d| d.0 == c.kind()))?;
            return self.definition(inner);
        }
        let word = self.grammar.defs.iter().find(|d| d.0 == kind)?.1;
        let field = |name: &str| node.child_by_field_name(name).map(|n| self.node_text(n));
        let label = match kind {
            "impl_item" => match (field("trait"), field("type")) {
                (Some(t), Some(ty)) => format!("impl {t} for {ty}"),
                (_, ty) => format!("impl {}", ty.unwrap_or_default()),
            },
            "method_declaration" if word == "func" => {
                format!("func {} {}", field("receiver").unwrap_or_default(), field("name").unwrap_or_default())
            }
            "lexical_declaration" => {
                // `const f = () => ...`: a function by another name; other declarations are not.
                let declarator = node.named_child(0)?;
                let value = declarator.child_by_field_name("value")?;
                if !matches!(value.kind(), "arrow_function" | "function_expression" | "function" | "class") {
                    return None;
                }
                format!(
                    "const {}",
                    declarator.child_by_field_name("name").map(|n| self.node_text(n)).unwrap_or_default()
                )
            }
            // A struct or enum named only in passing (`struct a *p;`) is no definition.
            "struct_specifier" | "union_specifier" | "enum_specifier" | "class_specifier"
                if node.child_by_field_name("body").is_none() =>
            {
                return None;
            }
            _ => match self.name(node) {
                Some(name) => format!("{word} {name}"),
                None => word.to_string(),
            },
        };
        Some((label, node))
    }

    /// A node's name: its `name` field, or the name its declarator declares (C and C++).
    fn name(&self, node: Node) -> Option<String> {
        if let Some(n) = node.child_by_field_name("name") {
            return Some(self.node_text(n));
        }
        let mut at = node.child_by_field_name("declarator");
        while let Some(d) = at {
            if d.kind().contains("identifier") || d.kind().ends_with("_name") {
                return Some(self.node_text(d));
            }
            // `&at(...)`, `*make(...)`: the name is further down, under a field or not.
            at = d
                .child_by_field_name("declarator")
                .or_else(|| d.child_by_field_name("name"))
                .or_else(|| d.named_child(0));
        }
        let mut walk = node.walk();
        let spec = node.named_children(&mut walk).find(|c| c.kind() == "type_spec")?;
        spec.child_by_field_name("name").map(|n| self.node_text(n))
    }

    /// Text of a node on one line, cut to a readable length.
    fn node_text(&self, node: Node) -> String {
        let raw = &self.text[node.start_byte()..node.end_byte()];
        let one_line: String = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        match one_line.char_indices().nth(60) {
            Some((i, _)) => format!("{}…", &one_line[..i]),
            None => one_line,
        }
    }

    /// Units packed into chunks: neighbours share one while it stays within the budget; a unit
    /// over it is cut by lines. Returns (start, end, heading path) of each.
    fn pack(&self, units: &[Unit], settings: Settings) -> Vec<(usize, usize, Vec<String>)> {
        let mut out = Vec::new();
        let mut group: Vec<&Unit> = Vec::new();
        let mut tokens = 0;
        for unit in units {
            if !group.is_empty() && tokens + unit.tokens > self.budget {
                self.flush(&mut group, &mut out);
                tokens = 0;
            }
            if unit.tokens > self.budget {
                self.cut(unit, settings, &mut out);
                continue;
            }
            tokens += unit.tokens;
            group.push(unit);
        }
        self.flush(&mut group, &mut out);
        out
    }

    fn flush(&self, group: &mut Vec<&Unit>, out: &mut Vec<(usize, usize, Vec<String>)>) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else { return };
        let (start, end) = (first.start, last.end);
        // Token counts add up across unit boundaries (whitespace); check the whole anyway.
        if group.len() > 1 && self.size(start, end) > self.budget {
            out.extend(group.iter().map(|u| (u.start, u.end, u.path.clone())));
        } else {
            out.push((start, end, heading(group)));
        }
        group.clear();
    }

    /// A unit too long for one chunk, cut by lines as plain text is.
    fn cut(&self, unit: &Unit, settings: Settings, out: &mut Vec<(usize, usize, Vec<String>)>) {
        let overlap = settings.overlap.min(self.budget.saturating_sub(1));
        let Ok(config) = ChunkConfig::new(self.budget).with_sizer(self.sizer).with_overlap(overlap) else { return };
        let piece = &self.text[unit.start..unit.end];
        let splitter = TextSplitter::new(config);
        for (at, part) in super::chunk::by_sections(piece, false, |s| splitter.chunk_indices(s).collect()) {
            out.push((unit.start + at, unit.start + at + part.len(), unit.path.clone()));
        }
    }
}

/// The heading of units packed together: their common path, then the names below it.
fn heading(group: &[&Unit]) -> Vec<String> {
    let first = &group[0].path;
    let common =
        group.iter().fold(first.len(), |n, u| n.min(u.path.iter().zip(first).take_while(|(a, b)| a == b).count()));
    let mut path = first[..common].to_vec();
    let mut names: Vec<&str> = Vec::new();
    for u in group {
        if let Some(name) = u.path.get(common)
            && !names.contains(&name.as_str())
        {
            names.push(name);
        }
    }
    if !names.is_empty() {
        path.push(names.join(", "));
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::chunk::Sizer;

    /// Each container over the budget was cut into by a call inside the last: 100,000 nested
    /// modules overflowed the stack (issue 25).
    #[test]
    fn nested_containers_overflowed_the_stack() {
        let depth = 100_000;
        let text = format!("{}fn f() {{}}\n{}", "mod m {\n".repeat(depth), "}\n".repeat(depth));
        let chunks = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || split(&text, Lang::Rust, Settings::new(64, 0), &Sizer::Approx).map(|c| c.len()))
            .unwrap()
            .join()
            .unwrap();
        assert!(chunks.is_some_and(|n| n > depth / 64), "{chunks:?}");
    }

    /// tree-sitter's error recovery ran over 10 s on 3,000 nested `fn f() {` ... `}` of shell
    /// (found by benches/generated_inputs.sh, issue 25): the parse is given up and the file left
    /// to the text chunker, and the next parse on the thread's parser starts afresh.
    #[test]
    fn shell_parse_hung_on_unclosed_braces() {
        let text = format!("{}x{}", "fn f() {\n".repeat(3_000), "}\n".repeat(3_000));
        assert_eq!(split(&text, Lang::Shell, Settings::new(64, 0), &Sizer::Approx).map(|c| c.len()), None);
        let fine = split("f() {\n  echo hi\n}\n", Lang::Shell, Settings::new(64, 0), &Sizer::Approx).unwrap();
        assert_eq!(fine[0].heading, vec!["function f"]);
    }
}

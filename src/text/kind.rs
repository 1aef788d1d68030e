//! Which files qsearch reads, by name, and how each kind is turned into text.

use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Markdown,
    Text,
    Html,
    /// Text taken from a PDF's pages (`text::pdf`).
    Pdf,
    /// Source code, with its language when qsearch has a grammar for it (see `text::code`).
    Code(Option<Lang>),
}

/// The languages whose code is chunked by its syntax tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Rust,
    Python,
    JavaScript,
    TypeScript,
    Tsx,
    Go,
    Java,
    C,
    Cpp,
    Shell,
}

impl Lang {
    /// The language of a file extension (lowercase), when qsearch has its grammar.
    pub fn of_ext(ext: &str) -> Option<Lang> {
        Some(match ext {
            "rs" => Lang::Rust,
            "py" | "pyi" => Lang::Python,
            "js" | "mjs" | "cjs" | "jsx" => Lang::JavaScript,
            "ts" | "mts" | "cts" => Lang::TypeScript,
            "tsx" => Lang::Tsx,
            "go" => Lang::Go,
            "java" => Lang::Java,
            "c" => Lang::C,
            "h" | "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" => Lang::Cpp,
            "sh" | "bash" | "zsh" => Lang::Shell,
            _ => return None,
        })
    }
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Markdown => "markdown",
            Kind::Text => "text",
            Kind::Html => "html",
            Kind::Pdf => "pdf",
            Kind::Code(_) => "code",
        }
    }

    /// Its readable text is Markdown (an HTML page is read as Markdown): cut by its structure
    /// and headed by its headings.
    pub fn reads_as_markdown(self) -> bool {
        matches!(self, Kind::Markdown | Kind::Html)
    }
}

const TEXT: &[&str] = &["txt", "text", "rst", "org", "adoc", "asciidoc", "tex", "log", "csv", "tsv"];
const CODE: &[&str] = &[
    "rs", "py", "pyi", "js", "mjs", "cjs", "ts", "mts", "cts", "tsx", "jsx", "go", "java", "kt", "kts", "scala", "c",
    "h", "cc", "cpp", "cxx", "hpp", "hh", "cs", "fs", "rb", "php", "swift", "m", "mm", "sh", "bash", "zsh", "fish",
    "ps1", "lua", "sql", "r", "jl", "dart", "zig", "nim", "ex", "exs", "erl", "hs", "ml", "mli", "clj", "cljs", "el",
    "vim", "pl", "pm", "vue", "svelte", "css", "scss", "sass", "less", "toml", "yaml", "yml", "json", "ini", "cfg",
    "conf", "xml", "gradle", "cmake", "proto", "graphql", "tf", "nix", "elm", "v", "sol", "hxx",
];
const NAMES: &[&str] =
    &["readme", "license", "changelog", "makefile", "dockerfile", "justfile", "authors", "notes", "todo"];

/// The kind of a file from its name, or `None` when qsearch does not read it.
pub fn of(path: &Path) -> Option<Kind> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("md" | "markdown" | "mdx" | "mdown" | "mkd") => Some(Kind::Markdown),
        Some("html" | "htm" | "xhtml") => Some(Kind::Html),
        Some("pdf") => Some(Kind::Pdf),
        Some(e) if TEXT.contains(&e) => Some(Kind::Text),
        Some(e) if CODE.contains(&e) => Some(Kind::Code(Lang::of_ext(e))),
        _ => {
            let stem = path.file_stem()?.to_str()?.to_ascii_lowercase();
            NAMES.contains(&stem.as_str()).then_some(Kind::Text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_name() {
        assert_eq!(of(Path::new("a/b.MD")), Some(Kind::Markdown));
        assert_eq!(of(Path::new("x.rs")), Some(Kind::Code(Some(Lang::Rust))));
        assert_eq!(of(Path::new("x.hpp")), Some(Kind::Code(Some(Lang::Cpp))));
        assert_eq!(of(Path::new("x.lua")), Some(Kind::Code(None)));
        assert_eq!(of(Path::new("README")), Some(Kind::Text));
        assert_eq!(of(Path::new("paper.PDF")), Some(Kind::Pdf));
        assert_eq!(of(Path::new("photo.jpg")), None);
    }
}

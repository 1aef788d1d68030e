//! An HTML page as the text a person reads, shaped as Markdown: html5ever parses it as a browser
//! would (entities, comments, unclosed tags), then the tree is written out with `#` headings,
//! fenced `<pre>` blocks, `- ` list items and ` | ` between table cells, so that a page is cut
//! and headed like a note. Nothing is escaped: the text is for reading and searching, not for
//! turning back into HTML.
//!
//! Left out, as a reader does not see them as the page's text: `<head>` (its `<title>` is kept
//! apart), scripts, styles, templates, inline SVG and navigation menus (a site's menu, repeated
//! on every page, would otherwise be every page's first chunk), and, where the page marks its
//! main content (`<main>`), everything around it. Links keep their words, images their
//! alternative text.
//!
//! Built with the `html` feature (on by default); without it pages are read by the plain scan
//! of `text::html_plain`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer};
use html5ever::tree_builder::{TreeBuilder, TreeSink};
use html5ever::{LocalName, TokenizerResult};
use markup5ever_rcdom::{Handle, Node, NodeData, RcDom};

/// A page's text and its `<title>`.
#[derive(Debug, PartialEq)]
pub struct Page {
    pub text: String,
    pub title: Option<String>,
}

const HIDDEN: &[&str] =
    &["head", "script", "style", "noscript", "template", "svg", "nav", "iframe", "object", "canvas", "select"];

/// Elements that start and end a block of text.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "header",
    "hr",
    "main",
    "ol",
    "p",
    "section",
    "summary",
    "table",
    "ul",
];

pub fn page(html: &str) -> Page {
    let dom = parse(html);
    let title =
        find(&dom.document, &|n| tag(n) == Some("title")).map(|t| collapse(&raw_text(&t))).filter(|t| !t.is_empty());
    // A page that marks its main content (`<main>`, `role="main"`) is that content: the site's
    // header, sidebars, help pop-ups and footer around it are the same on every page.
    let main = find(&dom.document, &|n| tag(n) == Some("main") || attr(n, "role").as_deref() == Some("main"));
    let mut out = Writer::default();
    // The document stays alive until the end: dropping it empties every node under it, even
    // those still held (markup5ever_rcdom's drop is iterative and takes their children).
    out.write(main.as_ref().unwrap_or(&dom.document));
    Page { text: out.finish(), title }
}

/// `html` parsed as `html5ever::parse_document` does, with elements nested at most
/// [`MAX_DEPTH`] deep.
fn parse(html: &str) -> RcDom {
    let builder = TreeBuilder::new(RcDom::default(), Default::default());
    let tokenizer = Tokenizer::new(DepthCap::new(builder), Default::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    while let TokenizerResult::Script(_) = tokenizer.feed(&input) {}
    tokenizer.end();
    tokenizer.sink.inner.sink.finish()
}

/// Elements open inside each other beyond this are left out (their text is kept, in the element
/// that holds them), as browsers do (Blink stops nesting at 512). The tree builder looks through
/// the stack of open elements at every tag, so a page of 100,000 nested `<div>`s took it hours.
const MAX_DEPTH: usize = 512;

/// Elements that close themselves or that the tree builder closes when the next of their kind
/// opens: they never nest deep, so they are neither counted nor left out.
const SELF_CLOSING: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr", "p", "li",
    "dt", "dd", "option", "optgroup", "tr", "td", "th", "tbody", "thead", "tfoot", "caption", "colgroup", "html",
    "head", "body", "h1", "h2", "h3", "h4", "h5", "h6", "rb", "rp", "rt", "rtc",
];

/// Passes the tokenizer's tokens to the tree builder, less start tags (and their end tags) that
/// would open elements deeper than [`MAX_DEPTH`]. It keeps its own stack of the elements open,
/// closed as the tree builder closes them on an end tag (every element above the one named).
struct DepthCap {
    inner: TreeBuilder<Handle, RcDom>,
    open: RefCell<Vec<LocalName>>,
    /// Start tags left out, by name, whose end tags are left out too.
    left_out: RefCell<HashMap<LocalName, usize>>,
    any_left_out: Cell<bool>,
}

impl DepthCap {
    fn new(inner: TreeBuilder<Handle, RcDom>) -> DepthCap {
        DepthCap { inner, open: RefCell::default(), left_out: RefCell::default(), any_left_out: Cell::new(false) }
    }

    /// Whether `token` goes on to the tree builder.
    fn keeps(&self, token: &Token) -> bool {
        let Token::TagToken(tag) = token else { return true };
        if tag.self_closing || SELF_CLOSING.contains(&&*tag.name) {
            return true;
        }
        let mut open = self.open.borrow_mut();
        match tag.kind {
            TagKind::StartTag if open.len() >= MAX_DEPTH => {
                *self.left_out.borrow_mut().entry(tag.name.clone()).or_default() += 1;
                self.any_left_out.set(true);
                false
            }
            TagKind::StartTag => {
                open.push(tag.name.clone());
                true
            }
            TagKind::EndTag => {
                if self.any_left_out.get()
                    && let Some(n) = self.left_out.borrow_mut().get_mut(&tag.name).filter(|n| **n > 0)
                {
                    *n -= 1;
                    return false;
                }
                if let Some(at) = open.iter().rposition(|name| *name == tag.name) {
                    open.truncate(at);
                }
                true
            }
        }
    }
}

impl TokenSink for DepthCap {
    type Handle = Handle;

    fn process_token(&self, token: Token, line_number: u64) -> TokenSinkResult<Handle> {
        if self.keeps(&token) { self.inner.process_token(token, line_number) } else { TokenSinkResult::Continue }
    }

    fn end(&self) {
        self.inner.end()
    }

    fn adjusted_current_node_present_but_not_in_html_namespace(&self) -> bool {
        self.inner.adjusted_current_node_present_but_not_in_html_namespace()
    }
}

fn tag(node: &Node) -> Option<&str> {
    match &node.data {
        NodeData::Element { name, .. } => Some(&name.local),
        _ => None,
    }
}

fn attr(node: &Node, key: &str) -> Option<String> {
    match &node.data {
        NodeData::Element { attrs, .. } => {
            attrs.borrow().iter().find(|a| &*a.name.local == key).map(|a| a.value.to_string())
        }
        _ => None,
    }
}

// The tree is walked with a stack of its own, never by recursion: a page of 200,000 nested
// `<div>`s would otherwise overflow the thread's stack and abort the whole index.

/// The nodes under `node` in document order.
fn descendants(node: &Rc<Node>) -> impl Iterator<Item = Rc<Node>> {
    let mut stack: Vec<Rc<Node>> = node.children.borrow().iter().rev().cloned().collect();
    std::iter::from_fn(move || {
        let next = stack.pop()?;
        stack.extend(next.children.borrow().iter().rev().cloned());
        Some(next)
    })
}

/// The first element, in document order, that `wanted` holds for.
fn find(node: &Rc<Node>, wanted: &dyn Fn(&Node) -> bool) -> Option<Rc<Node>> {
    descendants(node).find(|n| wanted(n))
}

/// Every text node under `node`, as written.
fn raw_text(node: &Rc<Node>) -> String {
    let mut out = String::new();
    for n in descendants(node) {
        if let NodeData::Text { contents } = &n.data {
            out.push_str(&contents.borrow());
        }
    }
    out
}

/// Runs of white space as one space (a no-break space is a space to the reader, and to the
/// tokenizers), trimmed.
fn collapse(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c == '\u{a0}').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

#[derive(Default)]
struct Writer {
    out: String,
}

impl Writer {
    /// Ends the current line (one empty line after it when `blank`), unless nothing has been
    /// written on it but a list item's marker.
    fn break_line(&mut self, blank: bool) {
        self.out.truncate(self.out.trim_end_matches(' ').len());
        if self.out.is_empty() {
            return;
        }
        if self.out == "-" || self.out.ends_with("\n-") {
            self.out.push(' ');
            return;
        }
        let ends = self.out.len() - self.out.trim_end_matches('\n').len();
        for _ in ends..if blank { 2 } else { 1 } {
            self.out.push('\n');
        }
    }

    fn at_line_start(&self) -> bool {
        self.out.is_empty() || self.out.ends_with('\n')
    }

    fn words(&mut self, text: &str) {
        let starts_with_space = text.starts_with(|c: char| c.is_whitespace() || c == '\u{a0}');
        let ends_with_space = text.ends_with(|c: char| c.is_whitespace() || c == '\u{a0}');
        let words = collapse(text);
        if starts_with_space && !self.at_line_start() && !self.out.ends_with(' ') {
            self.out.push(' ');
        }
        self.out.push_str(&words);
        if ends_with_space && !words.is_empty() {
            self.out.push(' ');
        }
    }

    fn write(&mut self, root: &Rc<Node>) {
        enum Step {
            Open(Rc<Node>),
            /// A line break after an element's children, with an empty line when `true`.
            Close(bool),
        }
        let mut stack = vec![Step::Open(root.clone())];
        while let Some(step) = stack.pop() {
            let node = match step {
                Step::Close(blank) => {
                    self.break_line(blank);
                    continue;
                }
                Step::Open(node) => node,
            };
            let Some(close) = self.open(&node) else { continue };
            if let Some(blank) = close {
                stack.push(Step::Close(blank));
            }
            stack.extend(node.children.borrow().iter().rev().map(|c| Step::Open(c.clone())));
        }
    }

    /// Writes what `node` itself shows. `None`: its children are not read (they are hidden, or
    /// were written here); else they are, then a line break when it holds `Some(blank)`.
    fn open(&mut self, node: &Rc<Node>) -> Option<Option<bool>> {
        let name = match &node.data {
            NodeData::Text { contents } => {
                self.words(&contents.borrow());
                return None;
            }
            NodeData::Element { name, .. } => &*name.local,
            NodeData::Document => return Some(None),
            _ => return None,
        };
        match name {
            _ if HIDDEN.contains(&name) => None,
            "br" => {
                self.break_line(false);
                None
            }
            "img" => {
                if let Some(alt) = attr(node, "alt").map(|a| collapse(&a)).filter(|a| !a.is_empty()) {
                    self.words(&format!(" {alt} "));
                }
                None
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                let heading = collapse(&raw_text(node));
                self.break_line(true);
                if !heading.is_empty() {
                    let level = usize::from(name.as_bytes()[1] - b'0');
                    self.out.push_str(&format!("{} {heading}\n\n", "#".repeat(level)));
                }
                None
            }
            "pre" => {
                let code = raw_text(node);
                let code = code.trim_matches('\n');
                self.break_line(true);
                if !code.trim().is_empty() {
                    let fence = if code.lines().any(|l| l.trim_start().starts_with("```")) { "~~~" } else { "```" };
                    self.out.push_str(&format!("{fence}\n{code}\n{fence}\n\n"));
                }
                None
            }
            "li" => {
                self.break_line(false);
                self.out.push_str("- ");
                Some(Some(false))
            }
            "td" | "th" => {
                if !self.at_line_start() {
                    self.out.truncate(self.out.trim_end_matches(' ').len());
                    self.out.push_str(" | ");
                }
                Some(None)
            }
            "tr" => {
                self.break_line(false);
                Some(Some(false))
            }
            _ if BLOCKS.contains(&name) => {
                self.break_line(true);
                Some(Some(true))
            }
            _ => Some(None),
        }
    }

    fn finish(mut self) -> String {
        self.out.truncate(self.out.trim_end_matches([' ', '\n']).len());
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_code_lists_and_tables_keep_their_shape() {
        let p = page(
            "<html><head><title>Guide |\n Site</title><style>p{}</style></head><body>\
             <nav><a href='/'>Home</a> <a href='/a'>All pages</a></nav>\
             <h1>Install</h1><p>Run the <a href='https://x.org/dl'>installer</a> &amp; wait.</p>\
             <h2>On <code>Linux</code></h2><pre><code class='language-sh'># build\nmake &amp;&amp; make install\n</code></pre>\
             <ul><li>one</li><li>two <b>2</b></li></ul><img src='x.png' alt='a diagram'><img src='y.png'>\
             <table><tr><th>key</th><th>value</th></tr><tr><td>a_b</td><td>1 * 2</td></tr></table>\
             <script>var x = 1 < 2;</script></body></html>",
        );
        assert_eq!(p.title.as_deref(), Some("Guide | Site"));
        assert_eq!(
            p.text,
            "# Install\n\nRun the installer & wait.\n\n## On Linux\n\n```\n# build\nmake && make install\n```\n\n\
             - one\n- two 2\n\na diagram\n\nkey | value\na_b | 1 * 2\n"
        );
    }

    #[test]
    fn entities_comments_and_broken_markup() {
        let p = page("<p>It&#8217;s 5&nbsp;&mdash; caf&eacute; &#x2192; &copy;<!-- <p>hidden</p> --> <b>bold <i>open");
        assert_eq!(p.text, "It\u{2019}s 5 \u{2014} caf\u{e9} \u{2192} \u{a9} bold open\n");
        assert_eq!(p.title, None);
        assert_eq!(page("").text, "");
        assert_eq!(page("<p>  </p><h2> </h2>").text, "");
    }

    /// A generated book's page (mdBook's shape): the menu bar's title, the help pop-up and the
    /// footer are the same on every page; the chapter is in `<main>`.
    #[test]
    fn a_page_with_main_content_is_that_content() {
        let p = page(
            "<title>Strings - The Book</title><div id='help'><h2>Keyboard shortcuts</h2><p>Press S</p></div>\
             <div class='menu'><h1 class='menu-title'>The Book</h1></div>\
             <div id='content'><main><h2>Strings</h2><p>UTF-8 text.</p></main></div><footer>Edit this page</footer>",
        );
        assert_eq!(p.text, "## Strings\n\nUTF-8 text.\n");
        assert_eq!(p.title.as_deref(), Some("Strings - The Book"));
        assert_eq!(page("<body><div role=main><p>Only this</p></div><p>not this</p>").text, "Only this\n");
    }

    #[test]
    fn a_page_nested_deeper_than_any_stack_is_read() {
        let depth = 20_000;
        let html = format!("<title>t</title>{}deep words{}", "<div>".repeat(depth), "</div>".repeat(depth));
        let p = std::thread::Builder::new().stack_size(256 * 1024).spawn(move || page(&html)).unwrap().join().unwrap();
        assert_eq!(p.text, "deep words\n");
    }

    /// The tree builder looked through every open element at each tag: 16,000 nested `<div>`s
    /// took 1.7 s, 128,000 some 100 s (issue 25). Past [`MAX_DEPTH`] elements are left out and
    /// their text kept.
    #[test]
    fn html_parse_quadratic_in_nesting_depth() {
        let depth = 200_000;
        let html = format!("{}<h2>Deep</h2><p>a</p><p>b <b>c</b></p>{}", "<div>".repeat(depth), "</div>".repeat(depth));
        assert_eq!(page(&html).text, "## Deep\n\na\n\nb c\n");
        let html = format!("{}<p>x</p>{}<ul><li>y</ul>", "<span><i>".repeat(depth), "</i></span>".repeat(depth));
        assert_eq!(page(&html).text, "x\n\n- y\n");
    }

    #[test]
    fn a_fence_inside_code_gets_the_other_fence() {
        let p = page("<pre>```\nx\n```</pre>");
        assert_eq!(p.text, "~~~\n```\nx\n```\n~~~\n");
    }
}

//! An HTML page's text by a plain scan, for builds without the `html` feature (html5ever, see
//! `text::html`): tags dropped, the text of `<script>`, `<style>`, `<head>` and the like left
//! out, the common entities decoded, block elements ending their line and headings written as
//! `#` headings. It does not repair broken markup or leave out navigation as the parser does.
//! Built in every configuration, so that the default test run tests it too.

/// A page's text and its `<title>`.
#[derive(Debug, PartialEq)]
pub struct Page {
    pub text: String,
    pub title: Option<String>,
}

/// Elements whose content is not the page's text.
const HIDDEN: &[&str] = &["head", "script", "style", "noscript", "template", "svg", "iframe", "object", "canvas"];

/// Elements that start and end a block of text.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "form",
    "header",
    "hr",
    "li",
    "main",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tr",
    "ul",
];

pub fn page(html: &str) -> Page {
    let mut out = String::new();
    let mut title = None;
    let mut rest = html;
    let mut in_pre = false;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            words(&mut out, rest, in_pre);
            break;
        };
        words(&mut out, &rest[..lt], in_pre);
        rest = &rest[lt..];
        if !rest[1..].starts_with(|c: char| c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?')) {
            // A `<` that opens no tag (`a < b`) is text.
            words(&mut out, "<", in_pre);
            rest = &rest[1..];
            continue;
        }
        if let Some(comment) = rest.strip_prefix("<!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else {
            // A `<` that opens no tag is text.
            words(&mut out, rest, in_pre);
            break;
        };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if name.is_empty() {
            continue; // `<!doctype>`, `<?xml?>`
        }
        if !closing && (name == "title" || HIDDEN.contains(&name.as_str())) && !tag.ends_with('/') {
            // Skipped up to its closing tag; `<head>` gives up its `<title>` first.
            let end = find_ignoring_case(rest, &format!("</{name}")).unwrap_or(rest.len());
            let inner = &rest[..end];
            if name == "title" || name == "head" {
                let inner = if name == "head" { title_in(inner) } else { Some(inner) };
                if let Some(t) = inner.map(|t| collapse(&decode(t))).filter(|t| !t.is_empty()) {
                    title = title.or(Some(t));
                }
            }
            rest = &rest[end..];
            rest = rest.find('>').map_or("", |gt| &rest[gt + 1..]);
            continue;
        }
        match name.as_str() {
            "br" => out.push('\n'),
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                break_block(&mut out);
                if !closing {
                    out.push_str(&"#".repeat(usize::from(name.as_bytes()[1] - b'0')));
                    out.push(' ');
                }
            }
            "pre" => {
                break_block(&mut out);
                in_pre = !closing;
            }
            "td" | "th" if !closing && !out.is_empty() && !out.ends_with('\n') => {
                out.truncate(out.trim_end_matches(' ').len());
                out.push_str(" | ");
            }
            _ if BLOCKS.contains(&name.as_str()) => break_block(&mut out),
            _ => {}
        }
    }
    Page { text: tidy(&out), title }
}

/// The text of the first `<title>` in `head`.
fn title_in(head: &str) -> Option<&str> {
    let open = find_ignoring_case(head, "<title")?;
    let start = open + head[open..].find('>')? + 1;
    let end = find_ignoring_case(&head[start..], "</title").map_or(head.len(), |e| start + e);
    Some(&head[start..end])
}

fn find_ignoring_case(haystack: &str, needle: &str) -> Option<usize> {
    let needle = needle.as_bytes();
    haystack.as_bytes().windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle))
}

/// Text between tags, its entities decoded; outside `<pre>` its white space runs are one space.
fn words(out: &mut String, text: &str, in_pre: bool) {
    let text = decode(text);
    if in_pre {
        out.push_str(&text);
        return;
    }
    for (i, word) in text.split(|c: char| c.is_ascii_whitespace()).enumerate() {
        if i > 0 && !out.ends_with([' ', '\n']) && !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
}

fn break_block(out: &mut String) {
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
    }
}

/// Lines trimmed at their end, at most one blank line in a row, no blank lines around.
fn tidy(text: &str) -> String {
    let mut out = String::new();
    let mut blank = false;
    for line in text.lines().map(str::trim_end) {
        if line.trim().is_empty() {
            blank = !out.is_empty();
            continue;
        }
        if blank {
            out.push('\n');
            blank = false;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&nbsp;` and numeric references decoded; other
/// named ones stay as written.
fn decode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest.char_indices().take(12).find(|&(_, c)| c == ';').map(|(i, _)| i);
        let decoded = end.and_then(|end| {
            let name = &rest[1..end];
            let c = match name {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                "nbsp" => ' ',
                _ => {
                    let number = name.strip_prefix('#')?;
                    let code = match number.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => number.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_go_headings_stay_and_hidden_parts_are_left_out() {
        let html = "<!doctype html><html><head><title>Install &amp; run</title><style>p{}</style></head>\
                    <body><!-- menu --><h1>Install</h1><p>Run the <a href='x'>installer</a>\n   with sudo.</p>\
                    <script>var a = 1 < 2;</script><ul><li>one<li>two &#233;&#x41;</ul>\
                    <pre>fn main() {\n    go();\n}</pre><p>5 &lt; 6 &unknown; & more</p></body></html>";
        let page = page(html);
        assert_eq!(page.title.as_deref(), Some("Install & run"));
        assert_eq!(
            page.text,
            "# Install\n\nRun the installer with sudo.\n\none\n\ntwo éA\n\nfn main() {\n    go();\n}\n\n5 < 6 &unknown; & more\n"
        );
    }

    #[test]
    fn broken_markup_is_read_to_its_end() {
        assert_eq!(page("a < b <p>c").text, "a < b\n\nc\n");
        assert_eq!(page("text <!-- never closed").text, "text\n");
        assert_eq!(page("<title>Only a title").title.as_deref(), Some("Only a title"));
        assert_eq!(page("<b>bold</b><i>it</i> x").text, "boldit x\n");
        assert_eq!(page("<table><tr><td>a <td>b</tr><tr><th>c</table>").text, "a | b\n\nc\n");
        assert_eq!(page("<p>caf&eacute; &#xFFFFFFFF; &#").text, "caf&eacute; &#xFFFFFFFF; &#\n");
    }
}

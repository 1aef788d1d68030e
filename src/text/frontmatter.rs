//! A Markdown note's metadata. The block at its top: YAML between `---` lines (Obsidian, Jekyll,
//! Hugo, most static-site tools) or TOML between `+++` lines (Hugo). qsearch takes its title and
//! its tags (`tags`, `tag`, `keywords`, `categories`); the block itself stays in the text, so
//! keyword and semantic search still see it.
//!
//! Tags written in the text (`#tag`, as Obsidian and Bear read them) count too
//! ([`inline_tags`]). Tags are kept as people filter on them: trimmed, without a leading `#`, lowercased. A tag
//! given as one string is split on commas and spaces (`tags: rust, cli` or `tags: rust cli`).

/// What a note's frontmatter says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontmatter {
    pub title: Option<String>,
    pub tags: Vec<String>,
    /// The block could not be parsed (its title and tags are then unknown), in words.
    pub error: Option<String>,
}

const TAG_KEYS: &[&str] = &["tags", "tag", "keywords", "categories"];

/// What a Markdown note says of itself: its frontmatter, with the `#tags` of its text added.
pub fn of_note(text: &str) -> Frontmatter {
    let mut fm = read(text).unwrap_or_default();
    for t in inline_tags(text) {
        if !fm.tags.contains(&t) {
            fm.tags.push(t);
        }
    }
    fm
}

/// The frontmatter of `text`, if it opens with one (a closing line is required).
pub fn read(text: &str) -> Option<Frontmatter> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text.lines().next()?;
    let fence = match first.trim_end() {
        "---" => "---",
        "+++" => "+++",
        _ => return None,
    };
    let body_start = first.len() + 1;
    let mut offset = body_start;
    let mut end = None;
    for line in text.get(body_start..)?.split_inclusive('\n') {
        let bare = line.trim_end();
        if bare == fence || (fence == "---" && bare == "...") {
            end = Some(offset);
            break;
        }
        offset += line.len();
    }
    let block = &text[body_start.min(text.len())..end?];
    Some(if fence == "---" { from_yaml(block) } else { from_toml(block) })
}

fn from_yaml(block: &str) -> Frontmatter {
    use yaml_rust2::{Yaml, YamlLoader};
    let docs = match YamlLoader::load_from_str(block) {
        Ok(docs) => docs,
        Err(e) => return broken(format!("frontmatter is not valid YAML ({e})")),
    };
    let Some(Yaml::Hash(map)) = docs.into_iter().next() else { return Frontmatter::default() };
    let mut fm = Frontmatter::default();
    for (key, value) in map {
        let Some(key) = key.as_str().map(str::to_ascii_lowercase) else { continue };
        if key == "title" {
            fm.title = yaml_scalar(&value).filter(|t| !t.trim().is_empty()).map(|t| t.trim().to_string());
        } else if TAG_KEYS.contains(&key.as_str()) {
            match value {
                Yaml::Array(items) => items.iter().filter_map(yaml_scalar).for_each(|t| add_tags(&mut fm.tags, &t)),
                other => {
                    if let Some(t) = yaml_scalar(&other) {
                        add_tags(&mut fm.tags, &t)
                    }
                }
            }
        }
    }
    fm
}

fn yaml_scalar(y: &yaml_rust2::Yaml) -> Option<String> {
    use yaml_rust2::Yaml;
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn from_toml(block: &str) -> Frontmatter {
    let table: toml::Table = match block.parse() {
        Ok(t) => t,
        Err(e) => return broken(format!("frontmatter is not valid TOML ({})", e.message())),
    };
    let mut fm = Frontmatter::default();
    for (key, value) in table {
        let key = key.to_ascii_lowercase();
        if key == "title" {
            fm.title = value.as_str().map(str::trim).filter(|t| !t.is_empty()).map(str::to_string);
        } else if TAG_KEYS.contains(&key.as_str()) {
            match value {
                toml::Value::Array(items) => items.iter().filter_map(toml::Value::as_str).for_each(|t| add_tags(&mut fm.tags, t)),
                toml::Value::String(s) => add_tags(&mut fm.tags, &s),
                _ => {}
            }
        }
    }
    fm
}

fn broken(why: String) -> Frontmatter {
    Frontmatter { error: Some(why), ..Frontmatter::default() }
}

/// The tags of one value: split on commas and whitespace, normalised, each once.
fn add_tags(tags: &mut Vec<String>, value: &str) {
    for t in value.split(|c: char| c == ',' || c.is_whitespace()) {
        if let Some(t) = normalise(t)
            && !tags.contains(&t)
        {
            tags.push(t);
        }
    }
}

/// Tags written in a note's text, as Obsidian and Bear take them: `#` at the start of a line or
/// after a space, then letters, digits, `_`, `-` and `/` with at least one that is not a
/// digit (`#123` is an issue number, `# Title` a heading). Code blocks, code spans and link
/// reference definitions are passed over.
pub fn inline_tags(text: &str) -> Vec<String> {
    let mut tags = Vec::new();
    let mut fence: Option<&str> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(m) = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m)) {
            fence = match fence {
                None => Some(m),
                Some(f) if f == m => None,
                open => open,
            };
            continue;
        }
        // Code, and link reference definitions (`[name]: #anchor`).
        if fence.is_some() || (trimmed.starts_with('[') && trimmed.contains("]:")) {
            continue;
        }
        let mut in_code = false;
        let mut prev = ' ';
        let mut chars = line.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '`' {
                in_code = !in_code;
            } else if c == '#' && !in_code && prev.is_whitespace() {
                let rest = &line[i + 1..];
                let len = rest.find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '/'))).unwrap_or(rest.len());
                let word = &rest[..len];
                if word.chars().any(|c| !c.is_ascii_digit())
                    && let Some(t) = normalise(word)
                    && !tags.contains(&t)
                {
                    tags.push(t);
                }
                for _ in 0..word.chars().count() {
                    chars.next();
                }
                prev = word.chars().last().unwrap_or('#');
                continue;
            }
            prev = c;
        }
    }
    tags
}

/// A tag as stored and as asked for: trimmed, no leading `#`, lowercase; `None` when empty.
pub fn normalise(tag: &str) -> Option<String> {
    let t = tag.trim().trim_start_matches('#').trim_end_matches('/').to_lowercase();
    (!t.is_empty()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(text: &str) -> Vec<String> {
        read(text).expect("frontmatter").tags
    }

    #[test]
    fn yaml_lists_strings_and_keys_all_give_tags() {
        assert_eq!(tags("---\ntags: [Deploy, fly.io]\n---\nbody"), vec!["deploy", "fly.io"]);
        assert_eq!(tags("---\ntags:\n  - recipe\n  - '#cooking/Italian'\n---\n"), vec!["recipe", "cooking/italian"]);
        assert_eq!(tags("---\ntags: rust, cli tools\n---\n"), vec!["rust", "cli", "tools"]);
        assert_eq!(tags("---\nkeywords: [a]\ncategories: b\ntag: a\n---\n"), vec!["a", "b"]);
        assert_eq!(tags("---\ntags: [2024, true]\n---\n"), vec!["2024", "true"]);
        assert_eq!(tags("---\ntitle: x\n...\nbody"), Vec::<String>::new());
    }

    #[test]
    fn the_title_is_taken_trimmed_and_an_empty_one_is_none() {
        let fm = read("\u{feff}---\r\ntitle: \"Deploying with Fly\"\r\ndate: 2024-03-02\r\n---\r\n# Steps\n").unwrap();
        assert_eq!(fm.title.as_deref(), Some("Deploying with Fly"));
        assert_eq!(read("---\ntitle: '  '\n---\n").unwrap().title, None);
    }

    #[test]
    fn toml_frontmatter_is_read_too() {
        let fm = read("+++\ntitle = \"Hugo post\"\ntags = [\"Go\", \"web\"]\n+++\nbody").unwrap();
        assert_eq!(fm.title.as_deref(), Some("Hugo post"));
        assert_eq!(fm.tags, vec!["go", "web"]);
    }

    #[test]
    fn no_block_and_unclosed_blocks_are_no_frontmatter() {
        assert_eq!(read("# Title\n---\ntags: [a]\n---\n"), None);
        assert_eq!(read("---\ntags: [a]\nno closing line"), None);
        assert_eq!(read(""), None);
        // A thematic break and a table header are not blocks either.
        assert_eq!(read("----\nx\n----\n"), None);
    }

    #[test]
    fn a_broken_block_says_why_and_gives_nothing() {
        let fm = read("---\ntags: [a, b\ntitle: x\n---\nbody").unwrap();
        assert!(fm.error.as_deref().is_some_and(|e| e.starts_with("frontmatter is not valid YAML")), "{fm:?}");
        assert!(fm.tags.is_empty() && fm.title.is_none());
        let fm = read("+++\ntitle = \n+++\n").unwrap();
        assert!(fm.error.as_deref().is_some_and(|e| e.starts_with("frontmatter is not valid TOML")), "{fm:?}");
    }

    #[test]
    fn inline_tags_are_words_after_a_hash_outside_code() {
        let text = "# Heading\n\nMet with #Alice about #project/alpha and #2024-plans.\n\
                    Issue #123, color:#fff, a [link](#anchor), (#paren) and C# or x#y.\n\
                    `#not-code` here ## nor this\n```\n#include <stdio.h>\n```\n~~~\n#nope\n~~~\n[ref]: #an-anchor\n#last";
        assert_eq!(inline_tags(text), vec!["alice", "project/alpha", "2024-plans", "last"]);
        assert!(inline_tags("no tags, #1 and # heading").is_empty());
    }

    #[test]
    fn tags_are_normalised_the_same_way_people_ask_for_them() {
        assert_eq!(normalise(" #Rust/ "), Some("rust".into()));
        assert_eq!(normalise("#"), None);
    }
}

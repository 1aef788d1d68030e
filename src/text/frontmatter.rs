//! A Markdown note's metadata. The block at its top: YAML between `---` lines (Obsidian, Jekyll,
//! Hugo, most static-site tools) or TOML between `+++` lines (Hugo). qsearch takes its title,
//! its tags (`tags`, `tag`, `keywords`, `categories`) and its date (`date`, `updated`,
//! `lastmod`...); the block itself stays in the text, so keyword and semantic search still see it.
//!
//! Tags written in the text (`#tag`, as Obsidian and Bear read them) count too
//! ([`inline_tags`]). Tags are kept as people filter on them: trimmed, without a leading `#`, lowercased. A tag
//! given as one string is split on commas and spaces (`tags: rust, cli` or `tags: rust cli`).

/// What a note's frontmatter says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontmatter {
    pub title: Option<String>,
    pub tags: Vec<String>,
    /// The latest of the dates the block gives ([`DATE_KEYS`]), in nanoseconds since the Unix
    /// epoch: when the note says it was written or last changed. Time filters prefer it to the
    /// file's mtime, which a copy or a `git clone` resets.
    pub date_ns: Option<i64>,
    /// The block could not be parsed (its title and tags are then unknown), in words.
    pub error: Option<String>,
}

const TAG_KEYS: &[&str] = &["tags", "tag", "keywords", "categories"];

/// Keys whose value is a date the note gives itself: written, published, last changed
/// (Obsidian templates, Jekyll, Hugo, Zola, Docusaurus, Astro), lowercased.
pub const DATE_KEYS: &[&str] =
    &["date", "created", "updated", "modified", "lastmod", "last_modified", "published", "pubdate", "updateddate"];

/// What a Markdown note says of itself: its frontmatter, with the `#tags` of its text added.
pub fn of_note(text: &str) -> Frontmatter {
    let mut fm = read(text).unwrap_or_default();
    fm.tags.extend(inline_tags(text));
    each_once(&mut fm.tags);
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
    if let Some(nodes) = yaml_nodes_over(block, MAX_YAML_NODES) {
        return broken(format!("frontmatter's YAML aliases expand to over {nodes} values: not read"));
    }
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
        } else if DATE_KEYS.contains(&key.as_str()) {
            add_date(&mut fm.date_ns, yaml_scalar(&value).as_deref());
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
    each_once(&mut fm.tags);
    fm
}

/// The most values a front matter block may hold once its aliases are expanded. The YAML loader
/// copies an anchored value at every alias, so a few hundred bytes of nested aliases (a
/// "billion laughs") would otherwise take minutes and gigabytes; real front matter holds tens
/// (a million values, as a generated list of tags, read in well under a second).
const MAX_YAML_NODES: u64 = 1_000_000;

/// `Some(limit)` when `block`, its aliases expanded, holds more than `limit` values. Counted on
/// the parser's events (linear in the text), before anything is expanded.
fn yaml_nodes_over(block: &str, limit: u64) -> Option<u64> {
    use yaml_rust2::parser::{Event, EventReceiver, Parser};
    #[derive(Default)]
    struct Count {
        open: Vec<(usize, u64)>,
        anchored: std::collections::HashMap<usize, u64>,
        total: u64,
    }
    impl Count {
        fn add(&mut self, anchor: usize, n: u64) {
            if anchor > 0 {
                self.anchored.insert(anchor, n);
            }
            match self.open.last_mut() {
                Some((_, size)) => *size = size.saturating_add(n),
                None => self.total = self.total.saturating_add(n),
            }
        }
    }
    impl EventReceiver for Count {
        fn on_event(&mut self, ev: Event) {
            match ev {
                Event::Scalar(_, _, anchor, _) => self.add(anchor, 1),
                Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => self.open.push((anchor, 1)),
                Event::SequenceEnd | Event::MappingEnd => {
                    if let Some((anchor, n)) = self.open.pop() {
                        self.add(anchor, n)
                    }
                }
                Event::Alias(id) => {
                    let n = self.anchored.get(&id).copied().unwrap_or(1);
                    self.add(0, n)
                }
                _ => {}
            }
        }
    }
    let mut count = Count::default();
    // A parse error is the loader's to report.
    let _ = Parser::new_from_str(block).load(&mut count, true);
    let most = count.open.iter().fold(count.total, |t, (_, n)| t.saturating_add(*n));
    (most > limit).then_some(limit)
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
        } else if DATE_KEYS.contains(&key.as_str()) {
            let text = match &value {
                toml::Value::Datetime(d) => Some(d.to_string()),
                other => other.as_str().map(str::to_string),
            };
            add_date(&mut fm.date_ns, text.as_deref());
        } else if TAG_KEYS.contains(&key.as_str()) {
            match value {
                toml::Value::Array(items) => {
                    items.iter().filter_map(toml::Value::as_str).for_each(|t| add_tags(&mut fm.tags, t))
                }
                toml::Value::String(s) => add_tags(&mut fm.tags, &s),
                _ => {}
            }
        }
    }
    each_once(&mut fm.tags);
    fm
}

/// Keeps the later of `date` and what `value` says (a value that is not a date is passed over).
fn add_date(date: &mut Option<i64>, value: Option<&str>) {
    if let Some(ns) = value.and_then(moment) {
        *date = Some(date.map_or(ns, |d| d.max(ns)));
    }
}

/// A date or time as notes write them, in nanoseconds since the Unix epoch: RFC 3339
/// (`2026-11-27T10:30:00Z`, `2026-11-27 10:30:00+01:00`), or a local date and time
/// (`2026-11-27`, `2026-11-27 10:30`, `2026-11-27T10:30:00`), or a date in English words
/// (`Nov 27 2026`, `November 27, 2026`); local midnight for a bare date, as the search filters
/// take `2026-11-27`.
pub fn moment(value: &str) -> Option<i64> {
    use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone};
    let v = value.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(v) {
        return at.timestamp_nanos_opt();
    }
    let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(v, f).ok())
        .or_else(|| {
            ["%Y-%m-%d", "%b %d %Y", "%b %d, %Y", "%B %d %Y", "%B %d, %Y"]
                .iter()
                .find_map(|f| NaiveDate::parse_from_str(v, f).ok())
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
    // A local time skipped by a clock change: the earliest one of it that exists, else UTC.
    let at = Local.from_local_datetime(&naive).earliest().unwrap_or_else(|| Local.from_utc_datetime(&naive));
    at.timestamp_nanos_opt()
}

fn broken(why: String) -> Frontmatter {
    Frontmatter { error: Some(why), ..Frontmatter::default() }
}

/// The tags of one value: split on commas and whitespace, normalised (each kept once by
/// [`each_once`]).
fn add_tags(tags: &mut Vec<String>, value: &str) {
    tags.extend(value.split(|c: char| c == ',' || c.is_whitespace()).filter_map(normalise));
}

/// `tags` with each kept once, where it first came: looking each up in those before took time
/// growing with the square of their number (a note of 32,000 `#tags` took 4 s, issue 25).
fn each_once(tags: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    tags.retain(|t| seen.insert(t.clone()));
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
                let len =
                    rest.find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '/'))).unwrap_or(rest.len());
                let word = &rest[..len];
                if word.chars().any(|c| !c.is_ascii_digit())
                    && let Some(t) = normalise(word)
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
    each_once(&mut tags);
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
    fn aliases_are_read_but_a_billion_laughs_is_refused_before_it_expands() {
        assert_eq!(tags("---\nbase: &t [rust, cli]\ntags: *t\n---\n"), vec!["rust", "cli"]);
        // Ten values, then six levels of ten aliases each: 10^7 once expanded (seconds and
        // gigabytes; three more levels would take hours), 200 bytes here.
        let mut y = String::from("---\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..7 {
            y += &format!("a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 10].join(", "));
        }
        y += "tags: [deep]\n---\nbody\n";
        let fm = read(&y).unwrap();
        assert!(fm.error.as_deref().is_some_and(|e| e.contains("aliases")), "{:?}", fm.error);
        assert!(fm.tags.is_empty());
    }

    #[test]
    fn the_title_is_taken_trimmed_and_an_empty_one_is_none() {
        let fm = read("\u{feff}---\r\ntitle: \"Deploying with Fly\"\r\ndate: 2024-03-02\r\n---\r\n# Steps\n").unwrap();
        assert_eq!(fm.title.as_deref(), Some("Deploying with Fly"));
        assert_eq!(read("---\ntitle: '  '\n---\n").unwrap().title, None);
    }

    #[test]
    fn a_note_s_date_is_the_latest_it_gives_in_any_common_form() {
        use chrono::{Local, TimeZone};
        let local =
            |y, m, d, h, min| Local.with_ymd_and_hms(y, m, d, h, min, 0).earliest().unwrap().timestamp_nanos_opt();
        let date = |text: &str| read(text).unwrap().date_ns;
        assert_eq!(
            date(
                "---
date: 2024-03-02
---
"
            ),
            local(2024, 3, 2, 0, 0),
            "a bare date: local midnight"
        );
        assert_eq!(
            date(
                "---
created: 2024-03-02 10:30
---
"
            ),
            local(2024, 3, 2, 10, 30)
        );
        assert_eq!(
            date(
                "---
Date: '2024-03-02T10:30:15'
---
"
            ),
            local(2024, 3, 2, 10, 30).map(|ns| ns + 15_000_000_000)
        );
        assert_eq!(
            date(
                "---
date: 2024-03-02T10:30:00Z
---
"
            ),
            Some(1_709_375_400_000_000_000)
        );
        assert_eq!(
            date(
                "---
date: 2024-03-02 11:30:00+01:00
---
"
            ),
            Some(1_709_375_400_000_000_000)
        );
        // Written, then updated: the note last changed when it was updated, in either order.
        let both = local(2025, 1, 15, 0, 0);
        assert_eq!(
            date(
                "---
date: 2024-03-02
updated: 2025-01-15
---
"
            ),
            both
        );
        assert_eq!(
            date(
                "---
lastmod: 2025-01-15
date: 2024-03-02
---
"
            ),
            both
        );
        // Astro's blog template.
        assert_eq!(date("---\npubDate: 'Jul 08 2022'\nupdatedDate: 'January 15, 2025'\n---\n"), both);
        assert_eq!(date("---\npubDate: 'Jul 08 2022'\n---\n"), local(2022, 7, 8, 0, 0));
        // TOML's own date and time values, and strings.
        assert_eq!(
            date(
                "+++
date = 2024-03-02T10:30:00Z
+++
"
            ),
            Some(1_709_375_400_000_000_000)
        );
        assert_eq!(
            date(
                "+++
date = 2024-03-02
+++
"
            ),
            local(2024, 3, 2, 0, 0)
        );
        assert_eq!(
            date(
                "+++
lastmod = \"2025-01-15\"
+++
"
            ),
            both
        );
        // What is not a date is passed over, and the block still gives the rest.
        let fm = read(
            "---
date: next week
updated: [2024]
title: Plans
---
",
        )
        .unwrap();
        assert_eq!((fm.date_ns, fm.title.as_deref(), fm.error), (None, Some("Plans"), None));
        assert_eq!(
            date(
                "---
deadline: 2024-03-02
---
"
            ),
            None,
            "only the note's own dates"
        );
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

    /// Each tag was looked up in those before it: 32,000 `#tags` took 4 s, 256,000 minutes.
    #[test]
    fn tags_deduplicated_in_quadratic_time() {
        let text: String = (0..200_000).map(|i| format!("#t{} ", i % 150_000)).collect();
        let tags = inline_tags(&text);
        assert_eq!((tags.len(), tags[0].as_str(), tags[149_999].as_str()), (150_000, "t0", "t149999"));
        let block = format!("---\ntags: [b, {}, a, b]\n---\n#a #c", tags.join(", "));
        let fm = of_note(&block);
        assert_eq!(fm.tags.len(), 150_003);
        assert_eq!(fm.tags[..2], ["b", "t0"]);
        assert_eq!(fm.tags[150_001..], ["a", "c"]);
    }

    #[test]
    fn tags_are_normalised_the_same_way_people_ask_for_them() {
        assert_eq!(normalise(" #Rust/ "), Some("rust".into()));
        assert_eq!(normalise("#"), None);
    }
}

//! Which files a search looks in: by path (a glob), type, frontmatter tag and date (a note's
//! frontmatter date, else the file's modification time).
//! The same filter comes from the command line's flags, the MCP tool's arguments and the
//! terminal UI's filter line ([`Filter::parse_line`]). Pure: the searcher turns a filter into the
//! chunks it allows.

use chrono::{DateTime, Local, NaiveDate, TimeZone};

use crate::text::frontmatter;

/// What a search is limited to; every part given must hold (tags: each of them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Filter {
    /// A glob over the path, absolute or relative to an indexed folder.
    pub path: Option<String>,
    /// Any of these types.
    pub types: Vec<FileType>,
    /// Frontmatter tags, normalised; a tag also matches its nested tags (`cooking` matches
    /// `cooking/italian`).
    pub tags: Vec<String>,
    /// Dated at or after, in nanoseconds since the Unix epoch: a note's frontmatter date, else
    /// the file's modification time.
    pub since_ns: Option<i64>,
    /// Dated before.
    pub until_ns: Option<i64>,
}

/// A file type as people name it: a kind of document, or a language or extension.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FileType {
    /// `markdown`, `text`, `html`, `pdf` or `code` (what the index stores per document).
    Kind(&'static str),
    /// Files ending in one of these extensions (lowercase, no dot), and the name asked for.
    Extensions(Vec<String>, String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error(
        "unknown file type `{0}`: use markdown, text, html, pdf, code, a language (rust, python, javascript, \
         typescript, go, java, c, cpp, shell...) or an extension (toml)"
    )]
    Type(String),
    #[error("cannot read `{0}` as a date (2026-11-01, today, yesterday) or a time ago (12h, 7d, 2w, 3months, 1y)")]
    When(String),
    #[error("`{0}` is not a tag")]
    Tag(String),
    #[error("{0}: nothing after the colon")]
    Empty(String),
}

const KINDS: &[(&str, &[&str])] = &[
    ("markdown", &["markdown", "md"]),
    ("text", &["text"]),
    ("html", &["html", "htm"]),
    ("pdf", &["pdf"]),
    ("code", &["code"]),
];

/// Languages by name and alias, with their extensions.
const LANGUAGES: &[(&[&str], &[&str])] = &[
    (&["rust", "rs"], &["rs"]),
    (&["python", "py"], &["py", "pyi"]),
    (&["javascript", "js"], &["js", "mjs", "cjs", "jsx"]),
    (&["typescript", "ts"], &["ts", "mts", "cts", "tsx"]),
    (&["go", "golang"], &["go"]),
    (&["java"], &["java"]),
    (&["kotlin", "kt"], &["kt", "kts"]),
    (&["c"], &["c", "h"]),
    (&["cpp", "c++", "cxx"], &["cc", "cpp", "cxx", "hpp", "hh", "hxx"]),
    (&["csharp", "c#", "cs"], &["cs"]),
    (&["shell", "sh", "bash", "zsh"], &["sh", "bash", "zsh", "fish"]),
    (&["ruby", "rb"], &["rb"]),
    (&["yaml", "yml"], &["yaml", "yml"]),
];

impl FileType {
    pub fn parse(name: &str) -> Result<FileType, FilterError> {
        let lower = name.trim().trim_start_matches('.').to_lowercase();
        if let Some((kind, _)) = KINDS.iter().find(|(_, names)| names.contains(&lower.as_str())) {
            return Ok(FileType::Kind(kind));
        }
        if let Some((_, exts)) = LANGUAGES.iter().find(|(names, _)| names.contains(&lower.as_str())) {
            return Ok(FileType::Extensions(exts.iter().map(|e| e.to_string()).collect(), lower));
        }
        let plausible =
            !lower.is_empty() && lower.len() <= 12 && lower.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if plausible {
            // Any other extension, as given (`toml`, `ipynb`).
            return Ok(FileType::Extensions(vec![lower.clone()], lower));
        }
        Err(FilterError::Type(name.to_string()))
    }

    /// Whether a document of stored `kind` at `path` is of this type.
    pub fn matches(&self, kind: &str, path: &str) -> bool {
        match self {
            FileType::Kind(k) => *k == kind,
            FileType::Extensions(exts, _) => {
                let ext = std::path::Path::new(path).extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
                ext.is_some_and(|e| exts.contains(&e))
            }
        }
    }

    pub fn name(&self) -> &str {
        match self {
            FileType::Kind(k) => k,
            FileType::Extensions(_, asked) => asked,
        }
    }
}

/// A moment from a date (`2026-11-01`, local midnight; with `end_of_day`, the next midnight, so
/// that `until:2026-11-01` takes in that day), `today`, `yesterday`, or a time ago (`7d`, `2w`,
/// `3months`, as humantime reads durations): nanoseconds since the Unix epoch.
pub fn moment(text: &str, now: DateTime<Local>, end_of_day: bool) -> Result<i64, FilterError> {
    let t = text.trim().to_lowercase();
    let day = match t.as_str() {
        "today" => Some(now.date_naive()),
        "yesterday" => now.date_naive().pred_opt(),
        _ => NaiveDate::parse_from_str(&t, "%Y-%m-%d").ok(),
    };
    let at = if let Some(day) = day {
        let day = if end_of_day { day.succ_opt().ok_or_else(|| FilterError::When(text.into()))? } else { day };
        let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
        // A midnight skipped by a clock change: the earliest time of that day that exists.
        Local.from_local_datetime(&midnight).earliest().unwrap_or_else(|| Local.from_utc_datetime(&midnight))
    } else {
        let ago = humantime::parse_duration(&t).map_err(|_| FilterError::When(text.into()))?;
        let ago = chrono::Duration::from_std(ago).map_err(|_| FilterError::When(text.into()))?;
        now.checked_sub_signed(ago).ok_or_else(|| FilterError::When(text.into()))?
    };
    at.timestamp_nanos_opt().ok_or_else(|| FilterError::When(text.into()))
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Adds a tag as asked for (`#rust`, `Rust`).
    pub fn add_tag(&mut self, tag: &str) -> Result<(), FilterError> {
        let t = frontmatter::normalise(tag).ok_or_else(|| FilterError::Tag(tag.into()))?;
        if !self.tags.contains(&t) {
            self.tags.push(t);
        }
        Ok(())
    }

    /// A filter from its parts as flags and tool arguments give them: types may be comma lists,
    /// `since` and `until` are [`moment`]s.
    pub fn from_parts(
        path: Option<&str>,
        types: &[String],
        tags: &[String],
        since: Option<&str>,
        until: Option<&str>,
        now: DateTime<Local>,
    ) -> Result<Filter, FilterError> {
        let mut f =
            Filter { path: path.map(str::trim).filter(|p| !p.is_empty()).map(str::to_string), ..Filter::default() };
        for t in types.iter().flat_map(|t| t.split(',')).filter(|t| !t.trim().is_empty()) {
            f.types.push(FileType::parse(t)?);
        }
        // Each once, by a set: looking each up in those before took time growing with the square
        // of their number (a tool call can send any number).
        let mut seen = std::collections::HashSet::new();
        for t in tags {
            let n = frontmatter::normalise(t).ok_or_else(|| FilterError::Tag(t.clone()))?;
            if seen.insert(n.clone()) {
                f.tags.push(n);
            }
        }
        f.since_ns = since.map(|w| moment(w, now, false)).transpose()?;
        f.until_ns = until.map(|w| moment(w, now, true)).transpose()?;
        Ok(f)
    }

    /// The terminal UI's filter line: `type:`, `tag:`, `since:`, `until:` and `path:` words,
    /// and anything else as a path: a glob when it has glob characters, else a part of the path
    /// (`notes` -> `*notes*`).
    pub fn parse_line(line: &str, now: DateTime<Local>) -> Result<Filter, FilterError> {
        let (mut types, mut tags, mut since, mut until, mut path_words) =
            (Vec::new(), Vec::new(), None, None, Vec::new());
        for word in line.split_whitespace() {
            let Some((key, value)) = word.split_once(':') else {
                path_words.push(word);
                continue;
            };
            let key = key.to_ascii_lowercase();
            if !["type", "tag", "since", "until", "path"].contains(&key.as_str()) {
                path_words.push(word);
                continue;
            }
            if value.is_empty() {
                return Err(FilterError::Empty(word.into()));
            }
            match key.as_str() {
                "type" => types.push(value.to_string()),
                "tag" => tags.push(value.to_string()),
                "since" => since = Some(value),
                "until" => until = Some(value),
                _ => path_words.push(value),
            }
        }
        let path = path_words.join(" ");
        let glob = (!path.is_empty())
            .then(|| if path.contains(['*', '?', '[', '{']) { path.clone() } else { format!("*{path}*") });
        Filter::from_parts(glob.as_deref(), &types, &tags, since, until, now)
    }

    /// The filter in a few words, for "no results" messages: `path *.md, type rust, tag x,
    /// modified since 2026-11-20`.
    pub fn describe(&self) -> String {
        let day =
            |ns: i64| DateTime::from_timestamp_nanos(ns).with_timezone(&Local).format("%Y-%m-%d %H:%M").to_string();
        let mut parts = Vec::new();
        if let Some(p) = &self.path {
            parts.push(format!("path {p}"));
        }
        if !self.types.is_empty() {
            parts.push(format!("type {}", self.types.iter().map(FileType::name).collect::<Vec<_>>().join(" or ")));
        }
        if !self.tags.is_empty() {
            parts.push(format!("tag {}", self.tags.join(" and ")));
        }
        if let Some(ns) = self.since_ns {
            parts.push(format!("modified since {}", day(ns)));
        }
        if let Some(ns) = self.until_ns {
            parts.push(format!("modified before {}", day(ns)));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Local> {
        Local.with_ymd_and_hms(2026, 11, 27, 15, 30, 0).unwrap()
    }

    fn ns(y: i32, m: u32, d: u32) -> i64 {
        Local.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap().timestamp_nanos_opt().unwrap()
    }

    #[test]
    fn types_are_kinds_languages_or_extensions() {
        assert_eq!(FileType::parse("MD"), Ok(FileType::Kind("markdown")));
        assert_eq!(FileType::parse("pdf"), Ok(FileType::Kind("pdf")));
        let rust = FileType::parse("rust").unwrap();
        assert!(rust.matches("code", "/a/lib.rs") && !rust.matches("code", "/a/lib.py"));
        assert!(FileType::parse("py").unwrap().matches("code", "/a/stubs.PYI"));
        assert!(FileType::parse(".toml").unwrap().matches("code", "/a/Cargo.toml"));
        assert!(FileType::parse("c++").unwrap().matches("code", "/a/x.hpp"));
        assert!(!FileType::parse("code").unwrap().matches("markdown", "/a/x.md"));
        let err = FileType::parse("no such/type").unwrap_err().to_string();
        assert!(err.starts_with("unknown file type `no such/type`: use markdown"), "{err}");
    }

    #[test]
    fn moments_are_dates_at_local_midnight_or_times_ago() {
        assert_eq!(moment("2026-11-01", now(), false), Ok(ns(2026, 11, 1)));
        assert_eq!(moment("2026-11-01", now(), true), Ok(ns(2026, 11, 2)), "until a day takes that day in");
        assert_eq!(moment("today", now(), false), Ok(ns(2026, 11, 27)));
        assert_eq!(moment("Yesterday", now(), false), Ok(ns(2026, 11, 26)));
        let week = now().timestamp_nanos_opt().unwrap() - 7 * 86_400 * 1_000_000_000;
        assert_eq!(moment("7d", now(), false), Ok(week));
        assert_eq!(moment("1week", now(), true), Ok(week));
        assert!(moment("3months", now(), false).unwrap() < moment("2w", now(), false).unwrap());
        let err = moment("last tuesday", now(), false).unwrap_err().to_string();
        assert!(err.starts_with("cannot read `last tuesday` as a date (2026-11-01"), "{err}");
        assert!(moment("2026-13-01", now(), false).is_err());
    }

    #[test]
    fn the_filter_line_takes_keys_and_leaves_the_rest_as_a_path() {
        let f = Filter::parse_line("notes type:md,rust tag:#Cooking since:2026-11-01 until:yesterday", now()).unwrap();
        assert_eq!(f.path.as_deref(), Some("*notes*"));
        assert_eq!(f.types.iter().map(FileType::name).collect::<Vec<_>>(), vec!["markdown", "rust"]);
        assert_eq!(f.tags, vec!["cooking"]);
        assert_eq!((f.since_ns, f.until_ns), (Some(ns(2026, 11, 1)), Some(ns(2026, 11, 27))));
        assert_eq!(Filter::parse_line("src/**/*.rs", now()).unwrap().path.as_deref(), Some("src/**/*.rs"));
        assert_eq!(Filter::parse_line("path:docs", now()).unwrap().path.as_deref(), Some("*docs*"));
        // A colon in a path is a path (Windows drives, URLs in names), not an unknown key.
        assert_eq!(Filter::parse_line("C:/notes", now()).unwrap().path.as_deref(), Some("*C:/notes*"));
        assert!(Filter::parse_line("", now()).unwrap().is_empty());
        assert_eq!(Filter::parse_line("tag:", now()), Err(FilterError::Empty("tag:".into())));
        assert!(Filter::parse_line("since:soon", now()).is_err());
    }

    /// 51,200 `tag:` words took 3 s, and the time grew with the square of their number.
    #[test]
    fn filter_tags_deduplicated_in_quadratic_time() {
        let tags: Vec<String> = (0..200_000).map(|i| format!("#T{}", i % 150_000)).collect();
        let f = Filter::from_parts(None, &[], &tags, None, None, now()).unwrap();
        assert_eq!((f.tags.len(), f.tags[0].as_str(), f.tags[149_999].as_str()), (150_000, "t0", "t149999"));
        let err = Filter::from_parts(None, &[], &["a".into(), " # ".into()], None, None, now()).unwrap_err();
        assert_eq!(err, FilterError::Tag(" # ".into()));
    }

    #[test]
    fn a_filter_describes_itself() {
        let mut f = Filter { path: Some("*.md".into()), types: vec![FileType::Kind("pdf")], ..Filter::default() };
        f.add_tag("A").unwrap();
        f.add_tag("b").unwrap();
        f.since_ns = Some(ns(2026, 11, 20));
        assert_eq!(f.describe(), "path *.md, type pdf, tag a and b, modified since 2026-11-20 00:00");
        assert_eq!(f.add_tag("  "), Err(FilterError::Tag("  ".into())));
    }
}

//! Identifiers as words. Code names things `parse_config`, `HttpClient` or `MAX_FILE_MB`, while
//! people search for "parse config" or "http client". [`parts`] cuts an identifier where its
//! words meet: underscores, a lowercase letter or digit before an uppercase one, and the end of
//! an acronym (`HTTPServer` -> `HTTP`, `Server`). Digits stay with the letters before them
//! (`utf8`, `sha256`, `base64Encode` -> `base64`, `Encode`).

/// The words of one identifier (a run of letters, digits and underscores), as slices of it, in
/// order. Leading, trailing and repeated underscores give no empty parts.
pub fn parts(word: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for piece in word.split('_').filter(|p| !p.is_empty()) {
        let mut start = 0;
        let mut prev: Option<char> = None;
        let mut iter = piece.char_indices().peekable();
        while let Some((i, c)) = iter.next() {
            if let Some(p) = prev {
                let next_lower = iter.peek().is_some_and(|&(_, n)| n.is_lowercase());
                let camel = c.is_uppercase() && (p.is_lowercase() || p.is_ascii_digit());
                let acronym_end = c.is_uppercase() && p.is_uppercase() && next_lower;
                if (camel || acronym_end) && i > start {
                    out.push(&piece[start..i]);
                    start = i;
                }
            }
            prev = Some(c);
        }
        out.push(&piece[start..]);
    }
    out
}

/// Whether `c` belongs to an identifier.
pub fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_each_naming_style() {
        assert_eq!(parts("parse_config"), ["parse", "config"]);
        assert_eq!(parts("HttpClient"), ["Http", "Client"]);
        assert_eq!(parts("httpClient"), ["http", "Client"]);
        assert_eq!(parts("MAX_FILE_MB"), ["MAX", "FILE", "MB"]);
        assert_eq!(parts("HTTPServer"), ["HTTP", "Server"]);
        assert_eq!(parts("parseJSON"), ["parse", "JSON"]);
        assert_eq!(parts("base64Encode"), ["base64", "Encode"]);
        assert_eq!(parts("utf8"), ["utf8"]);
        assert_eq!(parts("__init__"), ["init"]);
        assert_eq!(parts("_private_fn"), ["private", "fn"]);
        assert_eq!(parts("x"), ["x"]);
        assert_eq!(parts("Ünïcode_straße"), ["Ünïcode", "straße"]);
        assert!(parts("___").is_empty());
    }
}

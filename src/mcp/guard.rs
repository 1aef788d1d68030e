//! Who may talk to `qsearch mcp --http`, decided on every request before MCP sees it.
//!
//! - **On loopback** the threat is a web page in the user's own browser: it can make the browser
//!   send requests to `127.0.0.1`, directly (with its own `Origin`) or through DNS rebinding (with
//!   its own name as `Host`). So `Host` must be a loopback name, and `Origin`, when there is one,
//!   a loopback origin (a local tool's page); anything else is refused with 403.
//! - **Off loopback** (`--allow-remote`) anyone on the network can connect, so every request
//!   needs the bearer token ([`super::token`]): 401 without it or with another. A browser's
//!   `Origin`, when there is one, must be the server's own (the `Host` the request names).
//!
//! The token is also required on loopback when asked (`--token`). Refusals are logged (warn).

use std::net::IpAddr;

use hyper::HeaderMap;
use hyper::header::{AUTHORIZATION, HOST, ORIGIN};

use super::token::Token;

/// The checks for one listener.
#[derive(Debug, Clone)]
pub struct Guard {
    loopback: bool,
    token: Option<Token>,
}

/// Why a request was refused, as logged and as answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("its Host {0:?} is not a loopback name (a DNS rebinding attempt?)")]
    Host(String),
    #[error("its Origin {0:?} is not allowed (a web page's request?)")]
    Origin(String),
    #[error("it has no bearer token (Authorization: Bearer ...)")]
    NoToken,
    #[error("its bearer token is not this server's")]
    WrongToken,
}

impl Refusal {
    /// 403 for a foreign page, 401 for a missing or wrong token.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Host(_) | Refusal::Origin(_) => 403,
            Refusal::NoToken | Refusal::WrongToken => 401,
        }
    }
}

impl Guard {
    /// `loopback`: the server listens on a loopback address. `token`: required from every
    /// client; it must be given off loopback.
    pub fn new(loopback: bool, token: Option<Token>) -> Guard {
        Guard { loopback, token }
    }

    pub fn needs_token(&self) -> bool {
        self.token.is_some()
    }

    /// Checks a request's headers: `Host` (on loopback), then `Origin`, then the token.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let host = headers.get(HOST).map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());
        if self.loopback && !host.as_deref().and_then(authority).is_some_and(|(name, _)| is_loopback_name(&name)) {
            return Err(Refusal::Host(host.unwrap_or_default()));
        }
        if let Some(origin) = headers.get(ORIGIN) {
            let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
            let allowed = if self.loopback {
                parse_origin(&origin).is_some_and(|o| is_loopback_name(&o.host))
            } else {
                // Same origin: a page the server itself would serve, at the name it was reached by.
                let own = host.as_deref().and_then(authority).map(|(name, port)| (name, port.unwrap_or(80)));
                parse_origin(&origin).is_some_and(|o| {
                    o.scheme == "http" && own.is_some_and(|(name, port)| o.host == name && o.port == port)
                })
            };
            if !allowed {
                return Err(Refusal::Origin(origin));
            }
        }
        if let Some(token) = &self.token {
            let presented = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer);
            match presented {
                None => return Err(Refusal::NoToken),
                Some(presented) if !token.matches(presented) => return Err(Refusal::WrongToken),
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// The token of an `Authorization: Bearer TOKEN` value (the scheme in any case).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// `localhost` (and names under `.localhost`, which resolve to loopback) or a loopback address.
fn is_loopback_name(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A `Host` value's name (lower case, an IPv6 address in brackets) and port, if it names one.
fn authority(value: &str) -> Option<(String, Option<u16>)> {
    let authority: hyper::http::uri::Authority = value.trim().parse().ok()?;
    if authority.as_str().contains('@') {
        return None;
    }
    Some((authority.host().to_ascii_lowercase(), authority.port_u16()))
}

/// An origin: `scheme://host[:port]`, the port filled in from the scheme.
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

/// A serialized origin as browsers send it; `None` for `null` or anything else.
fn parse_origin(value: &str) -> Option<Origin> {
    let (scheme, rest) = value.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    let (host, port) = authority(rest)?;
    Some(Origin { scheme, host, port: port.unwrap_or(default) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        map
    }

    #[test]
    fn on_loopback_only_loopback_hosts_and_origins_pass() {
        let guard = Guard::new(true, None);
        for host in ["127.0.0.1:8765", "localhost:8765", "LOCALHOST", "[::1]:8765", "127.0.0.2", "app.localhost:1"] {
            assert_eq!(guard.check(&headers(&[("host", host)])), Ok(()), "{host}");
        }
        for host in ["attacker.example", "attacker.example:8765", "192.168.1.2:8765", "127.0.0.1.nip.io", ""] {
            assert!(matches!(guard.check(&headers(&[("host", host)])), Err(Refusal::Host(_))), "{host}");
        }
        assert!(matches!(guard.check(&headers(&[])), Err(Refusal::Host(_))), "no Host");
        for origin in [
            "http://localhost",
            "http://localhost:3000",
            "http://127.0.0.1:8765",
            "http://[::1]:9",
            "https://localhost/",
        ] {
            assert_eq!(guard.check(&headers(&[("host", "127.0.0.1:8765"), ("origin", origin)])), Ok(()), "{origin}");
        }
        for origin in [
            "https://evil.example",
            "http://evil.example:8765",
            "null",
            "file://",
            "http://127.0.0.1.evil.example",
            "http://localhost@evil.example",
            "http://localhost/path",
            "chrome-extension://abc",
            "",
        ] {
            let refused = guard.check(&headers(&[("host", "127.0.0.1:8765"), ("origin", origin)]));
            assert!(matches!(refused, Err(Refusal::Origin(_))), "{origin}: {refused:?}");
            assert_eq!(refused.unwrap_err().status(), 403);
        }
    }

    #[test]
    fn off_loopback_the_token_is_needed_and_only_the_servers_own_origin_passes() {
        let token = Token::new(&"t".repeat(64)).unwrap();
        let guard = Guard::new(false, Some(token));
        let good = format!("Bearer {}", "t".repeat(64));
        let host = ("host", "server.lan:8765");
        assert_eq!(guard.check(&headers(&[host, ("authorization", &good)])), Ok(()));
        assert_eq!(guard.check(&headers(&[host, ("authorization", &format!("bearer  {}", "t".repeat(64)))])), Ok(()));
        assert_eq!(guard.check(&headers(&[host])), Err(Refusal::NoToken));
        assert_eq!(guard.check(&headers(&[host, ("authorization", "Basic dXNlcjpwYXNz")])), Err(Refusal::NoToken));
        let wrong = format!("Bearer {}", "u".repeat(64));
        assert_eq!(guard.check(&headers(&[host, ("authorization", &wrong)])), Err(Refusal::WrongToken));
        assert_eq!(Refusal::WrongToken.status(), 401);
        let with_origin = |origin: &str| guard.check(&headers(&[host, ("authorization", &good), ("origin", origin)]));
        assert_eq!(with_origin("http://server.lan:8765"), Ok(()));
        for origin in
            ["https://evil.example", "http://server.lan", "https://server.lan:8765", "http://localhost:8765", "null"]
        {
            assert!(matches!(with_origin(origin), Err(Refusal::Origin(_))), "{origin}");
        }
        let default_port = ("host", "server.lan");
        assert_eq!(
            guard.check(&headers(&[default_port, ("authorization", &good), ("origin", "http://server.lan")])),
            Ok(())
        );
    }

    #[test]
    fn origins_parse_as_browsers_write_them() {
        let o = |s: &str, h: &str, p: u16| Some(Origin { scheme: s.into(), host: h.into(), port: p });
        assert_eq!(parse_origin("http://localhost"), o("http", "localhost", 80));
        assert_eq!(parse_origin("https://localhost"), o("https", "localhost", 443));
        assert_eq!(parse_origin("http://127.0.0.1:3000"), o("http", "127.0.0.1", 3000));
        assert_eq!(parse_origin("http://[::1]"), o("http", "[::1]", 80));
        assert_eq!(parse_origin("http://[::1]:8765"), o("http", "[::1]", 8765));
        assert_eq!(parse_origin("HTTP://LocalHost:1"), o("http", "localhost", 1));
        for bad in ["null", "localhost", "ftp://localhost", "http://", "http://a/b", "http://u@localhost"] {
            assert_eq!(parse_origin(bad), None, "{bad}");
        }
    }
}

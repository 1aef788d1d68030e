//! The bearer token of `qsearch mcp --http`: required off loopback (and on loopback with
//! `--token`). Made on first use from the system's random source (256 bits, hex), kept in
//! `mcp-token` under the data directory, readable by the user only, and reused on later starts so
//! that clients configured once keep working. Delete the file to make a new one.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The token file's name in the data directory.
pub const FILE: &str = "mcp-token";

/// Random bytes in a token (written as twice as many hex digits).
const BYTES: usize = 32;

/// A bearer token. Its `Debug` does not show it (it would end up in logs).
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// Where the token lives in `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

impl Token {
    /// A token from its text (a test's, or one read elsewhere): at least 32 characters of
    /// `A-Z a-z 0-9 - _ . ~`, which an `Authorization` header carries as they are.
    pub fn new(text: &str) -> Result<Token> {
        let text = text.trim();
        let fits = |c: char| c.is_ascii_alphanumeric() || "-_.~".contains(c);
        if text.len() < 32 || !text.chars().all(fits) {
            bail!("not a token: it needs at least 32 characters of A-Z, a-z, 0-9, -, _, ., ~");
        }
        Ok(Token(text.to_string()))
    }

    /// A fresh token from the system's random source.
    pub fn generate() -> Result<Token> {
        let mut bytes = [0u8; BYTES];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .context("cannot read random bytes for the MCP token from /dev/urandom")?;
        Ok(Token(hex::encode(bytes)))
    }

    /// The token kept in `data_dir` (see [`path`]), made and written there first if there is
    /// none. `created`: it was made now.
    pub fn load_or_create(data_dir: &Path) -> Result<(Token, PathBuf, bool)> {
        let file = path(data_dir);
        if let Some(token) = read(&file)? {
            return Ok((token, file, false));
        }
        std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
        let token = Token::generate()?;
        match write_new(&file, &token) {
            Ok(()) => Ok((token, file, true)),
            // Another server started at the same moment and wrote its own first: use that one.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match read(&file)? {
                Some(token) => Ok((token, file, false)),
                None => bail!("{} vanished as it was made", file.display()),
            },
            Err(e) => Err(anyhow::Error::new(e).context(format!("cannot write the MCP token to {}", file.display()))),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this token, in time that does not depend on where they differ
    /// (both are hashed, and blake3's hashes compare in constant time), nor on either's length.
    pub fn matches(&self, presented: &str) -> bool {
        blake3::hash(presented.as_bytes()) == blake3::hash(self.0.as_bytes())
    }
}

/// The token in `file`; `None` if there is no file. A file others may read, or that holds no
/// token, is an error naming the fix.
fn read(file: &Path) -> Result<Option<Token>> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot read the MCP token in {}", file.display()))),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "{} can be read by other users (mode {mode:o}), so the token in it may be known to them: \
                 delete it to make a new one (and give clients the new token), or `chmod 600` it to keep it",
                file.display()
            );
        }
    }
    let token = Token::new(&text).with_context(|| format!("{}: delete it to make a new token", file.display()))?;
    Ok(Some(token))
}

/// Writes `token` to `file`, which must not exist: a temporary file beside it, readable by the
/// user only, synced, then linked into place (never a half-written or world-readable token).
fn write_new(file: &Path, token: &Token) -> std::io::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".mcp-token.").tempfile_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    writeln!(tmp, "{}", token.as_str())?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(file).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_made_once_kept_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (token, file, created) = Token::load_or_create(&data).unwrap();
        assert!(created);
        assert_eq!(token.as_str().len(), 2 * BYTES);
        assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token.as_str());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let (again, _, created) = Token::load_or_create(&data).unwrap();
        assert!(!created);
        assert_eq!(again, token, "the same token on a later start");
        assert_ne!(Token::generate().unwrap(), token);
        assert_eq!(std::fs::read_dir(&data).unwrap().count(), 1, "no temporary file left");
        assert!(!format!("{token:?}").contains(token.as_str()), "Debug hides it");
    }

    #[test]
    fn tokens_match_only_themselves() {
        let token = Token::new(&"a".repeat(64)).unwrap();
        assert!(token.matches(&"a".repeat(64)));
        for wrong in ["", "a", &"a".repeat(63), &"a".repeat(65), &format!("{}b", "a".repeat(63))] {
            assert!(!token.matches(wrong), "{wrong:?}");
        }
        assert!(Token::new("short").is_err());
        assert!(Token::new(&format!("{} x", "a".repeat(40))).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_token_file_others_can_read_or_that_holds_no_token_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (_, file, _) = Token::load_or_create(dir.path()).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = Token::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(refused.contains("other users") && refused.contains("delete it"), "{refused}");
        std::fs::write(&file, "x\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let refused = format!("{:#}", Token::load_or_create(dir.path()).unwrap_err());
        assert!(refused.contains("not a token") && refused.contains("delete it"), "{refused}");
    }
}

//! Bytes to text: UTF-8 (with or without BOM), UTF-16 with a BOM, invalid bytes replaced and
//! counted; binary content recognised and refused.

#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub text: String,
    /// Invalid sequences were replaced with U+FFFD.
    pub lossy: bool,
    pub encoding: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("binary content")]
    Binary,
}

pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return Ok(utf8(rest, "utf-8-bom"));
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return Ok(utf16(rest, u16::from_le_bytes, "utf-16le"));
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return Ok(utf16(rest, u16::from_be_bytes, "utf-16be"));
    }
    if looks_binary(bytes) {
        return Err(DecodeError::Binary);
    }
    Ok(utf8(bytes, "utf-8"))
}

/// A NUL byte in the first 8 KiB, or mostly control characters, means binary.
fn looks_binary(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(8192)];
    if head.contains(&0) {
        return true;
    }
    let controls = head.iter().filter(|&&b| b < 0x09 || (0x0E..0x20).contains(&b) && b != 0x1B).count();
    !head.is_empty() && controls * 10 > head.len()
}

fn utf8(bytes: &[u8], encoding: &'static str) -> Decoded {
    match std::str::from_utf8(bytes) {
        Ok(s) => Decoded { text: s.to_string(), lossy: false, encoding },
        Err(_) => Decoded { text: String::from_utf8_lossy(bytes).into_owned(), lossy: true, encoding },
    }
}

fn utf16(bytes: &[u8], word: fn([u8; 2]) -> u16, encoding: &'static str) -> Decoded {
    let units = bytes.chunks_exact(2).map(|c| word([c[0], c[1]]));
    let mut lossy = bytes.len() % 2 == 1;
    let text = char::decode_utf16(units)
        .map(|r| {
            r.unwrap_or_else(|_| {
                lossy = true;
                char::REPLACEMENT_CHARACTER
            })
        })
        .collect();
    Decoded { text, lossy, encoding }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boms_and_utf16_decode() {
        assert_eq!(decode(b"\xEF\xBB\xBFhi").unwrap().text, "hi");
        let le: Vec<u8> =
            [0xFF, 0xFE].into_iter().chain("héllo 世界".encode_utf16().flat_map(u16::to_le_bytes)).collect();
        assert_eq!(decode(&le).unwrap().text, "héllo 世界");
        let be: Vec<u8> = [0xFE, 0xFF].into_iter().chain("ok".encode_utf16().flat_map(u16::to_be_bytes)).collect();
        assert_eq!(decode(&be).unwrap().encoding, "utf-16be");
    }

    #[test]
    fn invalid_bytes_are_replaced_and_flagged() {
        let d = decode(b"caf\xE9 au lait").unwrap();
        assert!(d.lossy);
        assert_eq!(d.text, "caf\u{FFFD} au lait");
    }

    #[test]
    fn binary_is_refused() {
        assert_eq!(decode(b"\x7FELF\x02\x01\x01\x00\x00"), Err(DecodeError::Binary));
        assert_eq!(decode(&[1u8, 2, 3, 4, 5, 6, 7, 8, b'a']), Err(DecodeError::Binary));
        assert!(decode(b"").is_ok());
    }
}

//! What goes over the daemon's socket: JSON, one object a line. A client sends an [`Ask`] and
//! reads one [`Reply`] per line; a connection may carry several. Every line names the protocol
//! [`VERSION`]; a daemon refuses any other, and the client then embeds the query itself.
//!
//! ```text
//! > {"v":1,"op":"info"}
//! < {"v":1,"answer":"info","pid":12,"role":"watch","index":"/home/u/.local/share/qsearch/index",...}
//! > {"v":1,"op":"embed","index":"...","fingerprint":{...},"task":null,"text":"where is the retry loop"}
//! < {"v":1,"answer":"vector","dims":1024,"f32le":"9a3c..."}
//! < {"v":1,"answer":"refused","why":"the index's vectors are another model's: ..."}
//! ```
//!
//! A vector travels as the hex of its little-endian f32s: exactly the floats the daemon's model
//! gave, so the client's search ranks as it would have with its own.

use std::path::PathBuf;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::session::ModelState;
use crate::store::Fingerprint;

pub const VERSION: u32 = 1;

/// The longest line a daemon reads (a query's text is far shorter).
pub const MAX_LINE: u64 = 1 << 20;

/// A request. `v` is [`VERSION`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Ask {
    /// Who the daemon is and what it serves.
    Info { v: u32 },
    /// The vector of a query to search `index`, whose vectors are `fingerprint`, with.
    Embed {
        v: u32,
        index: PathBuf,
        fingerprint: Fingerprint,
        /// The query instruction the client would use (its configuration's `query_task`).
        task: Option<String>,
        text: String,
    },
}

/// An answer, one per [`Ask`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Reply {
    Info(Info),
    Vector {
        v: u32,
        dims: usize,
        /// The vector's f32s, little-endian, in hex.
        f32le: String,
    },
    /// Not answered, and why: the client embeds the query itself.
    Refused {
        v: u32,
        why: String,
    },
}

/// Who a daemon is, as `status` and `doctor` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    pub v: u32,
    pub pid: u32,
    /// `watch` or `serve`.
    pub role: String,
    /// The index it serves (canonical path).
    pub index: PathBuf,
    /// Seconds since the epoch when it started.
    pub since: u64,
    /// The index's fingerprint now (None: nothing embedded yet).
    pub fingerprint: Option<Fingerprint>,
    /// The query instruction it embeds with (None: the model's own).
    pub task: Option<String>,
    /// Its warm model.
    pub model: ModelState,
}

impl Reply {
    pub fn refused(why: impl Into<String>) -> Reply {
        Reply::Refused { v: VERSION, why: why.into() }
    }

    pub fn vector(vector: &[f32]) -> Reply {
        let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
        Reply::Vector { v: VERSION, dims: vector.len(), f32le: hex::encode(bytes) }
    }
}

/// The floats of a [`Reply::Vector`], checked against its `dims`.
pub fn decode_vector(dims: usize, f32le: &str) -> Result<Vec<f32>> {
    let bytes = hex::decode(f32le)?;
    if bytes.len() != dims * 4 {
        bail!("a vector of {} bytes for {dims} dimensions", bytes.len());
    }
    Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// The line's protocol version, when it has one.
pub fn version_of(line: &str) -> Option<u64> {
    serde_json::from_str::<serde_json::Value>(line).ok()?.get("v")?.as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vector_travels_bit_for_bit() {
        let v = vec![0.1f32, -3.5e-8, f32::MIN_POSITIVE, 1.0 / 3.0, -0.0];
        let Reply::Vector { dims, f32le, .. } = Reply::vector(&v) else { panic!() };
        let back = decode_vector(dims, &f32le).unwrap();
        assert_eq!(
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            back.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert!(decode_vector(dims + 1, &f32le).is_err(), "a vector of other dimensions is refused");
    }

    #[test]
    fn asks_and_replies_name_their_version() {
        let line = serde_json::to_string(&Ask::Info { v: VERSION }).unwrap();
        assert_eq!(line, r#"{"op":"info","v":1}"#);
        assert_eq!(version_of(&line), Some(1));
        let refused = serde_json::to_string(&Reply::refused("no")).unwrap();
        assert_eq!(refused, r#"{"answer":"refused","v":1,"why":"no"}"#);
    }
}

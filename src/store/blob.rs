//! How `vectors.data` holds a vector: SQLite's copy of each vector is the source of truth the
//! graph file is rebuilt from and candidates are rescored with, so it keeps every bit of f16,
//! and at 1,024 dimensions it is most of the index on disk.
//!
//! Three formats, told apart by the blob's length and last byte:
//! - **planes** (new vectors, tag [`PLANES_TAG`], an odd length): the f16 values' high bytes
//!   (sign, exponent, two mantissa bits), entropy-coded as one zstd frame, then their low bytes
//!   as they are, a zero byte when needed to make the length odd, the tag. A unit vector's
//!   components share a few exponents, so the high bytes carry about 5.5 bits each and the low
//!   bytes 8: 1,791 bytes for a 1,024-dim vector instead of 2,049, bit for bit the same f16
//!   (`benches/README.md`, "SQLite keeps its vectors entropy-coded"). Kept only when shorter
//!   than plain f16 (a few dimensions do not pay for the frame).
//! - **f16** (tag [`F16_TAG`], 2 * dims + 1 bytes): written from migration 0010 until 0013,
//!   and still for vectors the planes do not shorten.
//! - **f32** (4 * dims bytes, no tag): indexes from before 0010, and a vector with a component
//!   beyond f16's range.
//!
//! Nothing is converted in place: `qsearch index --rebuild` writes every vector again.

use std::cell::RefCell;

/// The trailing byte of a plain f16 blob.
const F16_TAG: u8 = 0x16;
/// The trailing byte of a blob of entropy-coded high bytes and plain low bytes.
const PLANES_TAG: u8 = 0x17;
/// zstd's level for the high bytes: all levels give the same size here (the bytes have no
/// repeats to find, only an uneven distribution), the lowest is the fastest.
const LEVEL: i32 = 1;

thread_local! {
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// A vector as `vectors.data` keeps it: planes or f16, whichever is shorter, or f32 when a
/// component would not fit in f16. No model gives one (they give unit vectors), but such a
/// vector keeps its value rather than being clamped or turned infinite.
pub fn vec_to_blob(v: &[f32]) -> Vec<u8> {
    let halves: Vec<u16> = v.iter().map(|x| half::f16::from_f32(*x).to_bits()).collect();
    if v.iter().zip(&halves).any(|(x, h)| x.is_finite() && !half::f16::from_bits(*h).is_finite()) {
        return v.iter().flat_map(|x| x.to_le_bytes()).collect();
    }
    let plain_len = 2 * halves.len() + 1;
    if let Some(planes) = planes(&halves).filter(|p| p.len() < plain_len) {
        return planes;
    }
    let mut blob = Vec::with_capacity(plain_len);
    for h in halves {
        blob.extend_from_slice(&h.to_le_bytes());
    }
    blob.push(F16_TAG);
    blob
}

/// The planes blob of `halves` (f16 bits), or None if zstd fails (it does not on a buffer this
/// size; the plain blob is written then).
fn planes(halves: &[u16]) -> Option<Vec<u8>> {
    let high: Vec<u8> = halves.iter().map(|h| (h >> 8) as u8).collect();
    let frame = COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = Some(zstd::bulk::Compressor::new(LEVEL).ok()?);
        }
        c.as_mut()?.compress(&high).ok()
    })?;
    let mut blob = Vec::with_capacity(frame.len() + halves.len() + 2);
    blob.extend_from_slice(&frame);
    blob.extend(halves.iter().map(|h| *h as u8));
    if blob.len() % 2 == 1 {
        blob.push(0);
    }
    blob.push(PLANES_TAG);
    Some(blob)
}

/// The f16 bits of a planes blob without its tag, or None if it is not one (damaged).
fn from_planes(b: &[u8]) -> Option<Vec<u16>> {
    let frame_len = zstd::zstd_safe::find_frame_compressed_size(b).ok()?;
    let dims = usize::try_from(zstd::zstd_safe::get_frame_content_size(b).ok()??).ok()?;
    // The low bytes, then the zero byte that makes the length odd when needed (a damaged header
    // may claim any size: nothing is added or allocated before it is checked against the blob).
    let end = frame_len.checked_add(dims).filter(|end| *end <= b.len())?;
    let pad = end % 2;
    if end + pad != b.len() || (pad == 1 && b[b.len() - 1] != 0) {
        return None;
    }
    let mut high = vec![0u8; dims];
    let n = DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(zstd::bulk::Decompressor::new().ok()?);
        }
        d.as_mut()?.decompress_to_buffer(&b[..frame_len], high.as_mut_slice()).ok()
    })?;
    if n != dims {
        return None;
    }
    let low = &b[frame_len..frame_len + dims];
    Some(high.iter().zip(low).map(|(h, l)| u16::from(*h) << 8 | u16::from(*l)).collect())
}

/// A blob of `vectors.data` this qsearch cannot read: written by a newer one, or damaged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a stored vector of {len} bytes cannot be read{}: neither f32, nor f16 with tag {F16_TAG:#04x}, nor f16 planes with tag {PLANES_TAG:#04x} (damaged, or written by a newer qsearch); `qsearch index --rebuild` writes the vectors again",
    .tag.map(|t| format!(" (its last byte {t:#04x})")).unwrap_or_default()
)]
pub struct UnknownVectorFormat {
    pub len: usize,
    /// The last byte of an odd-length blob.
    pub tag: Option<u8>,
}

/// The vector of a `vectors.data` blob in any of the three formats (see [`vec_to_blob`]).
pub fn blob_to_vec(b: &[u8]) -> Result<Vec<f32>, UnknownVectorFormat> {
    let unknown = || UnknownVectorFormat { len: b.len(), tag: (!b.len().is_multiple_of(2)).then(|| b[b.len() - 1]) };
    match b.split_last() {
        Some((&F16_TAG, halves)) if halves.len().is_multiple_of(2) => {
            Ok(to_f32(halves.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect()))
        }
        Some((&PLANES_TAG, rest)) if rest.len().is_multiple_of(2) => from_planes(rest).map(to_f32).ok_or_else(unknown),
        _ if b.len().is_multiple_of(4) => {
            Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        }
        _ => Err(unknown()),
    }
}

/// f16 bits as f32 values, converted by the processor's instructions where it has them.
fn to_f32(bits: Vec<u16>) -> Vec<f32> {
    use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
    let mut out = vec![0f32; bits.len()];
    bits.reinterpret_cast::<half::f16>().convert_to_f32_slice(&mut out);
    out
}

/// A `vectors.data` column read as a vector: a blob in no known format is an error of its column.
pub(crate) struct StoredBlob(pub(crate) Vec<f32>);

impl rusqlite::types::FromSql for StoredBlob {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        blob_to_vec(value.as_blob()?).map(StoredBlob).map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
    }
}

/// Bytes a stored vector of `dims` takes in SQLite with pages of `page` bytes, its row and its
/// key (for the space a run needs; an estimate on the high side). A row smaller than a page is
/// never split: rows share a page as long as they fit whole. A 1,024-dim planes row is about
/// 1,870 bytes with its hash and headers, 17.5 to a 32 KiB page (sixteen by this estimate;
/// fifteen plain f16 rows).
pub fn stored_vector_bytes(dims: u64, page: u64) -> u64 {
    // The blob (low bytes, high bytes at about six bits with zstd's frame and table, capped at
    // plain f16), the 64-hex hash, the record's and cell's headers, the cell's pointer.
    let blob = (dims + dims * 3 / 4 + 64).min(2 * dims) + 1;
    let row = blob + 64 + 16;
    // An entry of the hash's index.
    let key = 84;
    let usable = page - 8;
    // A page shared by the rows it holds whole, or pages of its own for a row larger than one.
    key + page.checked_div(usable / row).unwrap_or(row.div_ceil(page) * page)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit vector of `dims` spread like an embedding's components.
    fn unit(dims: usize, seed: u32) -> Vec<f32> {
        let v: Vec<f32> =
            (0..dims).map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 - 500.0).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    fn f16_rounded(v: &[f32]) -> Vec<f32> {
        v.iter().map(|x| half::f16::from_f32(*x).to_f32()).collect()
    }

    #[test]
    fn a_vector_is_kept_as_planes_and_comes_back_as_exactly_its_f16_value() {
        for dims in [384, 768, 1024, 4096] {
            let v = unit(dims, 7);
            let blob = vec_to_blob(&v);
            assert_eq!(blob.last(), Some(&PLANES_TAG), "{dims}");
            assert!(blob.len() % 2 == 1, "an odd length, never read as f32: {}", blob.len());
            assert!(blob.len() < 2 * dims * 15 / 16, "{dims} dims in {} bytes", blob.len());
            let back = blob_to_vec(&blob).unwrap();
            assert_eq!(back, f16_rounded(&v), "bit for bit the f16 value");
            // What was read is written again to the same bytes: a graph rebuilt from SQLite is
            // the graph the writer built.
            assert_eq!(vec_to_blob(&back), blob);
        }
    }

    #[test]
    fn both_lengths_of_the_planes_come_back() {
        // The zero byte that makes the length odd is there for some frames and not others.
        let mut padded = [false, false];
        for seed in 0..40 {
            let v = unit(1024, seed);
            let blob = vec_to_blob(&v);
            let frame = zstd::zstd_safe::find_frame_compressed_size(&blob).unwrap();
            padded[usize::from(frame + 1024 + 1 < blob.len())] = true;
            assert_eq!(blob_to_vec(&blob).unwrap(), f16_rounded(&v));
        }
        assert_eq!(padded, [true, true], "frames of both parities");
    }

    #[test]
    fn a_few_dimensions_stay_plain_f16() {
        let v = unit(8, 3);
        let blob = vec_to_blob(&v);
        assert_eq!((blob.len(), blob.last()), (17, Some(&F16_TAG)));
        assert_eq!(blob_to_vec(&blob).unwrap(), f16_rounded(&v));
        assert_eq!(blob_to_vec(&vec_to_blob(&[])).unwrap(), Vec::<f32>::new());
    }

    #[test]
    fn blobs_of_older_indexes_are_read_as_they_are() {
        let v = unit(1024, 9);
        let f32_blob: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(blob_to_vec(&f32_blob).unwrap(), v);
        let mut f16_blob: Vec<u8> = v.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect();
        f16_blob.push(F16_TAG);
        assert_eq!(blob_to_vec(&f16_blob).unwrap(), f16_rounded(&v));
        // Whatever its last byte: an f32 blob's length is even.
        for tag in [F16_TAG, PLANES_TAG] {
            let ends_like_a_tag: Vec<u8> =
                [0.5f32, f32::from_le_bytes([0, 0, 0, tag])].iter().flat_map(|x| x.to_le_bytes()).collect();
            assert_eq!(blob_to_vec(&ends_like_a_tag).unwrap().len(), 2);
        }
    }

    #[test]
    fn a_vector_beyond_f16_keeps_its_f32_value_and_non_finite_ones_round_trip() {
        let v = vec![0.25, 70_000.0, -1.0e6, 1.0e-9];
        let blob = vec_to_blob(&v);
        assert_eq!(blob.len(), 16, "stored as f32");
        assert_eq!(blob_to_vec(&blob).unwrap(), v);
        let mut odd = unit(1024, 5);
        odd[..3].copy_from_slice(&[f32::NAN, f32::INFINITY, f32::NEG_INFINITY]);
        let back = blob_to_vec(&vec_to_blob(&odd)).unwrap();
        assert!(back[0].is_nan() && back[1] == f32::INFINITY && back[2] == f32::NEG_INFINITY);
        assert_eq!(back[3..], f16_rounded(&odd[3..]));
    }

    #[test]
    fn a_damaged_or_unknown_blob_is_an_error_that_says_so() {
        let newer = [1u8, 2, 3, 4, 0x08];
        let err = blob_to_vec(&newer).unwrap_err();
        assert_eq!(err, UnknownVectorFormat { len: 5, tag: Some(0x08) });
        assert!(err.to_string().contains("5 bytes") && err.to_string().contains("0x08"), "{err}");
        assert_eq!(blob_to_vec(&[F16_TAG]).unwrap(), Vec::<f32>::new(), "a tag alone: no dimension");
        assert_eq!(blob_to_vec(&[1, 2, 3, 4, 5, F16_TAG]).unwrap_err(), UnknownVectorFormat { len: 6, tag: None });
        assert_eq!(blob_to_vec(&[0; 6]).unwrap_err(), UnknownVectorFormat { len: 6, tag: None });

        // A planes blob cut, lengthened, or with a byte of its frame changed is refused, never
        // read as another vector.
        let blob = vec_to_blob(&unit(1024, 11));
        let body = &blob[..blob.len() - 1];
        let frame = zstd::zstd_safe::find_frame_compressed_size(body).unwrap();
        let cut = [&body[..body.len() - 2], &[PLANES_TAG]].concat();
        let longer = [body, &[0, 0, PLANES_TAG]].concat();
        // (A changed byte inside the coded bytes is not found: SQLite keeps no checksum of any
        // format's rows.)
        let mut garbled = blob.clone();
        garbled[0] ^= 0x55;
        let mut bad_pad = blob.clone();
        if frame + 1024 + 1 < blob.len() {
            bad_pad[blob.len() - 2] = 1;
        } else {
            bad_pad = [body, &[1, 0, PLANES_TAG]].concat();
        }
        // A frame whose header claims nearly 2^64 bytes (an empty raw block after it).
        let mut huge = vec![0x28, 0xb5, 0x2f, 0xfd, 0xe0];
        huge.extend_from_slice(&(u64::MAX - 2).to_le_bytes());
        huge.extend_from_slice(&[0x01, 0x00, 0x00, PLANES_TAG]);
        assert_eq!(zstd::zstd_safe::find_frame_compressed_size(&huge[..huge.len() - 1]), Ok(16));
        let cases = [("cut", cut), ("longer", longer), ("garbled", garbled), ("bad pad", bad_pad), ("huge", huge)];
        for (what, b) in cases {
            match blob_to_vec(&b) {
                Err(e) => assert_eq!(e.tag, Some(PLANES_TAG), "{what}"),
                Ok(v) => panic!("{what}: read as a vector of {}", v.len()),
            }
        }
    }

    #[test]
    fn the_space_a_vector_takes_counts_whole_pages() {
        let vectors = |dims: usize| (0..64).map(|s| vec_to_blob(&unit(dims, s)).len() as u64).max().unwrap();
        for dims in [256u64, 384, 1024] {
            let row = vectors(dims as usize) + 64 + 16;
            let estimate = stored_vector_bytes(dims, 32_768) - 84;
            assert!(estimate >= 32_768 / (32_760 / row), "{dims}: {estimate} below the rows measured ({row})");
        }
        // By the estimate sixteen 1,024-dim rows to a 32 KiB page, four to 8 KiB, two to 4 KiB.
        assert_eq!(stored_vector_bytes(1024, 32_768), 84 + 32_768 / 16);
        assert_eq!(stored_vector_bytes(1024, 8192), 84 + 8192 / 4);
        assert_eq!(stored_vector_bytes(1024, 4096), 84 + 4096 / 2);
        // A vector larger than a page takes pages of its own.
        assert_eq!(stored_vector_bytes(4096, 4096), 84 + 2 * 4096);
    }
}

//! The token-embedding table the preparation step moved out of the graph: rows read straight
//! from a memory-mapped file and fed to the graph as `inputs_embeds`.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result, bail};
use half::f16;

use crate::models::prepare::{TableSpec, TableType};

pub struct Table {
    map: memmap2::Mmap,
    spec: TableSpec,
}

impl Table {
    pub fn open(path: &Path, spec: &TableSpec) -> Result<Table> {
        let file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
        // SAFETY: the file is qsearch's own, written once by the preparation step and never
        // modified in place (a new preparation goes to a new directory).
        let map = unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("mapping {}", path.display()))?;
        let want = spec.rows * spec.cols * spec.dtype.width();
        if map.len() != want {
            bail!(
                "{} holds {} bytes, expected {want}: delete it to prepare the model again",
                path.display(),
                map.len()
            );
        }
        Ok(Table { map, spec: spec.clone() })
    }

    pub fn cols(&self) -> usize {
        self.spec.cols
    }

    pub fn feed(&self) -> TableType {
        self.spec.feed
    }

    fn check(&self, id: i64) -> Result<usize> {
        match usize::try_from(id) {
            Ok(i) if i < self.spec.rows => Ok(i),
            _ => bail!("token id {id} is outside the model's {} rows", self.spec.rows),
        }
    }

    /// Rows for `ids`, as f32, concatenated.
    pub fn gather_f32(&self, ids: &[i64]) -> Result<Vec<f32>> {
        let (cols, s) = (self.spec.cols, &self.spec);
        let mut out = Vec::with_capacity(ids.len() * cols);
        for &id in ids {
            let i = self.check(id)?;
            let bytes = &self.map[i * cols * s.dtype.width()..(i + 1) * cols * s.dtype.width()];
            match s.dtype {
                TableType::F32 => {
                    out.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                }
                TableType::F16 => out.extend(bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())),
                TableType::I8 => out.extend(bytes.iter().map(|&b| (b as i8 as i32 - s.zero_point) as f32 * s.scale)),
                TableType::U8 => out.extend(bytes.iter().map(|&b| (b as i32 - s.zero_point) as f32 * s.scale)),
            }
        }
        Ok(out)
    }

    /// Rows for `ids`, as f16 (fp16 graphs).
    pub fn gather_f16(&self, ids: &[i64]) -> Result<Vec<f16>> {
        if self.spec.dtype == TableType::F16 {
            let cols = self.spec.cols;
            let mut out = Vec::with_capacity(ids.len() * cols);
            for &id in ids {
                let i = self.check(id)?;
                out.extend(
                    self.map[i * cols * 2..(i + 1) * cols * 2]
                        .chunks_exact(2)
                        .map(|b| f16::from_le_bytes([b[0], b[1]])),
                );
            }
            return Ok(out);
        }
        Ok(self.gather_f32(ids)?.into_iter().map(f16::from_f32).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(dtype: TableType, bytes: &[u8], scale: f32, zero_point: i32) -> (tempfile::TempDir, Table) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.bin");
        std::fs::write(&path, bytes).unwrap();
        let rows = bytes.len() / (2 * dtype.width());
        let spec = TableSpec { file: "t.bin".into(), rows, cols: 2, dtype, scale, zero_point, feed: TableType::F32 };
        let t = Table::open(&path, &spec).unwrap();
        (dir, t)
    }

    #[test]
    fn integer_rows_are_dequantised_like_dequantize_linear() {
        let (_d, t) = table(TableType::I8, &[0, 1, 0xff, 0x80], 0.5, -2);
        assert_eq!(t.gather_f32(&[1, 0]).unwrap(), vec![0.5, -63.0, 1.0, 1.5]);
        let (_d, t) = table(TableType::U8, &[0, 1, 255, 128], 0.25, 128);
        assert_eq!(t.gather_f32(&[1]).unwrap(), vec![31.75, 0.0]);
    }

    #[test]
    fn float_rows_come_back_as_stored() {
        let bytes: Vec<u8> = [1.5f32, -2.0, 3.25, 4.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let (_d, t) = table(TableType::F32, &bytes, 1.0, 0);
        assert_eq!(t.gather_f32(&[1, 1]).unwrap(), vec![3.25, 4.0, 3.25, 4.0]);
        assert_eq!(t.gather_f16(&[0]).unwrap(), vec![f16::from_f32(1.5), f16::from_f32(-2.0)]);
    }

    #[test]
    fn an_id_outside_the_table_is_an_error_and_a_short_file_is_refused() {
        let (_d, t) = table(TableType::I8, &[0, 1, 2, 3], 1.0, 0);
        assert!(t.gather_f32(&[2]).unwrap_err().to_string().contains("outside"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.bin"), [0u8; 3]).unwrap();
        let spec = TableSpec {
            file: "t.bin".into(),
            rows: 2,
            cols: 2,
            dtype: TableType::I8,
            scale: 1.0,
            zero_point: 0,
            feed: TableType::F32,
        };
        assert!(Table::open(&dir.path().join("t.bin"), &spec).is_err());
    }
}

//! The token-embedding lookup taken out of the graph: the `Gather` of `input_ids` from the
//! 151,669 x 1,024 table (with its `DequantizeLinear` in int8 exports) is cut out; the graph
//! takes `inputs_embeds` and the table goes to a flat file the embedder reads rows from. A table
//! that large as a graph input pushes CoreML off the accelerator; without it the graph is the
//! transformer alone, on every provider.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use onnx_protobuf::tensor_proto::{DataLocation, DataType};
use onnx_protobuf::{GraphProto, TensorProto};
use protobuf::Enum;

use super::proto::{Dim, consumers, int_attr, tensor_input};
use super::{EMBEDS_INPUT, TABLE, TableSpec, TableType};

/// The lookup to cut: `Gather(table, input_ids)`, optionally followed by `DequantizeLinear`.
#[derive(Debug)]
pub(super) struct Lookup {
    gather: usize,
    pub(super) init: usize,
    dequantize: Option<usize>,
    /// The float tensor the rest of the graph reads.
    embeds: String,
    dtype: TableType,
    scale: f32,
    zero_point: i32,
}

fn table_type(data_type: i32) -> Option<TableType> {
    match DataType::from_i32(data_type)? {
        DataType::FLOAT => Some(TableType::F32),
        DataType::FLOAT16 => Some(TableType::F16),
        DataType::INT8 => Some(TableType::I8),
        DataType::UINT8 => Some(TableType::U8),
        _ => None,
    }
}

pub(super) fn lookup(graph: &GraphProto) -> Result<Lookup, String> {
    let inits: HashMap<&str, usize> = graph.initializer.iter().enumerate().map(|(i, t)| (t.name.as_str(), i)).collect();
    let gathers: Vec<usize> = (0..graph.node.len())
        .filter(|&i| {
            let n = &graph.node[i];
            n.op_type == "Gather"
                && n.input.get(1).is_some_and(|s| s == "input_ids")
                && inits.contains_key(n.input[0].as_str())
        })
        .collect();
    let [gather] = gathers[..] else {
        return Err(format!("{} lookups of input_ids from a table", gathers.len()));
    };
    let g = &graph.node[gather];
    if int_attr(g, "axis").unwrap_or(0) != 0 {
        return Err("the lookup is not along the table's rows".into());
    }
    let init = inits[g.input[0].as_str()];
    let t = &graph.initializer[init];
    if t.dims.len() != 2 {
        return Err(format!("the table has shape {:?}", t.dims));
    }
    let dtype = table_type(t.data_type).ok_or("the table's element type is not f32, f16, i8 or u8")?;
    let out = g.output[0].clone();
    let readers: Vec<usize> = consumers(graph, &out);
    if matches!(dtype, TableType::F32 | TableType::F16) {
        return Ok(Lookup { gather, init, dequantize: None, embeds: out, dtype, scale: 1.0, zero_point: 0 });
    }
    let [dq] = readers[..] else {
        return Err("the quantised table is read by more than one node".into());
    };
    let d = &graph.node[dq];
    if d.op_type != "DequantizeLinear" || d.input.len() < 2 {
        return Err(format!("the quantised table is read by {}", d.op_type));
    }
    let scalar = |name: Option<&String>| -> Option<&TensorProto> {
        let t = &graph.initializer[*inits.get(name?.as_str())?];
        (t.dims.iter().product::<i64>() == 1).then_some(t)
    };
    let scale = scalar(d.input.get(1)).ok_or("the table's scale is not one number")?;
    let scale = f32_scalar(scale).ok_or("the table's scale is not an f32")?;
    let zero_point = match d.input.get(2).filter(|s| !s.is_empty()) {
        None => 0,
        Some(name) => int8_scalar(scalar(Some(name)).ok_or("the table's zero point is not one number")?)
            .ok_or("the table's zero point is not an 8-bit integer")?,
    };
    Ok(Lookup { gather, init, dequantize: Some(dq), embeds: d.output[0].clone(), dtype, scale, zero_point })
}

fn f32_scalar(t: &TensorProto) -> Option<f32> {
    if t.data_type != DataType::FLOAT as i32 {
        return None;
    }
    t.float_data.first().copied().or_else(|| Some(f32::from_le_bytes(t.raw_data.get(..4)?.try_into().ok()?)))
}

fn int8_scalar(t: &TensorProto) -> Option<i32> {
    let byte = t.raw_data.first().copied().map(i32::from).or_else(|| t.int32_data.first().copied())?;
    match DataType::from_i32(t.data_type)? {
        DataType::INT8 => Some(byte as u8 as i8 as i32),
        DataType::UINT8 => Some(byte & 0xff),
        _ => None,
    }
}

pub(super) fn cut_lookup(graph: &mut GraphProto, found: &Lookup) -> TableSpec {
    let t = &graph.initializer[found.init];
    let (rows, cols) = (t.dims[0] as usize, t.dims[1] as usize);
    let feed = if found.dtype == TableType::F16 { TableType::F16 } else { TableType::F32 };
    for node in graph.node.iter_mut() {
        for input in node.input.iter_mut() {
            if *input == found.embeds {
                *input = EMBEDS_INPUT.to_string();
            }
        }
    }
    for output in graph.output.iter_mut() {
        if output.name == found.embeds {
            output.name = EMBEDS_INPUT.to_string();
        }
    }
    let mut remove: Vec<usize> = std::iter::once(found.gather).chain(found.dequantize).collect();
    remove.sort_unstable();
    for i in remove.into_iter().rev() {
        graph.node.remove(i);
    }
    let elem = if feed == TableType::F16 { DataType::FLOAT16 } else { DataType::FLOAT };
    graph.input.push(tensor_input(
        EMBEDS_INPUT,
        elem,
        &[Dim::Param("batch_size"), Dim::Param("sequence_length"), Dim::Value(cols as i64)],
    ));
    TableSpec {
        file: TABLE.to_string(),
        rows,
        cols,
        dtype: found.dtype,
        scale: found.scale,
        zero_point: found.zero_point,
        feed,
    }
}

/// The table's bytes, wherever the export keeps them.
pub(super) fn tensor_bytes(t: &TensorProto, dir: &Path) -> Result<Vec<u8>> {
    if t.data_location.enum_value() == Ok(DataLocation::EXTERNAL) {
        let get = |key: &str| t.external_data.iter().find(|e| e.key == key).map(|e| e.value.as_str());
        let location = get("location").context("external tensor without a location")?;
        let offset: u64 = get("offset").map_or(Ok(0), str::parse).context("bad external offset")?;
        let length: Option<u64> = get("length").map(str::parse).transpose().context("bad external length")?;
        let path = dir.join(location);
        let mut f = fs::File::open(&path).with_context(|| format!("reading {}", path.display()))?;
        use std::io::{Read, Seek, SeekFrom};
        f.seek(SeekFrom::Start(offset))?;
        let mut data = Vec::new();
        match length {
            Some(n) => {
                data.resize(n as usize, 0);
                f.read_exact(&mut data)
                    .with_context(|| format!("{} is shorter than the model says", path.display()))?;
            }
            None => {
                f.read_to_end(&mut data)?;
            }
        }
        return Ok(data);
    }
    if !t.raw_data.is_empty() {
        return Ok(t.raw_data.clone());
    }
    if !t.float_data.is_empty() {
        return Ok(t.float_data.iter().flat_map(|x| x.to_le_bytes()).collect());
    }
    match table_type(t.data_type) {
        Some(TableType::F16) => Ok(t.int32_data.iter().flat_map(|&x| (x as u16).to_le_bytes()).collect()),
        Some(TableType::I8 | TableType::U8) => Ok(t.int32_data.iter().map(|&x| x as u8).collect()),
        _ => bail!("tensor {} holds no data qsearch can read", t.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::prepare::proto::{graph_with, node, prune};

    fn table(name: &str, dtype: DataType, raw: Vec<u8>, dims: &[i64]) -> TensorProto {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.data_type = dtype as i32;
        t.dims = dims.to_vec();
        t.raw_data = raw;
        t
    }

    #[test]
    fn a_quantised_lookup_is_cut_with_its_dequantisation() {
        let nodes = vec![
            node("Gather", &["emb", "input_ids"], &["emb_q"], &[("axis", 0)]),
            node("DequantizeLinear", &["emb_q", "scale", "zp"], &["embeds"], &[]),
            node("Identity", &["embeds"], &["y"], &[]),
        ];
        let inits = vec![
            table("emb", DataType::INT8, vec![1, 2, 3, 4, 5, 6], &[3, 2]),
            table("scale", DataType::FLOAT, 0.5f32.to_le_bytes().to_vec(), &[]),
            table("zp", DataType::INT8, vec![(-3i8) as u8], &[]),
        ];
        let mut g = graph_with(nodes, inits);
        let found = lookup(&g).unwrap();
        assert_eq!((found.scale, found.zero_point, found.dtype), (0.5, -3, TableType::I8));
        let spec = cut_lookup(&mut g, &found);
        prune(&mut g);
        assert_eq!((spec.rows, spec.cols, spec.feed), (3, 2, TableType::F32));
        assert_eq!(g.node.len(), 1);
        assert_eq!(g.node[0].input, vec![EMBEDS_INPUT.to_string()]);
        assert!(g.initializer.is_empty(), "table, scale and zero point are gone");
        let inputs: Vec<&str> = g.input.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(inputs, vec![EMBEDS_INPUT], "input_ids is read by nothing now, nor the mask here");
    }

    #[test]
    fn a_per_channel_scale_keeps_the_table_in_the_graph() {
        let nodes = vec![
            node("Gather", &["emb", "input_ids"], &["emb_q"], &[]),
            node("DequantizeLinear", &["emb_q", "scale"], &["y"], &[]),
        ];
        let inits = vec![
            table("emb", DataType::UINT8, vec![0; 6], &[3, 2]),
            table("scale", DataType::FLOAT, vec![0; 12], &[3]),
        ];
        let g = graph_with(nodes, inits);
        assert!(lookup(&g).unwrap_err().contains("scale"));
    }
}

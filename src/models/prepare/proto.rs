//! Helpers over the ONNX protobuf that both rewrites use: building nodes, tensors and graph
//! inputs, dropping what nothing reads any more, and external data (linking the export's files,
//! writing the weights two graphs share).

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use onnx_protobuf::tensor_proto::{DataLocation, DataType};
use onnx_protobuf::{
    AttributeProto, GraphProto, NodeProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
    attribute_proto::AttributeType, tensor_shape_proto, type_proto,
};

/// Drops initializers, nodes and inputs nothing reads any more (the table, the old masks).
pub(super) fn prune(graph: &mut GraphProto) {
    prune_nodes(graph);
    // Every input the session declares must be fed: drop those nothing reads.
    let read = read_names(graph);
    graph.input.retain(|i| read.contains(&i.name));
}

/// Drops the nodes and initializers nothing reads any more; the graph's inputs stay as they are.
pub(crate) fn prune_nodes(graph: &mut GraphProto) {
    loop {
        let read = read_names(graph);
        let before = graph.node.len();
        graph.node.retain(|n| n.output.iter().any(|o| !o.is_empty() && read.contains(o)));
        if graph.node.len() == before {
            graph.initializer.retain(|t| read.contains(&t.name));
            return;
        }
    }
}

/// The names some node or the graph's outputs read.
fn read_names(graph: &GraphProto) -> HashSet<String> {
    graph.node.iter().flat_map(|n| n.input.iter().cloned()).chain(graph.output.iter().map(|o| o.name.clone())).collect()
}

/// External data stays where it is: each file is linked into the prepared directory under the
/// name the model uses (hard link, else symbolic link, else a copy).
pub(super) fn link_external_data(graph: &GraphProto, src: &Path, out: &Path) -> Result<()> {
    let mut files = HashSet::new();
    for t in &graph.initializer {
        if t.data_location.enum_value() == Ok(DataLocation::EXTERNAL)
            && let Some(e) = t.external_data.iter().find(|e| e.key == "location")
        {
            files.insert(e.value.clone());
        }
    }
    for file in files {
        let (from, to) = (src.join(&file), out.join(&file));
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        if fs::hard_link(&from, &to).is_ok() {
            continue;
        }
        #[cfg(unix)]
        if std::os::unix::fs::symlink(&from, &to).is_ok() {
            continue;
        }
        fs::copy(&from, &to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

/// Moves the weights kept inside the protobuf to one file beside it, so that two graphs can
/// share them.
pub(super) fn externalize(graph: &mut GraphProto, file: &Path) -> Result<()> {
    use std::io::Write;
    let name = file.file_name().and_then(|n| n.to_str()).context("weights file name")?.to_string();
    let mut w = std::io::BufWriter::new(fs::File::create(file).with_context(|| format!("writing {}", file.display()))?);
    let mut offset = 0usize;
    for t in graph.initializer.iter_mut().filter(|t| t.raw_data.len() >= 1024) {
        // Page-aligned, so that ONNX Runtime may map each tensor.
        let pad = offset.next_multiple_of(4096) - offset;
        w.write_all(&vec![0u8; pad])?;
        offset += pad;
        let data = std::mem::take(&mut t.raw_data);
        w.write_all(&data)?;
        let entry = |key: &str, value: String| {
            let mut e = onnx_protobuf::StringStringEntryProto::new();
            e.key = key.into();
            e.value = value;
            e
        };
        t.external_data = vec![
            entry("location", name.clone()),
            entry("offset", offset.to_string()),
            entry("length", data.len().to_string()),
        ];
        t.data_location = DataLocation::EXTERNAL.into();
        offset += data.len();
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

pub(super) fn consumers(graph: &GraphProto, name: &str) -> Vec<usize> {
    (0..graph.node.len()).filter(|&i| graph.node[i].input.iter().any(|s| s == name)).collect()
}

pub(super) fn int_attr(n: &NodeProto, name: &str) -> Option<i64> {
    n.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

pub(super) fn node(op: &str, inputs: &[&str], outputs: &[&str], ints: &[(&str, i64)]) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.into();
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = outputs.iter().map(|s| s.to_string()).collect();
    n.name = format!("qsearch/{}", outputs[0]);
    n.attribute.extend(ints.iter().map(|&(name, value)| int_attribute(name, value)));
    n
}

pub(super) fn int_attribute(name: &str, value: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INT.into();
    a.i = value;
    a
}

pub(super) fn node_ints(op: &str, inputs: &[&str], outputs: &[&str], attr: &str, values: &[i64]) -> NodeProto {
    let mut n = node(op, inputs, outputs, &[]);
    let mut a = AttributeProto::new();
    a.name = attr.into();
    a.type_ = AttributeType::INTS.into();
    a.ints = values.to_vec();
    n.attribute.push(a);
    n
}

pub(super) fn int64_tensor(name: &str, dims: &[i64], values: &[i64]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = dims.to_vec();
    t.data_type = DataType::INT64 as i32;
    t.int64_data = values.to_vec();
    t
}

pub(super) enum Dim<'a> {
    Param(&'a str),
    Value(i64),
}

pub(super) fn tensor_input(name: &str, elem: DataType, dims: &[Dim]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    for d in dims {
        let mut dim = tensor_shape_proto::Dimension::new();
        dim.value = Some(match d {
            Dim::Param(p) => tensor_shape_proto::dimension::Value::DimParam(p.to_string()),
            Dim::Value(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
        });
        shape.dim.push(dim);
    }
    let mut tensor = type_proto::Tensor::new();
    tensor.elem_type = elem as i32;
    tensor.shape = Some(shape).into();
    let mut ty = TypeProto::new();
    ty.value = Some(type_proto::Value::TensorType(tensor));
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    v.type_ = Some(ty).into();
    v
}

/// A graph reading `input_ids` and `attention_mask` and writing `y`, for the rewrites' tests.
#[cfg(test)]
pub(super) fn graph_with(nodes: Vec<NodeProto>, inits: Vec<TensorProto>) -> GraphProto {
    let mut g = GraphProto::new();
    g.node = nodes;
    g.initializer = inits;
    g.input.push(tensor_input("input_ids", DataType::INT64, &[Dim::Param("b"), Dim::Param("s")]));
    g.input.push(tensor_input("attention_mask", DataType::INT64, &[Dim::Param("b"), Dim::Param("s")]));
    let mut out = ValueInfoProto::new();
    out.name = "y".into();
    g.output.push(out);
    g
}

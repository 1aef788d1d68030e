//! fp16 graphs. [`initializers`] turns every float weight to f16 (CoreML's rewrite then spells
//! out its operators in f16); [`whole_graph`] does the rest for a graph that keeps the export's
//! operators (CUDA): constants, casts to float, and the graph's float inputs and outputs, so that
//! no f32 tensor is left for ONNX Runtime to convert at run time.
//!
//! Values beyond f16's range are clamped to its largest finite value (an f32 `-3.4e38` mask
//! constant would otherwise become -inf, and a fully masked row NaN).

use std::path::Path;

use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::{GraphProto, TensorProto, attribute_proto::AttributeType, type_proto};

use super::token_table::tensor_bytes;

fn half_bytes(floats: impl Iterator<Item = f32>) -> Vec<u8> {
    floats
        .flat_map(|x| {
            let x = if x.is_finite() { x.clamp(-f32::from(half::f16::MAX), f32::from(half::f16::MAX)) } else { x };
            half::f16::from_f32(x).to_le_bytes()
        })
        .collect()
}

/// `t` (a float tensor) as f16, its data inside the protobuf.
fn tensor_to_f16(t: &TensorProto, src: &Path) -> Result<TensorProto, String> {
    let bytes = tensor_bytes(t, src).map_err(|e| format!("{e:#}"))?;
    let floats = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    let mut h = TensorProto { name: t.name.clone(), dims: t.dims.clone(), ..TensorProto::new() };
    h.data_type = DataType::FLOAT16 as i32;
    h.raw_data = half_bytes(floats);
    Ok(h)
}

fn is_float(t: &TensorProto) -> bool {
    t.data_type == DataType::FLOAT as i32
}

/// Every float initializer becomes f16, kept inside the protobuf ([`super::proto::externalize`]
/// writes them out).
pub(super) fn initializers(graph: &mut GraphProto, src: &Path) -> Result<(), String> {
    for t in graph.initializer.iter_mut().filter(|t| is_float(t)) {
        *t = tensor_to_f16(t, src)?;
    }
    Ok(())
}

/// The whole graph in f16: weights, `Constant` and `ConstantOfShape` values, `Cast`s to float,
/// and the float inputs and outputs (past keys and values, hidden states). Inferred shapes
/// (`value_info`) are dropped: ONNX Runtime infers them again with the new types.
pub(super) fn whole_graph(graph: &mut GraphProto, src: &Path) -> Result<(), String> {
    initializers(graph, src)?;
    for n in graph.node.iter_mut() {
        let standard = n.domain.is_empty() || n.domain == "ai.onnx";
        for a in n.attribute.iter_mut() {
            match (standard, n.op_type.as_str(), a.name.as_str()) {
                (true, "Cast", "to") if a.i == DataType::FLOAT as i64 => a.i = DataType::FLOAT16 as i64,
                (true, "Constant" | "ConstantOfShape", "value") if a.t.as_ref().is_some_and(is_float) => {
                    let t = tensor_to_f16(a.t.as_ref().expect("checked"), src)?;
                    a.t = Some(t).into();
                }
                (true, "Constant", "value_float" | "value_floats") => {
                    let (floats, dims) = if a.name == "value_float" {
                        (vec![a.f], vec![])
                    } else {
                        (a.floats.clone(), vec![a.floats.len() as i64])
                    };
                    let mut t = TensorProto { dims, ..TensorProto::new() };
                    t.data_type = DataType::FLOAT16 as i32;
                    t.raw_data = half_bytes(floats.into_iter());
                    a.name = "value".into();
                    a.type_ = AttributeType::TENSOR.into();
                    a.f = 0.0;
                    a.floats.clear();
                    a.t = Some(t).into();
                }
                (true, op, _) if a.t.as_ref().is_some_and(is_float) => {
                    return Err(format!("{}: a float tensor attribute of {op} has no f16 form here", n.name));
                }
                _ => {}
            }
        }
    }
    for v in graph.input.iter_mut().chain(graph.output.iter_mut()) {
        if let Some(type_proto::Value::TensorType(t)) = v.type_.as_mut().and_then(|ty| ty.value.as_mut())
            && t.elem_type == DataType::FLOAT as i32
        {
            t.elem_type = DataType::FLOAT16 as i32;
        }
    }
    graph.value_info.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::prepare::proto::{Dim, graph_with, node, tensor_input};

    fn floats(name: &str, values: &[f32]) -> TensorProto {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.data_type = DataType::FLOAT as i32;
        t.dims = vec![values.len() as i64];
        t.float_data = values.to_vec();
        t
    }

    fn halves(t: &TensorProto) -> Vec<f32> {
        assert_eq!(t.data_type, DataType::FLOAT16 as i32, "{}", t.name);
        t.raw_data.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
    }

    #[test]
    fn every_float_tensor_and_type_becomes_f16_and_out_of_range_values_are_clamped() {
        let mut constant = node("Constant", &[], &["c"], &[]);
        let mut value = onnx_protobuf::AttributeProto::new();
        value.name = "value".into();
        value.type_ = AttributeType::TENSOR.into();
        value.t = Some(floats("c", &[-3.4e38, 1.5])).into();
        constant.attribute.push(value);
        let mut scalar = node("Constant", &[], &["s"], &[]);
        let mut f = onnx_protobuf::AttributeProto::new();
        f.name = "value_float".into();
        f.type_ = AttributeType::FLOAT.into();
        f.f = 0.25;
        scalar.attribute.push(f);
        let nodes = vec![
            constant,
            scalar,
            node("Cast", &["attention_mask"], &["m"], &[("to", DataType::FLOAT as i64)]),
            node("Cast", &["attention_mask"], &["i"], &[("to", DataType::INT32 as i64)]),
            node("Mul", &["w", "m"], &["y"], &[]),
        ];
        let mut g = graph_with(nodes, vec![floats("w", &[1.0, 70000.0, f32::NEG_INFINITY])]);
        g.input.push(tensor_input("past", DataType::FLOAT, &[Dim::Param("b")]));
        g.output[0] = tensor_input("y", DataType::FLOAT, &[Dim::Param("b")]);
        g.value_info.push(tensor_input("m", DataType::FLOAT, &[Dim::Param("b")]));
        whole_graph(&mut g, Path::new(".")).unwrap();

        assert_eq!(halves(&g.initializer[0]), vec![1.0, 65504.0, f32::NEG_INFINITY]);
        assert_eq!(halves(g.node[0].attribute[0].t.as_ref().unwrap()), vec![-65504.0, 1.5]);
        let s = &g.node[1].attribute[0];
        assert_eq!((s.name.as_str(), halves(s.t.as_ref().unwrap())), ("value", vec![0.25]));
        assert_eq!(g.node[2].attribute[0].i, DataType::FLOAT16 as i64);
        assert_eq!(g.node[3].attribute[0].i, DataType::INT32 as i64, "other casts stay");
        let elem = |v: &onnx_protobuf::ValueInfoProto| match &v.type_.value {
            Some(type_proto::Value::TensorType(t)) => t.elem_type,
            _ => -1,
        };
        let types: Vec<i32> = g.input.iter().chain(&g.output).map(elem).collect();
        let (int64, f16) = (DataType::INT64 as i32, DataType::FLOAT16 as i32);
        assert_eq!(types, vec![int64, int64, f16, f16]);
        assert!(g.value_info.is_empty());
    }
}

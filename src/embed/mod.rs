//! Text to vectors. The [`Embedder`] trait is what the rest of qsearch sees; [`onnx`] implements it
//! with ONNX Runtime for the model families of the catalog, [`stand_in`] with a deterministic hash
//! for pipeline tests (it is only ever used when asked for by name), [`server`] by asking a server
//! with OpenAI's embeddings API (Ollama and the like); [`load`] turns a model choice into one.

pub mod batch;
pub mod device;
mod fixed;
pub mod load;
pub mod onnx;
pub mod placement;
pub mod pool;
mod recipe;
pub mod server;
pub mod stand_in;
pub mod table;

use anyhow::Result;

use device::Placement;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// A search query: gets the model's query instruction or prefix.
    Query,
    /// A document chunk: embedded as it is (or with the model's document prefix).
    Document,
}

/// Vectors for a list of texts, in input order, with what it cost.
#[derive(Debug, Clone, Default)]
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
    /// Real tokens fed to the model (padding excluded).
    pub tokens: usize,
    /// Inputs cut at the model's maximum length.
    pub truncated: usize,
}

pub trait Embedder: Send {
    /// Identity of the vectors: model id, dimensions, and anything else that changes them.
    fn fingerprint(&self) -> String;
    fn model_id(&self) -> &str;
    fn dims(&self) -> usize;
    /// Longest input in tokens (special tokens included).
    fn max_tokens(&self) -> usize;
    /// Where it runs, and whether that is the CPU in place of the device asked for.
    fn device(&self) -> Placement;
    fn tokenizer(&self) -> Option<&tokenizers::Tokenizer>;
    fn embed(&mut self, texts: &[&str], kind: InputKind) -> Result<Embedded>;
    /// Where the runtime ran the graph's nodes, when it was asked to record it
    /// ([`onnx::Options::profile`]) and something ran since; the recording ends here.
    fn placement(&mut self) -> Result<Option<placement::NodePlacement>> {
        Ok(None)
    }
}

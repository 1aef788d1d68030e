//! Where a model runs: the device asked for ([`Device`], from the flag or the config file), the
//! ONNX Runtime session built on it, and where the session ended up ([`Placement`]). A device
//! that cannot be used falls back to the CPU, and the placement says which one and why.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use anyhow::{Result, anyhow, bail};
use ort::session::Session;
use ort::session::builder::{AutoDevicePolicy, GraphOptimizationLevel, PrepackedWeights, SessionBuilder};

use crate::models::catalog::{ACCELERATOR_MODEL, DEFAULT_MODEL};
use crate::models::prepare::Target;
use crate::runtime::Runtime;

/// The device asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// CoreML on macOS, CUDA when available, else the CPU.
    #[default]
    Auto,
    Cpu,
    Coreml,
    Cuda,
}

impl Device {
    pub const ALL: [Device; 4] = [Device::Auto, Device::Cpu, Device::Coreml, Device::Cuda];

    /// The spelling the flag and the config file accept.
    pub fn name(self) -> &'static str {
        match self {
            Device::Auto => "auto",
            Device::Cpu => "cpu",
            Device::Coreml => "coreml",
            Device::Cuda => "cuda",
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A device name that is none of [`Device::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown device `{0}`; expected one of auto, cpu, coreml, cuda")]
pub struct UnknownDevice(pub String);

impl FromStr for Device {
    type Err = UnknownDevice;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Device::ALL.into_iter().find(|d| d.name() == s).ok_or_else(|| UnknownDevice(s.to_string()))
    }
}

/// What computes the vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Cpu,
    Cuda,
    CoreMl,
    /// No model at all: the hash stand-in.
    StandIn,
    /// A server's model, wherever the server runs it (`embed::server`).
    Server,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Cpu => "CPU",
            Backend::Cuda => "CUDA",
            Backend::CoreMl => "CoreML",
            Backend::StandIn => "none (stand-in)",
            Backend::Server => "embedding server",
        })
    }
}

/// Where an embedder runs; shown as "CPU", "CUDA" or "CPU (CUDA unavailable: ...)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub on: Backend,
    /// Set when `on` is the CPU in place of the device asked for.
    pub fallback: Option<Fallback>,
}

/// The device that was asked for and could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    pub wanted: Backend,
    pub error: String,
}

impl Placement {
    pub fn on(backend: Backend) -> Self {
        Placement { on: backend, fallback: None }
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.on)?;
        if let Some(Fallback { wanted, error }) = &self.fallback {
            write!(f, " ({wanted} unavailable: {error})")?;
        }
        Ok(())
    }
}

/// What qsearch does on a backend, in one place: the graph prepared for it, the padded tokens
/// per run where the user set none (a GPU needs far larger runs than a CPU, whose caches favour
/// small ones: benches/README.md, ../shared/guides/gpu.md), and the default model (int8 on the
/// CPU; on an accelerator the fp32 export, which the CoreML and CUDA preparations turn to fp16:
/// int8 kernels are CPU ones). The provider's own options are [`session`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    pub backend: Backend,
    pub target: Target,
    pub batch_tokens: usize,
    pub default_model: &'static str,
}

impl Backend {
    pub fn profile(self) -> Profile {
        let (target, batch_tokens, default_model) = match self {
            Backend::Cuda => (Target::Cuda, 16_384, ACCELERATOR_MODEL),
            Backend::CoreMl => (Target::Coreml, 512, ACCELERATOR_MODEL),
            Backend::Cpu | Backend::StandIn | Backend::Server => (Target::Cpu, 512, DEFAULT_MODEL),
        };
        Profile { backend: self, target, batch_tokens, default_model }
    }
}

/// The profile of the backend `device` asks for (`Auto`: this machine's accelerator, else the
/// CPU).
pub fn profile(device: Device) -> Profile {
    wanted(device).unwrap_or(Backend::Cpu).profile()
}

/// The accelerator `device` asks for (`Auto`: CoreML on macOS, else CUDA when ONNX Runtime has
/// it); `None` for the CPU.
pub fn wanted(device: Device) -> Option<Backend> {
    use ort::ep::ExecutionProvider;
    match device {
        Device::Auto if cfg!(target_os = "macos") => Some(Backend::CoreMl),
        Device::Auto if ort::ep::CUDA::is_available().unwrap_or(false) => Some(Backend::Cuda),
        Device::Auto | Device::Cpu => None,
        Device::Coreml => Some(Backend::CoreMl),
        Device::Cuda => Some(Backend::Cuda),
    }
}

/// Whether a session's threads wait for more work by spinning after a run. For documents (batch
/// after batch) spinning saves waking them; for queries, one now and then, a spinning thread
/// holds a core the rest of the machine wants: beside one busy process on 2 cores a 10-token
/// query took 82-88 ms p50 spinning and 37-46 ms not, alone 29-41 ms either way
/// (`scripts/ort_spinning.py`, benches/README.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spin {
    /// Runs come back to back (indexing).
    Busy,
    /// Runs come now and then (queries, reranking).
    Idle,
}

/// Creates the session on `device`; a device that cannot be used falls back to the CPU, and the
/// placement says so.
pub fn session(
    runtime: &Runtime,
    model: &Path,
    device: Device,
    threads: usize,
    spin: Spin,
    prepacked: &PrepackedWeights,
    profile: Option<&Path>,
) -> Result<(Session, Placement)> {
    use ort::ep;
    let wanted = wanted(device);
    let builder = || -> Result<SessionBuilder> {
        Session::builder(&runtime.env)
            .map_err(|e| anyhow!("{e}"))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| anyhow!("{e}"))?
            // ort defaults to a "max efficiency" automatic device choice; qsearch picks itself.
            .with_auto_device(AutoDevicePolicy::Default)
            .map_err(|e| anyhow!("{e}"))?
            .with_intra_threads(threads)
            .map_err(|e| anyhow!("{e}"))?
            .with_intra_op_spinning(spin == Spin::Busy)
            .map_err(|e| anyhow!("{e}"))?
            .with_prepacked_weights(prepacked)
            .map_err(|e| anyhow!("{e}"))
            .and_then(|b| match profile {
                // ONNX Runtime's own record of where each node ran (`embed::placement`).
                Some(prefix) => b.with_profiling(prefix).map_err(|e| anyhow!("{e}")),
                None => Ok(b),
            })
    };
    let commit = |mut b: SessionBuilder| -> Result<Session> {
        b.commit_from_file(model).map_err(|e| anyhow!("could not load model {}: {e}", model.display()))
    };
    let mut fallback = None;
    let dispatch = match wanted {
        Some(Backend::Cuda) => Some(ep::CUDA::default().build().error_on_failure()),
        Some(Backend::CoreMl) => Some(coreml_provider().build().error_on_failure()),
        Some(other) => bail!("{other} is not a device ONNX Runtime runs a graph on"),
        None => None,
    };
    if let (Some(backend), Some(dispatch)) = (wanted, dispatch) {
        let attempt =
            builder().and_then(|b| b.with_execution_providers([dispatch]).map_err(|e| anyhow!("{e}"))).and_then(commit);
        match attempt {
            Ok(session) => return Ok((session, Placement::on(backend))),
            Err(e) => fallback = Some(Fallback { wanted: backend, error: e.to_string() }),
        }
    }
    Ok((commit(builder()?)?, Placement { on: Backend::Cpu, fallback }))
}

/// CoreML as the issue of fixed-shape fp16 graphs wants it: the MLProgram format (fp16 and most
/// operators), static shapes, every compute unit (`QSEARCH_COREML_UNITS`: all, cpu-and-ane,
/// cpu-and-gpu, cpu-only), compiled models kept under the data directory.
fn coreml_provider() -> ort::ep::CoreML {
    use ort::ep::coreml::{ComputeUnits, ModelFormat};
    let units = match std::env::var("QSEARCH_COREML_UNITS").as_deref() {
        Ok("cpu-and-ane") => ComputeUnits::CPUAndNeuralEngine,
        Ok("cpu-and-gpu") => ComputeUnits::CPUAndGPU,
        Ok("cpu-only") => ComputeUnits::CPUOnly,
        _ => ComputeUnits::All,
    };
    let cache = crate::paths::data_dir().join("coreml-cache");
    ort::ep::CoreML::default()
        .with_model_format(ModelFormat::MLProgram)
        .with_static_input_shapes(true)
        .with_compute_units(units)
        .with_model_cache_dir(cache.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_round_trip_and_an_unknown_one_lists_the_accepted() {
        for d in Device::ALL {
            assert_eq!(d.to_string().parse::<Device>(), Ok(d));
        }
        let err = "gpu".parse::<Device>().unwrap_err().to_string();
        assert_eq!(err, "unknown device `gpu`; expected one of auto, cpu, coreml, cuda");
    }

    #[test]
    fn each_backend_has_one_profile() {
        let cuda = Backend::Cuda.profile();
        assert_eq!((cuda.target, cuda.batch_tokens, cuda.default_model), (Target::Cuda, 16_384, ACCELERATOR_MODEL));
        let coreml = Backend::CoreMl.profile();
        assert_eq!((coreml.target, coreml.default_model), (Target::Coreml, ACCELERATOR_MODEL));
        let cpu = profile(Device::Cpu);
        assert_eq!(
            (cpu.backend, cpu.target, cpu.batch_tokens, cpu.default_model),
            (Backend::Cpu, Target::Cpu, 512, DEFAULT_MODEL)
        );
        assert_eq!(profile(Device::Cuda).backend, Backend::Cuda, "a named device's, whether or not it can be had");
    }

    #[test]
    fn a_fallback_reads_as_before() {
        assert_eq!(Placement::on(Backend::Cuda).to_string(), "CUDA");
        let fallback = Some(Fallback { wanted: Backend::Cuda, error: "no driver".into() });
        let fell = Placement { on: Backend::Cpu, fallback };
        assert_eq!(fell.to_string(), "CPU (CUDA unavailable: no driver)");
    }
}

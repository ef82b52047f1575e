//! `--kms-endpoint NAME=ENDPOINT`: the KMS plugins a command reads or writes
//! values through, checked before any output.

use super::Failure;
use atrest::config::EncryptionConfiguration;
use atrest::kms::Plugins;
use atrest::transformer::Transformers;
use std::path::Path;
use std::sync::Arc;

/// Help of the flag, shared by every command that has it.
pub const HELP: &str = "Use the KMS plugin of provider NAME at ENDPOINT (unix:///path.sock or unix:///@name) instead of the config's endpoint; repeatable";

/// The chains of `config` with its KMS providers' plugins; each plugin is asked
/// for its status now, so a missing or unhealthy plugin stops the command
/// (exit 2) before it prints anything.
pub fn transformers(
    config: &EncryptionConfiguration,
    path: &Path,
    overrides: &[String],
) -> Result<Transformers, Failure> {
    let plugins = Plugins::from_config(config, overrides)
        .map_err(Failure::usage)?
        .map(Arc::new);
    if let Some(p) = &plugins {
        p.check().map_err(Failure::usage)?;
    }
    Transformers::with_kms(config, plugins)
        .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))
}

/// Stop (exit 2, naming the endpoint) when a plugin became unusable during the run.
pub fn check(ts: Option<&Transformers>) -> Result<(), Failure> {
    match ts.and_then(|t| t.kms_failure()) {
        Some(e) => Err(Failure::usage(format!(
            "{e}; no report was produced from the objects read so far"
        ))),
        None => Ok(()),
    }
}

/// Whether values are read through a KMS plugin, which can fail mid-run: the
/// command then holds its output until the run is complete.
pub fn in_use(ts: Option<&Transformers>) -> bool {
    ts.is_some_and(|t| t.kms().is_some())
}

//! EncryptionConfiguration: the file kube-apiserver reads from `--encryption-provider-config`.
//!
//! Follows upstream `apiserver.config.k8s.io/v1` (`staging/src/k8s.io/apiserver/pkg/apis/apiserver/v1/types_encryption.go`),
//! loaded as `staging/src/k8s.io/apiserver/pkg/server/options/encryptionconfig/config.go` does
//! (strict decoding, legacy `v1`/`EncryptionConfig` accepted) and validated with the rules and
//! error texts of `staging/src/k8s.io/apiserver/pkg/apis/apiserver/validation/validation_encryption.go`
//! plus the load-time masking check of `config.go`.
//!
//! - [`EncryptionConfiguration::from_slice`] / [`EncryptionConfiguration::load`] parse YAML or
//!   JSON and decode every key; errors never contain key material.
//! - [`EncryptionConfiguration::validate`] returns upstream's errors plus our own warnings.
//! - [`EncryptionConfiguration::rule_for`] answers "which rule encrypts this resource".
//! - [`EncryptionConfiguration::to_yaml`] / [`EncryptionConfiguration::to_json`] write the
//!   Kubernetes form back (in zeroizing strings, since they contain keys).
//! - [`drift`] compares two nodes' configs by key name and fingerprint.

mod drift;
mod emit;
mod lookup;
mod model;
mod parse;
mod validate;

pub use drift::drift;
pub use model::{
    EncryptionConfiguration, KeyConfig, KeysConfig, KmsConfig, ProviderConfig, ResourceConfig,
    API_VERSION, KIND, LEGACY_API_VERSION, LEGACY_KIND,
};
pub(crate) use validate::parse_go_duration;
pub use validate::{Finding, Severity};

use std::path::{Path, PathBuf};

/// The syntax a configuration was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    /// YAML (also what kube-apiserver's own examples use).
    Yaml,
    /// JSON (detected when the first non-space character is `{`).
    Json,
}

/// A parsed configuration with where it came from, so it can be written back the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedConfig {
    /// The parsed configuration.
    pub config: EncryptionConfiguration,
    /// The detected syntax.
    pub format: ConfigFormat,
    /// The file it was loaded from (`None` for [`EncryptionConfiguration::from_slice`]).
    pub path: Option<PathBuf>,
}

/// Why a configuration could not be read. No variant ever carries key material.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read encryption configuration {}: {source}; check the path and its permissions", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },

    /// The input was empty (upstream refuses an empty file too).
    #[error("encryption configuration is empty; it needs apiVersion, kind and resources")]
    Empty,

    /// The input is not UTF-8.
    #[error("encryption configuration is not valid UTF-8 (first bad byte at offset {valid_up_to}); save it as UTF-8")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        valid_up_to: usize,
    },

    /// YAML syntax error, or a field of the wrong type, unknown or repeated.
    #[error("invalid YAML{}: {message}; fix the file there (like kube-apiserver, we reject unknown, misspelled and repeated fields)", fmt_pos(*line, *column))]
    Yaml {
        /// 1-based line, when known.
        line: Option<u64>,
        /// 1-based column, when known.
        column: Option<u64>,
        /// What the parser reported (long literals redacted).
        message: String,
    },

    /// JSON syntax error, or a field of the wrong type, unknown or repeated.
    #[error("invalid JSON at line {line}, column {column}: {message}; fix the file there (like kube-apiserver, we reject unknown, misspelled and repeated fields)")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser reported (long literals redacted).
        message: String,
    },

    /// `apiVersion`/`kind` are not one of the two accepted pairs.
    #[error("unsupported apiVersion {api_version:?} with kind {kind:?}; expected apiVersion \"apiserver.config.k8s.io/v1\" with kind \"EncryptionConfiguration\" (or the legacy apiVersion \"v1\" with kind \"EncryptionConfig\")")]
    UnsupportedKind {
        /// The `apiVersion` found ("" when missing).
        api_version: String,
        /// The `kind` found ("" when missing).
        kind: String,
    },

    /// A `providers:` item names no provider.
    #[error("{path}: provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, Secretbox, Identity; give each list item exactly one of aescbc, aesgcm, secretbox, identity or kms")]
    NoProvider {
        /// e.g. `resources[0].providers[1]`.
        path: String,
    },

    /// A `providers:` item names more than one provider.
    #[error("{path}: more than one provider specified in a single element ({}), should split into different list elements", found.join(", "))]
    MultipleProviders {
        /// e.g. `resources[0].providers[1]`.
        path: String,
        /// The kinds found in the item.
        found: Vec<&'static str>,
    },

    /// A key's `secret:` is not valid base64.
    #[error("{path} (key {key_name:?}): {reason}; secrets must be base64 encoded: write the key as standard base64 with padding, e.g. from `head -c 32 /dev/urandom | base64`")]
    InvalidSecret {
        /// e.g. `resources[0].providers[0].aescbc.keys[1].secret`.
        path: String,
        /// The key's `name:`.
        key_name: String,
        /// What is wrong with the text (never the text itself).
        reason: crate::key::KeyDecodeError,
    },

    /// An error from a file, with the file named.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// The error inside it.
        source: Box<ConfigError>,
    },
}

impl ConfigError {
    /// The underlying error, looking through [`ConfigError::InFile`].
    pub fn root(&self) -> &ConfigError {
        match self {
            ConfigError::InFile { source, .. } => source.root(),
            other => other,
        }
    }
}

fn fmt_pos(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

impl EncryptionConfiguration {
    /// Parse YAML text.
    pub fn from_yaml_str(text: &str) -> Result<Self, ConfigError> {
        parse::from_yaml_str(text)
    }

    /// Parse JSON text.
    pub fn from_json_str(text: &str) -> Result<Self, ConfigError> {
        parse::from_json_str(text)
    }

    /// Parse bytes, detecting the syntax: JSON if the first non-space character is `{`,
    /// YAML otherwise. The result has `path: None`.
    pub fn from_slice(bytes: &[u8]) -> Result<LoadedConfig, ConfigError> {
        let (config, format) = parse::from_slice(bytes)?;
        Ok(LoadedConfig {
            config,
            format,
            path: None,
        })
    }

    /// Read and parse a file; every error names the file.
    pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
        let bytes =
            zeroize::Zeroizing::new(std::fs::read(path).map_err(|source| ConfigError::Io {
                path: path.to_path_buf(),
                source,
            })?);
        let (config, format) = parse::from_slice(&bytes).map_err(|e| ConfigError::InFile {
            path: path.to_path_buf(),
            source: Box::new(e),
        })?;
        Ok(LoadedConfig {
            config,
            format,
            path: Some(path.to_path_buf()),
        })
    }
}

//! `atrest generate`: a complete EncryptionConfiguration with a fresh key.

use super::flags::KeyProvider;
use super::{output::write_stdout, CmdResult, Failure};
use atrest::config::{
    EncryptionConfiguration, KeyConfig, KeysConfig, ProviderConfig, ResourceConfig, Severity,
};
use atrest::key::SecretKey;
use std::path::PathBuf;

pub const EXAMPLES: &str = "\
Examples:
  # Print a config that encrypts Secrets with a new aescbc key
  atrest generate

  # Write it for kube-apiserver (mode 0600, refuses to overwrite)
  atrest generate --output /etc/kubernetes/enc/encryption-config.yaml

  # secretbox, for Secrets and ConfigMaps, key named after today
  atrest generate --provider secretbox --key-name key-20261129 --resources secrets,configmaps";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Encryption provider of the new key.
    #[arg(long, value_enum, default_value = "aescbc")]
    provider: KeyProvider,
    /// Name of the new key (it becomes part of every stored value's prefix).
    #[arg(long, default_value = "key1")]
    key_name: String,
    /// Resources to encrypt, comma-separated (e.g. secrets,configmaps or '*.*').
    #[arg(long, value_delimiter = ',', default_value = "secrets")]
    resources: Vec<String>,
    /// Write the config to FILE (atomically, mode 0600) instead of stdout. With
    /// --force, a file replaced keeps its owner, group and mode, and a symlink is
    /// written through to its target.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// With --output, replace an existing file.
    #[arg(long)]
    force: bool,
}

/// Build a one-item config: the new key's provider, then `identity: {}` so that
/// existing plaintext objects stay readable until they are rewritten.
pub fn new_config(
    provider: KeyProvider,
    key_name: &str,
    resources: Vec<String>,
) -> Result<EncryptionConfiguration, Failure> {
    let secret = SecretKey::generate(32)
        .map_err(|e| Failure::usage(format!("cannot get random bytes from the OS: {e}")))?;
    let keys = KeysConfig {
        keys: vec![KeyConfig {
            name: key_name.to_string(),
            secret,
        }],
    };
    let p = match provider {
        KeyProvider::Aescbc => ProviderConfig::AesCbc(keys),
        KeyProvider::Aesgcm => ProviderConfig::AesGcm(keys),
        KeyProvider::Secretbox => ProviderConfig::Secretbox(keys),
    };
    Ok(EncryptionConfiguration {
        api_version: "apiserver.config.k8s.io/v1".to_string(),
        kind: "EncryptionConfiguration".to_string(),
        resources: vec![ResourceConfig {
            resources,
            providers: vec![p, ProviderConfig::Identity],
        }],
    })
}

pub fn run(a: Args) -> CmdResult {
    let resources: Vec<String> = a
        .resources
        .iter()
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect();
    let cfg = new_config(a.provider, &a.key_name, resources)?;
    let errors: Vec<String> = cfg
        .validate()
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.to_string())
        .collect();
    if !errors.is_empty() {
        return Err(Failure::usage(format!(
            "the requested config would be invalid:\n  {}",
            errors.join("\n  ")
        )));
    }
    let yaml = cfg.to_yaml();
    match &a.output {
        None => write_stdout(yaml.as_bytes()),
        Some(path) => {
            atrest::fsutil::write_private(path, yaml.as_bytes(), a.force)
                .map_err(Failure::usage)?;
            let fp = match cfg.resources[0].providers[0].keys() {
                Some(k) => k.keys[0].secret.fingerprint().to_string(),
                None => String::new(),
            };
            // A replaced file (or a symlink's target) keeps its owner and mode.
            let mode = std::fs::metadata(path)
                .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
                .unwrap_or(0o600);
            eprintln!(
                "wrote {} (mode {mode:04o}): {} key `{}`, fingerprint {fp}",
                path.display(),
                cfg.resources[0].providers[0].kind_name(),
                a.key_name
            );
            Ok(())
        }
    }
}

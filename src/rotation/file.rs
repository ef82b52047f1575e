//! The config file: validation as kube-apiserver would refuse it, the text in the
//! file's own YAML or JSON form, a key-free summary, and the safe write (a `.bak` of
//! the previous file, then an atomic write keeping owner, group and mode).

use super::naming::utc_stamp;
use super::stage::item_label;
use super::RotationError;
use crate::config::{
    ConfigFormat, EncryptionConfiguration, LoadedConfig, ProviderConfig, Severity,
};
use crate::fsutil::{write_private, write_private_like, WriteFileError};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use zeroize::Zeroizing;

/// Refuse a config kube-apiserver would refuse.
pub fn check_valid(cfg: &EncryptionConfiguration) -> Result<(), RotationError> {
    let findings: Vec<String> = cfg
        .validate()
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.to_string())
        .collect();
    if findings.is_empty() {
        Ok(())
    } else {
        Err(RotationError::Invalid { findings })
    }
}

/// The file text of `cfg` in `format` (contains keys: zeroizing).
pub fn render(cfg: &EncryptionConfiguration, format: ConfigFormat) -> Zeroizing<String> {
    match format {
        ConfigFormat::Yaml => cfg.to_yaml(),
        ConfigFormat::Json => cfg.to_json(),
    }
}

/// A summary of a config by provider, key name and fingerprint (no key material).
pub fn describe(cfg: &EncryptionConfiguration) -> String {
    let mut s = String::new();
    for (i, item) in cfg.resources.iter().enumerate() {
        let providers: Vec<String> = item
            .providers
            .iter()
            .enumerate()
            .map(|(pi, p)| match p {
                ProviderConfig::Identity => "identity".to_string(),
                ProviderConfig::Kms(k) => format!("kms `{}`", k.name),
                other => {
                    let keys: Vec<String> = other
                        .keys()
                        .map(|ks| {
                            ks.keys
                                .iter()
                                .enumerate()
                                .map(|(ki, k)| {
                                    let role = if pi == 0 && ki == 0 { ", writes" } else { "" };
                                    format!("{} ({}{role})", k.name, k.secret.fingerprint())
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    format!("{} [{}]", other.kind_name(), keys.join(", "))
                }
            })
            .collect();
        s.push_str(&format!(
            "{}: {}\n",
            item_label(cfg, i),
            providers.join(", then ")
        ));
    }
    s
}

/// Where [`write_config`] put the files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The config file (symlinks resolved).
    pub path: PathBuf,
    /// The copy of the previous file.
    pub backup: PathBuf,
}

/// Write `new` over the file `loaded` came from: validate it, refuse if the file changed
/// since it was read, copy the previous file to `FILE.<UTC timestamp>.bak` (never
/// overwriting: `.1.bak`, `.2.bak`, ... on collision), then write atomically in the
/// same YAML or JSON form. Both keep the owner, group and mode of the file.
pub fn write_config(
    loaded: &LoadedConfig,
    new: &EncryptionConfiguration,
    now: SystemTime,
) -> Result<Written, RotationError> {
    check_valid(new)?;
    let given = loaded.path.as_deref().ok_or(RotationError::NoPath)?;
    let path = std::fs::canonicalize(given).map_err(|source| RotationError::Io {
        path: given.to_path_buf(),
        source,
    })?;
    let old = Zeroizing::new(std::fs::read(&path).map_err(|source| RotationError::Io {
        path: path.clone(),
        source,
    })?);
    match EncryptionConfiguration::from_slice(&old) {
        Ok(on_disk) if on_disk.config == loaded.config => {}
        _ => return Err(RotationError::ChangedOnDisk { path }),
    }
    let backup = write_backup(&path, &old, now)?;
    let text = render(new, loaded.format);
    write_private(&path, text.as_bytes(), true)?;
    Ok(Written { path, backup })
}

fn write_backup(path: &Path, data: &[u8], now: SystemTime) -> Result<PathBuf, RotationError> {
    let stamp = utc_stamp(now);
    let base = path.as_os_str().to_string_lossy().into_owned();
    for n in 0..1000u32 {
        let candidate = if n == 0 {
            PathBuf::from(format!("{base}.{stamp}.bak"))
        } else {
            PathBuf::from(format!("{base}.{stamp}.{n}.bak"))
        };
        match write_private_like(&candidate, data, path) {
            Ok(()) => return Ok(candidate),
            Err(WriteFileError::Exists(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(RotationError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "1000 backups with the same timestamp exist",
        ),
    })
}

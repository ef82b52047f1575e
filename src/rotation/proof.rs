//! When a scan proves that a key is unused: the snapshot is whole (its sha256 trailer
//! verifies, as `etcdctl snapshot save` wrote it; `etcd-io/etcd`
//! `etcdutl/snapshot/v3_snapshot.go`), every object is readable with the config, and
//! the scan saw the data the config was written for. [`super::retire`] refuses
//! whenever one of these fails.

use super::stage::{item_label, keys_of};
use super::usage::relevant;
use super::{KeyUsage, RotationError};
use crate::audit::Status;
use crate::config::{EncryptionConfiguration, ProviderConfig};
use crate::etcd_key::GroupResource;
use crate::snapshot::HashCheck;
use std::path::Path;

/// Refuse a snapshot whose sha256 trailer was not verified: only a snapshot that
/// `etcdctl snapshot save` wrote whole, with its hash checked, is a complete scan.
pub fn check_snapshot(path: &Path, hash: HashCheck) -> Result<(), RotationError> {
    let why = match hash {
        HashCheck::Verified => return Ok(()),
        HashCheck::NoTrailer => "it has no sha256 trailer (a member's db file, or a copy cut short), so nothing shows it is whole and consistent",
        HashCheck::Skipped | HashCheck::Pending => "its sha256 trailer was not checked (--skip-hash-check)",
    };
    Err(RotationError::UnverifiedSnapshot {
        path: path.to_path_buf(),
        why,
    })
}

/// The resource every cluster has objects of in its main etcd (`default`,
/// `kube-system`).
const NAMESPACES: &str = "namespaces";

impl KeyUsage {
    /// Refuse while any object is at risk: such a scan does not show the data the
    /// config was written for, so it proves nothing about a key.
    pub(super) fn check_readable(&self, target: &str) -> Result<(), RotationError> {
        if self.at_risk_total == 0 {
            return Ok(());
        }
        let mut resources: Vec<String> = Vec::new();
        for r in &self.at_risk {
            if !resources.contains(&r.resource) {
                resources.push(r.resource.clone());
            }
        }
        Err(RotationError::ProofIncomplete {
            target: target.to_string(),
            resources,
            count: self.at_risk_total,
            examples: self.at_risk.iter().map(|r| r.key.clone()).collect(),
        })
    }

    /// Refuse unless the scan saw the data it is meant to prove something about: in
    /// every item in `items`, at least one object of each resource it lists (for a
    /// wildcard: of some resource it governs, and a namespace when it governs
    /// namespaces), and at least one object written as the
    /// item writes now: with its current write key, or in plaintext where `identity`
    /// writes (encryption being turned off, an old key still reading). A wrong
    /// `--etcd-prefix`, another cluster's data or a snapshot older than the write key
    /// fail here.
    pub(super) fn check_coverage(
        &self,
        cfg: &EncryptionConfiguration,
        items: &[usize],
        target: &str,
    ) -> Result<(), RotationError> {
        for &i in items {
            let Some(item) = cfg.resources.get(i) else {
                continue;
            };
            let identity_writes = match item.providers.first() {
                None => continue,
                Some(p) => matches!(p, ProviderConfig::Identity),
            };
            for r in &item.resources {
                let seen = if r.contains('*') {
                    // Some governed resource, and namespaces when the rule governs
                    // them: every cluster has some in its main etcd, while an etcd
                    // that kube-apiserver's `--etcd-servers-overrides` gives one
                    // resource (`/events#URL`) holds only that resource.
                    let seen =
                        |res: &str| self.summary.by_resource.get(res).is_some_and(|n| *n > 0);
                    if relevant(cfg, NAMESPACES, &[i]) && !seen(NAMESPACES) {
                        return Err(RotationError::ScanMissesResource {
                            target: target.to_string(),
                            item: item_label(cfg, i),
                            resource: format!(
                                "{NAMESPACES} (which every cluster has, and `{r}` governs)"
                            ),
                            objects: self.summary.objects,
                        });
                    }
                    self.summary
                        .by_resource
                        .iter()
                        .any(|(res, n)| *n > 0 && relevant(cfg, res, &[i]))
                } else {
                    let name = GroupResource::parse(r).to_string();
                    self.summary.by_resource.get(&name).is_some_and(|n| *n > 0)
                };
                if !seen {
                    return Err(RotationError::ScanMissesResource {
                        target: target.to_string(),
                        item: item_label(cfg, i),
                        resource: r.clone(),
                        objects: self.summary.objects,
                    });
                }
            }
            let written = self.summary.cells.iter().any(|((res, prov, _, st), n)| {
                *n > 0
                    && *st == Status::Current
                    && (*prov == "identity") == identity_writes
                    && relevant(cfg, res, &[i])
            });
            if !written {
                let writer = if identity_writes {
                    "identity (plaintext)".to_string()
                } else {
                    keys_of(&item.providers, 0)
                        .into_iter()
                        .next()
                        .map_or_else(|| "its write key".to_string(), |k| k.to_string())
                };
                return Err(RotationError::ScanMissesWriter {
                    target: target.to_string(),
                    item: item_label(cfg, i),
                    writer,
                });
            }
        }
        Ok(())
    }
}

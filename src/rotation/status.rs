//! [`status`]: where a config is in the procedure and the step to take next, with the
//! scan's counts per key when there is a scan; for KMS providers, the objects per key
//! ID (a KMS v2 value names the key ID that wrapped its DEK: kubernetes
//! `staging/src/k8s.io/apiserver/pkg/storage/value/encrypt/envelope/kmsv2`).

use super::stage::{item_stage, keys_of, overall, targets};
use super::{retire, ItemStage, KeyId, KeyUsage, RetireTarget, RotationError, Scope, Stage};
use crate::audit::Status;
use crate::config::{EncryptionConfiguration, ProviderConfig};
use std::collections::BTreeMap;

/// A key in a [`StatusReport`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyStatus {
    /// The key (first item it appears in).
    pub key: KeyId,
    /// `true` when it writes in some target item.
    pub writer: bool,
    /// Objects under it (`None`: no scan): for a keyed provider, objects of any resource
    /// stored under its whole prefix; for kms, objects of the items that have it.
    pub objects: Option<u64>,
}

/// The step to take next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextStep {
    /// Objects are at risk: add the missing keys back before anything else.
    FixAtRisk,
    /// Add a new key: `atrest rotate prepare`.
    Prepare {
        /// Encryption is being enabled (no key yet).
        enable: bool,
    },
    /// Restart every kube-apiserver with the config, then `atrest rotate promote`.
    Promote,
    /// Tell atrest which reader is the prepared key.
    PromoteWhich {
        /// The readers of unknown age.
        readers: Vec<String>,
    },
    /// A scan is needed to know whether the data has moved.
    Scan,
    /// Restart every kube-apiserver with the config, then rewrite every object.
    Rewrite {
        /// Objects still under old keys or in plaintext.
        objects: u64,
    },
    /// Remove a key nothing uses any more: `atrest rotate retire --key TARGET`.
    Retire {
        /// `NAME`, `PROVIDER/NAME` or `identity`.
        target: String,
    },
    /// No object uses an old key, but the scan does not prove it (`retire` would
    /// refuse it): get a scan that does.
    ProofIncomplete {
        /// The key a retire would remove.
        target: String,
        /// Why `retire` would refuse, with what to do.
        why: String,
    },
    /// Nothing to do; the next rotation starts with `prepare`.
    Done,
    /// The items are at different stages.
    Mixed,
    /// KMS writes: rotate in the plugin (no scan, or no plugin to compare with).
    Kms,
    /// KMS writes, and objects sit under old key IDs of its plugin (after a KEK
    /// rotation) or under other providers: rewrite them through the plugin.
    KmsRewrite {
        /// Objects to rewrite.
        objects: u64,
    },
    /// KMS writes and every object is under the plugin's current key ID: the old
    /// KEKs protect no object of the scanned data any more.
    KmsDone,
}

/// The objects of one KMS provider by the key ID that wrote them (from a scan).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsKeyIds {
    /// The provider (plugin) name.
    pub name: String,
    /// `kms-v2` or `kms` (v1, which has no key IDs).
    pub provider: &'static str,
    /// The key ID the plugin writes with now (its `Status`; `None` for v1).
    pub current_key_id: Option<String>,
    /// v2: objects by the keyID stored in them.
    pub by_key_id: BTreeMap<String, u64>,
    /// All objects stored under the provider's prefix.
    pub objects: u64,
}

impl KmsKeyIds {
    /// Objects under a key ID other than the current one.
    pub fn old_key_id_objects(&self) -> u64 {
        self.by_key_id
            .iter()
            .filter(|(id, _)| Some(id.as_str()) != self.current_key_id.as_deref())
            .map(|(_, n)| n)
            .sum()
    }
}

/// Per KMS provider of `cfg`, the objects of the scan by key ID; `current_key_id`
/// gives a v2 provider's current key ID (its plugin's `Status`).
pub fn kms_key_ids(
    cfg: &EncryptionConfiguration,
    usage: &KeyUsage,
    current_key_id: impl Fn(&str) -> Option<String>,
) -> Vec<KmsKeyIds> {
    let mut out: Vec<KmsKeyIds> = Vec::new();
    for item in &cfg.resources {
        for p in &item.providers {
            let ProviderConfig::Kms(k) = p else { continue };
            let v2 = k.effective_api_version() == "v2";
            let provider = if v2 { "kms-v2" } else { "kms" };
            if out
                .iter()
                .any(|o| o.name == k.name && o.provider == provider)
            {
                continue;
            }
            let mut e = KmsKeyIds {
                name: k.name.clone(),
                provider,
                current_key_id: if v2 { current_key_id(&k.name) } else { None },
                by_key_id: BTreeMap::new(),
                objects: 0,
            };
            let with_id = format!("{}/", k.name);
            for ((_, prov, key, _), n) in &usage.summary.cells {
                if *prov != provider {
                    continue;
                }
                let Some(key) = key.as_deref() else { continue };
                if v2 {
                    // The audit names v2 objects `<plugin>/<keyID>`.
                    if let Some(id) = key.strip_prefix(&with_id) {
                        *e.by_key_id.entry(id.to_string()).or_default() += n;
                        e.objects += n;
                    }
                } else if key == k.name {
                    e.objects += n;
                }
            }
            out.push(e);
        }
    }
    out
}

impl StatusReport {
    /// Add the scan's per-key-ID counts of the KMS providers and, when a KMS
    /// plugin writes, decide the next step from them: rewrite while objects sit
    /// under old key IDs or other providers, done once none does.
    pub fn with_kms(
        mut self,
        cfg: &EncryptionConfiguration,
        scope: &Scope,
        usage: &KeyUsage,
        kms: Vec<KmsKeyIds>,
    ) -> StatusReport {
        if self.next == NextStep::Kms {
            let targets = targets(cfg, scope).unwrap_or_default();
            let (to_rewrite, _, _) = usage.matching(cfg, &targets, |_, _, st| {
                matches!(st, Status::Stale | Status::Plaintext)
            });
            let old_ids: u64 = kms.iter().map(KmsKeyIds::old_key_id_objects).sum();
            let known = kms
                .iter()
                .all(|k| k.provider == "kms" || k.current_key_id.is_some());
            if to_rewrite + old_ids > 0 {
                self.next = NextStep::KmsRewrite {
                    objects: to_rewrite.max(old_ids),
                };
            } else if known {
                self.next = NextStep::KmsDone;
            }
        }
        self.kms = kms;
        self
    }
}

/// Where a config is in the procedure, and what to do next.
#[derive(Clone, Debug)]
pub struct StatusReport {
    /// Every target item.
    pub items: Vec<ItemStage>,
    /// The common stage; `None` when the items differ.
    pub stage: Option<Stage>,
    /// Every key of the target items, once each.
    pub keys: Vec<KeyStatus>,
    /// Plaintext objects of the target items' resources (`None`: no scan).
    pub plaintext_objects: Option<u64>,
    /// The next step.
    pub next: NextStep,
    /// KMS providers: objects by key ID (empty without a scan; see
    /// [`StatusReport::with_kms`]).
    pub kms: Vec<KmsKeyIds>,
}

/// The status of `cfg`, with the scan's counts when there is one.
pub fn status(
    cfg: &EncryptionConfiguration,
    scope: &Scope,
    usage: Option<&KeyUsage>,
) -> Result<StatusReport, RotationError> {
    let targets = targets(cfg, scope)?;
    let items: Vec<ItemStage> = targets.iter().map(|&i| item_stage(cfg, i)).collect();
    let stage = overall(&items);

    let mut keys: Vec<KeyStatus> = Vec::new();
    for st in &items {
        for k in keys_of(&cfg.resources[st.item].providers, 0) {
            let writer = k.provider_index == 0 && k.key_index == 0;
            if let Some(existing) = keys
                .iter_mut()
                .find(|e| e.key.provider == k.provider && e.key.name == k.name)
            {
                existing.writer |= writer;
                continue;
            }
            let objects = usage.map(|u| {
                if k.provider != "kms" {
                    return u.objects_under(k.provider, &k.name);
                }
                let holders: Vec<usize> = items
                    .iter()
                    .map(|s| s.item)
                    .filter(|&i| {
                        keys_of(&cfg.resources[i].providers, 0)
                            .iter()
                            .any(|x| x.provider == k.provider && x.name == k.name)
                    })
                    .collect();
                u.matching(cfg, &holders, |p, kn, _| {
                    p.starts_with("kms")
                        && kn.is_some_and(|kn| {
                            kn == k.name || kn.starts_with(&format!("{}/", k.name))
                        })
                })
                .0
            });
            keys.push(KeyStatus {
                key: k,
                writer,
                objects,
            });
        }
    }
    let plaintext_objects = usage.map(|u| u.matching(cfg, &targets, |p, _, _| p == "identity").0);

    let mut next = next_step(&items, stage, &keys, plaintext_objects, usage);
    // Suggest a retire only when `retire` itself would accept this scan as proof:
    // otherwise say why the scan proves nothing yet.
    if let (NextStep::Retire { target }, Some(u)) = (&next, usage) {
        if let Ok(t) = target.parse::<RetireTarget>() {
            if let Err(e) = retire(cfg, &t, u, scope) {
                next = NextStep::ProofIncomplete {
                    target: target.clone(),
                    why: e.to_string(),
                };
            }
        }
    }
    Ok(StatusReport {
        items,
        stage,
        keys,
        plaintext_objects,
        next,
        kms: Vec::new(),
    })
}

fn next_step(
    items: &[ItemStage],
    stage: Option<Stage>,
    keys: &[KeyStatus],
    plaintext: Option<u64>,
    usage: Option<&KeyUsage>,
) -> NextStep {
    if let Some(u) = usage {
        if u.at_risk_total > 0 {
            return NextStep::FixAtRisk;
        }
    }
    let Some(stage) = stage else {
        return NextStep::Mixed;
    };
    match stage {
        Stage::NoEncryption => NextStep::Prepare { enable: true },
        Stage::Prepared => NextStep::Promote,
        Stage::Ambiguous => NextStep::PromoteWhich {
            readers: items
                .iter()
                .flat_map(|s| s.old.iter().map(|k| k.name.clone()))
                .fold(Vec::new(), |mut v, n| {
                    if !v.contains(&n) {
                        v.push(n);
                    }
                    v
                }),
        },
        Stage::Kms => NextStep::Kms,
        Stage::Clean | Stage::Writing => {
            let identity = items.iter().any(|s| s.identity_reads);
            let old: Vec<&KeyStatus> = keys.iter().filter(|k| !k.writer).collect();
            if old.is_empty() && !identity {
                return NextStep::Done;
            }
            if usage.is_none() {
                return NextStep::Scan;
            }
            let on_old: u64 = old.iter().filter_map(|k| k.objects).sum();
            let plain = if identity { plaintext.unwrap_or(0) } else { 0 };
            if on_old + plain > 0 {
                return NextStep::Rewrite {
                    objects: on_old + plain,
                };
            }
            match old.first() {
                Some(k) => {
                    let ambiguous_name =
                        keys.iter().filter(|x| x.key.name == k.key.name).count() > 1;
                    let target = if ambiguous_name || k.key.name == "identity" {
                        format!("{}/{}", k.key.provider, k.key.name)
                    } else {
                        k.key.name.clone()
                    };
                    NextStep::Retire { target }
                }
                None => NextStep::Retire {
                    target: "identity".to_string(),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn kms_objects_by_key_id_decide_the_next_step() {
        let cfg = EncryptionConfiguration::from_yaml_str(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - kms: {apiVersion: v2, name: kp, endpoint: unix:///k.sock}\n      - kms: {apiVersion: v2, name: kpx, endpoint: unix:///x.sock}\n      - identity: {}\n",
        )
        .unwrap();
        let scope = Scope::default();
        let usage = |cells: &[(&str, Status, u64)]| {
            let mut u = KeyUsage::default();
            for (k, st, n) in cells {
                u.summary.cells.insert(
                    ("secrets".to_string(), "kms-v2", Some(k.to_string()), *st),
                    *n,
                );
            }
            u
        };
        let current = |name: &str| (name == "kp").then(|| "2".to_string());
        let next = |u: &KeyUsage| {
            let kms = kms_key_ids(&cfg, u, current);
            let r = status(&cfg, &scope, Some(u)).unwrap();
            assert_eq!(r.next, NextStep::Kms);
            (kms.clone(), r.with_kms(&cfg, &scope, u, kms).next)
        };
        // After the KEK rotation: 3 objects under key ID 1 (stale), 2 under 2;
        // `kpx/1` is another plugin, not counted under `kp`.
        let u = usage(&[
            ("kp/1", Status::Stale, 3),
            ("kp/2", Status::Current, 2),
            ("kpx/1", Status::Stale, 1),
        ]);
        let (kms, step) = next(&u);
        assert_eq!(kms[0].name, "kp");
        assert_eq!(
            kms[0].by_key_id,
            BTreeMap::from([("1".to_string(), 3), ("2".to_string(), 2)])
        );
        assert_eq!(kms[0].old_key_id_objects(), 3);
        assert_eq!(kms[1].name, "kpx");
        assert_eq!(kms[1].current_key_id, None);
        assert_eq!(step, NextStep::KmsRewrite { objects: 4 });
        // After the rewrite: every object under key ID 2, nothing stale.
        let u = usage(&[("kp/2", Status::Current, 5)]);
        let (kms, step) = next(&u);
        assert_eq!(kms[0].old_key_id_objects(), 0);
        // `kpx` has no current key ID known: not proven done.
        assert_eq!(step, NextStep::Kms);
        let cfg1 = EncryptionConfiguration::from_yaml_str(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - kms: {apiVersion: v2, name: kp, endpoint: unix:///k.sock}\n",
        )
        .unwrap();
        let kms = kms_key_ids(&cfg1, &u, current);
        let r = status(&cfg1, &scope, Some(&u)).unwrap();
        assert_eq!(r.with_kms(&cfg1, &scope, &u, kms).next, NextStep::KmsDone);
    }
}

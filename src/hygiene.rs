//! Snapshot hygiene: plaintext that a backup still holds outside its keyspace at
//! the latest revision.
//!
//! Two places keep old values in an etcd db file after encryption is turned on
//! and objects are rewritten: superseded revisions that compaction has not yet
//! removed (the MVCC history in the `key` bucket), and free pages, which bbolt
//! reuses but never wipes and which `etcdctl snapshot save` copies verbatim
//! (etcd keeps no freelist on disk, so every unreachable page counts).

use crate::audit::Auditor;
use crate::bolt::{BoltError, BoltFile};
use crate::envelope::{looks_like_object, Envelope, ProviderKind};
use crate::mvcc::{self, KeyspaceEntry, MvccError};
use crate::transformer::Transformers;
use serde::Serialize;

/// A superseded revision that still holds a plaintext object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryFinding {
    /// etcd key.
    pub key: String,
    /// Group/resource.
    pub resource: String,
    /// Namespace, if namespaced.
    pub namespace: Option<String>,
    /// Object name.
    pub name: String,
    /// Revision of the superseded value.
    pub mod_revision: i64,
    /// Whether the key still exists at the latest revision (false: deleted since).
    pub key_live: bool,
}

/// Which resources' plaintext counts as a leak: those the config encrypts, or
/// Secrets when there is no config.
pub(crate) fn should_be_encrypted(
    ts: Option<&Transformers>,
    gr: &crate::etcd_key::GroupResource,
) -> bool {
    match ts {
        Some(ts) => {
            let (t, covered) = ts.for_resource(gr);
            covered && t.write_key().provider != ProviderKind::Identity
        }
        None => crate::audit::plaintext_is_finding_without_config(&gr.to_string()),
    }
}

/// Superseded revisions (older than the key's value in `keyspace`, or of deleted keys) that hold
/// plaintext objects of resources that should be encrypted.
pub fn superseded_plaintext(
    file: &BoltFile,
    keyspace: &[KeyspaceEntry<'_>],
    auditor: &Auditor<'_>,
    ts: Option<&Transformers>,
) -> Result<Vec<HistoryFinding>, MvccError> {
    let mut out = Vec::new();
    for rec in mvcc::records(file)? {
        let rec = rec?;
        if rec.tombstone {
            continue;
        }
        let Some(ok) = auditor.select(rec.kv.key) else {
            continue;
        };
        let kept_rev = keyspace
            .binary_search_by(|e| e.key.cmp(rec.kv.key))
            .ok()
            .map(|i| keyspace[i].revision);
        if kept_rev == Some(rec.revision) {
            continue;
        }
        let value = rec.kv.value;
        if Envelope::parse(value).provider != ProviderKind::Identity || !looks_like_object(value) {
            continue;
        }
        if !should_be_encrypted(ts, &ok.resource) {
            continue;
        }
        out.push(HistoryFinding {
            key: String::from_utf8_lossy(rec.kv.key).into_owned(),
            resource: ok.resource.to_string(),
            namespace: ok.namespace.map(str::to_string),
            name: ok.name.to_string(),
            mod_revision: rec.kv.mod_revision,
            key_live: kept_rev.is_some(),
        });
    }
    Ok(out)
}

/// Plaintext Secret data found in a free page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FreePageFinding {
    /// Page id.
    pub page: u64,
    /// Byte offset of the object in the file.
    pub offset: u64,
    /// The etcd key stored just before it, when it is still there.
    pub key: Option<String>,
}

/// The start of a protobuf `v1.Secret` as kube-apiserver stores it: the `k8s\0`
/// magic and `runtime.Unknown.typeMeta {apiVersion: "v1", kind: "Secret"}`.
pub const PROTOBUF_SECRET_MARKER: &[u8] = b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Secret";
/// A JSON-stored Secret (as written by kube-apiserver's JSON serializer).
pub const JSON_SECRET_MARKER: &[u8] = b"{\"kind\":\"Secret\",\"apiVersion\":\"v1\"";

/// Scan free pages for plaintext Secrets (protobuf or JSON).
pub fn scan_free_pages(
    file: &BoltFile,
    key_prefix: &str,
) -> Result<Vec<FreePageFinding>, BoltError> {
    let bytes = file.bytes();
    let page_size = file.page_size() as usize;
    let mut out = Vec::new();
    let finders = [
        memchr::memmem::Finder::new(PROTOBUF_SECRET_MARKER),
        memchr::memmem::Finder::new(JSON_SECRET_MARKER),
    ];
    let key_marker = format!("{}/secrets/", key_prefix.trim_end_matches('/'));
    let key_finder = memchr::memmem::FinderRev::new(key_marker.as_bytes());
    // A leaf larger than a page spans a run of consecutive pages, and a value in
    // it can start in one page and go on in the next: scan each run of
    // consecutive free pages as one buffer.
    for (first, count) in runs(&file.free_pages()?) {
        let start = (first as usize).saturating_mul(page_size);
        let end = start
            .saturating_add((count as usize).saturating_mul(page_size))
            .min(bytes.len());
        let Some(buf) = bytes.get(start..end) else {
            continue;
        };
        for f in &finders {
            for hit in f.find_iter(buf) {
                // The KeyValue's key field precedes its value: look back for it.
                let window = &buf[hit.saturating_sub(1024)..hit];
                let key = key_finder.rfind(window).map(|k| {
                    let s = &window[k..];
                    let end = s
                        .iter()
                        .position(|&b| !(0x21..0x7f).contains(&b))
                        .unwrap_or(s.len());
                    String::from_utf8_lossy(&s[..end]).into_owned()
                });
                out.push(FreePageFinding {
                    page: first + (hit / page_size) as u64,
                    offset: (start + hit) as u64,
                    key,
                });
            }
        }
    }
    out.sort_by_key(|f| f.offset);
    Ok(out)
}

/// Sorted page ids as runs of consecutive pages: (first page, number of pages).
fn runs(pages: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &p in pages {
        match out.last_mut() {
            Some((first, count)) if first.checked_add(*count) == Some(p) => *count += 1,
            _ => out.push((p, 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::runs;

    #[test]
    fn free_pages_group_into_runs_of_consecutive_pages() {
        assert_eq!(runs(&[]), vec![]);
        assert_eq!(runs(&[3]), vec![(3, 1)]);
        assert_eq!(
            runs(&[2, 3, 4, 7, 9, 10, u64::MAX]),
            vec![(2, 3), (7, 1), (9, 2), (u64::MAX, 1)]
        );
    }
}

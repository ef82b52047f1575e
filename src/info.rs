//! What an etcd snapshot or db file holds, at a glance: the facts an on-call
//! engineer checks first about a backup (`atrest info`).
//!
//! Formats from `etcd-io/etcd`:
//! - `server/storage/schema/bucket.go`: buckets `meta`, `lease`, `members`; meta keys
//!   `consistent_index`, `term` and `confState` (since 3.5), `storageVersion` (since 3.6).
//! - `server/storage/schema/schema.go` (`UnsafeDetectSchemaVersion`): a file is 3.6 or
//!   newer when `storageVersion` parses as a version, 3.5 when it has both `confState`
//!   and a non-zero `term`; etcd refuses to guess for older files, which we call 3.4.
//! - `server/storage/schema/version.go`: `storageVersion` is `major.minor.0` as text.
//! - `server/storage/schema/membership.go` (3.6) and
//!   `server/etcdserver/api/membership/store.go` (3.4, 3.5): a `members` key is the
//!   member id in hex (`types.ID.String`), its value the JSON of
//!   `membership.Member` {`id` (number), `peerURLs`, `isLearner`, `name`, `clientURLs`}
//!   (`server/etcdserver/api/membership/member.go`).
//! - `server/storage/schema/lease.go`: one `lease` entry per lease (8-byte id key).
//!
//! The library decides everything here; the CLI only prints a [`SnapshotInfo`].

use crate::audit::{AuditOptions, Auditor, StoredObject};
use crate::bolt::{BoltError, Entry};
use crate::etcd_key::parse_object_key;
use crate::mvcc::{self, KeyspaceView, MvccError, META_BUCKET};
use crate::snapshot::{hex, HashCheck, Snapshot, SnapshotError, HASH_TRAILER_LEN};
use crate::transformer::Transformers;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Bucket of cluster members (`schema.Members`).
pub const MEMBERS_BUCKET: &[u8] = b"members";
/// Bucket of ids of removed members (`schema.MembersRemoved`).
pub const MEMBERS_REMOVED_BUCKET: &[u8] = b"members_removed";
/// Bucket of leases (`schema.Lease`).
pub const LEASE_BUCKET: &[u8] = b"lease";
/// Raft configuration, JSON of `raftpb.ConfState`, since 3.5 (`MetaConfStateName`).
pub const CONF_STATE_KEY: &[u8] = b"confState";
/// Storage schema version as `major.minor.0`, since 3.6 (`MetaStorageVersionName`).
pub const STORAGE_VERSION_KEY: &[u8] = b"storageVersion";

/// Objects are classified with a config this many at a time, in parallel.
const CLASSIFY_CHUNK: usize = 4096;

/// Everything `atrest info` reports. The JSON field names are an interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SnapshotInfo {
    /// `3.4`, `3.5` or `3.6` (a later etcd's version as it recorded it).
    pub storage_version: String,
    /// The raw `storageVersion` of the meta bucket, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_version_recorded: Option<String>,
    /// Latest revision (`None`: the file holds no revision at all).
    pub revision: Option<i64>,
    /// History below this revision is gone (`None`: never compacted).
    pub compact_revision: Option<i64>,
    /// `scheduledCompactRev`: a compaction requested at this revision.
    pub scheduled_compact_revision: Option<i64>,
    /// `finishedCompactRev`: the last compaction that completed.
    pub finished_compact_revision: Option<i64>,
    /// Raft index of the last applied entry.
    pub consistent_index: Option<u64>,
    /// Raft term of that entry (etcd 3.5+).
    pub term: Option<u64>,
    /// Members of the cluster, by id number (as `etcdctl member list` lists them).
    pub members: Vec<MemberInfo>,
    /// Ids (hex) of removed members, which can never rejoin.
    pub removed_members: Vec<String>,
    /// Leases in the file.
    pub leases: u64,
    /// Objects under the prefix at the latest revision, by resource (`secrets`, `deployments.apps`).
    pub objects: BTreeMap<String, u64>,
    /// The `--etcd-prefix` the objects were counted under.
    pub etcd_prefix: String,
    /// With a config: those objects by resource, then by provider (`identity`,
    /// `aescbc:key1`, `kms:plugin`) as stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub providers: Option<BTreeMap<String, BTreeMap<String, u64>>>,
    /// With a config: those objects by audit status (`current`, `stale`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statuses: Option<BTreeMap<String, u64>>,
    /// Size of the file in bytes (hash trailer included).
    pub file_size: u64,
    /// Bolt page size.
    pub page_size: u32,
    /// Pages of the bolt file in use and free (free pages can hold old data).
    pub pages: PageCounts,
    /// The sha256 trailer of `etcdctl snapshot save`.
    pub hash: HashInfo,
}

/// One member, from the `members` bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemberInfo {
    /// Member id in hex, as `etcdctl member list` prints it.
    pub id: String,
    /// Name (empty until the member has published it).
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

/// Pages of the bolt file (the trailer excluded): `used + free` is every page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PageCounts {
    /// Meta, freelist, branch, leaf and overflow pages reachable from the root.
    pub used: u64,
    /// Every other page, below and above the high-water mark.
    pub free: u64,
}

/// State of the sha256 trailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct HashInfo {
    /// The file ends with a sha256 trailer (`etcdctl snapshot save` output).
    pub present: bool,
    /// Whether it matches the contents; `None` without a trailer.
    pub ok: Option<bool>,
}

impl SnapshotInfo {
    /// True when the file has a trailer that does not match its contents.
    pub fn hash_mismatch(&self) -> bool {
        self.hash.ok == Some(false)
    }
}

/// What to count.
#[derive(Clone, Copy, Debug)]
pub struct InfoOptions<'a> {
    /// kube-apiserver's `--etcd-prefix`.
    pub prefix: &'a str,
    /// A config: also count objects by provider and audit status.
    pub transformers: Option<&'a Transformers>,
}

/// Why a file's info cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum InfoError {
    #[error("{path}: {source}. The file is not a readable etcd db; try another backup.")]
    Mvcc {
        path: PathBuf,
        #[source]
        source: MvccError,
    },
    #[error("{source} Its sha256 trailer does not match the contents either.")]
    DamagedBackup {
        #[source]
        source: Box<InfoError>,
    },
    #[error(
        "{path}: `{bucket}` bucket entry {key} is not what etcd writes there: {reason}. \
         The file is damaged or not an etcd db; try another backup."
    )]
    BadEntry {
        path: PathBuf,
        bucket: &'static str,
        key: String,
        reason: String,
    },
}

/// The facts about an opened snapshot. A trailer still to be checked
/// ([`HashCheck::Pending`]) is verified here, on a thread of its own while the
/// file is walked; a mismatch is reported in [`SnapshotInfo::hash`], not as an error.
pub fn snapshot_info(snap: &Snapshot, options: InfoOptions<'_>) -> Result<SnapshotInfo, InfoError> {
    let (hash, info) = std::thread::scope(|s| {
        let check =
            (snap.hash_check() == HashCheck::Pending).then(|| s.spawn(|| snap.verify_hash()));
        let info = read_info(snap, options);
        let hash = match check {
            Some(handle) => handle.join().unwrap_or(Ok(HashCheck::Pending)),
            None => Ok(snap.hash_check()),
        };
        (hash, info)
    });
    let hash_mismatch = matches!(hash, Err(SnapshotError::HashMismatch { .. }));
    let mut info = match info {
        Ok(info) => info,
        Err(source) if hash_mismatch => {
            return Err(InfoError::DamagedBackup {
                source: Box::new(source),
            })
        }
        Err(e) => return Err(e),
    };
    info.hash = HashInfo {
        present: snap.has_hash_trailer(),
        ok: match hash {
            Ok(HashCheck::Verified) => Some(true),
            Err(SnapshotError::HashMismatch { .. }) => Some(false),
            // Not checked (skipped, or the checking thread died): unknown.
            _ => None,
        },
    };
    Ok(info)
}

fn read_info(snap: &Snapshot, options: InfoOptions<'_>) -> Result<SnapshotInfo, InfoError> {
    let path = snap.path();
    let mvcc_err = |source: MvccError| InfoError::Mvcc {
        path: path.to_owned(),
        source,
    };
    let bolt_err = |e: BoltError| mvcc_err(MvccError::Bolt(e));
    let bolt = snap.bolt();
    let meta = mvcc::meta_info(bolt).map_err(mvcc_err)?;
    let view = KeyspaceView::build(bolt, None).map_err(mvcc_err)?;
    let raw_meta = |name: &[u8]| -> Result<Option<Vec<u8>>, InfoError> {
        let Some(bucket) = bolt.root().bucket(META_BUCKET).map_err(bolt_err)? else {
            return Ok(None);
        };
        Ok(match bucket.get(name).map_err(bolt_err)? {
            Some(Entry::Value(v)) => Some(v.to_vec()),
            _ => None,
        })
    };
    let recorded = raw_meta(STORAGE_VERSION_KEY)?.map(|v| String::from_utf8_lossy(&v).into_owned());
    let has_conf_state = raw_meta(CONF_STATE_KEY)?.is_some();
    let storage_version = storage_version(recorded.as_deref(), has_conf_state, meta.term);

    let compacted = meta
        .scheduled_compact_revision
        .max(meta.finished_compact_revision);
    let mut info = SnapshotInfo {
        storage_version,
        storage_version_recorded: recorded,
        revision: (view.latest_revision > 0).then_some(view.latest_revision),
        compact_revision: compacted,
        scheduled_compact_revision: meta.scheduled_compact_revision,
        finished_compact_revision: meta.finished_compact_revision,
        consistent_index: meta.consistent_index,
        term: meta.term,
        members: members(snap)?,
        removed_members: removed_members(snap)?,
        leases: count_values(snap, LEASE_BUCKET)?,
        objects: BTreeMap::new(),
        etcd_prefix: options.prefix.to_owned(),
        providers: None,
        statuses: None,
        file_size: 0,
        page_size: bolt.page_size(),
        pages: PageCounts { used: 0, free: 0 },
        hash: HashInfo {
            present: snap.has_hash_trailer(),
            ok: None,
        },
    };
    for entry in &view.entries {
        if let Some(key) = parse_object_key(entry.key, options.prefix) {
            *info.objects.entry(key.resource.to_string()).or_default() += 1;
        }
    }
    if let Some(ts) = options.transformers {
        count_by_provider(&mut info, &view, ts, options.prefix);
    }
    let trailer = if snap.has_hash_trailer() {
        HASH_TRAILER_LEN
    } else {
        0
    };
    info.file_size = (bolt.bytes().len() + trailer) as u64;
    let report = bolt.check().map_err(bolt_err)?;
    let total = bolt.bytes().len() as u64 / u64::from(bolt.page_size()).max(1);
    info.pages = PageCounts {
        used: report.reachable_pages,
        free: total.saturating_sub(report.reachable_pages),
    };
    Ok(info)
}

/// The storage version by etcd's own rule (`schema.UnsafeDetectSchemaVersion`).
fn storage_version(recorded: Option<&str>, has_conf_state: bool, term: Option<u64>) -> String {
    if let Some((major, minor)) = recorded.and_then(parse_version) {
        return format!("{major}.{minor}");
    }
    if has_conf_state && term.is_some_and(|t| t != 0) {
        return "3.5".to_owned();
    }
    "3.4".to_owned()
}

/// `major.minor.patch` with an optional `-pre`/`+build` suffix, as Go's
/// `semver.NewVersion` accepts it; anything else is not a version.
fn parse_version(text: &str) -> Option<(u64, u64)> {
    let core = text.split(['-', '+']).next()?;
    let mut parts = core.split('.');
    let mut number = || -> Option<u64> {
        let p = parts.next()?;
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    let (major, minor, _patch) = (number()?, number()?, number()?);
    parts.next().is_none().then_some((major, minor))
}

/// `membership.Member` as etcd stores it (`member.go`).
#[derive(serde::Deserialize)]
struct StoredMember {
    id: Option<u64>,
    #[serde(rename = "peerURLs", default)]
    peer_urls: Vec<String>,
    #[serde(rename = "isLearner", default)]
    is_learner: bool,
    #[serde(default)]
    name: String,
    #[serde(rename = "clientURLs", default)]
    client_urls: Vec<String>,
}

/// A key and its value in a bucket.
type BucketPair<'a> = (&'a [u8], &'a [u8]);

fn bucket_values<'a>(
    snap: &'a Snapshot,
    name: &'static [u8],
) -> Result<Vec<BucketPair<'a>>, InfoError> {
    let bolt_err = |e: BoltError| InfoError::Mvcc {
        path: snap.path().to_owned(),
        source: MvccError::Bolt(e),
    };
    let Some(bucket) = snap.bolt().root().bucket(name).map_err(bolt_err)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in bucket.iter() {
        let (key, entry) = item.map_err(bolt_err)?;
        match entry {
            Entry::Value(v) => out.push((key, v)),
            Entry::Bucket(_) => {
                return Err(bad_entry(snap, name, key, "a nested bucket".to_owned()))
            }
        }
    }
    Ok(out)
}

fn bad_entry(snap: &Snapshot, bucket: &'static [u8], key: &[u8], reason: String) -> InfoError {
    InfoError::BadEntry {
        path: snap.path().to_owned(),
        bucket: match bucket {
            MEMBERS_BUCKET => "members",
            MEMBERS_REMOVED_BUCKET => "members_removed",
            LEASE_BUCKET => "lease",
            _ => "meta",
        },
        key: printable_key(key),
        reason,
    }
}

/// A bucket key for a message: text when it is printable ASCII, else hex.
fn printable_key(key: &[u8]) -> String {
    if !key.is_empty() && key.iter().all(|b| b.is_ascii_graphic()) {
        String::from_utf8_lossy(key).into_owned()
    } else {
        format!("0x{}", hex(key))
    }
}

/// A member id key: lower-case hex of a non-zero u64 (`types.IDFromString`).
fn member_id_from_key(key: &[u8]) -> Option<u64> {
    if key.is_empty() || !key.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let text = std::str::from_utf8(key).ok()?;
    u64::from_str_radix(text, 16).ok().filter(|&id| id != 0)
}

fn members(snap: &Snapshot) -> Result<Vec<MemberInfo>, InfoError> {
    let mut out = Vec::new();
    for (key, value) in bucket_values(snap, MEMBERS_BUCKET)? {
        out.push(parse_member(key, value).map_err(|r| bad_entry(snap, MEMBERS_BUCKET, key, r))?);
    }
    sort_members(&mut out);
    Ok(out)
}

/// Members in etcd's order, by id number.
fn sort_members(members: &mut [MemberInfo]) {
    members.sort_by_key(|m| numeric_id(&m.id));
}

/// The number of a member id in hex, to list members in etcd's order: by number
/// (`MembersByID` in `server/etcdserver/api/membership/member.go`, which
/// `RaftCluster.Members` sorts with). The bucket's byte order of the unpadded hex
/// keys differs as soon as one id has fewer digits (`1234` before `abc`).
fn numeric_id(hex: &str) -> u64 {
    u64::from_str_radix(hex, 16).unwrap_or(u64::MAX)
}

/// One `members` entry, or why it is not one.
fn parse_member(key: &[u8], value: &[u8]) -> Result<MemberInfo, String> {
    let key_id =
        member_id_from_key(key).ok_or_else(|| "the key is not a member id in hex".to_owned())?;
    let stored: StoredMember = serde_json::from_slice(value)
        .map_err(|e| format!("the value is not a member as JSON ({e})"))?;
    // etcd reads the id from the value when it has one (`json.Unmarshal` over a
    // Member whose ID came from the key).
    let id = stored.id.unwrap_or(key_id);
    Ok(MemberInfo {
        id: format!("{id:x}"),
        name: stored.name,
        peer_urls: stored.peer_urls,
        client_urls: stored.client_urls,
        is_learner: stored.is_learner,
    })
}

fn removed_members(snap: &Snapshot) -> Result<Vec<String>, InfoError> {
    let mut ids = removed_member_ids(snap)?;
    ids.sort_by_key(|id| numeric_id(id));
    Ok(ids)
}

fn removed_member_ids(snap: &Snapshot) -> Result<Vec<String>, InfoError> {
    bucket_values(snap, MEMBERS_REMOVED_BUCKET)?
        .into_iter()
        .map(|(key, _)| {
            member_id_from_key(key)
                .map(|id| format!("{id:x}"))
                .ok_or_else(|| {
                    bad_entry(
                        snap,
                        MEMBERS_REMOVED_BUCKET,
                        key,
                        "the key is not a member id in hex".to_owned(),
                    )
                })
        })
        .collect()
}

fn count_values(snap: &Snapshot, bucket: &'static [u8]) -> Result<u64, InfoError> {
    Ok(bucket_values(snap, bucket)?.len() as u64)
}

/// Classify every object at the latest revision with the config (checked reads, as `audit` does)
/// and count by resource and provider, and by status.
fn count_by_provider(
    info: &mut SnapshotInfo,
    view: &KeyspaceView<'_>,
    ts: &Transformers,
    prefix: &str,
) {
    let auditor = Auditor::new(
        Some(ts),
        AuditOptions {
            prefix: prefix.to_owned(),
            resources: None,
        },
    );
    let mut providers: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for chunk in view.entries.chunks(CLASSIFY_CHUNK) {
        let reports: Vec<_> = chunk
            .par_iter()
            .filter_map(|e| {
                auditor.classify(&StoredObject {
                    key: e.key,
                    value: e.kv.value,
                    mod_revision: e.kv.mod_revision,
                })
            })
            .collect();
        for r in reports {
            let provider = match &r.key_name {
                Some(k) => format!("{}:{k}", r.provider),
                None => r.provider.to_owned(),
            };
            *providers
                .entry(r.resource)
                .or_default()
                .entry(provider)
                .or_default() += 1;
            *statuses.entry(r.status.name().to_owned()).or_default() += 1;
        }
    }
    info.providers = Some(providers);
    info.statuses = Some(statuses);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_listed_by_id_number_as_etcd_lists_them() {
        let member = |id: &str| MemberInfo {
            id: id.to_string(),
            name: format!("m-{id}"),
            peer_urls: Vec::new(),
            client_urls: Vec::new(),
            is_learner: false,
        };
        // The bucket's byte order: `1234` < `abc` < `f`.
        let mut ms = vec![member("1234"), member("abc"), member("f")];
        sort_members(&mut ms);
        let ids: Vec<&str> = ms.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["f", "abc", "1234"]);
    }

    #[test]
    fn storage_version_follows_etcds_detection() {
        assert_eq!(storage_version(Some("3.6.0"), true, Some(2)), "3.6");
        assert_eq!(storage_version(Some("3.7.0"), false, None), "3.7");
        // 3.6's migration first writes an empty value, which is not a version.
        assert_eq!(storage_version(Some(""), true, Some(2)), "3.5");
        assert_eq!(storage_version(Some("3.6"), true, Some(2)), "3.5");
        assert_eq!(storage_version(None, true, Some(2)), "3.5");
        assert_eq!(storage_version(None, true, Some(0)), "3.4");
        assert_eq!(storage_version(None, false, Some(2)), "3.4");
        assert_eq!(storage_version(None, true, None), "3.4");
    }

    #[test]
    fn versions_parse_like_semver() {
        assert_eq!(parse_version("3.6.0"), Some((3, 6)));
        assert_eq!(parse_version("3.6.0-alpha.1"), Some((3, 6)));
        assert_eq!(parse_version("3.6.0+build"), Some((3, 6)));
        for bad in ["", "3", "3.6", "3.6.0.1", "v3.6.0", "3.x.0", "3..0"] {
            assert_eq!(parse_version(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn members_parse_as_etcd_stores_them() {
        // As etcd 3.4 wrote the member of testdata/bolt.
        let m = parse_member(
            b"effd465ea90d1a43",
            br#"{"id":17293055516549651011,"peerURLs":["http://127.0.0.1:23217"],"name":"fixture","clientURLs":["http://127.0.0.1:23216"]}"#,
        )
        .unwrap();
        assert_eq!(
            m,
            MemberInfo {
                id: "effd465ea90d1a43".into(),
                name: "fixture".into(),
                peer_urls: vec!["http://127.0.0.1:23217".into()],
                client_urls: vec!["http://127.0.0.1:23216".into()],
                is_learner: false,
            }
        );
        // A learner that has not published its name and client URLs yet.
        let m = parse_member(b"a", br#"{"peerURLs":["http://p"],"isLearner":true}"#).unwrap();
        assert_eq!(
            (m.id.as_str(), m.name.as_str(), m.is_learner),
            ("a", "", true)
        );
        assert!(m.client_urls.is_empty());
        for (key, value, says) in [
            (&b"zz"[..], &br#"{}"#[..], "not a member id"),
            (b"a", b"not json", "not a member as JSON"),
            (b"a", br#"{"id":"a"}"#, "not a member as JSON"),
            (b"a", br#"{"peerURLs":"http://p"}"#, "not a member as JSON"),
        ] {
            let err = parse_member(key, value).unwrap_err();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn member_keys_are_hex_ids() {
        assert_eq!(
            member_id_from_key(b"effd465ea90d1a43"),
            Some(0xeffd_465e_a90d_1a43)
        );
        assert_eq!(member_id_from_key(b"0"), None);
        assert_eq!(member_id_from_key(b"xyz"), None);
        assert_eq!(member_id_from_key(b"+1f"), None);
        assert_eq!(member_id_from_key(b"10000000000000000"), None);
    }
}

//! etcd's MVCC keyspace as stored in its bolt file: every revision of every key.
//!
//! Formats from `etcd-io/etcd`:
//! - `server/storage/schema/bucket.go`: buckets `key` and `meta`; meta keys
//!   `consistent_index`, `term`, `scheduledCompactRev`, `finishedCompactRev`.
//! - `server/storage/mvcc/revision.go`: a `key` bucket key is the revision,
//!   8-byte big-endian main ‖ `_` ‖ 8-byte big-endian sub (17 bytes), with a
//!   trailing `t` (18 bytes) when the revision is a tombstone (a delete).
//! - `api/mvccpb/kv.proto`: the value is a `KeyValue` message {key = 1 bytes,
//!   create_revision = 2, mod_revision = 3, version = 4 (int64 varints),
//!   value = 5 bytes, lease = 6 int64}.
//!
//! The value of a key at revision `R` is its record with the highest revision
//! `<= R`, unless that record is a tombstone. Compaction removes history below the
//! compacted revision, so views below it cannot be reconstructed.

use crate::bolt::{BoltError, BoltFile, BucketIter, Entry};
use crate::snapshot::hex;
use crate::wire::{self, Reader, WireError};

/// Bucket holding every revision (`schema.Key`).
pub(crate) const KEY_BUCKET: &[u8] = b"key";
/// Bucket holding etcd's own bookkeeping (`schema.Meta`).
pub(crate) const META_BUCKET: &[u8] = b"meta";
/// Raft index of the last applied entry, u64 big-endian (`MetaConsistentIndexKeyName`).
pub(crate) const CONSISTENT_INDEX_KEY: &[u8] = b"consistent_index";
/// Raft term of that entry, u64 big-endian, etcd 3.5+ (`MetaTermKeyName`).
pub(crate) const TERM_KEY: &[u8] = b"term";
/// Revision a compaction was requested at, as a revision key (`ScheduledCompactKeyName`).
pub(crate) const SCHEDULED_COMPACT_KEY: &[u8] = b"scheduledCompactRev";
/// Revision of the last completed compaction, as a revision key (`FinishedCompactKeyName`).
pub(crate) const FINISHED_COMPACT_KEY: &[u8] = b"finishedCompactRev";
/// Length of a revision key (`revBytesLen`).
pub(crate) const REVISION_KEY_LEN: usize = 17;
/// Length of a tombstone revision key (`markedRevBytesLen`).
pub(crate) const TOMBSTONE_KEY_LEN: usize = 18;
/// Separator between main and sub revision in a revision key.
pub(crate) const REVISION_SEPARATOR: u8 = b'_';
/// Trailing mark of a tombstone revision key (`markTombstone`).
pub(crate) const TOMBSTONE_MARK: u8 = b't';

/// A revision: `main` is the cluster-wide revision of a transaction, `sub` the
/// index of the change inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision {
    pub main: i64,
    pub sub: i64,
}

impl Revision {
    /// Parse a `key` bucket key: the revision and whether it marks a tombstone.
    pub fn from_key(bytes: &[u8]) -> Option<(Revision, bool)> {
        let tombstone = match bytes.len() {
            REVISION_KEY_LEN => false,
            TOMBSTONE_KEY_LEN if bytes[REVISION_KEY_LEN] == TOMBSTONE_MARK => true,
            _ => return None,
        };
        if bytes[8] != REVISION_SEPARATOR {
            return None;
        }
        let main = i64::from_be_bytes(bytes[..8].try_into().ok()?);
        let sub = i64::from_be_bytes(bytes[9..17].try_into().ok()?);
        if main < 0 || sub < 0 {
            return None;
        }
        Some((Revision { main, sub }, tombstone))
    }

    /// The 17-byte `key` bucket key of this revision (without tombstone mark).
    pub fn to_key(&self) -> [u8; REVISION_KEY_LEN] {
        let mut out = [0u8; REVISION_KEY_LEN];
        out[..8].copy_from_slice(&self.main.to_be_bytes());
        out[8] = REVISION_SEPARATOR;
        out[9..].copy_from_slice(&self.sub.to_be_bytes());
        out
    }
}

impl std::fmt::Display for Revision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{}", self.main, self.sub)
    }
}

/// An `mvccpb.KeyValue`, borrowing `key` and `value` from the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KeyValue<'a> {
    pub key: &'a [u8],
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub value: &'a [u8],
    pub lease: i64,
}

/// Why bytes are not a valid `mvccpb.KeyValue`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KvDecodeError {
    #[error("truncated varint at byte {offset}")]
    TruncatedVarint { offset: usize },
    #[error("varint longer than 10 bytes or over 64 bits at byte {offset}")]
    VarintOverflow { offset: usize },
    #[error("field number 0 at byte {offset}")]
    FieldZero { offset: usize },
    #[error("field {field} has wire type {wire_type} at byte {offset}, expected {expected}")]
    WrongWireType {
        field: u64,
        wire_type: u8,
        expected: u8,
        offset: usize,
    },
    #[error("unsupported wire type {wire_type} at byte {offset}")]
    BadWireType { wire_type: u8, offset: usize },
    #[error("field {field} at byte {offset} claims {len} bytes, past the end of the message")]
    LengthOutOfBounds { field: u64, offset: usize, len: u64 },
    /// Any other wire-format error (the reads `KeyValue::decode` makes do not give one).
    #[error(transparent)]
    Wire(WireError),
}

impl KvDecodeError {
    /// The error of a varint or length-delimited read, in this module's words.
    fn from_wire(e: WireError) -> Self {
        match e {
            WireError::Truncated { offset, .. } => KvDecodeError::TruncatedVarint { offset },
            WireError::VarintTooLong { offset, .. } | WireError::VarintOverflow { offset, .. } => {
                KvDecodeError::VarintOverflow { offset }
            }
            WireError::LengthPastEnd {
                field,
                length,
                value_offset,
                ..
            } => KvDecodeError::LengthOutOfBounds {
                field,
                offset: value_offset,
                len: length,
            },
            other => KvDecodeError::Wire(other),
        }
    }

    /// The error of a fixed64/fixed32 read of `len` bytes.
    fn from_fixed(field: u64, len: u64) -> impl FnOnce(WireError) -> Self {
        move |e| match e {
            WireError::Truncated { offset, .. } => {
                KvDecodeError::LengthOutOfBounds { field, offset, len }
            }
            other => KvDecodeError::from_wire(other),
        }
    }
}

impl<'a> KeyValue<'a> {
    /// Decode protobuf bytes. Unknown fields are skipped; a repeated field keeps
    /// its last value, as proto3 decoders do.
    pub fn decode(bytes: &'a [u8]) -> Result<KeyValue<'a>, KvDecodeError> {
        let mut r = Reader::with_base(bytes, 0, "mvccpb.KeyValue").rejecting_overflow();
        let mut kv = KeyValue::default();
        while let Some(tag) = r.read_tag().map_err(KvDecodeError::from_wire)? {
            let (field, wire_type, tag_at) = (tag.number, tag.wire_type, tag.offset);
            if field == 0 {
                return Err(KvDecodeError::FieldZero { offset: tag_at });
            }
            let expected = match field {
                1 | 5 => Some(wire::LEN),
                2 | 3 | 4 | 6 => Some(wire::VARINT),
                _ => None,
            };
            if let Some(expected) = expected {
                if wire_type != expected {
                    return Err(KvDecodeError::WrongWireType {
                        field,
                        wire_type,
                        expected,
                        offset: tag_at,
                    });
                }
            }
            match wire_type {
                wire::VARINT => {
                    // int64 fields are two's complement in a 64-bit varint.
                    let v = r
                        .read_varint("varint value")
                        .map_err(KvDecodeError::from_wire)? as i64;
                    match field {
                        2 => kv.create_revision = v,
                        3 => kv.mod_revision = v,
                        4 => kv.version = v,
                        6 => kv.lease = v,
                        _ => {}
                    }
                }
                wire::LEN => {
                    let data = r.read_bytes(field).map_err(KvDecodeError::from_wire)?;
                    match field {
                        1 => kv.key = data,
                        5 => kv.value = data,
                        _ => {}
                    }
                }
                wire::FIXED64 => {
                    r.read_fixed::<8>("fixed64 value")
                        .map_err(KvDecodeError::from_fixed(field, 8))?;
                }
                wire::FIXED32 => {
                    r.read_fixed::<4>("fixed32 value")
                        .map_err(KvDecodeError::from_fixed(field, 4))?;
                }
                other => {
                    return Err(KvDecodeError::BadWireType {
                        wire_type: other,
                        offset: tag_at,
                    })
                }
            }
        }
        Ok(kv)
    }
}

/// Everything that can go wrong reading etcd's keyspace from a bolt file.
#[derive(Debug, thiserror::Error)]
pub enum MvccError {
    #[error(transparent)]
    Bolt(#[from] BoltError),
    #[error("the file has no `key` bucket: it is a bolt file but not an etcd db or snapshot")]
    NoKeyBucket,
    #[error("`key` bucket entry {key_hex} is a nested bucket; etcd stores only revisions there")]
    NestedBucket { key_hex: String },
    #[error("`key` bucket key {key_hex} is not an etcd revision (8-byte main, `_`, 8-byte sub, optional `t`)")]
    BadRevisionKey { key_hex: String },
    #[error("revision {revision}: value is not an mvccpb.KeyValue: {source}")]
    BadKeyValue {
        revision: Revision,
        #[source]
        source: KvDecodeError,
    },
    #[error("`meta` bucket entry {name} is malformed ({len} bytes)")]
    BadMetaValue { name: &'static str, len: usize },
    #[error("revision {requested} is not valid: revisions start at 1")]
    InvalidRevision { requested: i64 },
    #[error(
        "revision {requested} has been compacted (history before revision {compacted} is gone); \
         choose a revision of at least {compacted}, or use an older backup"
    )]
    Compacted { requested: i64, compacted: i64 },
    #[error("revision {requested} is in the future: the latest revision in this file is {latest}")]
    FutureRevision { requested: i64, latest: i64 },
}

/// One stored revision of one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MvccRecord<'a> {
    pub revision: Revision,
    /// The key was deleted at this revision (`kv` then holds only the key).
    pub tombstone: bool,
    pub kv: KeyValue<'a>,
}

/// A revision key, its tombstone mark and the undecoded `KeyValue` bytes.
type RawRecord<'a> = (Revision, bool, &'a [u8]);

/// Iterator over every stored revision, in revision order.
pub struct Records<'a> {
    iter: BucketIter<'a>,
    failed: bool,
}

impl<'a> Records<'a> {
    /// The next revision key and its undecoded value.
    fn next_raw(&mut self) -> Option<Result<RawRecord<'a>, MvccError>> {
        if self.failed {
            return None;
        }
        let item = self.iter.next()?;
        let out = item.map_err(MvccError::from).and_then(|(key, entry)| {
            let Entry::Value(value) = entry else {
                return Err(MvccError::NestedBucket { key_hex: hex(key) });
            };
            let (revision, tombstone) = Revision::from_key(key)
                .ok_or_else(|| MvccError::BadRevisionKey { key_hex: hex(key) })?;
            Ok((revision, tombstone, value))
        });
        self.failed = out.is_err();
        Some(out)
    }
}

fn decode_record(
    (revision, tombstone, value): (Revision, bool, &[u8]),
) -> Result<MvccRecord<'_>, MvccError> {
    let kv =
        KeyValue::decode(value).map_err(|source| MvccError::BadKeyValue { revision, source })?;
    Ok(MvccRecord {
        revision,
        tombstone,
        kv,
    })
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<MvccRecord<'a>, MvccError>;

    fn next(&mut self) -> Option<Self::Item> {
        let out = self.next_raw()?.and_then(decode_record);
        self.failed = out.is_err();
        Some(out)
    }
}

/// Every stored revision in revision order (tombstones included).
pub fn records(file: &BoltFile) -> Result<Records<'_>, MvccError> {
    let bucket = file
        .root()
        .bucket(KEY_BUCKET)?
        .ok_or(MvccError::NoKeyBucket)?;
    Ok(Records {
        iter: bucket.iter(),
        failed: false,
    })
}

/// etcd's bookkeeping from the `meta` bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaInfo {
    pub consistent_index: Option<u64>,
    pub term: Option<u64>,
    pub scheduled_compact_revision: Option<i64>,
    pub finished_compact_revision: Option<i64>,
}

impl MetaInfo {
    /// History below this revision is gone. etcd resumes an unfinished compaction
    /// on start-up, so the scheduled revision counts too (`mvcc/kvstore.go` restore).
    pub fn compacted_revision(&self) -> i64 {
        self.scheduled_compact_revision
            .max(self.finished_compact_revision)
            .unwrap_or(0)
    }
}

/// Read the `meta` bucket (absent → all `None`).
pub fn meta_info(file: &BoltFile) -> Result<MetaInfo, MvccError> {
    let mut info = MetaInfo::default();
    let Some(meta) = file.root().bucket(META_BUCKET)? else {
        return Ok(info);
    };
    let value = |name: &'static [u8]| -> Result<Option<&[u8]>, MvccError> {
        Ok(match meta.get(name)? {
            Some(Entry::Value(v)) => Some(v),
            _ => None,
        })
    };
    let bad = |name: &'static str, len| MvccError::BadMetaValue { name, len };
    let be_u64 = |name: &'static str, v: &[u8]| -> Result<u64, MvccError> {
        Ok(u64::from_be_bytes(
            v.try_into().map_err(|_| bad(name, v.len()))?,
        ))
    };
    let rev = |name: &'static str, v: &[u8]| -> Result<i64, MvccError> {
        match Revision::from_key(v) {
            Some((r, false)) => Ok(r.main),
            _ => Err(bad(name, v.len())),
        }
    };
    if let Some(v) = value(CONSISTENT_INDEX_KEY)? {
        info.consistent_index = Some(be_u64("consistent_index", v)?);
    }
    if let Some(v) = value(TERM_KEY)? {
        info.term = Some(be_u64("term", v)?);
    }
    if let Some(v) = value(SCHEDULED_COMPACT_KEY)? {
        info.scheduled_compact_revision = Some(rev("scheduledCompactRev", v)?);
    }
    if let Some(v) = value(FINISHED_COMPACT_KEY)? {
        info.finished_compact_revision = Some(rev("finishedCompactRev", v)?);
    }
    Ok(info)
}

/// The value of one key in a [`KeyspaceView`]: its latest record at the view's revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyspaceEntry<'a> {
    pub key: &'a [u8],
    pub kv: KeyValue<'a>,
    /// Revision of the record holding this value (`kv.mod_revision` in a sound file).
    pub revision: Revision,
}

/// The keyspace at one revision: every key that exists there (its latest record is
/// not a tombstone), sorted by key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyspaceView<'a> {
    /// The revision viewed.
    pub revision: i64,
    /// The latest revision in the file.
    pub latest_revision: i64,
    /// History below this revision has been compacted away.
    pub compacted_revision: i64,
    pub entries: Vec<KeyspaceEntry<'a>>,
}

impl<'a> KeyspaceView<'a> {
    /// Build the view at revision `at` (`None`: the latest) in one pass over the
    /// `key` bucket. Records above `at` are not decoded.
    pub fn build(file: &'a BoltFile, at: Option<i64>) -> Result<KeyspaceView<'a>, MvccError> {
        let compacted = meta_info(file)?.compacted_revision();
        if let Some(requested) = at {
            if requested <= 0 {
                return Err(MvccError::InvalidRevision { requested });
            }
            if requested < compacted {
                return Err(MvccError::Compacted {
                    requested,
                    compacted,
                });
            }
        }
        let limit = at.unwrap_or(i64::MAX);
        // Every record up to the limit, in revision order, and a packed copy of
        // its key, taken while the key is in cache: the sort below works on the
        // copies, not on keys scattered over the whole file.
        let mut entries: Vec<KeyspaceEntry<'a>> = Vec::new();
        let mut tombstone: Vec<bool> = Vec::new();
        let mut packed: Vec<u8> = Vec::new();
        let mut last_main = 0;
        let mut raw = records(file)?;
        while let Some(item) = raw.next_raw() {
            let item = item?;
            last_main = item.0.main;
            if item.0.main > limit {
                continue;
            }
            let r = decode_record(item)?;
            packed.extend_from_slice(r.kv.key);
            tombstone.push(r.tombstone);
            entries.push(KeyspaceEntry {
                key: r.kv.key,
                kv: r.kv,
                revision: r.revision,
            });
        }
        let latest_revision = last_main.max(compacted);
        if let Some(requested) = at {
            if requested > latest_revision {
                return Err(MvccError::FutureRevision {
                    requested,
                    latest: latest_revision,
                });
            }
        }
        let lens: Vec<usize> = entries.iter().map(|e| e.key.len()).collect();
        let KeyOrder {
            mut order,
            same_as_previous,
        } = KeyOrder::of(&packed, &lens);
        drop(packed);
        drop(lens);
        // Each key's last record in revision order is its value at the view's
        // revision; a key whose last record is a tombstone does not exist there.
        let keep: Vec<bool> = (0..order.len())
            .map(|p| {
                let superseded = same_as_previous.get(p + 1).copied().unwrap_or(false);
                !superseded && !tombstone[order[p].1]
            })
            .collect();
        drop(tombstone);
        drop(same_as_previous);
        // Put the records in key order where they are (no second copy of the
        // index), then keep each existing key's one.
        permute(&mut entries, &mut order);
        let mut kept = keep.iter();
        entries.retain(|_| kept.next().copied().unwrap_or(false));
        Ok(KeyspaceView {
            revision: at.unwrap_or(latest_revision),
            latest_revision,
            compacted_revision: compacted,
            entries,
        })
    }
}

/// Reorder `entries` so that position `j` holds the entry that was at
/// `order[j].1` (a permutation of the positions), following each cycle once;
/// `order` is used up as the marks of what has moved.
fn permute<T: Copy>(entries: &mut [T], order: &mut [(u64, usize)]) {
    const DONE: usize = usize::MAX;
    for start in 0..entries.len() {
        if order[start].1 == DONE {
            continue;
        }
        let first = entries[start];
        let mut j = start;
        loop {
            let from = std::mem::replace(&mut order[j].1, DONE);
            if from == start {
                entries[j] = first;
                break;
            }
            entries[j] = entries[from];
            j = from;
        }
    }
}

/// Record indices in key order (bytes compared unsigned, a prefix before the
/// longer key), equal keys by index, i.e. in revision order.
struct KeyOrder {
    /// `(_, index)` pairs; the first half is the sort's scratch.
    order: Vec<(u64, usize)>,
    /// `same_as_previous[p]`: the key at position `p` equals the one at `p - 1`.
    same_as_previous: Vec<bool>,
}

impl KeyOrder {
    /// Sort keys given as one buffer of concatenated keys (`packed`) and their
    /// lengths, in that order. A most-significant-digit radix sort on 8-byte
    /// digits: each level sorts `(digit, index)` pairs, which compare as two
    /// integers, and only the runs that tie go down a level. etcd keys share long
    /// prefixes (`/registry/secrets/<namespace>/`), which a comparison sort would
    /// re-read on every comparison; the common prefix of all keys is skipped
    /// outright. An explicit stack bounds the depth whatever the key lengths.
    fn of(packed: &[u8], lens: &[usize]) -> KeyOrder {
        let n = lens.len();
        let mut starts = Vec::with_capacity(n);
        let mut at = 0;
        for &len in lens {
            starts.push(at);
            at += len;
        }
        let key = |i: usize| &packed[starts[i]..starts[i] + lens[i]];
        let common = match n {
            0 => 0,
            _ => {
                let first = key(0);
                (1..n).fold(first.len(), |lcp, i| {
                    let k = key(i);
                    let max = lcp.min(k.len());
                    first[..max]
                        .iter()
                        .zip(&k[..max])
                        .position(|(a, b)| a != b)
                        .unwrap_or(max)
                })
            }
        };
        let digit = |i: usize, depth: usize| {
            let k = key(i);
            let end = k.len().min(depth + 8);
            let mut d = [0u8; 8];
            d[..end - depth].copy_from_slice(&k[depth..end]);
            u64::from_be_bytes(d)
        };
        let mut items: Vec<(u64, usize)> = (0..n).map(|i| (0, i)).collect();
        let mut same_as_previous = vec![false; n];
        let mut todo = vec![(0, n, common)];
        while let Some((lo, hi, depth)) = todo.pop() {
            let run = &mut items[lo..hi];
            for it in run.iter_mut() {
                it.0 = digit(it.1, depth);
            }
            run.sort_unstable();
            let mut i = lo;
            while i < hi {
                let d = items[i].0;
                let j = i + items[i..hi].iter().take_while(|it| it.0 == d).count();
                if j - i > 1 {
                    // Keys that end within this digit are prefixes of the others
                    // here: they come first, shorter first, and equal lengths are
                    // equal keys. The rest go down a level.
                    let tie = &mut items[i..j];
                    for it in tie.iter_mut() {
                        let len = lens[it.1];
                        it.0 = if len <= depth + 8 {
                            len as u64
                        } else {
                            u64::MAX
                        };
                    }
                    tie.sort_unstable();
                    let ended = tie.iter().take_while(|it| it.0 != u64::MAX).count();
                    for p in i + 1..i + ended {
                        same_as_previous[p] = items[p].0 == items[p - 1].0;
                    }
                    if j - (i + ended) > 1 {
                        todo.push((i + ended, j, depth + 8));
                    }
                }
                i = j;
            }
        }
        KeyOrder {
            order: items,
            same_as_previous,
        }
    }
}

/// The keys that exist at revision `at` (`None`: the latest), sorted by key.
pub fn keys_at(file: &BoltFile, at: Option<i64>) -> Result<Vec<KeyspaceEntry<'_>>, MvccError> {
    KeyspaceView::build(file, at).map(|view| view.entries)
}

/// The latest revision: the newest stored revision, or the compacted revision if
/// compaction removed everything after it (a trailing delete).
pub fn latest_revision(file: &BoltFile) -> Result<i64, MvccError> {
    let compacted = meta_info(file)?.compacted_revision();
    let mut last_main = 0;
    let mut raw = records(file)?;
    while let Some(item) = raw.next_raw() {
        last_main = item?.0.main;
    }
    Ok(last_main.max(compacted))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The radix order is a stable sort by key, and it marks exactly the keys
    /// equal to the one before them.
    fn check_key_order(keys: &[Vec<u8>]) {
        let packed: Vec<u8> = keys.concat();
        let lens: Vec<usize> = keys.iter().map(Vec::len).collect();
        let got = KeyOrder::of(&packed, &lens);
        let mut want: Vec<usize> = (0..keys.len()).collect();
        want.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
        let order: Vec<usize> = got.order.iter().map(|&(_, i)| i).collect();
        assert_eq!(order, want, "{keys:?}");
        for p in 0..keys.len() {
            let same = p > 0 && keys[want[p]] == keys[want[p - 1]];
            assert_eq!(got.same_as_previous[p], same, "position {p} of {keys:?}");
        }
    }

    #[test]
    fn permute_moves_each_entry_to_its_position() {
        for n in [0usize, 1, 2, 7, 100] {
            // A permutation with long cycles and fixed points.
            let mut order: Vec<(u64, usize)> = (0..n)
                .map(|j| (0, if j % 5 == 0 { j } else { (j * 37 + 11) % n }))
                .collect();
            let distinct: std::collections::BTreeSet<usize> = order.iter().map(|o| o.1).collect();
            if distinct.len() != n {
                order = (0..n).map(|j| (0, n - 1 - j)).collect();
            }
            let want: Vec<usize> = order.iter().map(|o| o.1 * 10).collect();
            let mut entries: Vec<usize> = (0..n).map(|i| i * 10).collect();
            permute(&mut entries, &mut order);
            assert_eq!(entries, want, "{n}");
        }
    }

    #[test]
    fn key_order_is_a_stable_sort_by_key() {
        check_key_order(&[]);
        check_key_order(&[b"".to_vec()]);
        check_key_order(&[
            b"a".to_vec(),
            b"".to_vec(),
            b"".to_vec(),
            b"a\0".to_vec(),
            b"a".to_vec(),
        ]);
        // Etcd-shaped keys past several digits of common prefix, with history.
        let keys: Vec<Vec<u8>> = (0..3000u32)
            .map(|i| {
                let n = i.wrapping_mul(2_654_435_761) % 1500;
                let mut k = format!("/registry/r{}/ns-{:03}/name-{n}", n % 7, n % 50).into_bytes();
                k.extend(std::iter::repeat_n(b'x', (n % 11) as usize));
                k
            })
            .collect();
        check_key_order(&keys);
    }

    proptest::proptest! {
        #[test]
        fn key_order_matches_a_plain_sort(
            keys in proptest::collection::vec(
                proptest::collection::vec(proptest::sample::select(vec![0u8, 1, b'/', b'a', 0xff]), 0..20),
                0..60,
            ),
            prefix in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
        ) {
            let keys: Vec<Vec<u8>> = keys.into_iter().map(|k| [prefix.clone(), k].concat()).collect();
            check_key_order(&keys);
        }
    }

    #[test]
    fn key_value_decodes_all_fields_and_skips_unknown_ones() {
        // key "k", create 2, mod 3, version 1, value "v\0", lease -1, unknown field 9 (fixed64).
        let mut b = vec![0x0a, 1, b'k', 0x10, 2, 0x18, 3, 0x20, 1, 0x2a, 2, b'v', 0];
        b.extend([
            0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ]);
        b.extend([0x49, 1, 2, 3, 4, 5, 6, 7, 8]);
        let kv = KeyValue::decode(&b).unwrap();
        assert_eq!(
            kv,
            KeyValue {
                key: b"k",
                create_revision: 2,
                mod_revision: 3,
                version: 1,
                value: b"v\0",
                lease: -1,
            }
        );
    }

    #[test]
    fn malformed_key_values_are_errors() {
        let cases: [(&[u8], &str); 5] = [
            (&[0x0a, 5, b'k'], "past the end"),
            (&[0x10], "truncated varint"),
            (&[0x0a, 0x80], "truncated varint"),
            (&[0x08, 1], "wire type 0"),
            (&[0x00, 1], "field number 0"),
        ];
        for (bytes, want) in cases {
            let err = KeyValue::decode(bytes).unwrap_err().to_string();
            assert!(err.contains(want), "{bytes:?}: {err}");
        }
        let eleven = [
            0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert!(matches!(
            KeyValue::decode(&eleven),
            Err(KvDecodeError::VarintOverflow { .. })
        ));
    }

    #[test]
    fn key_value_errors_name_field_offset_and_length() {
        let mut ten = vec![0x10];
        ten.extend([0xff; 8]);
        ten.extend([0x81, 0x01]);
        let mut overflow = vec![0x10];
        overflow.extend([0xff; 9]);
        overflow.push(0x02);
        let cases: [(&[u8], KvDecodeError); 8] = [
            (
                &[0x0a, 5, b'k'],
                KvDecodeError::LengthOutOfBounds {
                    field: 1,
                    offset: 2,
                    len: 5,
                },
            ),
            (&[0x10], KvDecodeError::TruncatedVarint { offset: 1 }),
            (&[0x0a, 0x80], KvDecodeError::TruncatedVarint { offset: 1 }),
            (
                &[0x49, 1, 2],
                KvDecodeError::LengthOutOfBounds {
                    field: 9,
                    offset: 1,
                    len: 8,
                },
            ),
            (
                &[0x4d, 1],
                KvDecodeError::LengthOutOfBounds {
                    field: 9,
                    offset: 1,
                    len: 4,
                },
            ),
            (
                &[0x0b],
                KvDecodeError::WrongWireType {
                    field: 1,
                    wire_type: 3,
                    expected: 2,
                    offset: 0,
                },
            ),
            (
                &[0x4e],
                KvDecodeError::BadWireType {
                    wire_type: 6,
                    offset: 0,
                },
            ),
            (&overflow, KvDecodeError::VarintOverflow { offset: 1 }),
        ];
        for (bytes, want) in cases {
            assert_eq!(KeyValue::decode(bytes), Err(want), "{bytes:02x?}");
        }
        // Ten bytes whose last one carries only bit 63 are a valid varint.
        assert!(KeyValue::decode(&ten).is_ok());
        // An unknown field past protobuf's field-number limit is skipped.
        let mut far = vec![0x80, 0x80, 0x80, 0x80, 0x10];
        far.push(0);
        assert_eq!(KeyValue::decode(&far), Ok(KeyValue::default()));
    }

    #[test]
    fn revision_keys_round_trip_and_mark_tombstones() {
        let rev = Revision { main: 42, sub: 7 };
        let key = rev.to_key();
        assert_eq!(Revision::from_key(&key), Some((rev, false)));
        let mut marked = key.to_vec();
        marked.push(TOMBSTONE_MARK);
        assert_eq!(Revision::from_key(&marked), Some((rev, true)));
        marked[17] = b'x';
        assert_eq!(Revision::from_key(&marked), None);
        let mut bad = key;
        bad[8] = b'-';
        assert_eq!(Revision::from_key(&bad), None);
        assert_eq!(Revision::from_key(b"compact_rev_key"), None);
    }
}

//! The bolt reader and MVCC view against real etcd 3.4 files
//! (`testdata/make-bolt-fixtures.sh`), against damaged copies of them, and against
//! files the same script makes at test time with the etcd under test
//! (`ATREST_ETCD_BIN`; tests/run.sh runs that test with etcd 3.4 and 3.5).

use atrest::bolt::meta::{fnv1a64, META_CHECKSUM_SPAN, META_OFFSET};
use atrest::bolt::page::{BRANCH_PAGE_FLAG, LEAF_PAGE_FLAG};
use atrest::bolt::{BoltError, BoltFile, Bucket, Entry};
use atrest::mvcc::{self, KeyspaceView, MvccError, Revision};
use atrest::snapshot::{HashCheck, Snapshot, SnapshotError, SnapshotOptions};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

mod common;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/bolt")
        .join(name)
}

fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("fixture present")
}

struct Expected {
    revision: i64,
    compact_revision: i64,
    kvs: Vec<ExpectedKv>,
}

#[derive(Debug, PartialEq)]
struct ExpectedKv {
    key: Vec<u8>,
    create_revision: i64,
    mod_revision: i64,
    version: i64,
    lease: i64,
    value_len: usize,
    value_sha256: String,
}

fn expected(name: &str) -> Expected {
    expected_from(&fixture(name))
}

fn expected_from(path: &Path) -> Expected {
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("expected file present"))
            .expect("expected JSON");
    let int = |v: &serde_json::Value, k: &str| v[k].as_i64().expect(k);
    let kvs = doc["kvs"]
        .as_array()
        .expect("kvs")
        .iter()
        .map(|kv| ExpectedKv {
            key: base64::engine::general_purpose::STANDARD
                .decode(kv["key_b64"].as_str().expect("key_b64"))
                .expect("base64 key"),
            create_revision: int(kv, "create_revision"),
            mod_revision: int(kv, "mod_revision"),
            version: int(kv, "version"),
            lease: int(kv, "lease"),
            value_len: int(kv, "value_len") as usize,
            value_sha256: kv["value_sha256"].as_str().expect("sha").to_owned(),
        })
        .collect();
    Expected {
        revision: int(&doc, "revision"),
        compact_revision: int(&doc, "compact_revision"),
        kvs,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn as_expected(view: &KeyspaceView<'_>) -> Vec<ExpectedKv> {
    view.entries
        .iter()
        .map(|e| ExpectedKv {
            key: e.key.to_vec(),
            create_revision: e.kv.create_revision,
            mod_revision: e.kv.mod_revision,
            version: e.kv.version,
            lease: e.kv.lease,
            value_len: e.kv.value.len(),
            value_sha256: hex(&Sha256::digest(e.kv.value)),
        })
        .collect()
}

fn assert_same_as_etcd(view: &KeyspaceView<'_>, want: &Expected) {
    let got = as_expected(view);
    assert_eq!(got.len(), want.kvs.len(), "number of keys");
    for (g, w) in got.iter().zip(&want.kvs) {
        assert_eq!(g, w, "key {}", String::from_utf8_lossy(&w.key));
    }
}

fn value_of<'a>(view: &KeyspaceView<'a>, key: &[u8]) -> Option<&'a [u8]> {
    view.entries
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.kv.value)
}

#[test]
fn snapshot_keyspace_view_matches_etcd() {
    let snap = Snapshot::open(&fixture("snapshot.db"), SnapshotOptions::default()).unwrap();
    assert!(snap.has_hash_trailer());
    assert_eq!(snap.hash_check(), HashCheck::Verified);
    let want = expected("expected-live.json");
    let view = KeyspaceView::build(snap.bolt(), None).unwrap();
    assert_eq!(view.latest_revision, want.revision);
    assert_eq!(view.compacted_revision, want.compact_revision);
    assert_same_as_etcd(&view, &want);
    assert_eq!(mvcc::latest_revision(snap.bolt()).unwrap(), want.revision);
}

#[test]
fn member_db_keyspace_view_matches_etcd() {
    let snap = Snapshot::open(&fixture("member.db"), SnapshotOptions::default()).unwrap();
    assert!(!snap.has_hash_trailer());
    assert_eq!(snap.hash_check(), HashCheck::NoTrailer);
    let want = expected("expected-live.json");
    let entries = mvcc::keys_at(snap.bolt(), None).unwrap();
    let view = KeyspaceView::build(snap.bolt(), None).unwrap();
    assert_eq!(entries, view.entries);
    assert_same_as_etcd(&view, &want);
}

#[test]
fn historical_view_matches_etcd_and_still_has_later_deleted_keys() {
    let file = BoltFile::open(&fixture("snapshot.db")).unwrap();
    let want = expected("expected-hist.json");
    let view = KeyspaceView::build(&file, Some(want.revision)).unwrap();
    assert_eq!(view.revision, want.revision);
    assert_same_as_etcd(&view, &want);
    assert_eq!(
        value_of(&view, b"/registry/secrets/default/to-delete"),
        Some(&b"will be deleted"[..])
    );
    assert_eq!(
        value_of(&view, b"/registry/secrets/default/recreated"),
        Some(&b"first life"[..])
    );
}

/// The fixture script run now, against the etcd under test, into a temporary
/// directory: the reader sees exactly what that etcd's own `etcdctl get` reported,
/// at the latest and at the historical revision, in the snapshot and the raw member db.
/// Revisions are whatever this run produced (the script records them), so the
/// check is the same for every etcd version.
#[test]
fn regenerated_fixtures_match_the_etcd_that_wrote_them() {
    if !common::etcd_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/make-bolt-fixtures.sh"))
        .arg(d.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "make-bolt-fixtures.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let latest = expected_from(&d.path().join("expected-live.json"));
    let hist = expected_from(&d.path().join("expected-hist.json"));
    assert!(latest.kvs.len() > 1800, "{} keys", latest.kvs.len());
    assert!(latest.compact_revision > 0 && hist.revision > latest.compact_revision);

    let snap = Snapshot::open(&d.path().join("snapshot.db"), SnapshotOptions::default()).unwrap();
    assert_eq!(snap.hash_check(), HashCheck::Verified);
    let view = KeyspaceView::build(snap.bolt(), None).unwrap();
    assert_eq!(view.latest_revision, latest.revision);
    assert_eq!(view.compacted_revision, latest.compact_revision);
    assert_same_as_etcd(&view, &latest);
    let view = KeyspaceView::build(snap.bolt(), Some(hist.revision)).unwrap();
    assert_same_as_etcd(&view, &hist);

    let member = Snapshot::open(&d.path().join("member.db"), SnapshotOptions::default()).unwrap();
    assert_eq!(member.hash_check(), HashCheck::NoTrailer);
    let view = KeyspaceView::build(member.bolt(), None).unwrap();
    assert_same_as_etcd(&view, &latest);

    for f in ["snapshot.db", "member.db", "small.db"] {
        let mut bytes = std::fs::read(d.path().join(f)).unwrap();
        if f != "member.db" {
            bytes.truncate(bytes.len() - 32);
        }
        walk_everything(bytes).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
}

#[test]
fn deleted_keys_are_absent_from_the_keyspace_view() {
    let file = BoltFile::open(&fixture("member.db")).unwrap();
    let view = KeyspaceView::build(&file, None).unwrap();
    for gone in [
        &b"/registry/secrets/default/to-delete"[..],
        b"/registry/secrets/default/gone-early",
    ] {
        assert!(
            value_of(&view, gone).is_none(),
            "{}",
            String::from_utf8_lossy(gone)
        );
    }
    assert!(!view
        .entries
        .iter()
        .any(|e| e.key.starts_with(b"/registry/configmaps/ns-16/")));
    let recreated = view
        .entries
        .iter()
        .find(|e| e.key == b"/registry/secrets/default/recreated")
        .unwrap();
    assert_eq!(recreated.kv.value, b"second life");
    assert_eq!(
        recreated.kv.version, 1,
        "a re-created key starts a new generation"
    );
    assert_eq!(
        value_of(&view, b"/registry/secrets/default/plain"),
        Some(&b"v4-latest"[..])
    );
    // The tombstones themselves are stored as records.
    let tombstones: Vec<_> = mvcc::records(&file)
        .unwrap()
        .map(Result::unwrap)
        .filter(|r| r.tombstone)
        .collect();
    assert!(tombstones
        .iter()
        .any(|r| r.kv.key == b"/registry/secrets/default/to-delete"));
}

#[test]
fn records_come_in_revision_order_with_binary_big_and_leased_values() {
    let file = BoltFile::open(&fixture("member.db")).unwrap();
    let records: Vec<_> = mvcc::records(&file).unwrap().map(Result::unwrap).collect();
    assert!(records.windows(2).all(|w| w[0].revision < w[1].revision));
    // Transactions of 100 puts: one main revision, sub revisions 0..99.
    assert!(records.iter().any(|r| r.revision.sub == 99));
    let binary = records
        .iter()
        .find(|r| r.kv.key == b"/registry/secrets/default/binary")
        .unwrap();
    assert_eq!(
        binary.kv.value,
        b"k8s:enc:aescbc:v1:key1:\x00\x01\x02\x00\xff\xfe trailing NUL\x00"
    );
    let big = records
        .iter()
        .find(|r| r.kv.key == b"/registry/secrets/kube-system/big")
        .unwrap();
    assert_eq!(big.kv.value.len(), 20480, "value spans overflow pages");
    assert!(big.kv.value.len() > file.page_size() as usize);
    let leased = records
        .iter()
        .find(|r| r.kv.key == b"/registry/leases/kube-node-lease/node-1")
        .unwrap();
    assert_ne!(leased.kv.lease, 0);
    for r in records.iter().filter(|r| !r.tombstone) {
        assert_eq!(r.kv.mod_revision, r.revision.main);
    }
}

#[test]
fn compacted_and_future_revisions_are_refused() {
    let file = BoltFile::open(&fixture("snapshot.db")).unwrap();
    let latest = expected("expected-live.json");
    let info = mvcc::meta_info(&file).unwrap();
    assert_eq!(info.compacted_revision(), latest.compact_revision);
    assert!(info.consistent_index.is_some());
    let err = KeyspaceView::build(&file, Some(latest.compact_revision - 1)).unwrap_err();
    assert!(matches!(err, MvccError::Compacted { .. }), "{err}");
    assert!(err.to_string().contains("compacted"), "{err}");
    KeyspaceView::build(&file, Some(latest.compact_revision)).unwrap();
    let err = KeyspaceView::build(&file, Some(latest.revision + 1)).unwrap_err();
    assert!(matches!(err, MvccError::FutureRevision { .. }), "{err}");
    let err = KeyspaceView::build(&file, Some(0)).unwrap_err();
    assert!(matches!(err, MvccError::InvalidRevision { .. }), "{err}");
}

#[test]
fn buckets_are_found_by_name_and_iterated_in_order() {
    let file = BoltFile::open(&fixture("member.db")).unwrap();
    assert_eq!(file.page_size(), 4096);
    let root = file.root();
    let names: Vec<Vec<u8>> = root.iter().map(|r| r.unwrap().0.to_vec()).collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]));
    for name in &names {
        assert!(root.bucket(name).unwrap().is_some());
    }
    assert!(root.bucket(b"no-such-bucket").unwrap().is_none());
    let meta = root.bucket(b"meta").unwrap().unwrap();
    assert!(meta.is_inline(), "etcd's small meta bucket is inline");
    let key = root.bucket(b"key").unwrap().unwrap();
    assert!(!key.is_inline());
    // Every record can be found again by lookup (branch-page descent).
    let rev = Revision { main: 20, sub: 50 };
    match key.get(&rev.to_key()).unwrap() {
        Some(Entry::Value(v)) => assert!(!v.is_empty()),
        other => panic!("revision {rev} not found: {other:?}"),
    }
    let report = file.check().unwrap();
    assert!(report.values > 2000);
    assert!(report.inline_buckets >= 1);
    assert!(report.reachable_pages + report.free_pages == report.high_water);
}

// ---- hash trailer ----

fn write_temp(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut f, bytes).unwrap();
    f
}

#[test]
fn corrupted_trailer_or_body_is_a_hash_mismatch_unless_skipped() {
    let good = read_fixture("snapshot.db");
    let mut bad_trailer = good.clone();
    *bad_trailer.last_mut().unwrap() ^= 0x01;
    let mut bad_body = good.clone();
    bad_body[5 * 4096 + 100] ^= 0x01;
    for bad in [bad_trailer, bad_body] {
        let tmp = write_temp(&bad);
        let err = Snapshot::open(tmp.path(), SnapshotOptions::default()).unwrap_err();
        let SnapshotError::HashMismatch {
            expected, actual, ..
        } = &err
        else {
            panic!("expected a hash mismatch, got {err}");
        };
        assert_eq!(expected, &hex(&bad[bad.len() - 32..]));
        assert_eq!(actual, &hex(&Sha256::digest(&bad[..bad.len() - 32])));
        assert!(err.to_string().contains("--skip-hash-check"));
        let snap = Snapshot::open(
            tmp.path(),
            SnapshotOptions {
                skip_hash_check: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(snap.hash_check(), HashCheck::Skipped);
        // A deferred check opens the file, then reports the mismatch when run.
        let snap = Snapshot::open(
            tmp.path(),
            SnapshotOptions {
                defer_hash_check: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(snap.hash_check(), HashCheck::Pending);
        assert!(matches!(
            snap.verify_hash(),
            Err(SnapshotError::HashMismatch { .. })
        ));
        assert_eq!(snap.bolt().bytes().len(), bad.len() - 32);
    }
}

// ---- not bolt at all ----

/// Backups are often kept compressed or archived; such a file is named for what
/// it is, with what to do, not only as a bolt file with a bad magic number.
#[test]
fn compressed_or_archived_snapshots_say_so() {
    let snap = read_fixture("snapshot.db");
    let mut tar = vec![0u8; 512];
    tar[..11].copy_from_slice(b"snapshot.db");
    tar[257..263].copy_from_slice(b"ustar\0");
    tar.extend_from_slice(&snap);
    let gzip = [&b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"[..], &snap].concat();
    let zstd = [&b"\x28\xb5\x2f\xfd\x64\x00"[..], &snap].concat();
    let zip = [&b"PK\x03\x04\x14\x00\x00\x00\x08\x00"[..], &snap].concat();
    for (kind, mut bytes) in [("gzip", gzip), ("zstd", zstd), ("zip", zip), ("tar", tar)] {
        // Also at a length that `etcdctl snapshot save` output could have (512n + 32),
        // which is not a damaged backup either.
        for name in ["backup.db", "member/snap/db", "trailer-length.db"] {
            if name == "trailer-length.db" {
                while bytes.len() % 512 != 32 {
                    bytes.push(0);
                }
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
            let err = Snapshot::open(&path, SnapshotOptions::default()).unwrap_err();
            assert!(
                matches!(err, SnapshotError::NotBolt { .. }),
                "{kind}: {err}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("it is a {kind} file")),
                "{kind}: {msg}"
            );
            assert!(
                msg.contains("decompress or extract it first"),
                "{kind}: {msg}"
            );
        }
    }
}

#[test]
fn files_that_are_not_bolt_are_named_as_such() {
    let text = write_temp(&b"apiVersion: v1\nkind: Secret\n".repeat(400));
    let err = Snapshot::open(text.path(), SnapshotOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("is not an etcd snapshot or db file"), "{msg}");
    assert!(msg.contains("bad magic at offset 16"), "{msg}");

    let empty = write_temp(b"");
    let err = Snapshot::open(empty.path(), SnapshotOptions::default()).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    assert!(matches!(
        BoltFile::from_bytes(Vec::new()),
        Err(BoltError::Empty)
    ));

    let short = write_temp(&read_fixture("member.db")[..40]);
    let err = Snapshot::open(short.path(), SnapshotOptions::default()).unwrap_err();
    assert!(matches!(err, SnapshotError::NotBolt { .. }), "{err}");

    let missing = fixture("does-not-exist.db");
    let err = Snapshot::open(&missing, SnapshotOptions::default()).unwrap_err();
    assert!(matches!(err, SnapshotError::Io { .. }), "{err}");
}

// ---- damaged files ----

/// Walk everything the library offers; any damage must surface as an error.
fn walk_everything(bytes: Vec<u8>) -> Result<usize, String> {
    walk(bytes, true)
}

/// As [`walk_everything`] without looking every key up again.
fn walk_everything_quick(bytes: Vec<u8>) -> Result<usize, String> {
    walk(bytes, false)
}

fn walk(bytes: Vec<u8>, lookups: bool) -> Result<usize, String> {
    let file = BoltFile::from_bytes(bytes).map_err(|e| e.to_string())?;
    // `check` visits each page once; only then is a naive recursive walk bounded.
    file.check().map_err(|e| e.to_string())?;
    let mut n = walk_bucket(file.root(), lookups)?;
    for r in mvcc::records(&file).map_err(|e| e.to_string())? {
        r.map_err(|e| e.to_string())?;
        n += 1;
    }
    let view = KeyspaceView::build(&file, None).map_err(|e| e.to_string())?;
    Ok(n + view.entries.len())
}

fn walk_bucket(bucket: Bucket<'_>, lookups: bool) -> Result<usize, String> {
    let mut n = 0;
    for item in bucket.iter() {
        let (key, entry) = item.map_err(|e| e.to_string())?;
        n += 1;
        if let Entry::Bucket(b) = entry {
            n += walk_bucket(b, lookups)?;
        }
        // Lookup of each key finds it again.
        if lookups && bucket.get(key).map_err(|e| e.to_string())?.is_none() {
            return Err(format!("key {key:?} not found by lookup"));
        }
    }
    Ok(n)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Page ids in use with the given page-header flags, found by walking headers.
fn pages_with_flags(bytes: &[u8], flags: u16) -> Vec<u64> {
    let file = BoltFile::from_bytes(bytes.to_vec()).unwrap();
    let ps = file.page_size() as usize;
    (2..file.meta().pgid)
        .filter(|&id| {
            let at = id as usize * ps;
            u64_at(bytes, at) == id && u16_at(bytes, at + 8) == flags
        })
        .collect()
}

fn fix_meta_checksum(bytes: &mut [u8], page: usize, page_size: usize) {
    let m = page * page_size + META_OFFSET;
    let sum = fnv1a64(&bytes[m..m + META_CHECKSUM_SPAN]);
    put_u64(bytes, m + META_CHECKSUM_SPAN, sum);
}

/// A way to damage a copy of a file.
type Damage = Box<dyn Fn(&mut Vec<u8>)>;

fn member_db() -> Vec<u8> {
    read_fixture("member.db")
}

#[test]
fn the_undamaged_fixture_walks_cleanly() {
    assert!(walk_everything(member_db()).unwrap() > 4000);
    let snapshot = read_fixture("snapshot.db");
    assert!(walk_everything(snapshot[..snapshot.len() - 32].to_vec()).is_ok());
}

#[test]
fn truncated_files_fail_with_errors() {
    let db = member_db();
    let page_size = 4096;
    let mut lens: Vec<usize> = (0..db.len() / page_size).map(|p| p * page_size).collect();
    lens.extend([
        1,
        15,
        16,
        79,
        80,
        4095,
        4097,
        8191,
        db.len() / 2 + 7,
        db.len() - 1,
    ]);
    for len in lens {
        let result = walk_everything(db[..len].to_vec());
        // The last pages may be free; everything shorter than the used pages fails.
        if len <= db.len() / 2 {
            assert!(result.is_err(), "truncated to {len} bytes walked fine");
        }
    }
    let err = walk_everything(db[..db.len() / 2].to_vec()).unwrap_err();
    assert!(
        err.contains("past the end of the file") || err.contains("high-water"),
        "{err}"
    );
}

#[test]
fn a_damaged_meta_page_falls_back_to_the_other_and_two_are_fatal() {
    let db = member_db();
    let good = BoltFile::from_bytes(db.clone()).unwrap();
    let chosen = good.meta_page() as usize;
    let mut one = db.clone();
    one[chosen * 4096 + META_OFFSET + 30] ^= 0x40; // inside the root pgid
    let fallback = BoltFile::from_bytes(one.clone()).unwrap();
    assert_eq!(fallback.meta_page() as usize, 1 - chosen);
    assert!(fallback.txid() < good.txid());
    let mut both = one;
    both[(1 - chosen) * 4096 + META_OFFSET + 50] ^= 0x01; // inside txid
    let err = BoltFile::from_bytes(both).unwrap_err();
    assert!(matches!(err, BoltError::NoValidMeta { .. }), "{err}");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
}

#[test]
fn a_root_past_the_high_water_mark_is_refused() {
    let mut db = member_db();
    let file = BoltFile::from_bytes(db.clone()).unwrap();
    let (hwm, ps) = (file.meta().pgid, 4096);
    for page in 0..2 {
        put_u64(&mut db, page * ps + META_OFFSET + 16, hwm + 5);
        fix_meta_checksum(&mut db, page, ps);
    }
    let file = BoltFile::from_bytes(db).unwrap();
    let err = file.root().iter().next().unwrap().unwrap_err();
    assert!(
        matches!(err, BoltError::PageOutOfRange { pgid, .. } if pgid == hwm + 5),
        "{err}"
    );
}

#[test]
fn damaged_branch_pages_are_reported() {
    let db = member_db();
    let branches = pages_with_flags(&db, BRANCH_PAGE_FLAG);
    assert!(!branches.is_empty(), "fixture has branch pages");
    let leaves = pages_with_flags(&db, LEAF_PAGE_FLAG);
    let hwm = BoltFile::from_bytes(db.clone()).unwrap().meta().pgid;
    let first_branch = branches[0];
    let b = first_branch as usize * 4096;
    let child_of_first = b + 16 + 8;

    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "child past the end",
            Box::new(move |d| put_u64(d, child_of_first, hwm + 100)),
            "high-water",
        ),
        (
            "child is itself",
            Box::new(move |d| put_u64(d, child_of_first, first_branch)),
            "cycle",
        ),
        (
            "child is a meta page",
            Box::new(move |d| put_u64(d, child_of_first, 1)),
            "meta page",
        ),
        (
            "huge element count",
            Box::new(move |d| d[b + 10..b + 12].copy_from_slice(&u16::MAX.to_le_bytes())),
            "elements",
        ),
        (
            "key position past the page",
            Box::new(move |d| d[b + 16..b + 20].copy_from_slice(&u32::MAX.to_le_bytes())),
            "past the end of the page",
        ),
        (
            "header id wrong",
            Box::new(move |d| put_u64(d, b, 3)),
            "has id 3",
        ),
        (
            "flags turned to freelist",
            Box::new(move |d| d[b + 8] = 0x10),
            "freelist",
        ),
    ];
    for (what, damage, message) in cases {
        let mut d = db.clone();
        damage(&mut d);
        let err = walk_everything(d).expect_err(what);
        assert!(err.contains(message), "{what}: {err}");
        assert!(err.contains("page"), "{what}: {err}");
    }

    // A crafted cycle two levels deep: a leaf turned into a branch pointing back
    // at the branch that references it.
    let mut d = db.clone();
    let child = u64_at(&db, child_of_first);
    if leaves.contains(&child) {
        let c = child as usize * 4096;
        d[c + 8..c + 10].copy_from_slice(&BRANCH_PAGE_FLAG.to_le_bytes());
        put_u64(&mut d, c + 16 + 8, branches[0]);
        let err = walk_everything(d).unwrap_err();
        assert!(
            err.contains("cycle") || err.contains("more than one place"),
            "{err}"
        );
    }
}

#[test]
fn damaged_leaf_pages_are_reported() {
    let db = member_db();
    let leaves = pages_with_flags(&db, LEAF_PAGE_FLAG);
    let l = leaves[leaves.len() / 2] as usize * 4096;
    let cases: Vec<(&str, Damage)> = vec![
        (
            "value size huge",
            Box::new(move |d| d[l + 16 + 12..l + 16 + 16].copy_from_slice(&u32::MAX.to_le_bytes())),
        ),
        (
            "key size huge",
            Box::new(move |d| {
                d[l + 16 + 8..l + 16 + 12].copy_from_slice(&0x7fff_0000u32.to_le_bytes())
            }),
        ),
        (
            "position huge",
            Box::new(move |d| {
                d[l + 16 + 4..l + 16 + 8].copy_from_slice(&0x00ff_0000u32.to_le_bytes())
            }),
        ),
        (
            "overflow past the file",
            Box::new(move |d| d[l + 12..l + 16].copy_from_slice(&1000u32.to_le_bytes())),
        ),
        (
            "count huge",
            Box::new(move |d| d[l + 10..l + 12].copy_from_slice(&4000u16.to_le_bytes())),
        ),
    ];
    for (what, damage) in cases {
        let mut d = db.clone();
        damage(&mut d);
        let err = walk_everything(d).expect_err(what);
        assert!(err.contains("page"), "{what}: {err}");
    }
}

/// The small fixture without its hash trailer.
fn small_db() -> Vec<u8> {
    let mut d = read_fixture("small.db");
    d.truncate(d.len() - 32);
    d
}

#[test]
fn every_byte_of_a_small_file_can_be_damaged_without_panic() {
    let db = small_db();
    assert!(walk_everything(db.clone()).unwrap() > 10);
    let mut failures = 0;
    for at in 0..db.len() {
        for x in [0xff_u8, 0x01, 0x80] {
            let mut d = db.clone();
            d[at] ^= x;
            failures += usize::from(walk_everything(d).is_err());
        }
    }
    // Damage to meta pages, headers and element arrays is detected.
    assert!(failures > 1000, "only {failures} damaged copies failed");
}

#[test]
fn structural_bytes_of_the_large_file_can_be_damaged_without_panic() {
    let db = member_db();
    let ps = 4096;
    let file = BoltFile::from_bytes(db.clone()).unwrap();
    let mut offsets: Vec<usize> = Vec::new();
    for page in [0, 1] {
        offsets.extend(page * ps..page * ps + META_OFFSET + 64);
    }
    for b in pages_with_flags(&db, BRANCH_PAGE_FLAG) {
        let b = b as usize * ps;
        offsets.extend(b..b + 64);
    }
    for page in (2..file.meta().pgid as usize).step_by(7) {
        offsets.extend(page * ps..page * ps + 16);
    }
    for at in offsets {
        let mut d = db.clone();
        d[at] ^= 0xff;
        let _ = walk_everything_quick(d);
    }
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
        #[test]
        fn random_damage_never_panics(flips in proptest::collection::vec((0usize..360448, any::<u8>()), 1..16)) {
            let mut d = member_db();
            for (at, x) in flips {
                let at = at % d.len();
                d[at] ^= x.max(1);
            }
            let _ = walk_everything_quick(d);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..20000)) {
            let _ = walk_everything(bytes);
        }
    }
}

/// Fuzzer find: a 185-byte file whose meta page names page 0 as the freelist
/// with a huge overflow and a high-water mark of u64::MAX. `check` used to mark
/// millions of page ids (seconds of work); it must now fail at once, and every
/// other reader must return an error, not loop.
#[test]
fn regression_meta_with_huge_freelist_overflow() {
    let data = std::fs::read("tests/regressions/bolt-slow-meta-pgid.db").unwrap();
    let file = BoltFile::from_bytes(data).unwrap();
    let report = file.check();
    assert!(report.is_err() || report.is_ok_and(|r| r.reachable_pages <= 2));
    assert!(mvcc::records(&file).is_err());
    assert!(mvcc::keys_at(&file, None).is_err());
    assert!(file.free_pages().map_or(true, |p| p.is_empty()));
}

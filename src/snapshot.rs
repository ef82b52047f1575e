//! etcd db and snapshot files: a bolt file, optionally followed by a sha256 trailer.
//!
//! `etcdctl snapshot save` writes the bolt bytes and then their sha256; a file has
//! the trailer when `size % 512 == 32` (`etcd-io/etcd` `etcdutl/snapshot/v3_snapshot.go`,
//! `Restore`/`saveDB`: bolt files are whole pages, so a bare db is a multiple of 512).
//! A `member/snap/db` copied from a data directory has no trailer.
//!
//! Snapshot files (with a trailer) are memory-mapped: nothing writes them, and
//! mapping is the fast way through a multi-gigabyte backup. A file without a
//! trailer, or named `db` in a `snap` directory, may be a running member's
//! database, which etcd can truncate at any time; a mapped file that shrinks
//! raises SIGBUS, so such files are read into memory instead.

use crate::bolt::{map_read_only, read_whole, BoltError, BoltFile, MetaProblem};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Length of the sha256 trailer.
pub const HASH_TRAILER_LEN: usize = 32;
/// A file whose size is `HASH_TRAILER_MODULUS * n + HASH_TRAILER_LEN` has a trailer.
pub const HASH_TRAILER_MODULUS: usize = 512;

/// How to open a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotOptions {
    /// Do not verify the sha256 trailer (read a damaged backup as far as it goes).
    pub skip_hash_check: bool,
    /// Open without hashing; the caller runs [`Snapshot::verify_hash`] itself,
    /// typically on another thread while it reads (and before it outputs anything).
    pub defer_hash_check: bool,
}

/// What went wrong opening an etcd snapshot or db file.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: BoltError,
    },
    #[error("{path} is not an etcd snapshot or db file: {reason}")]
    NotBolt { path: PathBuf, reason: String },
    #[error(
        "{path}: the sha256 trailer does not match the contents (trailer {expected}, \
         contents {actual}); the backup is damaged. Use --skip-hash-check to read a \
         damaged backup as far as it goes"
    )]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{path} is damaged: {source}. If this is a copy, try another backup or the member's db file")]
    Damaged {
        path: PathBuf,
        #[source]
        source: BoltError,
    },
}

/// Whether `path` looks like `etcdctl snapshot save` output, safe to map: it
/// has the sha256 trailer's size and is not a member's `snap/db`. Anything else
/// may be a live database (see the module docs).
fn is_snapshot_file(path: &Path) -> bool {
    let member_db = path.file_name().is_some_and(|n| n == "db")
        && path
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == "snap");
    let has_trailer = std::fs::metadata(path).is_ok_and(|m| {
        m.is_file()
            && usize::try_from(m.len()).is_ok_and(|n| n % HASH_TRAILER_MODULUS == HASH_TRAILER_LEN)
    });
    has_trailer && !member_db
}

/// State of the sha256 trailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashCheck {
    /// No trailer (a raw `member/snap/db`).
    NoTrailer,
    /// Trailer present and matches.
    Verified,
    /// Trailer present, to be checked with [`Snapshot::verify_hash`] (`defer_hash_check`).
    Pending,
    /// Trailer present, not checked (`skip_hash_check`).
    Skipped,
}

/// An opened etcd snapshot or db file.
#[derive(Debug)]
pub struct Snapshot {
    path: PathBuf,
    bolt: BoltFile,
    hash: HashCheck,
    /// The sha256 trailer, kept for a deferred check.
    trailer: Option<[u8; HASH_TRAILER_LEN]>,
}

impl Snapshot {
    /// Open `path` read-only, verifying the sha256 trailer if there is one.
    pub fn open(path: &Path, options: SnapshotOptions) -> Result<Snapshot, SnapshotError> {
        if !is_snapshot_file(path) {
            let bytes = read_whole(path).map_err(|e| classify(path, &[], e))?;
            return Snapshot::from_bytes(path, bytes, options);
        }
        let mmap = map_read_only(path).map_err(|e| classify(path, &[], e))?;
        let (bolt_len, hash) = verify_trailer(path, &mmap, options)?;
        let trailer = trailer_of(&mmap, hash);
        let head = file_head(&mmap);
        let bolt =
            BoltFile::from_mmap_prefix(mmap, bolt_len).map_err(|e| classify(path, &head, e))?;
        Ok(Snapshot {
            path: path.to_owned(),
            bolt,
            hash,
            trailer,
        })
    }

    /// Open snapshot bytes held in memory; `label` names them in errors.
    pub fn from_bytes(
        label: &Path,
        mut bytes: Vec<u8>,
        options: SnapshotOptions,
    ) -> Result<Snapshot, SnapshotError> {
        let (bolt_len, hash) = verify_trailer(label, &bytes, options)?;
        let trailer = trailer_of(&bytes, hash);
        let head = file_head(&bytes);
        bytes.truncate(bolt_len);
        let bolt = BoltFile::from_bytes(bytes).map_err(|e| classify(label, &head, e))?;
        Ok(Snapshot {
            path: label.to_owned(),
            bolt,
            hash,
            trailer,
        })
    }

    /// The bolt file (without the trailer).
    pub fn bolt(&self) -> &BoltFile {
        &self.bolt
    }

    /// Where the snapshot was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True for `etcdctl snapshot save` output (a sha256 trailer follows the bolt bytes).
    pub fn has_hash_trailer(&self) -> bool {
        self.hash != HashCheck::NoTrailer
    }

    /// Whether the trailer was verified.
    pub fn hash_check(&self) -> HashCheck {
        self.hash
    }

    /// Check the sha256 trailer now (for a snapshot opened with
    /// `defer_hash_check`; otherwise returns the state from `open`). Safe to call
    /// from another thread while the file is being read.
    pub fn verify_hash(&self) -> Result<HashCheck, SnapshotError> {
        let (HashCheck::Pending, Some(trailer)) = (self.hash, self.trailer) else {
            return Ok(self.hash);
        };
        check_digest(&self.path, self.bolt.bytes(), &trailer)?;
        Ok(HashCheck::Verified)
    }
}

fn trailer_of(bytes: &[u8], hash: HashCheck) -> Option<[u8; HASH_TRAILER_LEN]> {
    if hash != HashCheck::Pending {
        return None;
    }
    bytes
        .len()
        .checked_sub(HASH_TRAILER_LEN)
        .and_then(|start| bytes.get(start..))
        .and_then(|t| t.try_into().ok())
}

fn check_digest(path: &Path, body: &[u8], trailer: &[u8]) -> Result<(), SnapshotError> {
    let actual = Sha256::digest(body);
    if actual.as_slice() != trailer {
        return Err(SnapshotError::HashMismatch {
            path: path.to_owned(),
            expected: hex(trailer),
            actual: hex(&actual),
        });
    }
    Ok(())
}

/// True when a file of `len` bytes carries a sha256 trailer.
pub fn has_hash_trailer(len: usize) -> bool {
    len >= HASH_TRAILER_LEN && len % HASH_TRAILER_MODULUS == HASH_TRAILER_LEN
}

fn verify_trailer(
    path: &Path,
    bytes: &[u8],
    options: SnapshotOptions,
) -> Result<(usize, HashCheck), SnapshotError> {
    // A compressed or archived file is no snapshot whatever its length: it is
    // named as such when opened, not reported as a damaged backup.
    if !has_hash_trailer(bytes.len()) || archive_kind(bytes).is_some() {
        return Ok((bytes.len(), HashCheck::NoTrailer));
    }
    let bolt_len = bytes.len() - HASH_TRAILER_LEN;
    if options.skip_hash_check {
        return Ok((bolt_len, HashCheck::Skipped));
    }
    if options.defer_hash_check {
        return Ok((bolt_len, HashCheck::Pending));
    }
    let (body, trailer) = bytes.split_at(bolt_len);
    check_digest(path, body, trailer)?;
    Ok((bolt_len, HashCheck::Verified))
}

/// Enough of a file's first bytes to recognise an archive by its magic ([`archive_kind`]).
fn file_head(bytes: &[u8]) -> Vec<u8> {
    bytes[..bytes.len().min(TAR_MAGIC_END)].to_vec()
}

/// End of a tar header's `ustar` magic (offset 257).
const TAR_MAGIC_END: usize = 262;

/// The compressed or archive format a file's first bytes announce: backups are
/// often kept as `snapshot.db.gz`, `.zst`, `.xz`, `.bz2`, `.zip` or `.tar`.
fn archive_kind(head: &[u8]) -> Option<&'static str> {
    const MAGICS: &[(&[u8], &str)] = &[
        (b"\x1f\x8b", "gzip"),
        (b"\x28\xb5\x2f\xfd", "zstd"),
        (b"\xfd7zXZ\x00", "xz"),
        (b"BZh", "bzip2"),
        (b"\x04\x22\x4d\x18", "lz4"),
        (b"PK\x03\x04", "zip"),
    ];
    if let Some((_, kind)) = MAGICS.iter().find(|(m, _)| head.starts_with(m)) {
        return Some(kind);
    }
    (head.get(257..TAR_MAGIC_END) == Some(b"ustar")).then_some("tar")
}

fn classify(path: &Path, head: &[u8], err: BoltError) -> SnapshotError {
    let path = path.to_owned();
    let reason = match &err {
        BoltError::Open { .. } | BoltError::Map { .. } => {
            return SnapshotError::Io { path, source: err }
        }
        BoltError::Empty => "it is empty".to_owned(),
        BoltError::TooShort { len, .. } => format!("it is only {len} bytes"),
        BoltError::NotBolt(problem @ MetaProblem::BadMagic { .. }) => match archive_kind(head) {
            Some(kind) => format!(
                "it is a {kind} file: decompress or extract it first and give the etcd \
                 snapshot inside"
            ),
            None => problem.to_string(),
        },
        _ => return SnapshotError::Damaged { path, source: err },
    };
    SnapshotError::NotBolt { path, reason }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

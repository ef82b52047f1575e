//! Key rotation: the documented procedure as checked edits of an EncryptionConfiguration.
//!
//! Upstream procedure (kubernetes/website `tasks/administer-cluster/encrypt-data.md`):
//! add the new key second on every control-plane node and restart → make it first and
//! restart → rewrite every object → remove the old key. Here each step is a pure
//! transformation ([`prepare`], [`promote`], [`retire`]) that refuses an unsafe edit with
//! a [`RotationError`] saying what to do instead, [`KeyUsage`] is the proof (from a full
//! scan) that a key is no longer used, and [`write_config`] writes the result the safe way
//! (validated, `.bak` of the previous file, atomic, keeping the file's owner, group and
//! mode, same YAML/JSON form).
//!
//! # Which resource items rotate
//! The *target* items are those selected by the [`Scope`] (all items by default) whose
//! first provider encrypts (aescbc, aesgcm, secretbox or kms). When no selected item
//! encrypts yet, every selected item is a target: that is enabling encryption. Items that
//! deliberately write `identity` next to encrypted ones (e.g. `events`) are left alone.
//! One fresh key is shared by all target items, so there is one name and one fingerprint
//! to follow across the cluster.
//!
//! # Stages of an item
//! Kube-apiserver writes with the first key of the first provider (the *writer*) and reads
//! with every configured key (*readers*). The [`Stage`] of an item is:
//! - [`Stage::NoEncryption`]: `identity` writes and no key reads.
//! - [`Stage::Prepared`]: a key reads that is newer than the writer (added by
//!   `prepare`, waiting for `promote`); with `identity` writing, any key that reads.
//! - [`Stage::Writing`]: a key writes and older keys still read (after `promote`, until
//!   `retire`).
//! - [`Stage::Clean`]: one key writes and no other key reads; `identity` may still read.
//! - [`Stage::Ambiguous`]: a key writes and another reads, and their names do not say
//!   which is newer (see below); `promote --key NAME` resolves it.
//! - [`Stage::Kms`]: a KMS plugin writes; its keys rotate inside the plugin.
//!
//! A configuration only orders keys, so "prepared" and "old" readers look alike. atrest
//! tells them apart by age as their names show it: a name in `prepare`'s default form
//! `key-YYYYMMDDTHHMMSSZ` is newer than any name without a timestamp, two timestamps
//! compare by time, and two names that differ only in a trailing number (`key1`, `key2`)
//! compare by that number. Anything else is [`Stage::Ambiguous`].

mod edit;
mod error;
mod file;
mod naming;
mod proof;
mod scan;
mod stage;
mod status;
mod usage;

pub use edit::{
    prepare, prepare_with_key, promote, retire, Change, Edit, KeyedProvider, PrepareOptions,
    RetireTarget, NEW_KEY_LEN,
};
pub use error::RotationError;
pub use file::{check_valid, describe, render, write_config, Written};
pub use naming::{default_key_name, newer, utc_stamp, DEFAULT_KEY_PREFIX};
pub use proof::check_snapshot;
pub use scan::UsageScan;
pub use stage::{overall, stage, targets, ItemStage, KeyId, Scope, Stage};
pub use status::{kms_key_ids, status, KeyStatus, KmsKeyIds, NextStep, StatusReport};
pub use usage::{KeyUsage, ObjectList, MAX_EXAMPLES, NOT_AN_OBJECT_KEY};

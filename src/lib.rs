//! atrest: read and write Kubernetes encryption-at-rest envelopes exactly as kube-apiserver does.
//!
//! Data flows one way: a source ([`snapshot`] of an etcd db file read through
//! [`bolt`] and [`mvcc`], or a live etcd through [`etcd`]) yields stored values; [`envelope`] and
//! [`transformer`] classify and decrypt them with the keys of an
//! [`config::EncryptionConfiguration`]; [`kube`] decodes the objects; [`audit`]
//! reports, [`dump`] recovers them and
//! [`rewrite`] re-encrypts them in place; [`info`] says what a snapshot holds.
//! Keys that [`rotation`] retires go to an [`archive`]; [`keyring`] reads old
//! backups with them.

pub mod archive;
pub mod audit;
pub mod bolt;
pub mod config;
pub mod dump;
pub mod envelope;
pub mod etcd;
pub mod etcd_key;
pub mod fsutil;
mod grpc;
pub mod hygiene;
pub mod info;
pub mod json;
pub mod key;
pub mod keyring;
pub mod kms;
pub mod kube;
pub mod mvcc;
pub mod rewrite;
pub mod rotation;
pub mod snapshot;
pub mod source;
pub mod transformer;
pub mod wire;

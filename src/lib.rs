//! atrest: read and write Kubernetes encryption-at-rest envelopes exactly as kube-apiserver does.
//!
//! Data flows one way: a [`source`] (a [`snapshot`] of an etcd db file read through
//! [`bolt`] and [`mvcc`], or a live etcd through [`etcd`]) yields stored values; [`envelope`] and
//! [`transformer`] classify and decrypt them with the keys of an
//! [`config::EncryptionConfiguration`]; [`kube`] decodes the objects; [`audit`]
//! reports, [`dump`] recovers them and
//! [`rewrite`] re-encrypts them in place; [`info`] says what a snapshot holds.
//! Keys that [`rotation`] retires go to an [`archive`]; [`keyring`] reads old
//! backups with them.
//!
//! # The public surface
//!
//! What a library user needs is re-exported here:
//! - configuration and keys: [`EncryptionConfiguration`], [`ProviderConfig`],
//!   [`SecretKey`];
//! - stored values: [`Envelope`] and [`ProviderKind`] (what a value's prefix says),
//!   [`Transformers`] and [`Transformer`] (kube-apiserver's read and write paths,
//!   built from a config), [`ReadMode`];
//! - where values come from: [`Snapshot`] and [`SnapshotOptions`] (an etcd snapshot
//!   or db file, its sha256 trailer checked: [`HashCheck`]), [`SnapshotSource`] (its
//!   keys at one revision, a [`KeyspaceView`]), [`Etcd`] and [`ConnectOptions`] (a
//!   running etcd), both as [`Record`]s;
//! - what atrest concludes: [`Auditor`] with [`AuditOptions`] classifies each object
//!   of a [`GroupResource`] into an [`ObjectReport`] with a [`Status`].
//!
//! The modules hold the rest (errors, options, the commands' workflows).
//!
//! ```no_run
//! use atrest::{
//!     AuditOptions, Auditor, EncryptionConfiguration, Snapshot, SnapshotOptions,
//!     SnapshotSource, Status, Transformers,
//! };
//! use std::path::Path;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = EncryptionConfiguration::load(Path::new("encryption-config.yaml"))?.config;
//! let transformers = Transformers::new(&config)?;
//! let auditor = Auditor::new(Some(&transformers), AuditOptions::default());
//!
//! let snapshot = Snapshot::open(Path::new("snapshot.db"), SnapshotOptions::default())?;
//! let source = SnapshotSource::open(snapshot.bolt(), None)?;
//! source.scan(&|_| {}, |records| {
//!     for record in records {
//!         if let Some(report) = auditor.classify(&record.stored()) {
//!             if report.status != Status::Current {
//!                 println!("{} is {:?}", report.key, report.status);
//!             }
//!         }
//!     }
//!     Ok::<_, std::convert::Infallible>(())
//! })?;
//! # Ok(())
//! # }
//! ```

pub mod archive;
pub mod audit;
pub mod bolt;
pub mod config;
pub mod dump;
pub mod envelope;
pub mod etcd;
pub mod etcd_key;
pub mod fsutil;
pub(crate) mod gourl;
mod grpc;
pub(crate) mod hygiene;
pub mod info;
pub(crate) mod json;
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
pub(crate) mod wire;

pub use audit::{AuditOptions, Auditor, ObjectReport, Status};
pub use config::{EncryptionConfiguration, ProviderConfig};
pub use envelope::{Envelope, ProviderKind};
pub use etcd::{ConnectOptions, Etcd};
pub use etcd_key::GroupResource;
pub use key::SecretKey;
pub use mvcc::KeyspaceView;
pub use snapshot::{HashCheck, Snapshot, SnapshotOptions};
pub use source::{Record, SnapshotSource};
pub use transformer::{ReadMode, Transformer, Transformers};

//! atrest: read and write Kubernetes encryption-at-rest envelopes exactly as kube-apiserver does.

pub mod bolt;
pub mod key;
pub mod mvcc;
pub mod snapshot;

//! atrest: read and write Kubernetes encryption-at-rest envelopes exactly as kube-apiserver does.

pub mod key;
pub mod kube;

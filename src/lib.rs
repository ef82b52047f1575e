//! atrest: read and write Kubernetes encryption-at-rest envelopes exactly as kube-apiserver does.

pub mod envelope;
pub mod etcd_key;
pub mod key;
pub mod transformer;
pub mod fsutil;

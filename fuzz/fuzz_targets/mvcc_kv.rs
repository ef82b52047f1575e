//! Any bytes as an `mvccpb.KeyValue` and as a `key` bucket revision key.
#![no_main]

use atrest::mvcc::{KeyValue, Revision};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(kv) = KeyValue::decode(data) {
        assert!(kv.key.len() + kv.value.len() <= data.len());
    }
    if let Some((rev, _)) = Revision::from_key(data) {
        assert_eq!(&rev.to_key()[..], &data[..17]);
    }
});

//! Any bytes as a bolt file: open, check, walk every bucket, build the MVCC view.
#![no_main]

use atrest::bolt::{BoltFile, Bucket, Entry};
use atrest::mvcc;
use libfuzzer_sys::fuzz_target;

fn walk(bucket: Bucket<'_>) {
    for item in bucket.iter() {
        let Ok((key, entry)) = item else { return };
        let _ = bucket.get(key);
        if let Entry::Bucket(child) = entry {
            walk(child);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(file) = BoltFile::from_bytes(data.to_vec()) else {
        return;
    };
    // `check` refuses files whose pages are shared, which is what bounds the
    // recursive walk below; `records` and the keyspace view touch only the flat
    // `key` and `meta` buckets and are bounded on their own.
    if file.check().is_ok() {
        walk(file.root());
    }
    if let Ok(records) = mvcc::records(&file) {
        for record in records {
            if record.is_err() {
                break;
            }
        }
    }
    let _ = mvcc::meta_info(&file);
    let _ = mvcc::keys_at(&file, None);
    let _ = mvcc::keys_at(&file, Some(2));
});

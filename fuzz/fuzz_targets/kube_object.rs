//! Fuzz the stored-object decoder: any bytes must give a manifest or an error, never
//! a panic, and every manifest must print as YAML.
#![no_main]

use atrest::kube::{decode_manifest, detect, object_info, to_yaml, ManifestOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = detect(data);
    let _ = object_info(data);
    for clean in [false, true] {
        let opts = ManifestOptions {
            resource_version: Some(1),
            clean,
        };
        if let Ok(manifest) = decode_manifest(data, &opts) {
            to_yaml(&manifest).expect("a decoded manifest always prints as YAML");
        }
    }
    // The same bytes behind the protobuf magic reach the wire-format reader.
    let mut prefixed = b"k8s\x00".to_vec();
    prefixed.extend_from_slice(data);
    let _ = object_info(&prefixed);
    let _ = decode_manifest(&prefixed, &ManifestOptions::default());
});

//! Any bytes as an EncryptionConfiguration: parsing and validation must never
//! panic, and a valid configuration must survive a YAML and a JSON round trip.
#![no_main]

use atrest::config::EncryptionConfiguration;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(loaded) = EncryptionConfiguration::from_slice(data) else {
        return;
    };
    let config = loaded.config;
    let findings = config.validate();
    for f in &findings {
        let _ = f.to_string();
    }
    if !config.is_valid() {
        return;
    }
    let yaml = config.to_yaml();
    let back = EncryptionConfiguration::from_yaml_str(&yaml)
        .unwrap_or_else(|e| panic!("emitted YAML does not parse: {e}\n{}", &*yaml));
    assert_eq!(back, config, "YAML round trip changed the config");
    let json = config.to_json();
    let back = EncryptionConfiguration::from_json_str(&json)
        .unwrap_or_else(|e| panic!("emitted JSON does not parse: {e}\n{}", &*json));
    assert_eq!(back, config, "JSON round trip changed the config");
});

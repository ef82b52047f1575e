//! TEMPORARY stand-in for the EncryptionConfiguration model (replaced by src/config/).
use crate::key::SecretKey;
#[derive(Clone, Debug, PartialEq)]
pub struct EncryptionConfiguration {
    pub api_version: String,
    pub kind: String,
    pub resources: Vec<ResourceConfig>,
}
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceConfig {
    pub resources: Vec<String>,
    pub providers: Vec<ProviderConfig>,
}
#[derive(Clone, Debug, PartialEq)]
pub enum ProviderConfig {
    AesCbc(KeysConfig),
    AesGcm(KeysConfig),
    Secretbox(KeysConfig),
    Identity,
    Kms(KmsConfig),
}
#[derive(Clone, Debug, PartialEq)]
pub struct KeysConfig {
    pub keys: Vec<KeyConfig>,
}
#[derive(Clone, Debug, PartialEq)]
pub struct KeyConfig {
    pub name: String,
    pub secret: SecretKey,
}
#[derive(Clone, Debug, PartialEq)]
pub struct KmsConfig {
    pub api_version: Option<String>,
    pub name: String,
    pub endpoint: Option<String>,
    pub cachesize: Option<i32>,
    pub timeout: Option<String>,
}
impl EncryptionConfiguration {
    pub fn rule_for(&self, resource: &str, group: &str) -> Option<&ResourceConfig> {
        let exact = if group.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}.{group}")
        };
        let wild = format!("*.{group}");
        for cand in [exact.as_str(), wild.as_str(), "*.*"] {
            if let Some(r) = self
                .resources
                .iter()
                .find(|r| r.resources.iter().any(|x| x == cand))
            {
                return Some(r);
            }
        }
        None
    }
}

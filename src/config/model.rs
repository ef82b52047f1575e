//! The EncryptionConfiguration data model, after parsing and base64-decoding of keys.
//!
//! Mirrors `apiserver.config.k8s.io/v1` from upstream
//! `staging/src/k8s.io/apiserver/pkg/apis/apiserver/v1/types_encryption.go`, except that a
//! provider list item is an enum (exactly one provider kind) instead of a struct of optional
//! pointers, and key secrets are held as decoded [`SecretKey`]s.

use crate::key::SecretKey;

/// `apiVersion` of the current form.
pub const API_VERSION: &str = "apiserver.config.k8s.io/v1";
/// `kind` of the current form.
pub const KIND: &str = "EncryptionConfiguration";
/// `apiVersion` of the legacy form, still registered upstream "due to a docs bug"
/// (`staging/src/k8s.io/apiserver/pkg/apis/apiserver/v1/register.go`).
pub const LEGACY_API_VERSION: &str = "v1";
/// `kind` of the legacy form.
pub const LEGACY_KIND: &str = "EncryptionConfig";

/// A whole `EncryptionConfiguration` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionConfiguration {
    /// `apiserver.config.k8s.io/v1`, or `v1` for the legacy form.
    pub api_version: String,
    /// `EncryptionConfiguration`, or `EncryptionConfig` for the legacy form.
    pub kind: String,
    /// Rules in file order; order matters for lookups and masking.
    pub resources: Vec<ResourceConfig>,
}

/// One `resources:` list item: which resources, and the providers that read/write them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceConfig {
    /// Resource names: `secrets`, `deployments.apps`, `*.apps`, `*.` (core group), `*.*`.
    pub resources: Vec<String>,
    /// Providers in order: the first one writes, all are tried on read.
    pub providers: Vec<ProviderConfig>,
}

/// One `providers:` list item. Upstream allows exactly one kind per item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderConfig {
    /// `aescbc:` (AES-CBC with PKCS#7 padding, keys of 16, 24 or 32 bytes).
    AesCbc(KeysConfig),
    /// `aesgcm:` (AES-GCM, keys of 16, 24 or 32 bytes).
    AesGcm(KeysConfig),
    /// `secretbox:` (XSalsa20-Poly1305, keys of exactly 32 bytes).
    Secretbox(KeysConfig),
    /// `identity: {}` (no encryption).
    Identity,
    /// `kms:` (envelope encryption through an external plugin).
    Kms(KmsConfig),
}

/// The `keys:` of an aescbc, aesgcm or secretbox provider.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeysConfig {
    /// Keys in order: the first one writes, all are tried on read.
    pub keys: Vec<KeyConfig>,
}

/// One named key. `Debug` shows the name and the key's fingerprint, never its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyConfig {
    /// Key name; it becomes part of the stored prefix `k8s:enc:<provider>:v1:<name>:`.
    pub name: String,
    /// The decoded `secret:`.
    pub secret: SecretKey,
}

/// The `kms:` provider settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KmsConfig {
    /// `v1` or `v2`; `None` or empty means upstream's default, `v1`.
    pub api_version: Option<String>,
    /// Plugin name; part of the stored prefix `k8s:enc:kms:<version>:<name>:`.
    pub name: String,
    /// gRPC endpoint, `unix:///path/to/socket`.
    pub endpoint: Option<String>,
    /// DEK cache size (v1 only; upstream default 1000).
    pub cachesize: Option<i32>,
    /// Plugin call timeout as a Go duration (`3s`; upstream default 3s).
    pub timeout: Option<String>,
}

impl ProviderConfig {
    /// The YAML key of this provider: `aescbc`, `aesgcm`, `secretbox`, `identity` or `kms`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            ProviderConfig::AesCbc(_) => "aescbc",
            ProviderConfig::AesGcm(_) => "aesgcm",
            ProviderConfig::Secretbox(_) => "secretbox",
            ProviderConfig::Identity => "identity",
            ProviderConfig::Kms(_) => "kms",
        }
    }

    /// The keys of a key-holding provider (`None` for identity and kms).
    pub fn keys(&self) -> Option<&KeysConfig> {
        match self {
            ProviderConfig::AesCbc(k)
            | ProviderConfig::AesGcm(k)
            | ProviderConfig::Secretbox(k) => Some(k),
            ProviderConfig::Identity | ProviderConfig::Kms(_) => None,
        }
    }
}

impl KmsConfig {
    /// The effective API version: the configured one, or upstream's default `v1`
    /// when it is missing or empty
    /// (`staging/src/k8s.io/apiserver/pkg/apis/apiserver/v1/defaults.go`).
    pub fn effective_api_version(&self) -> &str {
        match self.api_version.as_deref() {
            None | Some("") => "v1",
            Some(v) => v,
        }
    }
}

/// A resource name split the way upstream's `schema.ParseGroupResource` does: at the first
/// `.`, resource before it, group after it (`secrets` → group ""; `*.` → resource `*`,
/// group ""; `*.*` → both `*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct GroupResource<'a> {
    pub group: &'a str,
    pub resource: &'a str,
}

impl<'a> GroupResource<'a> {
    pub(crate) fn parse(name: &'a str) -> Self {
        match name.split_once('.') {
            Some((resource, group)) => GroupResource { group, resource },
            None => GroupResource {
                group: "",
                resource: name,
            },
        }
    }

    pub(crate) fn is_any_any(&self) -> bool {
        self.group == "*" && self.resource == "*"
    }

    /// How upstream prints a rule in its masking error (`grYAMLString` in
    /// `pkg/server/options/encryptionconfig/config.go`).
    pub(crate) fn yaml_string(&self) -> String {
        if self.group.is_empty() {
            if self.resource == "*" {
                "*.".to_string()
            } else {
                self.resource.to_string()
            }
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

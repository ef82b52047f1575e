//! KMS plugins: the client side of kube-apiserver's envelope encryption.
//!
//! kube-apiserver asks a KMS plugin, over gRPC on a unix socket, to decrypt the
//! DEK (v1) or DEK/seed (v2) stored with each value. The protocol is kubernetes
//! `staging/src/k8s.io/kms/apis/v2/api.proto` (`Status`, `Decrypt`, `Encrypt`) and
//! `staging/src/k8s.io/kms/apis/v1beta1/api.proto` (`Version`, `Decrypt`,
//! `Encrypt`); the messages are in [`proto`], written by hand like the etcd ones.
//!
//! As kube-apiserver does (`.../envelope/kmsv2/envelope.go`, `envelope.go`):
//! - v2: `Status` once per plugin per run (version `v2` or `v2beta1`, healthz
//!   `ok`, a valid key_id); `Decrypt` with a fresh UUID, the object's keyID and
//!   annotations, once per distinct DEK source (the cache key is upstream's
//!   `generateCacheKey`), the result kept for the run in zeroizing memory.
//! - v1: `Version` once (`v1beta1`), then `Decrypt` once per distinct encrypted DEK.
//!
//! Writing, as kube-apiserver 1.29+ does (`.../envelope/kmsv2/envelope.go`
//! `GenerateTransformer`/`TransformToStorage`, and `rotateDEKOnKeyIDChange` in
//! `pkg/server/options/encryptionconfig/config.go`):
//! - v2: one 32-byte seed per run (source type `HKDF_SHA256_XNONCE_AES_GCM_SEED`),
//!   `Encrypt`ed once by the plugin; the `Encrypt` answer's key ID must equal the
//!   `Status` key_id, and its keyID and annotations go into every value written. The
//!   seed is renewed when `Status` (asked again at most once a minute, as upstream
//!   polls it) reports another key_id. Each value gets its own random 32-byte info
//!   and nonce ([`DataKey::seal_with_seed`]).
//! - v1 (`envelope.go` `TransformToStorage`): a fresh 32-byte DEK per value,
//!   `Encrypt`ed by the plugin, data AES-GCM with the etcd key as AAD.
//!
//! A plugin that cannot be reached, times out or reports itself unhealthy is a
//! *fatal* error ([`KmsError::is_fatal`]): a command stops rather than report
//! objects as undecryptable. A plugin that refuses one `Decrypt` makes only the
//! objects under that DEK undecryptable.

pub mod client;
pub mod proto;

use crate::config::{EncryptionConfiguration, KmsConfig, ProviderConfig};
use crate::envelope::aesgcm::AesGcm;
use crate::envelope::kms::{
    encode_v2, validate_annotations, validate_key_id, DataKey, DekSourceType, EncryptedObject,
    ENCRYPTED_DEK_SOURCE_MAX_SIZE, SEED_SIZE,
};
use crate::key::SecretKey;
use client::{new_uid, Client, Runtime};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often writes ask `Status` again for a changed key_id (upstream's
/// `kmsv2PluginHealthzPositiveInterval`, 1 minute).
pub const WRITE_STATUS_INTERVAL: Duration = Duration::from_secs(60);

/// Size of the DEK a v1 write generates (`envelope.go`: `generateKey(32)`).
pub const V1_DEK_SIZE: usize = 32;

/// kube-apiserver's default plugin call timeout (`defaults.go`: 3s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// Status versions a v2 plugin may report (`KMSAPIVersionv2`, `KMSAPIVersionv2beta1`).
pub const V2_VERSIONS: [&str; 2] = ["v2", "v2beta1"];
/// The only version a v1 plugin may report (`envelope.go` `kmsapiVersion`).
pub const V1_VERSION: &str = "v1beta1";
/// `Status.healthz` of a healthy plugin.
pub const HEALTHZ_OK: &str = "ok";

/// The plugin API a provider speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApiVersion {
    /// `apiVersion: v1` (the default): service `v1beta1.KeyManagementService`.
    V1,
    /// `apiVersion: v2`: service `v2.KeyManagementService`.
    V2,
}

impl ApiVersion {
    /// The provider's API version from its config.
    pub fn of(k: &KmsConfig) -> ApiVersion {
        if k.effective_api_version() == "v2" {
            ApiVersion::V2
        } else {
            ApiVersion::V1
        }
    }
}

/// What went wrong talking to a KMS plugin. Never contains key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KmsError {
    /// The endpoint is not a unix socket URL.
    #[error("kms provider `{plugin}`: {endpoint:?} is not a KMS plugin endpoint ({detail}); use unix:///path/to/plugin.sock or unix:///@abstract-name")]
    BadEndpoint {
        /// Provider name.
        plugin: String,
        /// The endpoint given.
        endpoint: String,
        /// Why.
        detail: String,
    },
    /// The provider has no endpoint.
    #[error("kms provider `{plugin}` has no endpoint; pass --kms-endpoint {plugin}=unix:///path/to/plugin.sock")]
    NoEndpoint {
        /// Provider name.
        plugin: String,
    },
    /// The socket cannot be connected (or the connection broke).
    #[error("kms provider `{plugin}`: cannot reach the plugin at {endpoint}: {detail}; start the plugin there, or point atrest at a running one with --kms-endpoint {plugin}=unix:///path/to/plugin.sock")]
    Unreachable {
        /// Provider name.
        plugin: String,
        /// The endpoint used.
        endpoint: String,
        /// The transport's error.
        detail: String,
    },
    /// No answer within the provider's timeout.
    #[error("kms provider `{plugin}`: {method} at {endpoint} did not answer within {timeout}; check the plugin, or raise the provider's `timeout` in the config")]
    Timeout {
        /// Provider name.
        plugin: String,
        /// The endpoint used.
        endpoint: String,
        /// The gRPC method.
        method: &'static str,
        /// The timeout, e.g. `3s`.
        timeout: String,
    },
    /// The plugin answered a call with an error.
    #[error(
        "kms provider `{plugin}`: the plugin at {endpoint} refused {method}: {code}: {message}"
    )]
    Refused {
        /// Provider name.
        plugin: String,
        /// The endpoint used.
        endpoint: String,
        /// The gRPC method.
        method: &'static str,
        /// The gRPC status code.
        code: String,
        /// The plugin's message.
        message: String,
    },
    /// `Status`/`Version` answered, but the plugin is not usable.
    #[error("kms provider `{plugin}`: the plugin at {endpoint} is not usable: {detail}")]
    Unhealthy {
        /// Provider name.
        plugin: String,
        /// The endpoint used.
        endpoint: String,
        /// What it reported.
        detail: String,
    },
    /// `Decrypt` returned something that is not a usable key.
    #[error(
        "kms provider `{plugin}`: the plugin at {endpoint} returned an unusable key: {detail}"
    )]
    BadKey {
        /// Provider name.
        plugin: String,
        /// The endpoint used.
        endpoint: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A write through the plugin is impossible: `Encrypt` failed or answered
    /// something kube-apiserver would not write with, or the RNG failed.
    #[error("kms provider `{plugin}`: cannot write through the plugin at {endpoint}: {detail}; nothing is written with it: check that the plugin's current key is enabled for Encrypt")]
    CannotWrite {
        /// Provider name.
        plugin: String,
        /// The endpoint used.
        endpoint: String,
        /// What went wrong.
        detail: String,
    },
    /// `--kms-endpoint` names a provider the config does not have.
    #[error("--kms-endpoint {name}=...: the config has no kms provider named `{name}` (it has: {known})")]
    UnknownOverride {
        /// The name given.
        name: String,
        /// The config's kms provider names.
        known: String,
    },
    /// `--kms-endpoint` without `NAME=`.
    #[error("--kms-endpoint {0:?}: expected NAME=ENDPOINT, e.g. vault=unix:///run/kms/vault.sock")]
    BadOverride(String),
    /// The runtime for plugin calls could not be started.
    #[error("cannot start the KMS client runtime: {0}")]
    Runtime(String),
}

impl KmsError {
    /// Whether this error means the plugin as a whole is unusable, so that a
    /// command must stop instead of reporting objects as undecryptable.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, KmsError::Refused { .. } | KmsError::BadKey { .. })
    }
}

/// What the plugin said about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginStatus {
    /// `v2`, `v2beta1` or `v1beta1`.
    pub version: String,
    /// v2: the key ID new writes use (empty for v1).
    pub key_id: String,
}

type Slot = Arc<OnceLock<Result<Arc<DataKey>, KmsError>>>;

/// Identifies a [`Plugin`] in the per-thread cache below.
static NEXT_PLUGIN_ID: AtomicU64 = AtomicU64::new(1);

/// The data key a thread used last, with the cache key it answers to. A run
/// reads long stretches of objects under one DEK source: a hit here costs one
/// comparison of the cache key's bytes, with no lock, no hashing and no
/// reference count shared between threads. Scan workers end with the scan,
/// which drops their entry; a plugin dropped on the thread holding an entry
/// clears it.
struct LastKey {
    plugin: u64,
    cache_key: Vec<u8>,
    key: Arc<DataKey>,
}

thread_local! {
    static LAST_KEY: RefCell<Option<LastKey>> = const { RefCell::new(None) };
}

/// The seed v2 values are written with, and what goes into every value with it.
struct WriteSeed {
    seed: SecretKey,
    encrypted: Vec<u8>,
    key_id: Vec<u8>,
    annotations: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// The write state of a v2 plugin: the seed, and when `Status` was last asked.
struct WriteState {
    seed: Option<Arc<WriteSeed>>,
    checked: Option<(Instant, String)>,
    /// A failure to create the seed stops every write of the run.
    failed: Option<KmsError>,
}

/// One configured KMS provider and its plugin connection.
pub struct Plugin {
    id: u64,
    name: String,
    api: ApiVersion,
    client: Client,
    status: OnceLock<Result<PluginStatus, KmsError>>,
    keys: Mutex<HashMap<Vec<u8>, Slot>>,
    decrypt_calls: AtomicU64,
    encrypt_calls: AtomicU64,
    write: Mutex<WriteState>,
    write_interval: Mutex<Duration>,
    failure: Arc<Mutex<Option<KmsError>>>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("api", &self.api)
            .field("endpoint", &self.client.endpoint())
            .finish_non_exhaustive()
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        // This thread's last key, if it is one of this plugin's.
        let _ = LAST_KEY.try_with(|last| {
            if let Ok(mut last) = last.try_borrow_mut() {
                if last.as_ref().is_some_and(|l| l.plugin == self.id) {
                    *last = None;
                }
            }
        });
    }
}

impl Plugin {
    /// The provider name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugin API.
    pub fn api(&self) -> ApiVersion {
        self.api
    }

    /// The endpoint in use.
    pub fn endpoint(&self) -> &str {
        self.client.endpoint()
    }

    /// How many `Decrypt` calls were made (each distinct DEK source once).
    pub fn decrypt_calls(&self) -> u64 {
        self.decrypt_calls.load(Ordering::Relaxed)
    }

    /// The plugin's status, asked once per run (`Status` for v2, `Version` for v1).
    pub fn status(&self) -> Result<&PluginStatus, KmsError> {
        self.status
            .get_or_init(|| self.fetch_status())
            .as_ref()
            .map_err(|e| self.record(e.clone()))
    }

    fn unhealthy(&self, detail: String) -> KmsError {
        KmsError::Unhealthy {
            plugin: self.name.clone(),
            endpoint: self.client.endpoint().to_string(),
            detail,
        }
    }

    fn fetch_status(&self) -> Result<PluginStatus, KmsError> {
        // A plugin that refuses Status is unusable as a whole, not per object.
        self.fetch_status_once().map_err(|e| match e {
            KmsError::Refused { code, message, .. } => {
                self.unhealthy(format!("Status failed: {code}: {message}"))
            }
            e => e,
        })
    }

    fn fetch_status_once(&self) -> Result<PluginStatus, KmsError> {
        match self.api {
            ApiVersion::V2 => {
                let s: proto::StatusResponse =
                    self.client
                        .call("Status", proto::path::V2_STATUS, proto::StatusRequest {})?;
                if !V2_VERSIONS.contains(&s.version.as_str()) {
                    return Err(self.unhealthy(format!(
                        "it speaks KMS API {:?}, expected v2 or v2beta1 (is it a v1 plugin? then the provider needs apiVersion: v1)",
                        s.version
                    )));
                }
                if s.healthz != HEALTHZ_OK {
                    return Err(
                        self.unhealthy(format!("Status healthz is {:?}, not \"ok\"", s.healthz))
                    );
                }
                validate_key_id(s.key_id.as_bytes())
                    .map_err(|e| self.unhealthy(format!("Status key_id: {e}")))?;
                Ok(PluginStatus {
                    version: s.version,
                    key_id: s.key_id,
                })
            }
            ApiVersion::V1 => {
                let v: proto::VersionResponse = self.client.call(
                    "Version",
                    proto::path::V1_VERSION,
                    proto::VersionRequest {
                        version: V1_VERSION.into(),
                    },
                )?;
                if v.version != V1_VERSION {
                    return Err(self.unhealthy(format!(
                        "KMS provider api version {} is not supported, only {V1_VERSION} is supported now",
                        v.version
                    )));
                }
                Ok(PluginStatus {
                    version: v.version,
                    key_id: String::new(),
                })
            }
        }
    }

    /// Remember the first fatal error for [`Plugins::failure`].
    fn record(&self, e: KmsError) -> KmsError {
        if e.is_fatal() {
            if let Ok(mut f) = self.failure.lock() {
                if f.is_none() {
                    *f = Some(e.clone());
                }
            }
        }
        e
    }

    fn cached(
        &self,
        cache_key: &[u8],
        fetch: impl FnOnce() -> Result<Arc<DataKey>, KmsError>,
    ) -> Result<Arc<DataKey>, KmsError> {
        let slot: Slot = match self.keys.lock() {
            Ok(mut map) => match map.get(cache_key) {
                Some(slot) => Arc::clone(slot),
                None => Arc::clone(map.entry(cache_key.to_vec()).or_default()),
            },
            // A poisoned lock only loses the cache: ask the plugin again.
            Err(_) => Arc::new(OnceLock::new()),
        };
        slot.get_or_init(fetch).clone().map_err(|e| self.record(e))
    }

    /// Run `f` with the data key of `cache_key` (`is_key` compares a cache key
    /// with it): this thread's last key when it matches, else the run's cache,
    /// else one `Decrypt` (`fetch`).
    fn with_key<R>(
        &self,
        is_key: impl Fn(&[u8]) -> bool,
        cache_key: impl FnOnce() -> Vec<u8>,
        fetch: impl FnOnce() -> Result<Arc<DataKey>, KmsError>,
        f: impl FnOnce(&DataKey) -> R,
    ) -> Result<R, KmsError> {
        let hit = LAST_KEY.with_borrow(|last| match last {
            Some(l) if l.plugin == self.id && is_key(&l.cache_key) => Ok(f(&l.key)),
            _ => Err(f),
        });
        let f = match hit {
            Ok(r) => return Ok(r),
            Err(f) => f,
        };
        let cache_key = cache_key();
        let key = self.cached(&cache_key, fetch)?;
        let r = f(&key);
        LAST_KEY.with_borrow_mut(|last| {
            *last = Some(LastKey {
                plugin: self.id,
                cache_key,
                key,
            })
        });
        Ok(r)
    }

    fn bad_key(&self, detail: String) -> KmsError {
        KmsError::BadKey {
            plugin: self.name.clone(),
            endpoint: self.client.endpoint().to_string(),
            detail,
        }
    }

    /// The data key of a v2 object: from the cache, or one `Decrypt` call.
    pub fn data_key_v2(&self, obj: &EncryptedObject<'_>) -> Result<Arc<DataKey>, KmsError> {
        self.status()?;
        self.cached(&obj.cache_key(), || self.fetch_v2(obj))
    }

    /// Run `f` with the data key of a v2 object (as [`Plugin::data_key_v2`],
    /// without a lock or a shared reference count when this thread used the
    /// same key last: the per-object path of a scan).
    pub fn with_data_key_v2<R>(
        &self,
        obj: &EncryptedObject<'_>,
        f: impl FnOnce(&DataKey) -> R,
    ) -> Result<R, KmsError> {
        self.status()?;
        self.with_key(
            |k| obj.cache_key_eq(k),
            || obj.cache_key(),
            || self.fetch_v2(obj),
            f,
        )
    }

    /// One v2 `Decrypt` of the object's DEK source.
    fn fetch_v2(&self, obj: &EncryptedObject<'_>) -> Result<Arc<DataKey>, KmsError> {
        self.decrypt_calls.fetch_add(1, Ordering::Relaxed);
        let req = proto::DecryptRequest {
            ciphertext: obj.encrypted_dek_source.to_vec(),
            uid: new_uid(),
            key_id: obj.key_id.to_vec(),
            annotations: obj
                .annotations
                .iter()
                .map(|(k, v)| proto::BytesEntry {
                    key: k.to_vec(),
                    value: v.to_vec(),
                })
                .collect(),
        };
        let resp: proto::DecryptResponse =
            self.client.call("Decrypt", proto::path::V2_DECRYPT, req)?;
        let plain = SecretKey::new(resp.plaintext);
        DataKey::v2(obj.source_type, plain)
            .map(Arc::new)
            .map_err(|e| self.bad_key(e.to_string()))
    }

    /// The data key of a v1 value's encrypted DEK: from the cache, or one `Decrypt`.
    pub fn data_key_v1(&self, encrypted_dek: &[u8]) -> Result<Arc<DataKey>, KmsError> {
        self.status()?;
        self.cached(encrypted_dek, || self.fetch_v1(encrypted_dek))
    }

    /// Run `f` with the data key of a v1 value's encrypted DEK (as
    /// [`Plugin::with_data_key_v2`]).
    pub fn with_data_key_v1<R>(
        &self,
        encrypted_dek: &[u8],
        f: impl FnOnce(&DataKey) -> R,
    ) -> Result<R, KmsError> {
        self.status()?;
        self.with_key(
            |k| k == encrypted_dek,
            || encrypted_dek.to_vec(),
            || self.fetch_v1(encrypted_dek),
            f,
        )
    }

    /// One v1 `Decrypt` of an encrypted DEK.
    fn fetch_v1(&self, encrypted_dek: &[u8]) -> Result<Arc<DataKey>, KmsError> {
        self.decrypt_calls.fetch_add(1, Ordering::Relaxed);
        let req = proto::V1DecryptRequest {
            version: V1_VERSION.into(),
            cipher: encrypted_dek.to_vec(),
        };
        let resp: proto::V1DecryptResponse =
            self.client.call("Decrypt", proto::path::V1_DECRYPT, req)?;
        DataKey::v1(SecretKey::new(resp.plain))
            .map(Arc::new)
            .map_err(|e| self.bad_key(e.to_string()))
    }

    /// v2 `Encrypt`: wrap a new DEK or seed under the plugin's current KEK.
    pub fn encrypt_v2(&self, plaintext: &SecretKey) -> Result<proto::EncryptResponse, KmsError> {
        self.status()?;
        let req = proto::EncryptRequest {
            plaintext: plaintext.expose().to_vec(),
            uid: new_uid(),
        };
        let resp: proto::EncryptResponse = self
            .client
            .call("Encrypt", proto::path::V2_ENCRYPT, req)
            .map_err(|e| self.record(e))?;
        Ok(resp)
    }

    /// v1 `Encrypt`: wrap a DEK.
    pub fn encrypt_v1(&self, plaintext: &SecretKey) -> Result<Vec<u8>, KmsError> {
        self.status()?;
        let req = proto::V1EncryptRequest {
            version: V1_VERSION.into(),
            plain: plaintext.expose().to_vec(),
        };
        let resp: proto::V1EncryptResponse = self
            .client
            .call("Encrypt", proto::path::V1_ENCRYPT, req)
            .map_err(|e| self.record(e))?;
        Ok(resp.cipher)
    }

    /// How many `Encrypt` calls writes made (v2: one per seed; v1: one per value).
    pub fn encrypt_calls(&self) -> u64 {
        self.encrypt_calls.load(Ordering::Relaxed)
    }

    /// How often v2 writes ask `Status` again for a changed key_id (default
    /// [`WRITE_STATUS_INTERVAL`]; zero asks before every write).
    pub fn set_write_status_interval(&self, every: Duration) {
        if let Ok(mut d) = self.write_interval.lock() {
            *d = every;
        }
    }

    fn cannot_write(&self, detail: String) -> KmsError {
        self.record(KmsError::CannotWrite {
            plugin: self.name.clone(),
            endpoint: self.client.endpoint().to_string(),
            detail,
        })
    }

    /// Encrypt `plaintext` as kube-apiserver stores it at `etcd_key` with this
    /// provider: the payload after the `k8s:enc:kms:v{1,2}:<name>:` prefix.
    pub fn seal(&self, plaintext: &[u8], etcd_key: &[u8]) -> Result<Vec<u8>, KmsError> {
        match self.api {
            ApiVersion::V2 => self.seal_v2(plaintext, etcd_key),
            ApiVersion::V1 => self.seal_v1(plaintext, etcd_key),
        }
    }

    /// Make sure a write can happen (v2: the seed exists, `Encrypt`ed by the
    /// plugin; v1: the plugin answers `Version`), before anything is written.
    pub fn prepare_write(&self) -> Result<(), KmsError> {
        match self.api {
            ApiVersion::V2 => self.write_seed().map(|_| ()),
            ApiVersion::V1 => self.status().map(|_| ()),
        }
    }

    /// The key_id `Status` reports now: asked again once the interval has passed.
    fn write_key_id(&self, st: &mut WriteState) -> Result<String, KmsError> {
        let every = self
            .write_interval
            .lock()
            .map(|d| *d)
            .unwrap_or(WRITE_STATUS_INTERVAL);
        if let Some((at, id)) = &st.checked {
            if at.elapsed() < every {
                return Ok(id.clone());
            }
        }
        let id = match &st.checked {
            // The first time, the run's Status (asked once) is the answer.
            None => self.status()?.key_id.clone(),
            Some(_) => self.fetch_status().map_err(|e| self.record(e))?.key_id,
        };
        st.checked = Some((Instant::now(), id.clone()));
        Ok(id)
    }

    /// The seed writes use: created on the first write, renewed when the
    /// plugin's key_id changes (`rotateDEKOnKeyIDChange`).
    fn write_seed(&self) -> Result<Arc<WriteSeed>, KmsError> {
        let mut st = self
            .write
            .lock()
            .map_err(|_| self.cannot_write("a writer thread panicked".into()))?;
        if let Some(e) = &st.failed {
            return Err(e.clone());
        }
        let status_key_id = self.write_key_id(&mut st)?;
        if let Some(s) = &st.seed {
            if s.key_id == status_key_id.as_bytes() {
                return Ok(Arc::clone(s));
            }
        }
        match self.new_seed(&status_key_id) {
            Ok(s) => {
                let s = Arc::new(s);
                st.seed = Some(Arc::clone(&s));
                Ok(s)
            }
            Err(e) => {
                st.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// `GenerateTransformer` with a seed: a random 32-byte seed, `Encrypt`ed by the
    /// plugin; the answer checked as upstream checks it before writing with it.
    fn new_seed(&self, status_key_id: &str) -> Result<WriteSeed, KmsError> {
        let seed = SecretKey::generate(SEED_SIZE)
            .map_err(|e| self.cannot_write(format!("the system RNG failed: {e}")))?;
        self.encrypt_calls.fetch_add(1, Ordering::Relaxed);
        let resp = self.encrypt_v2(&seed).map_err(|e| match e {
            KmsError::Refused { code, message, .. } => {
                self.cannot_write(format!("Encrypt failed: {code}: {message}"))
            }
            e => e,
        })?;
        let annotations: BTreeMap<Vec<u8>, Vec<u8>> = resp
            .annotations
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect();
        let invalid = |what: &str, e: String| {
            self.cannot_write(format!("the Encrypt answer has an invalid {what}: {e}"))
        };
        if resp.ciphertext.is_empty() || resp.ciphertext.len() > ENCRYPTED_DEK_SOURCE_MAX_SIZE {
            return Err(invalid(
                "ciphertext",
                format!(
                    "{} bytes, upstream accepts 1 to {ENCRYPTED_DEK_SOURCE_MAX_SIZE}",
                    resp.ciphertext.len()
                ),
            ));
        }
        validate_key_id(resp.key_id.as_bytes()).map_err(|e| invalid("key ID", e.to_string()))?;
        validate_annotations(
            annotations
                .iter()
                .map(|(k, v)| (k.as_slice(), v.as_slice())),
        )
        .map_err(|e| invalid("annotation", e.to_string()))?;
        if resp.key_id != status_key_id {
            return Err(self.cannot_write(format!(
                "Encrypt used key ID {:?} but Status reports {status_key_id:?} (kube-apiserver refuses to write then); retry once the plugin has settled on one key",
                resp.key_id
            )));
        }
        Ok(WriteSeed {
            seed,
            encrypted: resp.ciphertext,
            key_id: resp.key_id.into_bytes(),
            annotations,
        })
    }

    fn seal_v2(&self, plaintext: &[u8], etcd_key: &[u8]) -> Result<Vec<u8>, KmsError> {
        let s = self.write_seed()?;
        let data = DataKey::seal_with_seed(&s.seed, plaintext, etcd_key)
            .map_err(|e| self.cannot_write(format!("the system RNG failed: {e}")))?;
        Ok(encode_v2(
            &data,
            &s.key_id,
            &s.encrypted,
            &s.annotations,
            DekSourceType::HkdfSha256XNonceAesGcmSeed,
        ))
    }

    fn seal_v1(&self, plaintext: &[u8], etcd_key: &[u8]) -> Result<Vec<u8>, KmsError> {
        let dek = SecretKey::generate(V1_DEK_SIZE)
            .map_err(|e| self.cannot_write(format!("the system RNG failed: {e}")))?;
        self.encrypt_calls.fetch_add(1, Ordering::Relaxed);
        let wrapped = self.encrypt_v1(&dek).map_err(|e| match e {
            KmsError::Refused { code, message, .. } => {
                self.cannot_write(format!("Encrypt failed: {code}: {message}"))
            }
            e => e,
        })?;
        let len = u16::try_from(wrapped.len()).map_err(|_| {
            self.cannot_write(format!(
                "the encrypted DEK is {} bytes, more than the 65535 a value can hold",
                wrapped.len()
            ))
        })?;
        let gcm = AesGcm::new(&dek).map_err(|e| self.cannot_write(e.to_string()))?;
        let mut out = Vec::with_capacity(2 + wrapped.len() + AesGcm::sealed_len(plaintext.len()));
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&wrapped);
        gcm.seal_into(plaintext, etcd_key, &mut out)
            .map_err(|e| self.cannot_write(format!("the system RNG failed: {e}")))?;
        Ok(out)
    }
}

/// The KMS plugins of one config, for one run.
pub struct Plugins {
    plugins: Vec<Arc<Plugin>>,
    failure: Arc<Mutex<Option<KmsError>>>,
    _rt: Arc<Runtime>,
}

impl std::fmt::Debug for Plugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.plugins.iter()).finish()
    }
}

/// Parse one `--kms-endpoint NAME=ENDPOINT`.
pub fn parse_override(s: &str) -> Result<(String, String), KmsError> {
    match s.split_once('=') {
        Some((n, e)) if !n.is_empty() && !e.is_empty() => Ok((n.to_string(), e.to_string())),
        _ => Err(KmsError::BadOverride(s.to_string())),
    }
}

impl Plugins {
    /// Clients for every kms provider of `config` (connected lazily), with
    /// `overrides` (`NAME=ENDPOINT`) replacing configured endpoints. `None` when
    /// the config has no kms provider.
    pub fn from_config(
        config: &EncryptionConfiguration,
        overrides: &[String],
    ) -> Result<Option<Plugins>, KmsError> {
        let mut kms: Vec<&KmsConfig> = Vec::new();
        for item in &config.resources {
            for p in &item.providers {
                if let ProviderConfig::Kms(k) = p {
                    if !kms
                        .iter()
                        .any(|o| o.name == k.name && ApiVersion::of(o) == ApiVersion::of(k))
                    {
                        kms.push(k);
                    }
                }
            }
        }
        let mut endpoints: HashMap<String, String> = HashMap::new();
        for o in overrides {
            let (name, ep) = parse_override(o)?;
            if !kms.iter().any(|k| k.name == name) {
                let mut known: Vec<&str> = kms.iter().map(|k| k.name.as_str()).collect();
                known.dedup();
                return Err(KmsError::UnknownOverride {
                    name,
                    known: if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    },
                });
            }
            endpoints.insert(name, ep);
        }
        if kms.is_empty() {
            return Ok(None);
        }
        let rt = Arc::new(Runtime::new().map_err(|e| KmsError::Runtime(e.to_string()))?);
        let failure = Arc::new(Mutex::new(None));
        let mut plugins = Vec::with_capacity(kms.len());
        for k in kms {
            let endpoint = match endpoints.get(&k.name).or(k.endpoint.as_ref()) {
                Some(e) if !e.is_empty() => e.clone(),
                _ => {
                    return Err(KmsError::NoEndpoint {
                        plugin: k.name.clone(),
                    })
                }
            };
            let timeout = k
                .timeout
                .as_deref()
                .and_then(|t| crate::config::parse_go_duration(t).ok())
                .filter(|ns| *ns > 0)
                .and_then(|ns| u64::try_from(ns).ok())
                .map(Duration::from_nanos)
                .unwrap_or(DEFAULT_TIMEOUT);
            let client = Client::new(&k.name, &endpoint, timeout, Arc::clone(&rt))?;
            plugins.push(Arc::new(Plugin {
                id: NEXT_PLUGIN_ID.fetch_add(1, Ordering::Relaxed),
                name: k.name.clone(),
                api: ApiVersion::of(k),
                client,
                status: OnceLock::new(),
                keys: Mutex::new(HashMap::new()),
                decrypt_calls: AtomicU64::new(0),
                encrypt_calls: AtomicU64::new(0),
                write: Mutex::new(WriteState {
                    seed: None,
                    checked: None,
                    failed: None,
                }),
                write_interval: Mutex::new(WRITE_STATUS_INTERVAL),
                failure: Arc::clone(&failure),
            }));
        }
        Ok(Some(Plugins {
            plugins,
            failure,
            _rt: rt,
        }))
    }

    /// The plugin of the provider `name` speaking `api`.
    pub fn get(&self, api: ApiVersion, name: &str) -> Option<Arc<Plugin>> {
        self.plugins
            .iter()
            .find(|p| p.api == api && p.name == name)
            .cloned()
    }

    /// Every plugin.
    pub fn all(&self) -> &[Arc<Plugin>] {
        &self.plugins
    }

    /// Ask every plugin for its status now, so that a missing plugin stops a
    /// command before it prints anything.
    pub fn check(&self) -> Result<(), KmsError> {
        for p in &self.plugins {
            p.status()?;
        }
        Ok(())
    }

    /// The first fatal error any plugin call met during the run.
    pub fn failure(&self) -> Option<KmsError> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    /// Make every plugin that is a resource's write provider in `config` ready
    /// to write (see [`Plugin::prepare_write`]), so that a plugin that cannot
    /// write stops a command before anything is written.
    pub fn prepare_writes(&self, config: &EncryptionConfiguration) -> Result<(), KmsError> {
        for item in &config.resources {
            if let Some(ProviderConfig::Kms(k)) = item.providers.first() {
                if let Some(p) = self.get(ApiVersion::of(k), &k.name) {
                    p.prepare_write()?;
                }
            }
        }
        Ok(())
    }

    /// `Encrypt` calls writes made so far, over all plugins.
    pub fn encrypt_calls(&self) -> u64 {
        self.plugins.iter().map(|p| p.encrypt_calls()).sum()
    }

    /// `Decrypt` calls made so far, over all plugins.
    pub fn decrypt_calls(&self) -> u64 {
        self.plugins.iter().map(|p| p.decrypt_calls()).sum()
    }
}

//! Strict decoding of YAML/JSON into the model.
//!
//! The raw types mirror the Go structs of upstream
//! `staging/src/k8s.io/apiserver/pkg/apis/apiserver/v1/types_encryption.go` (one optional
//! field per provider kind). Upstream decodes strictly (`serializer.EnableStrict` in
//! `pkg/server/options/encryptionconfig/config.go`), so unknown and repeated fields are errors
//! here too. Missing scalars and `null` lists become empty values, as in Go, and are then
//! reported by validation rather than by the parser.

use super::model::{
    EncryptionConfiguration, KeyConfig, KeysConfig, KmsConfig, ProviderConfig, ResourceConfig,
    API_VERSION, KIND, LEGACY_API_VERSION, LEGACY_KIND,
};
use super::{ConfigError, ConfigFormat};
use crate::key::SecretKey;
use serde::Deserialize;
use zeroize::Zeroizing;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(rename = "apiVersion", default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    resources: Option<Vec<RawResource>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResource {
    #[serde(default)]
    resources: Option<Vec<String>>,
    #[serde(default)]
    providers: Option<Vec<RawProvider>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    #[serde(default)]
    aesgcm: Option<RawKeys>,
    #[serde(default)]
    aescbc: Option<RawKeys>,
    #[serde(default)]
    secretbox: Option<RawKeys>,
    #[serde(default)]
    identity: Option<RawIdentity>,
    #[serde(default)]
    kms: Option<RawKms>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeys {
    #[serde(default)]
    keys: Option<Vec<RawKey>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    secret: Option<RawSecret>,
}

/// The base64 text of a key, wiped on drop.
struct RawSecret(Zeroizing<String>);

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = RawSecret;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawSecret, E> {
                Ok(RawSecret(Zeroizing::new(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<RawSecret, E> {
                Ok(RawSecret(Zeroizing::new(v)))
            }
        }
        d.deserialize_str(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKms {
    #[serde(rename = "apiVersion", default)]
    api_version: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default, deserialize_with = "go_int32")]
    cachesize: Option<i32>,
    #[serde(default)]
    timeout: Option<String>,
}

/// An `int32` field as Go decodes it from JSON: a number, never a string.
/// (`null` or a missing field is `None`, as a nil `*int32`.)
fn go_int32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<i32>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an int32 number")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            i32::try_from(v)
                .map(Some)
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            i32::try_from(v)
                .map(Some)
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: serde::Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }
    }
    d.deserialize_any(V)
}

pub(super) fn from_yaml_str(text: &str) -> Result<EncryptionConfiguration, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(ConfigError::Empty);
    }
    let text = first_document(text);
    // kube-apiserver converts YAML to JSON before decoding (sigs.k8s.io/yaml
    // `YAMLToJSON`, with YAML 1.1 scalars): a plain `1`, `1.5` or `yes` is then a
    // number or bool, which a string field refuses. `no_schema` refuses them too.
    let options = serde_saphyr::options! { no_schema: true };
    let raw: RawConfig = serde_saphyr::from_str_with_options(text, options).map_err(yaml_error)?;
    convert(raw)
}

/// The first YAML document of `text`: kube-apiserver reads no further (sigs.k8s.io/yaml
/// `Unmarshal`, go-yaml v2, parses one document). The document ends before a second
/// `---` marker line, or at a `...` line, once a marker or content has been seen.
fn first_document(text: &str) -> &str {
    let mut started = false;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        let is_marker = |m: &str| {
            bare.strip_prefix(m)
                .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']))
        };
        if is_marker("---") || is_marker("...") {
            if started {
                return &text[..offset];
            }
            started = is_marker("---");
        } else {
            let t = bare.trim_start();
            let directive = !started && bare.starts_with('%');
            if !(t.is_empty() || t.starts_with('#') || directive) {
                started = true;
            }
        }
        offset += line.len();
    }
    text
}

pub(super) fn from_json_str(text: &str) -> Result<EncryptionConfiguration, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(ConfigError::Empty);
    }
    let raw: RawConfig = serde_json::from_str(text).map_err(|e| ConfigError::Json {
        line: e.line(),
        column: e.column(),
        message: redact_literals(&strip_json_position(&e.to_string())),
    })?;
    convert(raw)
}

pub(super) fn from_slice(
    bytes: &[u8],
) -> Result<(EncryptionConfiguration, ConfigFormat), ConfigError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ConfigError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    if body.trim_start().starts_with('{') {
        Ok((from_json_str(body)?, ConfigFormat::Json))
    } else {
        Ok((from_yaml_str(body)?, ConfigFormat::Yaml))
    }
}

fn yaml_error(e: serde_saphyr::Error) -> ConfigError {
    // Never render the snippet: it quotes source lines, which may hold secrets.
    let plain = e.without_snippet();
    let loc = plain.location();
    let mut message = plain.to_string();
    if let Some(l) = loc {
        let suffix = format!(" at line {}, column {}", l.line(), l.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_string();
        }
    }
    ConfigError::Yaml {
        line: loc.map(|l| l.line()),
        column: loc.map(|l| l.column()),
        message: redact_literals(&message),
    }
}

fn strip_json_position(msg: &str) -> String {
    // serde_json appends " at line L column C"; we report those as fields.
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Longest quoted literal a parser message may repeat verbatim. Field names are shorter;
/// base64 of even a 16-byte key is 24 characters, so a misplaced secret is always hidden.
const MAX_SHOWN_LITERAL: usize = 20;

/// Replace long `"..."` and `` `...` `` literals in a parser message with `<redacted>`: a
/// malformed line (`secret:abc` without a space) makes the parser quote the value.
pub(super) fn redact_literals(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(start) = rest.find(['"', '`']) {
        let (before, from_quote) = rest.split_at(start);
        out.push_str(before);
        let quote = from_quote.chars().next().unwrap_or('"');
        let after = &from_quote[quote.len_utf8()..];
        match after.find(quote) {
            Some(end) => {
                let literal = &after[..end];
                out.push(quote);
                if literal.chars().count() > MAX_SHOWN_LITERAL {
                    out.push_str("<redacted>");
                } else {
                    out.push_str(literal);
                }
                out.push(quote);
                rest = &after[end + quote.len_utf8()..];
            }
            None => {
                // Unbalanced quote: hide everything after it.
                out.push(quote);
                if after.chars().count() > MAX_SHOWN_LITERAL {
                    out.push_str("<redacted>");
                } else {
                    out.push_str(after);
                }
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn convert(raw: RawConfig) -> Result<EncryptionConfiguration, ConfigError> {
    let api_version = raw.api_version.unwrap_or_default();
    let kind = raw.kind.unwrap_or_default();
    let accepted = (api_version == API_VERSION && kind == KIND)
        || (api_version == LEGACY_API_VERSION && kind == LEGACY_KIND);
    if !accepted {
        return Err(ConfigError::UnsupportedKind { api_version, kind });
    }

    let mut resources = Vec::new();
    for (i, item) in raw.resources.unwrap_or_default().into_iter().enumerate() {
        let mut providers = Vec::new();
        for (j, p) in item.providers.unwrap_or_default().into_iter().enumerate() {
            providers.push(convert_provider(
                p,
                &format!("resources[{i}].providers[{j}]"),
            )?);
        }
        resources.push(ResourceConfig {
            resources: item.resources.unwrap_or_default(),
            providers,
        });
    }
    Ok(EncryptionConfiguration {
        api_version,
        kind,
        resources,
    })
}

fn convert_provider(p: RawProvider, path: &str) -> Result<ProviderConfig, ConfigError> {
    // Order as in upstream's message: KMS, AESGCM, AESCBC, Secretbox, Identity.
    let mut found = Vec::new();
    if p.kms.is_some() {
        found.push("kms");
    }
    if p.aesgcm.is_some() {
        found.push("aesgcm");
    }
    if p.aescbc.is_some() {
        found.push("aescbc");
    }
    if p.secretbox.is_some() {
        found.push("secretbox");
    }
    if p.identity.is_some() {
        found.push("identity");
    }
    if found.len() > 1 {
        return Err(ConfigError::MultipleProviders {
            path: path.to_string(),
            found,
        });
    }
    if let Some(k) = p.kms {
        return Ok(ProviderConfig::Kms(KmsConfig {
            api_version: k.api_version,
            name: k.name.unwrap_or_default(),
            endpoint: k.endpoint,
            cachesize: k.cachesize,
            timeout: k.timeout,
        }));
    }
    if let Some(k) = p.aesgcm {
        return Ok(ProviderConfig::AesGcm(convert_keys(k, path, "aesgcm")?));
    }
    if let Some(k) = p.aescbc {
        return Ok(ProviderConfig::AesCbc(convert_keys(k, path, "aescbc")?));
    }
    if let Some(k) = p.secretbox {
        return Ok(ProviderConfig::Secretbox(convert_keys(
            k,
            path,
            "secretbox",
        )?));
    }
    if p.identity.is_some() {
        return Ok(ProviderConfig::Identity);
    }
    Err(ConfigError::NoProvider {
        path: path.to_string(),
    })
}

fn convert_keys(raw: RawKeys, path: &str, kind: &str) -> Result<KeysConfig, ConfigError> {
    let mut keys = Vec::new();
    for (k, key) in raw.keys.unwrap_or_default().into_iter().enumerate() {
        let name = key.name.unwrap_or_default();
        let text = key.secret.map(|s| s.0).unwrap_or_default();
        let secret =
            SecretKey::from_base64(&text).map_err(|reason| ConfigError::InvalidSecret {
                path: format!("{path}.{kind}.keys[{k}].secret"),
                key_name: name.clone(),
                reason,
            })?;
        keys.push(KeyConfig { name, secret });
    }
    Ok(KeysConfig { keys })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_long_literals_only() {
        assert_eq!(
            redact_literals("unknown field `foo`, expected `name`"),
            "unknown field `foo`, expected `name`"
        );
        assert_eq!(
            redact_literals("invalid type: string \"c2VjcmV0c2VjcmV0c2VjcmV0\", expected x"),
            "invalid type: string \"<redacted>\", expected x"
        );
        assert_eq!(
            redact_literals("dangling \"c2VjcmV0c2VjcmV0c2VjcmV0"),
            "dangling \"<redacted>"
        );
    }

    #[test]
    fn json_position_is_stripped() {
        assert_eq!(strip_json_position("oops at line 3 column 4"), "oops");
    }
}

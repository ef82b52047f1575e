//! Writing a configuration back in the Kubernetes form.
//!
//! Field order follows upstream `types_encryption.go` as it appears in the documentation:
//! `apiVersion, kind, resources`, then per item `resources, providers`, and for kms
//! `apiVersion, name, endpoint, cachesize, timeout`. Output is built in zeroizing buffers
//! reserved up front, so the key text is not left behind in reallocated memory.

use super::model::{EncryptionConfiguration, KeysConfig, KmsConfig, ProviderConfig};
use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};
use std::fmt::Write as _;
use zeroize::Zeroizing;

impl EncryptionConfiguration {
    /// The configuration as YAML, keys included (hence the zeroizing string).
    pub fn to_yaml(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(self.size_hint()));
        // Writing to a String cannot fail.
        let _ = self.write_yaml(&mut out);
        out
    }

    /// The configuration as indented JSON, keys included (hence the zeroizing string).
    pub fn to_json(&self) -> Zeroizing<String> {
        let mut buf = Zeroizing::new(Vec::with_capacity(self.size_hint() * 2));
        // Serializing these types into a Vec cannot fail: every map key is a string.
        let _ = serde_json::to_writer_pretty(&mut *buf, &ConfigSer(self));
        buf.push(b'\n');
        // serde_json writes UTF-8 only; move the bytes without copying them.
        match String::from_utf8(std::mem::take(&mut *buf)) {
            Ok(s) => Zeroizing::new(s),
            Err(e) => {
                let mut bytes = e.into_bytes();
                zeroize::Zeroize::zeroize(&mut bytes);
                Zeroizing::new(String::new())
            }
        }
    }

    fn size_hint(&self) -> usize {
        let mut n = 128;
        for item in &self.resources {
            n += 64;
            n += item.resources.iter().map(|r| r.len() + 16).sum::<usize>();
            for p in &item.providers {
                n += 64;
                if let Some(k) = p.keys() {
                    n += k
                        .keys
                        .iter()
                        .map(|k| 64 + 2 * k.name.len() + 2 * k.secret.len() + 8)
                        .sum::<usize>();
                }
                if let ProviderConfig::Kms(k) = p {
                    n += 160 + k.name.len() + k.endpoint.as_ref().map_or(0, |e| e.len());
                }
            }
        }
        n
    }

    fn write_yaml(&self, out: &mut String) -> std::fmt::Result {
        writeln!(out, "apiVersion: {}", yaml_scalar(&self.api_version))?;
        writeln!(out, "kind: {}", yaml_scalar(&self.kind))?;
        if self.resources.is_empty() {
            return writeln!(out, "resources: []");
        }
        writeln!(out, "resources:")?;
        for item in &self.resources {
            if item.resources.is_empty() {
                writeln!(out, "  - resources: []")?;
            } else {
                writeln!(out, "  - resources:")?;
                for r in &item.resources {
                    writeln!(out, "      - {}", yaml_scalar(r))?;
                }
            }
            if item.providers.is_empty() {
                writeln!(out, "    providers: []")?;
                continue;
            }
            writeln!(out, "    providers:")?;
            for p in &item.providers {
                match p {
                    ProviderConfig::Identity => writeln!(out, "      - identity: {{}}")?,
                    ProviderConfig::Kms(k) => write_kms_yaml(out, k)?,
                    ProviderConfig::AesCbc(k)
                    | ProviderConfig::AesGcm(k)
                    | ProviderConfig::Secretbox(k) => write_keys_yaml(out, p.kind_name(), k)?,
                }
            }
        }
        Ok(())
    }
}

fn write_keys_yaml(out: &mut String, kind: &str, keys: &KeysConfig) -> std::fmt::Result {
    writeln!(out, "      - {kind}:")?;
    if keys.keys.is_empty() {
        return writeln!(out, "          keys: []");
    }
    writeln!(out, "          keys:")?;
    for k in &keys.keys {
        writeln!(out, "            - name: {}", yaml_scalar(&k.name))?;
        let b64 = k.secret.to_base64();
        out.push_str("              secret: ");
        push_yaml_scalar(out, &b64);
        out.push('\n');
    }
    Ok(())
}

fn write_kms_yaml(out: &mut String, k: &KmsConfig) -> std::fmt::Result {
    writeln!(out, "      - kms:")?;
    if let Some(v) = &k.api_version {
        writeln!(out, "          apiVersion: {}", yaml_scalar(v))?;
    }
    writeln!(out, "          name: {}", yaml_scalar(&k.name))?;
    if let Some(v) = &k.endpoint {
        writeln!(out, "          endpoint: {}", yaml_scalar(v))?;
    }
    if let Some(v) = k.cachesize {
        writeln!(out, "          cachesize: {v}")?;
    }
    if let Some(v) = &k.timeout {
        writeln!(out, "          timeout: {}", yaml_scalar(v))?;
    }
    Ok(())
}

fn yaml_scalar(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_yaml_scalar(&mut out, s);
    out
}

/// Write `s` as a YAML string scalar: plain when that is unambiguous, otherwise
/// double-quoted with JSON escapes (a JSON string is a valid YAML double-quoted scalar).
fn push_yaml_scalar(out: &mut String, s: &str) {
    if is_plain_safe(s) {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Plain scalars we emit: start with an ASCII letter, then letters, digits and `+/=_.-`,
/// and not a word YAML 1.1 readers would turn into a bool or null.
fn is_plain_safe(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if !first.is_ascii_alphabetic() {
        return false;
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || "+/=_.-".contains(c)) {
        return false;
    }
    const RESERVED: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null"];
    !RESERVED.iter().any(|w| s.eq_ignore_ascii_case(w))
}

// JSON goes through serde with the same field order as the YAML. These wrappers are
// private on purpose: a public `Serialize` would let key material flow into any serializer.

struct ConfigSer<'a>(&'a EncryptionConfiguration);

impl Serialize for ConfigSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("EncryptionConfiguration", 3)?;
        st.serialize_field("apiVersion", &self.0.api_version)?;
        st.serialize_field("kind", &self.0.kind)?;
        st.serialize_field("resources", &ItemsSer(self.0))?;
        st.end()
    }
}

struct ItemsSer<'a>(&'a EncryptionConfiguration);

impl Serialize for ItemsSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.resources.len()))?;
        for item in &self.0.resources {
            seq.serialize_element(&ItemSer(item))?;
        }
        seq.end()
    }
}

struct ItemSer<'a>(&'a super::model::ResourceConfig);

impl Serialize for ItemSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ResourceConfiguration", 2)?;
        st.serialize_field("resources", &self.0.resources)?;
        st.serialize_field("providers", &ProvidersSer(&self.0.providers))?;
        st.end()
    }
}

struct ProvidersSer<'a>(&'a [ProviderConfig]);

impl Serialize for ProvidersSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for p in self.0 {
            seq.serialize_element(&ProviderSer(p))?;
        }
        seq.end()
    }
}

struct ProviderSer<'a>(&'a ProviderConfig);

impl Serialize for ProviderSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        match self.0 {
            ProviderConfig::Identity => map.serialize_entry("identity", &EmptySer)?,
            ProviderConfig::Kms(k) => map.serialize_entry("kms", &KmsSer(k))?,
            ProviderConfig::AesCbc(k)
            | ProviderConfig::AesGcm(k)
            | ProviderConfig::Secretbox(k) => {
                map.serialize_entry(self.0.kind_name(), &KeysSer(k))?
            }
        }
        map.end()
    }
}

struct EmptySer;

impl Serialize for EmptySer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_map(Some(0))?.end()
    }
}

struct KeysSer<'a>(&'a KeysConfig);

impl Serialize for KeysSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct KeyList<'a>(&'a KeysConfig);
        impl Serialize for KeyList<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.keys.len()))?;
                for k in &self.0.keys {
                    let b64 = k.secret.to_base64();
                    seq.serialize_element(&KeySer {
                        name: &k.name,
                        secret: &b64,
                    })?;
                }
                seq.end()
            }
        }
        let mut st = s.serialize_struct("KeysConfiguration", 1)?;
        st.serialize_field("keys", &KeyList(self.0))?;
        st.end()
    }
}

#[derive(Serialize)]
struct KeySer<'a> {
    name: &'a str,
    secret: &'a str,
}

struct KmsSer<'a>(&'a KmsConfig);

impl Serialize for KmsSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let k = self.0;
        let mut map = s.serialize_map(None)?;
        if let Some(v) = &k.api_version {
            map.serialize_entry("apiVersion", v)?;
        }
        map.serialize_entry("name", &k.name)?;
        if let Some(v) = &k.endpoint {
            map.serialize_entry("endpoint", v)?;
        }
        if let Some(v) = k.cachesize {
            map.serialize_entry("cachesize", &v)?;
        }
        if let Some(v) = &k.timeout {
            map.serialize_entry("timeout", v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_are_only_unambiguous_ones() {
        assert!(is_plain_safe("secrets"));
        assert!(is_plain_safe("deployments.apps"));
        assert!(is_plain_safe("AAECAwQFBgcICQoLDA0ODw=="));
        assert!(!is_plain_safe("*.apps"));
        assert!(!is_plain_safe("*."));
        assert!(!is_plain_safe(""));
        assert!(!is_plain_safe("yes"));
        assert!(!is_plain_safe("Null"));
        assert!(!is_plain_safe("123"));
        assert!(!is_plain_safe("+abc"));
        assert!(!is_plain_safe("a:b"));
        assert!(!is_plain_safe("unix:///tmp/kms.sock"));
    }

    #[test]
    fn quoting_escapes() {
        assert_eq!(yaml_scalar("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}

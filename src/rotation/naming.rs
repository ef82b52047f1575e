//! Key names: the default `key-YYYYMMDDTHHMMSSZ` names of `prepare` (UTC, with the
//! civil-calendar arithmetic that turns a time into a date), and the age order of two
//! names as far as they tell it.
//!
//! A name is free text to kube-apiserver, but it becomes part of every value the key
//! writes (`k8s:enc:<provider>:v1:<name>:`, kubernetes
//! `staging/src/k8s.io/apiserver/pkg/server/options/encryptionconfig/config.go`), so a
//! name is never reused while the config holds it.

use super::stage::item_label;
use crate::config::{EncryptionConfiguration, ProviderConfig};
use std::time::{SystemTime, UNIX_EPOCH};

/// Prefix of the default key names, followed by a UTC timestamp.
pub const DEFAULT_KEY_PREFIX: &str = "key-";

/// Whether key name `a` is newer than `b`, as far as the names tell (module docs).
pub fn newer(a: &str, b: &str) -> Option<bool> {
    match (name_stamp(a), name_stamp(b)) {
        (Some(x), Some(y)) if x.0 != y.0 => Some(x.0 > y.0),
        (Some((_, Some(x))), Some((_, Some(y)))) if x != y => Some(x > y),
        (Some(_), Some(_)) => None,
        (Some(_), None) => Some(true),
        (None, Some(_)) => Some(false),
        (None, None) => {
            let (sa, na) = split_number(a)?;
            let (sb, nb) = split_number(b)?;
            (sa == sb && na != nb).then_some(na > nb)
        }
    }
}

/// The timestamp of a default key name `key-YYYYMMDDTHHMMSSZ` (a sortable string), and
/// its sequence number: 1 without a suffix, `N` with the `-N` that [`prepare`] adds when
/// the name is taken, `None` for any other suffix.
fn name_stamp(name: &str) -> Option<(&str, Option<u64>)> {
    let rest = name.strip_prefix(DEFAULT_KEY_PREFIX)?;
    let stamp = rest.get(..16)?;
    let b = stamp.as_bytes();
    let ok = b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z';
    if !ok {
        return None;
    }
    let seq = match &rest[16..] {
        "" => Some(1),
        suffix => suffix
            .strip_prefix('-')
            .filter(|n| !n.is_empty() && n.len() <= 18 && n.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|n| n.parse().ok()),
    };
    Some((stamp, seq))
}

fn split_number(name: &str) -> Option<(&str, u64)> {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let digits = &name[stem.len()..];
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    digits.parse().ok().map(|n| (stem, n))
}

/// `YYYYMMDDTHHMMSSZ` for a point in time (UTC).
pub fn utc_stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The default name of a key prepared at `now`.
pub fn default_key_name(now: SystemTime) -> String {
    format!("{DEFAULT_KEY_PREFIX}{}", utc_stamp(now))
}

/// Where `name` is already used as a key or KMS plugin name, if anywhere.
pub(super) fn name_user(cfg: &EncryptionConfiguration, name: &str) -> Option<String> {
    for (i, item) in cfg.resources.iter().enumerate() {
        for p in &item.providers {
            let taken = match p {
                ProviderConfig::Kms(k) => k.name == name,
                other => other
                    .keys()
                    .is_some_and(|ks| ks.keys.iter().any(|k| k.name == name)),
            };
            if taken {
                return Some(format!("{} {}", item_label(cfg, i), p.kind_name()));
            }
        }
    }
    None
}

/// The default name of a key prepared at `now` that `cfg` does not use yet:
/// `key-YYYYMMDDTHHMMSSZ`, or with `-2`, `-3`, ... when an earlier run in the same
/// second took it (names stay ordered: see [`newer`]).
pub(super) fn free_default_name(cfg: &EncryptionConfiguration, now: SystemTime) -> String {
    let base = default_key_name(now);
    let mut name = base.clone();
    let mut n = 1u64;
    while name_user(cfg, &name).is_some() {
        n += 1;
        name = format!("{base}-{n}");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn stamps_are_utc_civil_time() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_764_400_000);
        assert_eq!(utc_stamp(t), "20251129T070640Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc_stamp(leap), "20000229T000000Z");
        assert_eq!(default_key_name(t), "key-20251129T070640Z");
    }

    #[test]
    fn ages_from_names() {
        assert_eq!(newer("key2", "key1"), Some(true));
        assert_eq!(newer("key1", "key10"), Some(false));
        assert_eq!(newer("key-20251129T070640Z", "key9"), Some(true));
        assert_eq!(newer("key9", "key-20251129T070640Z"), Some(false));
        assert_eq!(
            newer("key-20251129T070640Z", "key-20251130T000000Z"),
            Some(false)
        );
        assert_eq!(newer("alpha", "beta"), None);
        assert_eq!(newer("a1", "b2"), None);
        assert_eq!(newer("key1", "key1"), None);
        let t = "key-20251129T070640Z";
        assert_eq!(newer(&format!("{t}-2"), t), Some(true));
        assert_eq!(newer(&format!("{t}-10"), &format!("{t}-2")), Some(true));
        assert_eq!(newer(t, &format!("{t}-3")), Some(false));
        assert_eq!(newer(&format!("{t}-blue"), t), None);
        assert_eq!(
            newer(&format!("{t}-2"), "key-20251129T070641Z"),
            Some(false)
        );
    }
}

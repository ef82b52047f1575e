//! The parts of Go's `net/url.Parse` that KMS endpoints go through upstream:
//! kube-apiserver validates an endpoint with it (`validateKMSEndpoint` in
//! `staging/src/k8s.io/apiserver/pkg/apis/apiserver/validation/validation_encryption.go`)
//! and dials its decoded path (`ParseEndpoint` in `staging/src/k8s.io/kms/pkg/util/util.go`).
//!
//! Only what decides acceptance and the path is implemented: control bytes,
//! the scheme, the fragment and query split, the authority (userinfo, host,
//! port) checks, and percent-decoding of the path.

/// A URL as far as KMS endpoints need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GoUrl {
    /// The scheme, lower-cased; empty when there is none.
    pub scheme: String,
    /// The decoded path (empty for an opaque URL such as `unix:name`).
    pub path: Vec<u8>,
}

/// Parse `raw` as Go's `url.Parse` does; the error reads like Go's.
pub(crate) fn parse(raw: &str) -> Result<GoUrl, String> {
    let fail = |why: String| format!("parse {raw:?}: {why}");
    let (rest, fragment) = match raw.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (raw, None),
    };
    // Go checks control bytes before the fragment only.
    if rest.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(fail("net/url: invalid control character in URL".into()));
    }
    let (scheme, rest) = split_scheme(rest).map_err(|e| fail(e.into()))?;
    // The query is kept raw by Go (not checked); only a lone trailing `?` differs.
    let rest = match rest.split_once('?') {
        Some((r, _)) => r,
        None => rest,
    };
    let mut path = Vec::new();
    if !rest.starts_with('/') && !scheme.is_empty() {
        // Opaque (`unix:name`): no path.
    } else {
        let mut p = rest;
        if !scheme.is_empty() || !rest.starts_with("///") {
            if let Some(after) = rest.strip_prefix("//") {
                let (authority, tail) = match after.find('/') {
                    Some(i) => after.split_at(i),
                    None => (after, ""),
                };
                check_authority(authority).map_err(&fail)?;
                p = tail;
            }
        }
        if scheme.is_empty() {
            if let Some(colon) = p.find(':') {
                if !p[..colon].contains('/') {
                    return Err(fail(
                        "first path segment in URL cannot contain colon".into(),
                    ));
                }
            }
        }
        path = unescape(p, Mode::Path).map_err(&fail)?;
    }
    if let Some(f) = fragment {
        unescape(f, Mode::Fragment).map_err(&fail)?;
    }
    Ok(GoUrl { scheme, path })
}

/// Go's `getScheme`: letters, then letters, digits, `+-.`, up to the first `:`.
fn split_scheme(raw: &str) -> Result<(String, &str), &'static str> {
    for (i, c) in raw.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => return Err("missing protocol scheme"),
            ':' => return Ok((raw[..i].to_ascii_lowercase(), &raw[i + 1..])),
            _ => return Ok((String::new(), raw)),
        }
    }
    Ok((String::new(), raw))
}

/// Go's `parseAuthority`: `[userinfo@]host[:port]`.
fn check_authority(authority: &str) -> Result<(), String> {
    let host = match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            if !userinfo.bytes().all(valid_userinfo_byte) {
                return Err("net/url: invalid userinfo".into());
            }
            unescape(userinfo, Mode::UserPassword)?;
            &authority[at + 1..]
        }
        None => authority,
    };
    check_host(host)
}

fn valid_userinfo_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._:~!$&'()*+,;=%@".contains(&b)
}

/// Go's `parseHost`: a bracketed IPv6 literal or a name, with an optional
/// numeric port, then the host's own escaping rules.
fn check_host(host: &str) -> Result<(), String> {
    if let Some(inner) = host.strip_prefix('[') {
        let Some(close) = host.rfind(']') else {
            return Err("missing ']' in host".into());
        };
        let port = &host[close + 1..];
        if !valid_optional_port(port) {
            return Err(format!("invalid port {port:?} after host"));
        }
        // An RFC 6874 zone (`%25...`) has its own escaping rules.
        let literal = &inner[..close - 1];
        return match literal.find("%25") {
            Some(zone) => unescape(&literal[..zone], Mode::Host)
                .and_then(|_| unescape(&literal[zone..], Mode::Zone))
                .map(|_| ()),
            None => unescape(literal, Mode::Host).map(|_| ()),
        };
    }
    if let Some(colon) = host.rfind(':') {
        let port = &host[colon..];
        if !valid_optional_port(port) {
            return Err(format!("invalid port {port:?} after host"));
        }
    }
    unescape(host, Mode::Host).map(|_| ())
}

/// Go's `validOptionalPort`: empty, or `:` followed by digits only.
fn valid_optional_port(port: &str) -> bool {
    match port.strip_prefix(':') {
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
        None => port.is_empty(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    Zone,
    UserPassword,
    Fragment,
}

/// Go's `unescape`: every `%` starts two hex digits; in a host, an escape
/// below `%80` other than `%25` and any ASCII byte a host cannot hold are errors.
fn unescape(s: &str, mode: Mode) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
                let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                    let end = (i + 3).min(b.len());
                    let shown = String::from_utf8_lossy(&b[i..end]);
                    return Err(format!("invalid URL escape {shown:?}"));
                };
                let byte = (hi * 16 + lo) as u8;
                let bad = match mode {
                    Mode::Host => hi < 8 && &s[i..i + 3] != "%25",
                    Mode::Zone => &s[i..i + 3] != "%25" && byte != b' ' && !host_byte(byte),
                    _ => false,
                };
                if bad {
                    return Err(format!("invalid URL escape {:?}", &s[i..i + 3]));
                }
                out.push(byte);
                i += 3;
            }
            c if matches!(mode, Mode::Host | Mode::Zone) && c < 0x80 && !host_byte(c) => {
                return Err(format!(
                    "invalid character {:?} in host name",
                    (c as char).to_string()
                ));
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// ASCII bytes Go's `shouldEscape` lets stand in a host.
fn host_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!$&'()*+,;=:[]<>\"-_.~".contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_schemes() {
        let u = parse("unix:///run/a%20b.sock?q#f").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.path.as_slice()),
            ("unix", &b"/run/a b.sock"[..])
        );
        let u = parse("unix:name").unwrap();
        assert!(u.path.is_empty());
        assert_eq!(parse("/tmp/x").unwrap().scheme, "");
        assert!(parse(":x").is_err());
        assert!(parse("unix://h%41/x").is_err(), "ASCII escape in a host");
        assert!(parse("unix://h%25/x").is_ok());
        assert!(parse("unix://u%zz@h/x").is_err());
        assert!(parse("a:b/c:d").is_ok());
        assert!(parse("b/c:d").is_ok());
        assert!(parse("c:d").is_ok());
        assert!(
            parse("1c:d").is_err(),
            "colon in the first segment without a scheme"
        );
        assert!(parse("unix://[fe80::1%25en0]:1/x").is_ok());
        assert!(
            parse("unix://[fe80::1%25e%30]/x").is_ok(),
            "a zone may escape ASCII"
        );
        assert!(parse("unix://[fe80::1%30]/x").is_err(), "a host may not");
        assert!(parse("unix://\u{e9}@h/x").is_err(), "non-ASCII userinfo");
        assert!(
            parse("unix:///x#\u{1}").is_ok(),
            "control bytes in a fragment"
        );
    }
}

//! JSON written straight into byte buffers, exactly as `serde_json` writes it
//! (RFC 8259 strings: `"` and `\` escaped, control characters as `\b \f \n \r \t`
//! or `\u00XX`, everything else, `/` and non-ASCII included, as is), so that
//! reports built on worker threads need no intermediate value trees.

/// Bytes that a JSON string cannot hold as they are: control characters, `"`, `\`.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Whether any byte of `block` needs escaping. Written as a branch-free fold over
/// a fixed-size block so that the compiler turns it into a few vector compares:
/// long strings without escapes (base64 data, keys) are copied at memory speed.
#[inline]
fn block_needs_escape(block: &[u8; 16]) -> bool {
    let mut any = false;
    for &b in block {
        any |= (b < 0x20) | (b == b'"') | (b == b'\\');
    }
    any
}

/// The index of the first byte at or after `from` that needs escaping, or `bytes.len()`.
#[inline]
fn next_escape(bytes: &[u8], mut from: usize) -> usize {
    while let Some(block) = bytes.get(from..from + 16) {
        let block: &[u8; 16] = block.try_into().unwrap_or(&[0; 16]);
        if block_needs_escape(block) {
            break;
        }
        from += 16;
    }
    while from < bytes.len() && !NEEDS_ESCAPE[usize::from(bytes[from])] {
        from += 1;
    }
    from
}

/// Append `s` as a JSON string.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    loop {
        let i = next_escape(bytes, start);
        out.extend_from_slice(&bytes[start..i]);
        let Some(&b) = bytes.get(i) else { break };
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            _ => b"",
        };
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.push(b'"');
}

/// Append `s` as a JSON string, or `null`.
pub fn write_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// Append an integer.
pub fn write_i64(out: &mut Vec<u8>, n: i64) {
    use std::io::Write as _;
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{n}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let mut cases: Vec<String> = [
            "",
            "plain",
            "/registry/secrets/ns/a",
            "quote \" back \\ slash /",
            "tab\tnl\ncr\rbs\u{8}ff\u{c}",
            "nul\u{0} us\u{1f} del\u{7f}",
            "non-ascii é ✓ \u{2028} \u{feff} 😀",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        cases.push((0u8..=0x7f).map(char::from).collect());
        // Escapes at every position of strings longer than the 16-byte blocks.
        for len in [15, 16, 17, 33, 48] {
            for pos in 0..len {
                for c in ['"', '\\', '\n', '\u{1}', '\u{1f}', ' ', '\u{7f}', 'é'] {
                    let mut s: Vec<char> = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOP"
                        .chars()
                        .take(len)
                        .collect();
                    s[pos] = c;
                    cases.push(s.into_iter().collect());
                }
            }
        }
        for s in cases {
            let mut ours = Vec::new();
            write_str(&mut ours, &s);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&s).unwrap(),
                "{s:?}"
            );
        }
        for n in [0, 1, -1, i64::MAX, i64::MIN] {
            let mut ours = Vec::new();
            write_i64(&mut ours, n);
            assert_eq!(ours, serde_json::to_vec(&n).unwrap());
        }
    }
}

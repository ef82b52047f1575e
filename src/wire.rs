//! The protobuf wire format: one small, bounds-checked reader, shared by Kubernetes
//! objects ([`crate::kube`]), etcd's `mvccpb.KeyValue` records ([`crate::mvcc`]) and
//! KMS v2 `EncryptedObject`s ([`crate::envelope::kms`]), and the few writer helpers
//! atrest needs.
//!
//! Implements the encoding described in the protobuf "Encoding" guide
//! (<https://protobuf.dev/programming-guides/encoding/>: varints, length-delimited
//! fields, fixed32/fixed64), as produced by the gogo-generated `Marshal` methods in
//! `k8s.io/apimachinery`, `k8s.io/api` and etcd's `api/mvccpb`.
//!
//! The reader never allocates: every length-delimited value is a borrowed slice of the
//! input, so a length prefix can never make us reserve memory. Every length is checked
//! against the bytes that are actually left before it is used. Groups (wire types 3
//! and 4) are rejected: no Kubernetes type uses them.
//!
//! Offsets in errors are absolute: counted from the start of the stored value that the
//! outermost reader was given, so a report can point at the exact byte.

/// Longest valid varint: 10 bytes carry 64 bits (7 bits each).
const MAX_VARINT_LEN: usize = 10;

/// Largest field number protobuf allows (2^29 - 1).
const MAX_FIELD_NUMBER: u64 = (1 << 29) - 1;

/// Wire type 0 (the low 3 bits of a tag): int32, int64, uint*, bool, enum.
pub const VARINT: u8 = 0;
/// Wire type 1: fixed64, sfixed64, double.
pub const FIXED64: u8 = 1;
/// Wire type 2: string, bytes, embedded messages, map entries, packed repeated.
pub const LEN: u8 = 2;
/// Wire type 5: fixed32, sfixed32, float.
pub const FIXED32: u8 = 5;

/// Why bytes are not valid protobuf. Each caller turns these into its own error
/// (`WireError`, `KvDecodeError`, `KmsFormatError`), which names what was being read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{message}: {what} is cut off at byte {offset}; the stored value is truncated")]
    Truncated {
        message: &'static str,
        what: &'static str,
        offset: usize,
    },
    #[error("{message}: varint at byte {offset} is longer than 10 bytes; the value is corrupt")]
    VarintTooLong {
        message: &'static str,
        offset: usize,
    },
    /// Only from a reader made with [`Reader::rejecting_overflow`].
    #[error("{message}: varint at byte {offset} carries more than 64 bits; the value is corrupt")]
    VarintOverflow {
        message: &'static str,
        offset: usize,
    },
    #[error(
        "{message}: field {field} claims {length} bytes at byte {offset} but only {remaining} \
         remain; the value is truncated or corrupt"
    )]
    LengthPastEnd {
        message: &'static str,
        field: u64,
        length: u64,
        remaining: usize,
        /// Absolute offset of the length prefix.
        offset: usize,
        /// Absolute offset just after the length prefix, where the value would start.
        value_offset: usize,
    },
    #[error("{message}: field {field} at byte {offset} is a {found}, expected a {expected}; the value is corrupt or not this type")]
    WrongWireType {
        message: &'static str,
        field: u32,
        expected: &'static str,
        found: &'static str,
        offset: usize,
    },
    #[error("{message}: invalid wire type {wire_type} for field {field} at byte {offset}; the value is corrupt")]
    InvalidWireType {
        message: &'static str,
        wire_type: u8,
        field: u32,
        offset: usize,
    },
    #[error("{message}: field {field} at byte {offset} is a protobuf group, which no Kubernetes type uses; the value is corrupt")]
    GroupField {
        message: &'static str,
        field: u32,
        offset: usize,
    },
    #[error("{message}: group {field} opened at byte {offset} is not closed by its own end-group tag; the value is corrupt")]
    UnclosedGroup {
        message: &'static str,
        field: u64,
        offset: usize,
    },
    #[error("{message}: invalid field number {number} at byte {offset}; the value is corrupt")]
    BadFieldNumber {
        message: &'static str,
        number: u64,
        offset: usize,
    },
}

/// The protobuf wire types (low 3 bits of a tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireType {
    /// 0: int32, int64, uint*, bool, enum.
    Varint,
    /// 1: fixed64, sfixed64, double.
    Fixed64,
    /// 2: string, bytes, embedded messages, map entries, packed repeated.
    LengthDelimited,
    /// 5: fixed32, sfixed32, float.
    Fixed32,
}

impl WireType {
    /// The name used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            WireType::Varint => "varint",
            WireType::Fixed64 => "fixed64",
            WireType::LengthDelimited => "length-delimited",
            WireType::Fixed32 => "fixed32",
        }
    }
}

/// The value of one field as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl WireValue<'_> {
    fn wire_type(&self) -> WireType {
        match self {
            WireValue::Varint(_) => WireType::Varint,
            WireValue::Fixed64(_) => WireType::Fixed64,
            WireValue::Bytes(_) => WireType::LengthDelimited,
            WireValue::Fixed32(_) => WireType::Fixed32,
        }
    }
}

/// One decoded field: its number, its value and where it sits in the input.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    /// The message being read (for error messages), e.g. `"ObjectMeta"`.
    pub message: &'static str,
    pub number: u32,
    pub value: WireValue<'a>,
    /// Absolute offset of the field's tag.
    pub offset: usize,
    /// Absolute offset of the first byte of the value (after any length prefix).
    pub value_offset: usize,
}

impl<'a> Field<'a> {
    fn wrong_type(&self, expected: WireType) -> WireError {
        WireError::WrongWireType {
            message: self.message,
            field: self.number,
            expected: expected.name(),
            found: self.value.wire_type().name(),
            offset: self.offset,
        }
    }

    /// The raw varint of an int64/uint64/int32/bool/enum field.
    pub fn varint(&self) -> Result<u64, WireError> {
        match self.value {
            WireValue::Varint(v) => Ok(v),
            _ => Err(self.wrong_type(WireType::Varint)),
        }
    }

    /// An `int64` field (two's complement, as Go encodes it).
    pub fn int64(&self) -> Result<i64, WireError> {
        // Reinterpreting the 64 bits is exactly what Go's `int64(v)` does.
        self.varint().map(|v| v as i64)
    }

    /// A `bool` field: any non-zero varint is true, as in Go's generated code.
    pub fn bool(&self) -> Result<bool, WireError> {
        self.varint().map(|v| v != 0)
    }

    /// The bytes of a length-delimited field.
    pub fn bytes(&self) -> Result<&'a [u8], WireError> {
        match self.value {
            WireValue::Bytes(b) => Ok(b),
            _ => Err(self.wrong_type(WireType::LengthDelimited)),
        }
    }

    /// A `string` field. Go does not validate UTF-8 when decoding, and its
    /// `encoding/json` writes U+FFFD for each byte that is not part of valid
    /// UTF-8 (`encode.go`: `utf8.DecodeRuneInString` gives `RuneError` of size 1
    /// for every such byte); we do the same.
    pub fn string(&self) -> Result<String, WireError> {
        self.str_lossy().map(std::borrow::Cow::into_owned)
    }

    /// [`Field::string`] without a copy when the bytes are valid UTF-8: the
    /// result is `Cow::Owned` exactly when they are not.
    pub fn str_lossy(&self) -> Result<std::borrow::Cow<'a, str>, WireError> {
        self.bytes().map(|b| match std::str::from_utf8(b) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => std::borrow::Cow::Owned(lossy_per_byte(b)),
        })
    }

    /// A reader over an embedded message.
    pub fn message(&self, message: &'static str) -> Result<Reader<'a>, WireError> {
        Ok(Reader::with_base(self.bytes()?, self.value_offset, message))
    }
}

/// A tag as read, before any check: the field number and wire type it encodes and
/// where it sits in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// `tag >> 3`, unchecked (may be 0 or above protobuf's limit).
    pub number: u64,
    /// `tag & 7`, unchecked (may be a group or an invalid wire type).
    pub wire_type: u8,
    /// Absolute offset of the tag.
    pub offset: usize,
}

/// Reads the fields of one message in order.
///
/// [`Reader::next_field`] checks each tag and reads its value; callers with their own
/// rules about tags (`mvcc`) use [`Reader::read_tag`] and the value readers instead.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Absolute offset of `buf[0]`.
    base: usize,
    message: &'static str,
    /// Refuse a 10th varint byte above 1 instead of dropping the bits past 64.
    reject_overflow: bool,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, whose first byte is at absolute offset `base`.
    pub fn with_base(buf: &'a [u8], base: usize, message: &'static str) -> Self {
        Reader {
            buf,
            pos: 0,
            base,
            message,
            reject_overflow: false,
        }
    }

    /// The same reader, refusing varints that carry bits past 64
    /// ([`WireError::VarintOverflow`]) instead of dropping them as Go's decoders do.
    pub fn rejecting_overflow(mut self) -> Self {
        self.reject_overflow = true;
        self
    }

    fn abs(&self, pos: usize) -> usize {
        self.base.saturating_add(pos)
    }

    fn truncated(&self, what: &'static str, at: usize) -> WireError {
        WireError::Truncated {
            message: self.message,
            what,
            offset: self.abs(at),
        }
    }

    /// Read a varint; `what` names it in a [`WireError::Truncated`].
    pub fn read_varint(&mut self, what: &'static str) -> Result<u64, WireError> {
        let start = self.pos;
        let mut value: u64 = 0;
        for i in 0..MAX_VARINT_LEN {
            let Some(&byte) = self.buf.get(start + i) else {
                return Err(self.truncated(what, start));
            };
            if i == MAX_VARINT_LEN - 1 && byte > 1 && self.reject_overflow {
                return Err(WireError::VarintOverflow {
                    message: self.message,
                    offset: self.abs(start),
                });
            }
            // Bits beyond 64 in the 10th byte are dropped, as Go's decoder does.
            value |= u64::from(byte & 0x7f)
                .checked_shl(7 * i as u32)
                .unwrap_or(0);
            if byte & 0x80 == 0 {
                self.pos = start + i + 1;
                return Ok(value);
            }
        }
        Err(WireError::VarintTooLong {
            message: self.message,
            offset: self.abs(start),
        })
    }

    /// Read `N` bytes of a fixed32/fixed64 value; `what` names it in a
    /// [`WireError::Truncated`].
    pub fn read_fixed<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], WireError> {
        let start = self.pos;
        let bytes = self
            .buf
            .get(start..)
            .and_then(|rest| rest.get(..N))
            .ok_or_else(|| self.truncated(what, start))?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        self.pos = start + N;
        Ok(out)
    }

    /// Read a length prefix and the bytes it covers, borrowed from the input;
    /// `field` names the field in a [`WireError::LengthPastEnd`].
    pub fn read_bytes(&mut self, field: u64) -> Result<&'a [u8], WireError> {
        let len_at = self.pos;
        let len = self.read_varint("length prefix")?;
        let remaining = self.buf.len() - self.pos;
        if len > remaining as u64 {
            return Err(WireError::LengthPastEnd {
                message: self.message,
                field,
                length: len,
                remaining,
                offset: self.abs(len_at),
                value_offset: self.abs(self.pos),
            });
        }
        // Checked above: len <= remaining, which is a usize.
        let len = len as usize;
        let start = self.pos;
        self.pos = start + len;
        Ok(&self.buf[start..start + len])
    }

    /// The next tag, unchecked, or `None` at the end of the message.
    pub fn read_tag(&mut self) -> Result<Option<Tag>, WireError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let offset = self.abs(self.pos);
        let tag = self.read_varint("field tag")?;
        Ok(Some(Tag {
            number: tag >> 3,
            // Masked to 3 bits.
            wire_type: (tag & 7) as u8,
            offset,
        }))
    }

    /// The next field, or `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<Field<'a>>, WireError> {
        let Some(Tag {
            number,
            wire_type,
            offset,
        }) = self.read_tag()?
        else {
            return Ok(None);
        };
        if number == 0 || number > MAX_FIELD_NUMBER {
            return Err(WireError::BadFieldNumber {
                message: self.message,
                number,
                offset,
            });
        }
        // Checked above: fits in 29 bits.
        let number = number as u32;
        let value = match wire_type {
            VARINT => WireValue::Varint(self.read_varint("varint value")?),
            FIXED64 => {
                WireValue::Fixed64(u64::from_le_bytes(self.read_fixed::<8>("fixed64 value")?))
            }
            LEN => {
                let bytes = self.read_bytes(u64::from(number))?;
                let value_offset = self.abs(self.pos - bytes.len());
                return Ok(Some(Field {
                    message: self.message,
                    number,
                    value: WireValue::Bytes(bytes),
                    offset,
                    value_offset,
                }));
            }
            FIXED32 => {
                WireValue::Fixed32(u32::from_le_bytes(self.read_fixed::<4>("fixed32 value")?))
            }
            3 | 4 => {
                return Err(WireError::GroupField {
                    message: self.message,
                    field: number,
                    offset,
                })
            }
            other => {
                return Err(WireError::InvalidWireType {
                    message: self.message,
                    wire_type: other,
                    field: number,
                    offset,
                })
            }
        };
        Ok(Some(Field {
            message: self.message,
            number,
            value,
            offset,
            value_offset: self.abs(self.pos),
        }))
    }
}

impl<'a> Reader<'a> {
    /// The next field that is not a group, or `None` at the end of the message.
    ///
    /// For decoders that mirror protobuf-go (`proto.Unmarshal`) on a message with
    /// no group fields: there a group can only be an unknown field, which
    /// protobuf-go skips whole, nested groups included
    /// (`protowire.ConsumeFieldValue`). An end-group tag without its start, or a
    /// group that is cut off or closed with another number, is an error.
    pub fn next_field_skipping_groups(&mut self) -> Result<Option<Field<'a>>, WireError> {
        loop {
            let start = self.pos;
            let Some(tag) = self.read_tag()? else {
                return Ok(None);
            };
            match tag.wire_type {
                3 => {
                    self.check_number(&tag)?;
                    self.skip_group(tag)?;
                }
                4 => {
                    return Err(WireError::UnclosedGroup {
                        message: self.message,
                        field: tag.number,
                        offset: tag.offset,
                    })
                }
                _ => {
                    self.pos = start;
                    return self.next_field();
                }
            }
        }
    }

    fn check_number(&self, tag: &Tag) -> Result<(), WireError> {
        if tag.number == 0 || tag.number > MAX_FIELD_NUMBER {
            return Err(WireError::BadFieldNumber {
                message: self.message,
                number: tag.number,
                offset: tag.offset,
            });
        }
        Ok(())
    }

    /// Skip the fields of the group `open` (its start tag already read) up to
    /// and including its end tag.
    fn skip_group(&mut self, open: Tag) -> Result<(), WireError> {
        // Open groups, innermost last; bounded by the input's length.
        let mut open_groups = vec![open];
        while let Some(&top) = open_groups.last() {
            let Some(tag) = self.read_tag()? else {
                return Err(WireError::UnclosedGroup {
                    message: self.message,
                    field: top.number,
                    offset: top.offset,
                });
            };
            self.check_number(&tag)?;
            match tag.wire_type {
                VARINT => {
                    self.read_varint("varint value")?;
                }
                FIXED64 => {
                    self.read_fixed::<8>("fixed64 value")?;
                }
                LEN => {
                    self.read_bytes(tag.number)?;
                }
                FIXED32 => {
                    self.read_fixed::<4>("fixed32 value")?;
                }
                3 => open_groups.push(tag),
                4 if tag.number == top.number => {
                    open_groups.pop();
                }
                4 => {
                    return Err(WireError::UnclosedGroup {
                        message: self.message,
                        field: top.number,
                        offset: top.offset,
                    })
                }
                other => {
                    return Err(WireError::InvalidWireType {
                        message: self.message,
                        wire_type: other,
                        // Checked above: fits in 29 bits.
                        field: tag.number as u32,
                        offset: tag.offset,
                    });
                }
            }
        }
        Ok(())
    }
}

/// `bytes` as text, with U+FFFD for each byte that is not part of valid UTF-8, as
/// Go's `encoding/json` writes it (not one U+FFFD per maximal invalid sequence,
/// as `String::from_utf8_lossy` does: `"\xf0\x9f\x98"` is three).
pub fn lossy_per_byte(mut bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (valid, rest) = bytes.split_at(e.valid_up_to());
                // `valid_up_to` bytes are valid UTF-8.
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push('\u{fffd}');
                bytes = rest.get(1..).unwrap_or_default();
            }
        }
    }
}

/// A map entry (`map<K, V>` is encoded as repeated messages {key = 1, value = 2}).
/// Returns the raw key and value fields; either may be absent.
pub fn map_entry<'a>(
    field: &Field<'a>,
    message: &'static str,
) -> Result<(Option<Field<'a>>, Option<Field<'a>>), WireError> {
    let mut r = field.message(message)?;
    let (mut key, mut value) = (None, None);
    while let Some(f) = r.next_field()? {
        match f.number {
            1 => key = Some(f),
            2 => value = Some(f),
            _ => {}
        }
    }
    Ok((key, value))
}

/// A `map<string, string>` entry; absent key or value reads as empty, as in Go.
/// Borrowed where the bytes are valid UTF-8 (see [`Field::str_lossy`]).
pub fn string_entry_ref<'a>(
    field: &Field<'a>,
    message: &'static str,
) -> Result<(std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>), WireError> {
    let (k, v) = map_entry(field, message)?;
    let key = k.map(|f| f.str_lossy()).transpose()?.unwrap_or_default();
    let value = v.map(|f| f.str_lossy()).transpose()?.unwrap_or_default();
    Ok((key, value))
}

/// A `map<string, bytes>` entry; absent key or value reads as empty.
pub fn bytes_entry<'a>(
    field: &Field<'a>,
    message: &'static str,
) -> Result<(std::borrow::Cow<'a, str>, &'a [u8]), WireError> {
    let (k, v) = map_entry(field, message)?;
    let key = k.map(|f| f.str_lossy()).transpose()?.unwrap_or_default();
    let value = v.map(|f| f.bytes()).transpose()?.unwrap_or_default();
    Ok((key, value))
}

/// Append a tag: `field` and `wire_type` in one varint.
pub fn put_tag(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire_type));
}

/// Append a varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Append a length-delimited field, or nothing if `b` is empty (proto3 omits zero
/// values).
pub fn put_bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    if b.is_empty() {
        return;
    }
    put_tag(out, field, LEN);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Go's `encoding/json` writes for these strings (one U+FFFD per byte
    /// that is not part of valid UTF-8; `encode.go`), checked with Go.
    #[test]
    fn lossy_text_is_what_go_json_writes() {
        let r = "\u{fffd}";
        for (bytes, want) in [
            (&b"bad\xf0\x9f\x98name"[..], format!("bad{r}{r}{r}name")),
            (b"\xed\xa0\x80", r.repeat(3)),
            (b"\xff", r.to_string()),
            (b"a\xc3", format!("a{r}")),
            (b"\xc3\xa9\xe2\x82", format!("\u{e9}{r}{r}")),
            (b"\xf4\x90\x80\x80", r.repeat(4)),
            (b"\xc0\xaf", r.repeat(2)),
            (b"ok \xe2\x9c\x93", "ok \u{2713}".to_string()),
        ] {
            assert_eq!(lossy_per_byte(bytes), want, "{bytes:?}");
        }
    }

    fn fields(buf: &[u8]) -> Result<Vec<(u32, WireValue<'_>)>, WireError> {
        let mut r = Reader::with_base(buf, 0, "Test");
        let mut out = Vec::new();
        while let Some(f) = r.next_field()? {
            out.push((f.number, f.value));
        }
        Ok(out)
    }

    #[test]
    fn reads_every_wire_type() {
        let buf = [
            0x08, 0x96, 0x01, // 1: varint 150
            0x11, 1, 0, 0, 0, 0, 0, 0, 0, // 2: fixed64 1
            0x1a, 0x02, b'h', b'i', // 3: bytes "hi"
            0x25, 2, 0, 0, 0, // 4: fixed32 2
        ];
        assert_eq!(
            fields(&buf).unwrap(),
            vec![
                (1, WireValue::Varint(150)),
                (2, WireValue::Fixed64(1)),
                (3, WireValue::Bytes(b"hi")),
                (4, WireValue::Fixed32(2)),
            ]
        );
    }

    #[test]
    fn ten_byte_varint_is_accepted_eleven_is_not() {
        let mut buf = vec![0x08];
        buf.extend([0xff; 9]);
        buf.push(0x01);
        assert_eq!(
            fields(&buf).unwrap(),
            vec![(1, WireValue::Varint(u64::MAX))]
        );
        let mut buf = vec![0x08];
        buf.extend([0xff; 10]);
        buf.push(0x01);
        assert!(matches!(
            fields(&buf),
            Err(WireError::VarintTooLong { offset: 1, .. })
        ));
    }

    #[test]
    fn malformed_inputs_are_errors() {
        assert!(matches!(
            fields(&[0x08]),
            Err(WireError::Truncated { offset: 1, .. })
        ));
        assert!(matches!(
            fields(&[0x08, 0x80]),
            Err(WireError::Truncated { .. })
        ));
        assert!(matches!(
            fields(&[0x0a, 0x05, b'a']),
            Err(WireError::LengthPastEnd {
                field: 1,
                length: 5,
                remaining: 1,
                offset: 1,
                ..
            })
        ));
        assert!(matches!(
            fields(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(WireError::LengthPastEnd { .. })
        ));
        assert!(matches!(
            fields(&[0x0b]),
            Err(WireError::GroupField { field: 1, .. })
        ));
        assert!(matches!(fields(&[0x0c]), Err(WireError::GroupField { .. })));
        assert!(matches!(
            fields(&[0x0e]),
            Err(WireError::InvalidWireType { wire_type: 6, .. })
        ));
        assert!(matches!(
            fields(&[0x00]),
            Err(WireError::BadFieldNumber { number: 0, .. })
        ));
        assert!(matches!(
            fields(&[0x09, 1, 2]),
            Err(WireError::Truncated { .. })
        ));
        assert!(matches!(
            fields(&[0x0d, 1, 2]),
            Err(WireError::Truncated { .. })
        ));
    }

    #[test]
    fn overflow_is_dropped_unless_rejected() {
        // A 10-byte varint whose last byte carries bits past 64.
        let mut buf = vec![0x08];
        buf.extend([0xff; 9]);
        buf.push(0x7f);
        assert_eq!(
            fields(&buf).unwrap(),
            vec![(1, WireValue::Varint(u64::MAX))]
        );
        let mut r = Reader::with_base(&buf, 0, "Test").rejecting_overflow();
        assert_eq!(
            r.next_field().unwrap_err(),
            WireError::VarintOverflow {
                message: "Test",
                offset: 1
            }
        );
    }

    #[test]
    fn read_tag_leaves_checks_to_the_caller() {
        let buf = [0x00, 0x0b];
        let mut r = Reader::with_base(&buf, 7, "Test");
        let tag = |number, wire_type, offset| Tag {
            number,
            wire_type,
            offset,
        };
        assert_eq!(r.read_tag().unwrap(), Some(tag(0, VARINT, 7)));
        assert_eq!(r.read_tag().unwrap(), Some(tag(1, 3, 8)));
        assert_eq!(r.read_tag().unwrap(), None);
    }

    #[test]
    fn writers_round_trip_through_the_reader() {
        let mut buf = Vec::new();
        put_bytes(&mut buf, 1, b"");
        put_bytes(&mut buf, 2, b"abc");
        put_tag(&mut buf, 3, VARINT);
        put_varint(&mut buf, 300);
        assert_eq!(
            fields(&buf).unwrap(),
            vec![(2, WireValue::Bytes(b"abc")), (3, WireValue::Varint(300))]
        );
    }

    #[test]
    fn wrong_wire_type_names_field_and_offset() {
        let buf = [0x0a, 0x00, 0x10, 0x01];
        let mut r = Reader::with_base(&buf, 100, "ObjectMeta");
        r.next_field().unwrap();
        let f = r.next_field().unwrap().unwrap();
        let err = f.string().unwrap_err();
        assert_eq!(
            err,
            WireError::WrongWireType {
                message: "ObjectMeta",
                field: 2,
                expected: "length-delimited",
                found: "varint",
                offset: 102,
            }
        );
    }
}

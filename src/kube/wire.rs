//! A small, bounds-checked reader for the protobuf wire format.
//!
//! Implements the encoding described in the protobuf "Encoding" guide (varints,
//! length-delimited fields, fixed32/fixed64), as produced by the gogo-generated
//! `Marshal` methods in `k8s.io/apimachinery` and `k8s.io/api`.
//!
//! The reader never allocates: every length-delimited value is a borrowed slice of the
//! input, so a length prefix can never make us reserve memory. Every length is checked
//! against the bytes that are actually left before it is used. Groups (wire types 3
//! and 4) are rejected: no Kubernetes type uses them.
//!
//! Offsets in errors are absolute: counted from the start of the stored value that the
//! outermost reader was given, so a report can point at the exact byte.

use super::KubeError;

/// Longest valid varint: 10 bytes carry 64 bits (7 bits each).
const MAX_VARINT_LEN: usize = 10;

/// Largest field number protobuf allows (2^29 - 1).
const MAX_FIELD_NUMBER: u64 = (1 << 29) - 1;

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
    fn wrong_type(&self, expected: WireType) -> KubeError {
        KubeError::WrongWireType {
            message: self.message,
            field: self.number,
            expected: expected.name(),
            found: self.value.wire_type().name(),
            offset: self.offset,
        }
    }

    /// The raw varint of an int64/uint64/int32/bool/enum field.
    pub fn varint(&self) -> Result<u64, KubeError> {
        match self.value {
            WireValue::Varint(v) => Ok(v),
            _ => Err(self.wrong_type(WireType::Varint)),
        }
    }

    /// An `int64` field (two's complement, as Go encodes it).
    pub fn int64(&self) -> Result<i64, KubeError> {
        // Reinterpreting the 64 bits is exactly what Go's `int64(v)` does.
        self.varint().map(|v| v as i64)
    }

    /// A `bool` field: any non-zero varint is true, as in Go's generated code.
    pub fn bool(&self) -> Result<bool, KubeError> {
        self.varint().map(|v| v != 0)
    }

    /// The bytes of a length-delimited field.
    pub fn bytes(&self) -> Result<&'a [u8], KubeError> {
        match self.value {
            WireValue::Bytes(b) => Ok(b),
            _ => Err(self.wrong_type(WireType::LengthDelimited)),
        }
    }

    /// A `string` field. Go does not validate UTF-8 when decoding, and replaces
    /// invalid sequences with U+FFFD when encoding JSON; we do the same.
    pub fn string(&self) -> Result<String, KubeError> {
        self.bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    /// A reader over an embedded message.
    pub fn message(&self, message: &'static str) -> Result<Reader<'a>, KubeError> {
        Ok(Reader::with_base(self.bytes()?, self.value_offset, message))
    }
}

/// Reads the fields of one message in order.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Absolute offset of `buf[0]`.
    base: usize,
    message: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, whose first byte is at absolute offset `base`.
    pub fn with_base(buf: &'a [u8], base: usize, message: &'static str) -> Self {
        Reader {
            buf,
            pos: 0,
            base,
            message,
        }
    }

    fn abs(&self, pos: usize) -> usize {
        self.base.saturating_add(pos)
    }

    fn truncated(&self, what: &'static str, at: usize) -> KubeError {
        KubeError::Truncated {
            message: self.message,
            what,
            offset: self.abs(at),
        }
    }

    /// Read a varint starting at `self.pos`.
    fn read_varint(&mut self, what: &'static str) -> Result<u64, KubeError> {
        let start = self.pos;
        let mut value: u64 = 0;
        for i in 0..MAX_VARINT_LEN {
            let Some(&byte) = self.buf.get(start + i) else {
                return Err(self.truncated(what, start));
            };
            // Bits beyond 64 in the 10th byte are dropped, as Go's decoder does.
            value |= u64::from(byte & 0x7f)
                .checked_shl(7 * i as u32)
                .unwrap_or(0);
            if byte & 0x80 == 0 {
                self.pos = start + i + 1;
                return Ok(value);
            }
        }
        Err(KubeError::VarintTooLong {
            message: self.message,
            offset: self.abs(start),
        })
    }

    fn read_fixed<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], KubeError> {
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

    /// The next field, or `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<Field<'a>>, KubeError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let offset = self.abs(self.pos);
        let tag = self.read_varint("field tag")?;
        let number = tag >> 3;
        if number == 0 || number > MAX_FIELD_NUMBER {
            return Err(KubeError::BadFieldNumber {
                message: self.message,
                number,
                offset,
            });
        }
        // Checked above: fits in 29 bits.
        let number = number as u32;
        let value = match tag & 7 {
            0 => WireValue::Varint(self.read_varint("varint value")?),
            1 => WireValue::Fixed64(u64::from_le_bytes(self.read_fixed::<8>("fixed64 value")?)),
            2 => {
                let len_at = self.pos;
                let len = self.read_varint("length prefix")?;
                let remaining = self.buf.len() - self.pos;
                if len > remaining as u64 {
                    return Err(KubeError::LengthPastEnd {
                        message: self.message,
                        field: number,
                        length: len,
                        remaining,
                        offset: self.abs(len_at),
                    });
                }
                // Checked above: len <= remaining, which is a usize.
                let len = len as usize;
                let start = self.pos;
                self.pos = start + len;
                let value_offset = self.abs(start);
                return Ok(Some(Field {
                    message: self.message,
                    number,
                    value: WireValue::Bytes(&self.buf[start..start + len]),
                    offset,
                    value_offset,
                }));
            }
            5 => WireValue::Fixed32(u32::from_le_bytes(self.read_fixed::<4>("fixed32 value")?)),
            3 | 4 => {
                return Err(KubeError::GroupField {
                    message: self.message,
                    field: number,
                    offset,
                })
            }
            other => {
                return Err(KubeError::InvalidWireType {
                    message: self.message,
                    wire_type: other as u8,
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

/// A map entry (`map<K, V>` is encoded as repeated messages {key = 1, value = 2}).
/// Returns the raw key and value fields; either may be absent.
pub fn map_entry<'a>(
    field: &Field<'a>,
    message: &'static str,
) -> Result<(Option<Field<'a>>, Option<Field<'a>>), KubeError> {
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
pub fn string_entry(
    field: &Field<'_>,
    message: &'static str,
) -> Result<(String, String), KubeError> {
    let (k, v) = map_entry(field, message)?;
    let key = k.map(|f| f.string()).transpose()?.unwrap_or_default();
    let value = v.map(|f| f.string()).transpose()?.unwrap_or_default();
    Ok((key, value))
}

/// A `map<string, bytes>` entry; absent key or value reads as empty.
pub fn bytes_entry<'a>(
    field: &Field<'a>,
    message: &'static str,
) -> Result<(String, &'a [u8]), KubeError> {
    let (k, v) = map_entry(field, message)?;
    let key = k.map(|f| f.string()).transpose()?.unwrap_or_default();
    let value = v.map(|f| f.bytes()).transpose()?.unwrap_or_default();
    Ok((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(buf: &[u8]) -> Result<Vec<(u32, WireValue<'_>)>, KubeError> {
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
            Err(KubeError::VarintTooLong { offset: 1, .. })
        ));
    }

    #[test]
    fn malformed_inputs_are_errors() {
        assert!(matches!(
            fields(&[0x08]),
            Err(KubeError::Truncated { offset: 1, .. })
        ));
        assert!(matches!(
            fields(&[0x08, 0x80]),
            Err(KubeError::Truncated { .. })
        ));
        assert!(matches!(
            fields(&[0x0a, 0x05, b'a']),
            Err(KubeError::LengthPastEnd {
                field: 1,
                length: 5,
                remaining: 1,
                offset: 1,
                ..
            })
        ));
        assert!(matches!(
            fields(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(KubeError::LengthPastEnd { .. })
        ));
        assert!(matches!(
            fields(&[0x0b]),
            Err(KubeError::GroupField { field: 1, .. })
        ));
        assert!(matches!(fields(&[0x0c]), Err(KubeError::GroupField { .. })));
        assert!(matches!(
            fields(&[0x0e]),
            Err(KubeError::InvalidWireType { wire_type: 6, .. })
        ));
        assert!(matches!(
            fields(&[0x00]),
            Err(KubeError::BadFieldNumber { number: 0, .. })
        ));
        assert!(matches!(
            fields(&[0x09, 1, 2]),
            Err(KubeError::Truncated { .. })
        ));
        assert!(matches!(
            fields(&[0x0d, 1, 2]),
            Err(KubeError::Truncated { .. })
        ));
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
            KubeError::WrongWireType {
                message: "ObjectMeta",
                field: 2,
                expected: "length-delimited",
                found: "varint",
                offset: 102,
            }
        );
    }
}

//! A one-level, zero-copy BER-TLV reader for structures from outside (ES10, mutual auth).
//!
//! `crate::tlv::parse_all` (iso7816-tlv) parses the whole tree recursively and copies
//! every value; a payload of up to 64 KiB from the terminal could nest thousands of
//! levels deep. This reader decodes one level at a time (no recursion, no copies), so
//! the parsers above it go exactly as deep as their schema does and no deeper.
//! Writing stays with `crate::tlv::push`/`build`. Shared by `crate::es10` and
//! `crate::auth`, each of which converts [`DerError`] into its own error type.

/// Why a byte string is not the data object(s) a parser asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DerError {
    #[error("malformed BER-TLV: {0}")]
    Tlv(&'static str),
    #[error("{0} byte(s) after the data object; send exactly one")]
    TrailingData(usize),
    #[error("expected tag {expected:X}, found {found:X}")]
    UnexpectedTag { expected: u32, found: u32 },
    #[error("invalid {field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
}

/// One data object: its tag as a big-endian number (`0xBF2D`) and its value bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataObject<'a> {
    pub tag: u32,
    pub value: &'a [u8],
}

impl DataObject<'_> {
    /// Whether the tag's constructed bit (b6 of the first byte) is set.
    pub fn is_constructed(&self) -> bool {
        first_tag_byte(self.tag) & 0x20 != 0
    }
}

fn first_tag_byte(tag: u32) -> u8 {
    let bytes = tag.to_be_bytes();
    bytes.iter().copied().find(|b| *b != 0).unwrap_or(0)
}

/// Read one tag (1 to 3 bytes, ISO 7816-4 §5.2.2.1) from the front of `input`.
pub fn read_tag(input: &[u8]) -> Result<(u32, &[u8]), DerError> {
    let (&first, mut rest) = input.split_first().ok_or(DerError::Tlv("truncated tag"))?;
    if first == 0x00 || first == 0xFF {
        return Err(DerError::Tlv(
            "tag 00 or FF (padding) where a tag was expected",
        ));
    }
    let mut tag = u32::from(first);
    if first & 0x1F != 0x1F {
        return Ok((tag, rest));
    }
    for n in 0..2 {
        let (&b, r) = rest
            .split_first()
            .ok_or(DerError::Tlv("truncated multi-byte tag"))?;
        if n == 0 && b == 0x80 {
            return Err(DerError::Tlv("non-minimal multi-byte tag"));
        }
        tag = (tag << 8) | u32::from(b);
        rest = r;
        if b & 0x80 == 0 {
            return Ok((tag, rest));
        }
    }
    Err(DerError::Tlv("tag longer than 3 bytes"))
}

/// Read one length field (short form, or long form `81`/`82`/`83`).
fn read_len(input: &[u8]) -> Result<(usize, &[u8]), DerError> {
    let (&first, rest) = input
        .split_first()
        .ok_or(DerError::Tlv("truncated length"))?;
    if first < 0x80 {
        return Ok((usize::from(first), rest));
    }
    let n = usize::from(first & 0x7F);
    if n == 0 {
        return Err(DerError::Tlv(
            "indefinite length (80) is not allowed in DER",
        ));
    }
    if n > 3 {
        return Err(DerError::Tlv("length field longer than 3 bytes"));
    }
    if rest.len() < n {
        return Err(DerError::Tlv("truncated length"));
    }
    let (digits, rest) = rest.split_at(n);
    let len = digits
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Ok((len, rest))
}

/// Read one data object from the front of `input`; returns it and what follows.
pub fn read_one(input: &[u8]) -> Result<(DataObject<'_>, &[u8]), DerError> {
    let (tag, rest) = read_tag(input)?;
    let (len, rest) = read_len(rest)?;
    if rest.len() < len {
        return Err(DerError::Tlv("value shorter than its length field"));
    }
    let (value, rest) = rest.split_at(len);
    Ok((DataObject { tag, value }, rest))
}

/// Read a concatenation of data objects (one level); the whole input must be consumed.
pub fn read_all(mut input: &[u8]) -> Result<Vec<DataObject<'_>>, DerError> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (tlv, rest) = read_one(input)?;
        out.push(tlv);
        input = rest;
    }
    Ok(out)
}

/// Exactly one data object with no trailing bytes; returns it.
pub fn read_exactly_one(input: &[u8]) -> Result<DataObject<'_>, DerError> {
    let (tlv, rest) = read_one(input)?;
    if !rest.is_empty() {
        return Err(DerError::TrailingData(rest.len()));
    }
    Ok(tlv)
}

/// Exactly one data object with tag `expected`; returns its value.
pub fn read_expected(input: &[u8], expected: u32) -> Result<&[u8], DerError> {
    let tlv = read_exactly_one(input)?;
    if tlv.tag != expected {
        return Err(DerError::UnexpectedTag {
            expected,
            found: tlv.tag,
        });
    }
    Ok(tlv.value)
}

/// The value of the first child with `tag`, if any.
pub fn find<'a>(children: &[DataObject<'a>], tag: u32) -> Option<&'a [u8]> {
    children.iter().find(|c| c.tag == tag).map(|c| c.value)
}

/// Read a list of tags (the value of a `5C` tag list).
pub fn read_tag_list(mut input: &[u8]) -> Result<Vec<u32>, DerError> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (tag, rest) = read_tag(input)?;
        out.push(tag);
        input = rest;
    }
    Ok(out)
}

/// A non-negative INTEGER value (DER, at most 4 significant bytes) as `u32`.
pub fn read_uint(value: &[u8], field: &'static str) -> Result<u32, DerError> {
    let invalid = |reason| DerError::Invalid { field, reason };
    match value {
        [] => Err(invalid("empty INTEGER")),
        [b, ..] if b & 0x80 != 0 => Err(invalid("negative INTEGER")),
        _ => {
            let start = value.iter().position(|b| *b != 0).unwrap_or(value.len());
            let significant = value.get(start..).unwrap_or_default();
            if significant.len() > 4 {
                return Err(invalid("INTEGER larger than 32 bits"));
            }
            Ok(significant
                .iter()
                .fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
        }
    }
}

/// Append a non-negative INTEGER in minimal DER form.
pub fn push_uint(out: &mut Vec<u8>, tag: u32, value: u32) {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take(3).take_while(|b| **b == 0).count();
    let mut v = Vec::with_capacity(5);
    if bytes.get(skip).is_some_and(|b| b & 0x80 != 0) {
        v.push(0);
    }
    v.extend_from_slice(bytes.get(skip..).unwrap_or(&[]));
    crate::tlv::push(out, tag, &v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_long_form_lengths_up_to_three_bytes() {
        let mut v = vec![0x04, 0x82, 0x01, 0x2C];
        v.extend([0xAA; 300]);
        let tlv = read_exactly_one(&v).unwrap();
        assert_eq!((tlv.tag, tlv.value.len()), (0x04, 300));
        assert_eq!(
            read_one(&[0x04, 0x81, 0x05]).unwrap_err(),
            DerError::Tlv("value shorter than its length field")
        );
        assert!(read_one(&[0x04, 0x84, 0, 0, 0, 1, 0]).is_err());
        assert!(read_one(&[0x04, 0x80]).is_err());
    }

    #[test]
    fn reads_tags_of_one_two_and_three_bytes() {
        assert_eq!(read_tag(&[0x5A]).unwrap().0, 0x5A);
        assert_eq!(read_tag(&[0x9F, 0x70]).unwrap().0, 0x9F70);
        assert_eq!(read_tag(&[0xBF, 0x81, 0x01]).unwrap().0, 0xBF8101);
        assert!(read_tag(&[0xBF, 0x81, 0x81, 0x01]).is_err());
        assert!(read_tag(&[0xBF]).is_err());
    }

    #[test]
    fn integers_round_trip_minimally() {
        for v in [0u32, 1, 127, 128, 255, 256, 0x0006_2824, u32::MAX] {
            let mut out = Vec::new();
            push_uint(&mut out, 0x82, v);
            let tlv = read_exactly_one(&out).unwrap();
            assert_eq!(read_uint(tlv.value, "x").unwrap(), v);
        }
        assert_eq!(
            read_uint(&[0, 0, 0x06, 0x28, 0x24], "x").unwrap(),
            0x0006_2824
        );
        assert!(read_uint(&[0x80], "x").is_err());
    }
}

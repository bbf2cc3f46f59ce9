//! BER-TLV: parsing through `iso7816-tlv`, plus a fast writer for the card's hot paths.

pub use iso7816_tlv::ber::{Tag, Tlv, Value};
pub use iso7816_tlv::TlvError;

/// Append the minimal BER length encoding of `len` (ISO 7816-4 §5.2.2.2).
pub fn push_len(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        0x100..=0xFFFF => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
        _ => out.extend_from_slice(&[0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]),
    }
}

/// Append a tag given as its big-endian value (`0x5F2D`, `0xBF2D`, `0x84`).
pub fn push_tag(out: &mut Vec<u8>, tag: u32) {
    let bytes = tag.to_be_bytes();
    let skip = bytes.iter().take(3).take_while(|b| **b == 0).count();
    out.extend_from_slice(&bytes[skip..]);
}

/// Append one data object: tag, length, value.
pub fn push(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    push_tag(out, tag);
    push_len(out, value.len());
    out.extend_from_slice(value);
}

/// Build one data object.
pub fn build(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    push(&mut out, tag, value);
    out
}

/// Deepest nesting of constructed objects [`parse_all`] accepts. `iso7816-tlv` recurses
/// once per level, so unbounded nesting from outside would overflow the stack.
pub const MAX_DEPTH: usize = 32;

/// Nesting depth of constructed objects, found without recursion. Stops early (with the
/// depth so far) at malformed input, which the real parser then reports.
pub fn nesting_depth(input: &[u8]) -> usize {
    let mut ends: Vec<usize> = Vec::new();
    let mut deepest = 0;
    let mut pos = 0;
    while pos < input.len() {
        while ends.last() == Some(&pos) {
            ends.pop();
        }
        let first = input[pos];
        let constructed = first & 0x20 != 0;
        pos += 1;
        if first & 0x1F == 0x1F {
            while pos < input.len() && input[pos] & 0x80 != 0 {
                pos += 1;
            }
            pos += 1;
        }
        let Some(&l) = input.get(pos) else { break };
        pos += 1;
        let len = match l {
            0..=0x7F => l as usize,
            0x81..=0x84 => {
                let n = (l & 0x7F) as usize;
                let Some(bytes) = input.get(pos..pos + n) else {
                    break;
                };
                pos += n;
                bytes.iter().fold(0usize, |a, b| (a << 8) | *b as usize)
            }
            _ => break,
        };
        let end = pos.saturating_add(len);
        if end > input.len() {
            break;
        }
        if constructed && len > 0 {
            ends.push(end);
            deepest = deepest.max(ends.len());
        } else {
            pos = end;
        }
    }
    deepest
}

/// Parse a concatenation of BER-TLV data objects; the whole input must be consumed.
/// Nesting deeper than [`MAX_DEPTH`] is refused before parsing.
pub fn parse_all(mut input: &[u8]) -> Result<Vec<Tlv>, TlvError> {
    if nesting_depth(input) > MAX_DEPTH {
        return Err(TlvError::InvalidInput);
    }
    let mut out = Vec::new();
    while !input.is_empty() {
        let (tlv, rest) = Tlv::parse(input);
        out.push(tlv?);
        input = rest;
    }
    Ok(out)
}

/// The tag's value as a number (`0xBF2D`), for matching against our constants.
pub fn tag_number(tag: &Tag) -> u32 {
    tag.to_bytes()
        .iter()
        .fold(0u32, |acc, b| (acc << 8) | *b as u32)
}

/// Find the first direct child with `tag` and return its primitive value.
pub fn find_primitive(tlvs: &[Tlv], tag: u32) -> Option<&[u8]> {
    tlvs.iter().find_map(|t| match t.value() {
        Value::Primitive(v) if tag_number(t.tag()) == tag => Some(v.as_slice()),
        _ => None,
    })
}

/// Find the first direct child with `tag` and return its constructed children.
pub fn find_constructed(tlvs: &[Tlv], tag: u32) -> Option<&[Tlv]> {
    tlvs.iter().find_map(|t| match t.value() {
        Value::Constructed(v) if tag_number(t.tag()) == tag => Some(v.as_slice()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn writer_agrees_with_iso7816_tlv() {
        let ours = build(0x5F2D, &[0x65, 0x6E]);
        let theirs = Tlv::new(
            Tag::try_from(0x5F2Du16).unwrap(),
            Value::Primitive(vec![0x65, 0x6E]),
        )
        .unwrap()
        .to_vec();
        assert_eq!(ours, theirs);
        let long = build(0x84, &[0u8; 300]);
        assert_eq!(&long[..4], &[0x84, 0x82, 0x01, 0x2C]);
    }

    /// Found by the `tlv` fuzz target: iso7816-tlv 0.4 encodes a length of 127 as `81 7F`;
    /// our writer must stay minimal at the short/long boundary, and parse either form.
    #[test]
    fn writer_uses_minimal_lengths_at_127_and_128() {
        assert_eq!(&build(0x87, &[0x7F; 127])[..2], &[0x87, 0x7F]);
        assert_eq!(&build(0x87, &[0x7F; 128])[..3], &[0x87, 0x81, 0x80]);
        let non_minimal = [&[0x87, 0x81, 0x7F][..], &[0x7F; 127]].concat();
        let tlvs = parse_all(&non_minimal).unwrap();
        assert_eq!(find_primitive(&tlvs, 0x87), Some(&[0x7F; 127][..]));
    }

    #[test]
    fn finds_nested_values() {
        let mut inner = Vec::new();
        push(&mut inner, 0x83, &[0x3F, 0x00]);
        let fcp = build(0x62, &inner);
        let tlvs = parse_all(&fcp).unwrap();
        let children = find_constructed(&tlvs, 0x62).unwrap();
        assert_eq!(find_primitive(children, 0x83), Some(&[0x3F, 0x00][..]));
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        // 16,000 nested A0 objects: enough to overflow a thread stack in iso7816-tlv.
        let mut v: Vec<u8> = Vec::new();
        for _ in 0..16_000 {
            let mut outer = Vec::with_capacity(v.len() + 4);
            push(&mut outer, 0xA0, &v);
            v = outer;
        }
        assert!(nesting_depth(&v) > MAX_DEPTH);
        assert!(parse_all(&v).is_err());
        let shallow = build(0xA0, &build(0xA1, &build(0x80, &[1])));
        assert_eq!(nesting_depth(&shallow), 2);
        assert!(parse_all(&shallow).is_ok());
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_error(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_all(&bytes);
        }

        #[test]
        fn primitive_round_trip(tag in prop::sample::select(vec![0x80u32, 0x84, 0x5A, 0x9F70, 0x5F20]), value in prop::collection::vec(any::<u8>(), 0..400)) {
            let bytes = build(tag, &value);
            let tlvs = parse_all(&bytes).unwrap();
            prop_assert_eq!(find_primitive(&tlvs, tag), Some(value.as_slice()));
        }
    }
}

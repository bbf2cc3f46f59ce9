//! Hex text for humans and scripts: tolerant parsing (spaces, colons, `0x`), upper-case output.

use thiserror::Error;

/// Why a hex string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HexError {
    #[error("invalid hex digit {0:?} at position {1}")]
    InvalidDigit(char, usize),
    #[error("odd number of hex digits ({0}); every byte needs two digits")]
    OddLength(usize),
}

/// Parse hex, ignoring whitespace, `:` separators and `0x` prefixes of each group.
pub fn parse(text: &str) -> Result<Vec<u8>, HexError> {
    let mut digits = Vec::with_capacity(text.len());
    for word in text.split(|c: char| c.is_whitespace() || c == ':') {
        let word = word
            .strip_prefix("0x")
            .or_else(|| word.strip_prefix("0X"))
            .unwrap_or(word);
        digits.extend(word.chars());
    }
    if digits.len() % 2 != 0 {
        return Err(HexError::OddLength(digits.len()));
    }
    let mut out = Vec::with_capacity(digits.len() / 2);
    for (i, pair) in digits.chunks(2).enumerate() {
        let hi = pair[0]
            .to_digit(16)
            .ok_or(HexError::InvalidDigit(pair[0], 2 * i))?;
        let lo = pair[1]
            .to_digit(16)
            .ok_or(HexError::InvalidDigit(pair[1], 2 * i + 1))?;
        out.push((hi * 16 + lo) as u8);
    }
    Ok(out)
}

/// Upper-case hex without separators.
pub fn upper(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.extend_from_slice(&[DIGITS[(b >> 4) as usize], DIGITS[(b & 0x0F) as usize]]);
    }
    // Only ASCII digits were pushed, so this never fails.
    String::from_utf8(out).unwrap_or_default()
}

/// Upper-case hex with a space between bytes, as scriptor and pcsc_scan print.
pub fn spaced(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&upper(std::slice::from_ref(b)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spaced_prefixed_and_colon_forms() {
        assert_eq!(parse("00 A4 04 00").unwrap(), vec![0, 0xA4, 4, 0]);
        assert_eq!(parse("0x3F:0x00").unwrap(), vec![0x3F, 0]);
        assert_eq!(parse("a0b1").unwrap(), vec![0xA0, 0xB1]);
        assert_eq!(parse("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn rejects_odd_and_non_hex() {
        assert_eq!(parse("ABC"), Err(HexError::OddLength(3)));
        assert_eq!(parse("0G"), Err(HexError::InvalidDigit('G', 1)));
    }

    #[test]
    fn formats_upper_and_spaced() {
        assert_eq!(upper(&[0x6A, 0x82]), "6A82");
        assert_eq!(spaced(&[0x6A, 0x82]), "6A 82");
    }
}

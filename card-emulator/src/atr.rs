//! The Answer-to-Reset: ISO 7816-3 §8, offering T=0 (the default, as real eUICCs do), T=1,
//! or both, with the check byte TCK whenever a protocol other than T=0 is indicated.

/// Build the ATR offering `protocols` (`[0]`, `[1]` or `[0, 1]`; see
/// `CardState::atr_protocols`):
///
/// * `[0]`: `3B 0K <historical bytes>`: no TD1, so T=0 only, and no TCK (§8.2.5);
/// * `[1]`: `3B 8K 01 <historical bytes> TCK`: TD1 indicates T=1;
/// * `[0, 1]`: `3B 8K 80 01 <historical bytes> TCK`: TD1 indicates T=0 and TD2 T=1.
pub fn build(historical: &[u8], protocols: &[u8]) -> Vec<u8> {
    let k = historical.len().min(15);
    let mut atr = Vec::with_capacity(6 + k);
    atr.push(0x3B); // TS: direct convention
    let tds: &[u8] = match protocols {
        [1] => &[0x01],
        [0, 1] => &[0x80, 0x01],
        _ => &[],
    };
    // T0: TD1 present when anything but T=0 alone is offered; K historical bytes.
    atr.push(if tds.is_empty() { 0 } else { 0x80 } | k as u8);
    atr.extend_from_slice(tds);
    atr.extend_from_slice(&historical[..k]);
    if !tds.is_empty() {
        let tck = atr[1..].iter().fold(0u8, |acc, b| acc ^ b);
        atr.push(tck);
    }
    atr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t0_alone_has_no_interface_bytes_and_no_tck() {
        let h = crate::profile::DEFAULT_HISTORICAL_BYTES;
        let atr = build(h, &[0]);
        assert_eq!(&atr[..2], [0x3B, 0x0D]);
        assert_eq!(&atr[2..], h);
    }

    #[test]
    fn tck_makes_the_xor_from_t0_zero_when_t1_is_offered() {
        let h = crate::profile::DEFAULT_HISTORICAL_BYTES;
        let both = build(h, &[0, 1]);
        assert_eq!(&both[..4], [0x3B, 0x8D, 0x80, 0x01]);
        assert_eq!(both[1..].iter().fold(0u8, |a, b| a ^ b), 0);
        assert_eq!(both.len(), 4 + 13 + 1);
        let t1 = build(h, &[1]);
        assert_eq!(&t1[..3], [0x3B, 0x8D, 0x01]);
        assert_eq!(t1[1..].iter().fold(0u8, |a, b| a ^ b), 0);
    }

    #[test]
    fn no_historical_bytes() {
        assert_eq!(build(&[], &[0]), vec![0x3B, 0x00]);
        assert_eq!(build(&[], &[0, 1]), vec![0x3B, 0x80, 0x80, 0x01, 0x01]);
    }
}

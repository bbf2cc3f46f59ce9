//! The Answer-to-Reset: ISO 7816-3 §8, offering T=0 and T=1, with the check byte TCK.

/// Build `3B 8K 80 01 <historical bytes> TCK`: TD1 announces T=0 and TD2, TD2 announces T=1.
/// Offering both matters: eSIM LPAs connect with T=0 only, most tools prefer T=1.
pub fn build(historical: &[u8]) -> Vec<u8> {
    let k = historical.len().min(15);
    let mut atr = Vec::with_capacity(5 + k);
    atr.push(0x3B); // TS: direct convention
    atr.push(0x80 | k as u8); // T0: TD1 present, K historical bytes
    atr.push(0x80); // TD1: TD2 present, T=0
    atr.push(0x01); // TD2: T=1
    atr.extend_from_slice(&historical[..k]);
    let tck = atr[1..].iter().fold(0u8, |acc, b| acc ^ b);
    atr.push(tck);
    atr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tck_makes_the_xor_from_t0_zero_and_both_protocols_are_offered() {
        let atr = build(crate::profile::DEFAULT_HISTORICAL_BYTES);
        assert_eq!(atr[0], 0x3B);
        assert_eq!(atr[1] & 0x0F, 13);
        assert_eq!((atr[2], atr[3]), (0x80, 0x01));
        assert_eq!(atr[1..].iter().fold(0u8, |a, b| a ^ b), 0);
        assert_eq!(atr.len(), 4 + 13 + 1);
    }

    #[test]
    fn no_historical_bytes() {
        assert_eq!(build(&[]), vec![0x3B, 0x80, 0x80, 0x01, 0x01]);
    }
}

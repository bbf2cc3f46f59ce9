//! Identifiers of ES10: ICCID (BCD, swapped nibbles), AIDs of the ISD-R / ISD-P / ECASD,
//! the profile identifier CHOICE and the EID.

use std::fmt;
use std::str::FromStr;

use super::Es10Error;
use crate::hexfmt;

/// ISD-R, the card manager that serves ES10 (SGP.22 §2.2.1; lpac's default).
pub const ISD_R_AID: [u8; 16] = [
    0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x01, 0x00,
];
/// ECASD, the eUICC controlling authority security domain.
pub const ECASD_AID: [u8; 16] = [
    0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x02, 0x00,
];
/// The GlobalPlatform default issuer security domain.
pub const GP_ISD_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];
/// Byte 14 of the first ISD-P AID (`…89 00 00 10 00`); container `i` uses `0x10 + i`.
const ISDP_FIRST: u8 = 0x10;
/// Highest container index with an ISD-P AID in the `…89 00 00 xx 00` scheme.
pub const MAX_ISDP_INDEX: u8 = 0xFF - ISDP_FIRST;

/// Number of digits an ICCID may have here (ITU-T E.118: 19 or 20).
pub const ICCID_DIGITS: std::ops::RangeInclusive<usize> = 19..=20;
/// Encoded ICCID length (SGP.22 `Iccid ::= [APPLICATION 26] OCTET STRING (SIZE(10))`).
pub const ICCID_LEN: usize = 10;

fn iccid_err(reason: &'static str) -> Es10Error {
    Es10Error::Invalid {
        field: "iccid",
        reason,
    }
}

/// An ICCID of 19 or 20 decimal digits, held in its SGP.22 wire form: 10 bytes of BCD
/// with the nibbles of every byte swapped and `F` padding (`8944476500001224158` is
/// `98 44 47 65 00 00 21 42 51 F8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Iccid([u8; ICCID_LEN]);

impl Iccid {
    /// From decimal digits (19 or 20, nothing else). The Luhn digit is not required;
    /// see [`Iccid::luhn_valid`].
    pub fn from_digits(digits: &str) -> Result<Iccid, Es10Error> {
        if !ICCID_DIGITS.contains(&digits.len()) {
            return Err(iccid_err("an ICCID has 19 or 20 decimal digits"));
        }
        let mut nibbles = [0x0Fu8; 2 * ICCID_LEN];
        for (slot, c) in nibbles.iter_mut().zip(digits.bytes()) {
            if !c.is_ascii_digit() {
                return Err(iccid_err("an ICCID has decimal digits only"));
            }
            *slot = c - b'0';
        }
        let mut out = [0u8; ICCID_LEN];
        for (byte, pair) in out.iter_mut().zip(nibbles.chunks_exact(2)) {
            if let [first, second] = pair {
                *byte = (second << 4) | first;
            }
        }
        Ok(Iccid(out))
    }

    /// From the 10-byte wire form. Every nibble must be a digit, except an `F` pad in the
    /// last position (high nibble of the last byte).
    pub fn from_bytes(bytes: &[u8]) -> Result<Iccid, Es10Error> {
        let arr: [u8; ICCID_LEN] = bytes
            .try_into()
            .map_err(|_| iccid_err("the encoded ICCID must be 10 bytes"))?;
        for (i, b) in arr.iter().enumerate() {
            let (first, second) = (b & 0x0F, b >> 4);
            let pad_ok = i == ICCID_LEN - 1 && second == 0x0F;
            if first > 9 || (second > 9 && !pad_ok) {
                return Err(iccid_err("the encoded ICCID has a non-BCD nibble"));
            }
        }
        Ok(Iccid(arr))
    }

    /// The 10-byte wire form.
    pub fn as_bytes(&self) -> &[u8; ICCID_LEN] {
        &self.0
    }

    /// The decimal digits.
    pub fn digits(&self) -> String {
        let mut s = String::with_capacity(2 * ICCID_LEN);
        for b in self.0 {
            for n in [b & 0x0F, b >> 4] {
                if n <= 9 {
                    s.push(char::from(b'0' + n));
                }
            }
        }
        s
    }

    /// Whether the last digit is the Luhn check digit of the others (ITU-T E.118).
    /// Informational: SGP.22 transports any ICCID, and so do we.
    pub fn luhn_valid(&self) -> bool {
        luhn_valid(&self.digits())
    }
}

/// Whether a string of decimal digits ends with a correct Luhn check digit.
#[allow(clippy::manual_is_multiple_of)] // u32::is_multiple_of needs Rust 1.87; MSRV is 1.80
pub fn luhn_valid(digits: &str) -> bool {
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = u32::from(c - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 {
                    d2 - 9
                } else {
                    d2
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

impl fmt::Display for Iccid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.digits())
    }
}

impl FromStr for Iccid {
    type Err = Es10Error;
    fn from_str(s: &str) -> Result<Iccid, Es10Error> {
        Iccid::from_digits(s)
    }
}

/// An application identifier as ES10 carries it (`isdpAid [APPLICATION 15] OctetTo16`:
/// tag `4F`, 5 to 16 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aid(Vec<u8>);

impl Aid {
    pub const MIN_LEN: usize = 5;
    pub const MAX_LEN: usize = 16;

    pub fn new(bytes: &[u8]) -> Result<Aid, Es10Error> {
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&bytes.len()) {
            return Err(Es10Error::Invalid {
                field: "aid",
                reason: "an AID has 5 to 16 bytes",
            });
        }
        Ok(Aid(bytes.to_vec()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The ISD-R (`A0000005591010FFFFFFFF8900000100`).
    pub fn isd_r() -> Aid {
        Aid(ISD_R_AID.to_vec())
    }

    /// The ISD-P of container `index` (0-based): `A0000005591010FFFFFFFF89000010 00`,
    /// `…1100`, `…1200`, … as real eUICCs number them. `None` past [`MAX_ISDP_INDEX`].
    pub fn isdp(index: u8) -> Option<Aid> {
        let b14 = ISDP_FIRST.checked_add(index)?;
        let mut aid = ISD_R_AID;
        aid[14] = b14;
        aid[15] = 0x00;
        Some(Aid(aid.to_vec()))
    }

    /// The container index of an ISD-P AID built by [`Aid::isdp`].
    pub fn isdp_index(&self) -> Option<u8> {
        let (prefix, tail) = self.0.split_at_checked(14)?;
        match (prefix == &ISD_R_AID[..14], tail) {
            (true, [b14, 0x00]) => b14.checked_sub(ISDP_FIRST),
            _ => None,
        }
    }
}

impl fmt::Display for Aid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hexfmt::upper(&self.0))
    }
}

impl FromStr for Aid {
    type Err = Es10Error;
    fn from_str(s: &str) -> Result<Aid, Es10Error> {
        let bytes = hexfmt::parse(s).map_err(|_| Es10Error::Invalid {
            field: "aid",
            reason: "an AID is written as hex digits",
        })?;
        Aid::new(&bytes)
    }
}

/// Which profile an ES10 command names (`profileIdentifier CHOICE { isdpAid, iccid }`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProfileId {
    /// Tag `5A`.
    Iccid(Iccid),
    /// Tag `4F`.
    IsdpAid(Aid),
}

impl ProfileId {
    /// The data object: `5A <iccid>` or `4F <aid>`.
    pub fn to_tlv(&self) -> Vec<u8> {
        match self {
            ProfileId::Iccid(i) => crate::tlv::build(super::tag::ICCID, i.as_bytes()),
            ProfileId::IsdpAid(a) => crate::tlv::build(super::tag::ISDP_AID, a.as_bytes()),
        }
    }

    /// From one data object with tag `5A` or `4F`.
    pub(crate) fn from_tlv(tlv: &super::der::DataObject<'_>) -> Result<ProfileId, Es10Error> {
        match tlv.tag {
            super::tag::ICCID => Ok(ProfileId::Iccid(Iccid::from_bytes(tlv.value)?)),
            super::tag::ISDP_AID => Ok(ProfileId::IsdpAid(Aid::new(tlv.value)?)),
            found => Err(Es10Error::UnexpectedTag {
                expected: super::tag::ICCID,
                found,
            }),
        }
    }
}

impl fmt::Display for ProfileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileId::Iccid(i) => i.fmt(f),
            ProfileId::IsdpAid(a) => a.fmt(f),
        }
    }
}

impl FromStr for ProfileId {
    type Err = Es10Error;
    /// As lpac decides: 32 hex characters are an ISD-P AID, anything else an ICCID.
    fn from_str(s: &str) -> Result<ProfileId, Es10Error> {
        if s.len() == 32 && s.bytes().all(|c| c.is_ascii_hexdigit()) {
            Ok(ProfileId::IsdpAid(s.parse()?))
        } else {
            Ok(ProfileId::Iccid(s.parse()?))
        }
    }
}

impl From<Iccid> for ProfileId {
    fn from(i: Iccid) -> ProfileId {
        ProfileId::Iccid(i)
    }
}

impl From<Aid> for ProfileId {
    fn from(a: Aid) -> ProfileId {
        ProfileId::IsdpAid(a)
    }
}

/// The eUICC identifier: 16 bytes, shown as 32 decimal-looking hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Eid(pub [u8; 16]);

impl fmt::Display for Eid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hexfmt::upper(&self.0))
    }
}

impl FromStr for Eid {
    type Err = Es10Error;
    fn from_str(s: &str) -> Result<Eid, Es10Error> {
        let invalid = Es10Error::Invalid {
            field: "eid",
            reason: "an EID is 32 hex digits",
        };
        let bytes = hexfmt::parse(s).map_err(|_| invalid.clone())?;
        Ok(Eid(bytes.try_into().map_err(|_| invalid)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iccid_19_digits_encodes_with_f_pad_in_the_last_byte() {
        let i: Iccid = "8944476500001224158".parse().unwrap();
        assert_eq!(hexfmt::upper(i.as_bytes()), "984474560000214251F8");
        assert_eq!(i.to_string(), "8944476500001224158");
        assert_eq!(Iccid::from_bytes(i.as_bytes()).unwrap(), i);
    }

    #[test]
    fn iccid_20_digits_round_trips() {
        let i: Iccid = "89000123456789012341".parse().unwrap();
        assert_eq!(hexfmt::upper(i.as_bytes()), "98001032547698103214");
        assert_eq!(i.to_string(), "89000123456789012341");
        assert!(i.luhn_valid());
    }

    #[test]
    fn iccid_rejects_wrong_lengths_and_non_digits() {
        assert!(Iccid::from_digits("894447650000122415").is_err()); // 18
        assert!(Iccid::from_digits("894447650000122415812").is_err()); // 21
        assert!(Iccid::from_digits("894447650000122415A").is_err());
        assert!(Iccid::from_bytes(&[0x98; 9]).is_err());
        // F pad anywhere but the last nibble
        assert!(Iccid::from_bytes(&hexfmt::parse("9844F4560000214251F8").unwrap()).is_err());
        assert!(Iccid::from_bytes(&hexfmt::parse("984474560000214251FF").unwrap()).is_err());
    }

    #[test]
    fn luhn_is_a_separate_check() {
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("79927398710"));
        let no_luhn: Iccid = "89000123456789012340".parse().unwrap();
        assert!(!no_luhn.luhn_valid());
    }

    #[test]
    fn isdp_aids_follow_the_euicc_numbering() {
        assert_eq!(
            Aid::isdp(0).unwrap().to_string(),
            "A0000005591010FFFFFFFF8900001000"
        );
        assert_eq!(
            Aid::isdp(1).unwrap().to_string(),
            "A0000005591010FFFFFFFF8900001100"
        );
        assert_eq!(Aid::isdp(1).unwrap().isdp_index(), Some(1));
        assert_eq!(
            Aid::isdp(MAX_ISDP_INDEX).unwrap().isdp_index(),
            Some(MAX_ISDP_INDEX)
        );
        assert!(Aid::isdp(MAX_ISDP_INDEX + 1).is_none());
        assert_eq!(Aid::isd_r().isdp_index(), None);
        assert_eq!(
            hexfmt::upper(&ECASD_AID),
            "A0000005591010FFFFFFFF8900000200"
        );
    }

    #[test]
    fn profile_id_is_an_aid_exactly_when_32_hex_chars() {
        let aid: ProfileId = "A0000005591010FFFFFFFF8900001000".parse().unwrap();
        assert!(matches!(aid, ProfileId::IsdpAid(_)));
        let iccid: ProfileId = "8944476500001224158".parse().unwrap();
        assert!(matches!(iccid, ProfileId::Iccid(_)));
        assert!("A000000559".parse::<ProfileId>().is_err());
        assert!(Aid::new(&[0xA0; 4]).is_err());
        assert!(Aid::new(&[0xA0; 17]).is_err());
    }
}

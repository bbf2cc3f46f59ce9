//! Command APDUs: ISO 7816-3 §12.1 cases 1-4, short and extended; one type for parsing and building.

use std::borrow::Cow;
use thiserror::Error;

/// Largest Nc (command data) an APDU can carry: extended Lc is 1..65535.
pub const MAX_NC: usize = 65_535;
/// Largest Ne: extended Le `0000` means 65 536.
pub const MAX_NE_EXTENDED: usize = 65_536;
/// Largest Ne of a short APDU: Le `00` means 256.
pub const MAX_NE_SHORT: usize = 256;

/// Why a byte string is not a command APDU. Every variant maps to SW 6700 on a card.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApduError {
    #[error("a command APDU needs at least 4 header bytes, got {0}")]
    TooShort(usize),
    #[error("extended length field is truncated (00 followed by {0} byte(s))")]
    TruncatedExtendedLength(usize),
    #[error("extended Lc of 0000 is not allowed")]
    ExtendedLcZero,
    #[error("Lc says {lc} data byte(s) but the body after Lc holds {body} byte(s)")]
    LengthMismatch { lc: usize, body: usize },
    #[error("command data of {0} bytes exceeds 65535")]
    DataTooLong(usize),
    #[error("Le of {0} is outside 1..=65536")]
    LeOutOfRange(usize),
}

/// The ISO 7816-3 case of a command, with its length form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    One,
    TwoShort,
    ThreeShort,
    FourShort,
    TwoExtended,
    ThreeExtended,
    FourExtended,
}

/// Expected response length (Ne) as decoded from Le.
pub type Le = usize;

/// A command APDU. Parsing borrows the data; building may own it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command<'a> {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    data: Cow<'a, [u8]>,
    le: Option<Le>,
    extended: bool,
}

impl<'a> Command<'a> {
    /// A case 1 command; add data and Le with the builder methods.
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Command<'static> {
        Command {
            cla,
            ins,
            p1,
            p2,
            data: Cow::Borrowed(&[]),
            le: None,
            extended: false,
        }
    }

    /// Set the command data (Nc). Use [`Command::try_with_data`] for untrusted lengths.
    pub fn with_data(self, data: impl Into<Cow<'a, [u8]>>) -> Command<'a> {
        Command {
            data: data.into(),
            ..self
        }
    }

    /// Set the command data, refusing more than 65 535 bytes.
    pub fn try_with_data(self, data: impl Into<Cow<'a, [u8]>>) -> Result<Command<'a>, ApduError> {
        let data = data.into();
        if data.len() > MAX_NC {
            return Err(ApduError::DataTooLong(data.len()));
        }
        Ok(Command { data, ..self })
    }

    /// Set Ne (1..=65536); `None` removes Le.
    pub fn with_le(self, le: impl Into<Option<Le>>) -> Command<'a> {
        Command {
            le: le.into(),
            ..self
        }
    }

    /// Force the extended length form even when short would do.
    pub fn extended(self, extended: bool) -> Command<'a> {
        Command { extended, ..self }
    }

    pub fn data(&self) -> &[u8] {
        &self.data
    }
    /// Ne, or `None` when the command has no Le field.
    pub fn le(&self) -> Option<Le> {
        self.le
    }
    /// Ne, 0 when absent.
    pub fn ne(&self) -> usize {
        self.le.unwrap_or(0)
    }
    /// Whether the command uses (or must use) the extended length form. A case 1 command
    /// has no length field, so it is never extended.
    pub fn is_extended(&self) -> bool {
        let has_lengths = !self.data.is_empty() || self.le.is_some();
        (self.extended && has_lengths)
            || self.data.len() > 255
            || self.le.is_some_and(|le| le > MAX_NE_SHORT)
    }

    pub fn case(&self) -> Case {
        let ext = self.is_extended();
        match (self.data.is_empty(), self.le.is_some(), ext) {
            (true, false, _) => Case::One,
            (true, true, false) => Case::TwoShort,
            (true, true, true) => Case::TwoExtended,
            (false, false, false) => Case::ThreeShort,
            (false, false, true) => Case::ThreeExtended,
            (false, true, false) => Case::FourShort,
            (false, true, true) => Case::FourExtended,
        }
    }

    /// Copy borrowed data so the command outlives its input.
    pub fn into_owned(self) -> Command<'static> {
        Command {
            data: Cow::Owned(self.data.into_owned()),
            ..self
        }
    }

    /// Parse a command APDU (ISO 7816-3 §12.1.3). Never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Command<'a>, ApduError> {
        if bytes.len() < 4 {
            return Err(ApduError::TooShort(bytes.len()));
        }
        let (cla, ins, p1, p2) = (bytes[0], bytes[1], bytes[2], bytes[3]);
        let body = &bytes[4..];
        let short_le = |b: u8| if b == 0 { MAX_NE_SHORT } else { b as usize };
        let ext_le = |hi: u8, lo: u8| match u16::from_be_bytes([hi, lo]) {
            0 => MAX_NE_EXTENDED,
            n => n as usize,
        };
        let mk = |data: &'a [u8], le: Option<Le>, extended: bool| Command {
            cla,
            ins,
            p1,
            p2,
            data: Cow::Borrowed(data),
            le,
            extended,
        };
        match body {
            [] => Ok(mk(&[], None, false)),
            [le] => Ok(mk(&[], Some(short_le(*le)), false)),
            [0, rest @ ..] => match rest {
                [_] => Err(ApduError::TruncatedExtendedLength(1)),
                [hi, lo] => Ok(mk(&[], Some(ext_le(*hi, *lo)), true)),
                [hi, lo, tail @ ..] => {
                    let lc = u16::from_be_bytes([*hi, *lo]) as usize;
                    if lc == 0 {
                        return Err(ApduError::ExtendedLcZero);
                    }
                    if tail.len() == lc {
                        Ok(mk(tail, None, true))
                    } else if tail.len() == lc + 2 {
                        Ok(mk(&tail[..lc], Some(ext_le(tail[lc], tail[lc + 1])), true))
                    } else {
                        Err(ApduError::LengthMismatch {
                            lc,
                            body: tail.len(),
                        })
                    }
                }
                [] => Err(ApduError::TruncatedExtendedLength(0)),
            },
            [lc, tail @ ..] => {
                let lc = *lc as usize;
                if tail.len() == lc {
                    Ok(mk(tail, None, false))
                } else if tail.len() == lc + 1 {
                    Ok(mk(&tail[..lc], Some(short_le(tail[lc])), false))
                } else {
                    Err(ApduError::LengthMismatch {
                        lc,
                        body: tail.len(),
                    })
                }
            }
        }
    }

    /// Serialize, choosing the short form unless extended is needed or forced.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ApduError> {
        let nc = self.data.len();
        if nc > MAX_NC {
            return Err(ApduError::DataTooLong(nc));
        }
        if let Some(le) = self.le {
            if le == 0 || le > MAX_NE_EXTENDED {
                return Err(ApduError::LeOutOfRange(le));
            }
        }
        let mut out = Vec::with_capacity(4 + 3 + nc + 2);
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if self.is_extended() {
            if nc > 0 {
                out.push(0);
                out.extend_from_slice(&(nc as u16).to_be_bytes());
                out.extend_from_slice(&self.data);
            }
            if let Some(le) = self.le {
                if nc == 0 {
                    out.push(0);
                }
                out.extend_from_slice(&((le % MAX_NE_EXTENDED) as u16).to_be_bytes());
            }
        } else {
            if nc > 0 {
                out.push(nc as u8);
                out.extend_from_slice(&self.data);
            }
            if let Some(le) = self.le {
                out.push((le % MAX_NE_SHORT) as u8);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn decodes_every_case_with_boundary_lengths() {
        let c = Command::parse(&[0, 0xB0, 0, 0]).unwrap();
        assert_eq!((c.case(), c.le()), (Case::One, None));
        let b = h("00B0000000");
        let c = Command::parse(&b).unwrap();
        assert_eq!((c.case(), c.le()), (Case::TwoShort, Some(256)));
        let b = h("00B00000000000");
        let c = Command::parse(&b).unwrap();
        assert_eq!((c.case(), c.le()), (Case::TwoExtended, Some(65536)));
        let b = h("00B000000000FF");
        assert_eq!(Command::parse(&b).unwrap().le(), Some(255));
        let b = h("00D6000001AA");
        let c = Command::parse(&b).unwrap();
        assert_eq!((c.case(), c.data()), (Case::ThreeShort, &[0xAA][..]));
        let b = h("00A4040002A0A100");
        let c = Command::parse(&b).unwrap();
        assert_eq!((c.case(), c.le()), (Case::FourShort, Some(256)));
    }

    #[test]
    fn extended_lc_uses_three_bytes() {
        let mut b = h("00D60000 000100");
        b.extend(std::iter::repeat_n(0x55, 256));
        let c = Command::parse(&b).unwrap();
        assert_eq!((c.case(), c.data().len()), (Case::ThreeExtended, 256));
        b.extend([0x01, 0x01]);
        let c = Command::parse(&b).unwrap();
        assert_eq!((c.case(), c.le()), (Case::FourExtended, Some(257)));
    }

    #[test]
    fn malformed_encodings_are_typed_errors() {
        assert_eq!(Command::parse(&[0, 0xA4, 0]), Err(ApduError::TooShort(3)));
        assert_eq!(
            Command::parse(&h("00A4040000 01")),
            Err(ApduError::TruncatedExtendedLength(1))
        );
        assert_eq!(
            Command::parse(&h("00A40400 000000 12")),
            Err(ApduError::ExtendedLcZero)
        );
        assert_eq!(
            Command::parse(&h("00A40400 05 0102")),
            Err(ApduError::LengthMismatch { lc: 5, body: 2 })
        );
        assert_eq!(
            Command::parse(&h("00A40400 02 010203 04")),
            Err(ApduError::LengthMismatch { lc: 2, body: 4 })
        );
    }

    #[test]
    fn builder_refuses_impossible_lengths() {
        let big = vec![0u8; MAX_NC + 1];
        assert!(Command::new(0, 0xD6, 0, 0).try_with_data(big).is_err());
        assert_eq!(
            Command::new(0, 0xB0, 0, 0).with_le(65537).to_bytes(),
            Err(ApduError::LeOutOfRange(65537))
        );
        assert_eq!(
            Command::new(0, 0xB0, 0, 0).with_le(0).to_bytes(),
            Err(ApduError::LeOutOfRange(0))
        );
    }

    #[test]
    fn a_case_1_command_is_never_extended() {
        let c = Command::new(0, 0xA4, 0, 0x0C).extended(true);
        assert!(!c.is_extended());
        assert_eq!(c.to_bytes().unwrap(), vec![0, 0xA4, 0, 0x0C]);
    }

    #[test]
    fn builder_encodes_le_256_and_65536_as_zero() {
        assert_eq!(
            Command::new(0, 0xB0, 0, 0).with_le(256).to_bytes().unwrap(),
            h("00B0000000")
        );
        assert_eq!(
            Command::new(0, 0xB0, 0, 0)
                .with_le(65536)
                .to_bytes()
                .unwrap(),
            h("00B00000000000")
        );
        assert_eq!(
            Command::new(0, 0xB0, 0, 0).with_le(257).to_bytes().unwrap(),
            h("00B00000000101")
        );
    }

    fn arb_command() -> impl Strategy<Value = Command<'static>> {
        (
            any::<[u8; 4]>(),
            prop::collection::vec(any::<u8>(), 0..600),
            prop::option::of(1usize..=MAX_NE_EXTENDED),
            any::<bool>(),
        )
            .prop_map(|(h, data, le, ext)| {
                Command::new(h[0], h[1], h[2], h[3])
                    .with_data(data)
                    .with_le(le)
                    .extended(ext)
            })
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(cmd in arb_command()) {
            let bytes = cmd.to_bytes().unwrap();
            let back = Command::parse(&bytes).unwrap();
            prop_assert_eq!(back.data(), cmd.data());
            prop_assert_eq!(back.le(), cmd.le());
            prop_assert_eq!(back.is_extended(), cmd.is_extended());
            prop_assert_eq!([back.cla, back.ins, back.p1, back.p2], [cmd.cla, cmd.ins, cmd.p1, cmd.p2]);
        }

        #[test]
        fn any_bytes_decode_or_error_and_decoded_reencode_identically(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(cmd) = Command::parse(&bytes) {
                prop_assert_eq!(cmd.to_bytes().unwrap(), bytes);
            }
        }
    }
}

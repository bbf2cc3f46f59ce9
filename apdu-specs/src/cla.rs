//! The class byte: interindustry or proprietary, logical channel, chaining and secure messaging.
//!
//! ISO 7816-4 §5.4.1 defines two interindustry layouts; GlobalPlatform proprietary
//! classes (80-FE) reuse the same bit layout, which is how real cards decode them.

use thiserror::Error;

/// Whether the class is interindustry (ISO) or proprietary (b8 = 1, e.g. GlobalPlatform `80`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassKind {
    Interindustry,
    Proprietary,
}

/// Secure-messaging indication of the class byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecureMessaging {
    None,
    /// First interindustry b4-b3 = 01: proprietary secure messaging (GlobalPlatform C-MAC `84`).
    Proprietary,
    /// ISO 7816-4 §6 secure messaging, command header not processed.
    HeaderNotAuthenticated,
    /// ISO 7816-4 §6 secure messaging, command header authenticated.
    HeaderAuthenticated,
}

/// A class byte that ISO 7816-4 does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ClaError {
    #[error("CLA FF is invalid (reserved for PPS)")]
    Invalid,
    #[error("CLA {0:02X} is reserved for future use")]
    Reserved(u8),
}

/// A decoded class byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cla {
    raw: u8,
    kind: ClassKind,
    channel: u8,
    chained: bool,
    sm: SecureMessaging,
}

/// Chaining bit (b5) in both interindustry layouts.
pub const CHAINING_BIT: u8 = 0x10;

/// The highest channel number a class byte can encode (further interindustry: 4 + 15).
pub const MAX_ENCODABLE_CHANNEL: u8 = 19;

impl Cla {
    /// Decode a class byte (ISO 7816-4 §5.4.1).
    pub fn decode(raw: u8) -> Result<Cla, ClaError> {
        if raw == 0xFF {
            return Err(ClaError::Invalid);
        }
        let kind = if raw & 0x80 != 0 {
            ClassKind::Proprietary
        } else if raw & 0xE0 == 0x20 {
            return Err(ClaError::Reserved(raw));
        } else {
            ClassKind::Interindustry
        };
        let chained = raw & CHAINING_BIT != 0;
        let (channel, sm) = if raw & 0x40 == 0 {
            // First interindustry layout: b2-b1 channel, b4-b3 SM.
            let sm = match (raw >> 2) & 0x03 {
                0 => SecureMessaging::None,
                1 => SecureMessaging::Proprietary,
                2 => SecureMessaging::HeaderNotAuthenticated,
                _ => SecureMessaging::HeaderAuthenticated,
            };
            (raw & 0x03, sm)
        } else {
            // Further interindustry layout: b4-b1 = channel - 4, b6 SM.
            let sm = if raw & 0x20 != 0 {
                SecureMessaging::HeaderNotAuthenticated
            } else {
                SecureMessaging::None
            };
            ((raw & 0x0F) + 4, sm)
        };
        Ok(Cla {
            raw,
            kind,
            channel,
            chained,
            sm,
        })
    }

    /// Encode a class byte: `base` is `00` (interindustry) or `80` (proprietary); the channel
    /// picks the first or further layout; `sm` sets the proprietary SM bit (`84`) where possible.
    /// Returns `None` for a channel above 19 or SM on a further-layout channel.
    pub fn encode(proprietary: bool, channel: u8, chained: bool, sm: bool) -> Option<u8> {
        let mut b = if proprietary { 0x80 } else { 0x00 };
        if chained {
            b |= CHAINING_BIT;
        }
        if channel <= 3 {
            b |= channel;
            if sm {
                b |= 0x04;
            }
        } else if channel <= MAX_ENCODABLE_CHANNEL {
            b |= 0x40 | (channel - 4);
            if sm {
                b |= 0x20;
            }
        } else {
            return None;
        }
        Some(b)
    }

    pub fn raw(&self) -> u8 {
        self.raw
    }
    pub fn kind(&self) -> ClassKind {
        self.kind
    }
    pub fn is_proprietary(&self) -> bool {
        self.kind == ClassKind::Proprietary
    }
    pub fn channel(&self) -> u8 {
        self.channel
    }
    pub fn chained(&self) -> bool {
        self.chained
    }
    pub fn secure_messaging(&self) -> SecureMessaging {
        self.sm
    }
    /// The same class with the chaining bit cleared: what identifies a chain's command.
    pub fn without_chaining(&self) -> u8 {
        self.raw & !CHAINING_BIT
    }
    /// The class with channel, chaining and SM bits cleared (`00` or `80` family).
    pub fn family(&self) -> u8 {
        self.raw & 0x80
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_interindustry_channels_chaining_and_sm() {
        let c = Cla::decode(0x13).unwrap();
        assert_eq!(c.kind(), ClassKind::Interindustry);
        assert_eq!(c.channel(), 3);
        assert!(c.chained());
        assert_eq!(c.secure_messaging(), SecureMessaging::None);
        assert_eq!(
            Cla::decode(0x0C).unwrap().secure_messaging(),
            SecureMessaging::HeaderAuthenticated
        );
    }

    #[test]
    fn further_interindustry_channels_start_at_four() {
        assert_eq!(Cla::decode(0x40).unwrap().channel(), 4);
        assert_eq!(Cla::decode(0x4F).unwrap().channel(), 19);
        assert!(Cla::decode(0x50).unwrap().chained());
        assert_eq!(
            Cla::decode(0x60).unwrap().secure_messaging(),
            SecureMessaging::HeaderNotAuthenticated
        );
    }

    #[test]
    fn proprietary_uses_the_same_layout() {
        let c = Cla::decode(0x84).unwrap();
        assert!(c.is_proprietary());
        assert_eq!(c.secure_messaging(), SecureMessaging::Proprietary);
        assert_eq!(Cla::decode(0x81).unwrap().channel(), 1);
        assert_eq!(Cla::decode(0xC1).unwrap().channel(), 5);
    }

    #[test]
    fn ff_and_rfu_are_refused() {
        assert_eq!(Cla::decode(0xFF), Err(ClaError::Invalid));
        for raw in 0x20..=0x3F {
            assert_eq!(Cla::decode(raw), Err(ClaError::Reserved(raw)));
        }
    }

    #[test]
    fn encode_then_decode_round_trips() {
        for ch in 0..=MAX_ENCODABLE_CHANNEL {
            for prop in [false, true] {
                for chained in [false, true] {
                    let raw = Cla::encode(prop, ch, chained, false).unwrap();
                    let c = Cla::decode(raw).unwrap();
                    assert_eq!(
                        (c.channel(), c.chained(), c.is_proprietary()),
                        (ch, chained, prop)
                    );
                }
            }
        }
        assert_eq!(Cla::encode(true, 0, false, true), Some(0x84));
        assert_eq!(Cla::encode(false, 20, false, false), None);
    }
}

//! The security level negotiated by EXTERNAL AUTHENTICATE P1 (GP Card Spec v2.3 §10.6, Amd D §5.1).

use crate::ScpError;
use std::fmt;

/// A security level: which of C-MAC, C-DECRYPTION, R-MAC and R-ENCRYPTION protect the session.
///
/// Only the combinations GlobalPlatform defines exist as values: `00 01 03 11 13 33`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SecurityLevel(u8);

impl SecurityLevel {
    /// Bit: commands carry a C-MAC.
    pub const C_MAC_BIT: u8 = 0x01;
    /// Bit: command data is encrypted.
    pub const C_DEC_BIT: u8 = 0x02;
    /// Bit: responses carry an R-MAC.
    pub const R_MAC_BIT: u8 = 0x10;
    /// Bit: response data is encrypted.
    pub const R_ENC_BIT: u8 = 0x20;

    /// `00`: authenticated, no secure messaging.
    pub const NONE: SecurityLevel = SecurityLevel(0x00);
    /// `01`: C-MAC.
    pub const C_MAC: SecurityLevel = SecurityLevel(0x01);
    /// `03`: C-DECRYPTION and C-MAC.
    pub const C_DEC_C_MAC: SecurityLevel = SecurityLevel(0x03);
    /// `11`: C-MAC and R-MAC.
    pub const C_MAC_R_MAC: SecurityLevel = SecurityLevel(0x11);
    /// `13`: C-DECRYPTION, C-MAC and R-MAC.
    pub const C_DEC_C_MAC_R_MAC: SecurityLevel = SecurityLevel(0x13);
    /// `33`: C-DECRYPTION, C-MAC, R-ENCRYPTION and R-MAC.
    pub const FULL: SecurityLevel = SecurityLevel(0x33);

    /// Every defined level, weakest first.
    pub const ALL: [SecurityLevel; 6] = [
        SecurityLevel::NONE,
        SecurityLevel::C_MAC,
        SecurityLevel::C_DEC_C_MAC,
        SecurityLevel::C_MAC_R_MAC,
        SecurityLevel::C_DEC_C_MAC_R_MAC,
        SecurityLevel::FULL,
    ];

    /// Decode EXTERNAL AUTHENTICATE P1; anything but the six defined levels is refused.
    pub fn from_p1(p1: u8) -> Result<SecurityLevel, ScpError> {
        SecurityLevel::ALL
            .into_iter()
            .find(|l| l.0 == p1)
            .ok_or(ScpError::UnsupportedLevel(p1))
    }

    /// The P1 byte.
    pub const fn bits(self) -> u8 {
        self.0
    }
    pub const fn c_mac(self) -> bool {
        self.0 & Self::C_MAC_BIT != 0
    }
    pub const fn c_dec(self) -> bool {
        self.0 & Self::C_DEC_BIT != 0
    }
    pub const fn r_mac(self) -> bool {
        self.0 & Self::R_MAC_BIT != 0
    }
    pub const fn r_enc(self) -> bool {
        self.0 & Self::R_ENC_BIT != 0
    }
}

impl TryFrom<u8> for SecurityLevel {
    type Error = ScpError;
    fn try_from(p1: u8) -> Result<SecurityLevel, ScpError> {
        SecurityLevel::from_p1(p1)
    }
}

impl fmt::Display for SecurityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.c_mac(), "C-MAC"),
            (self.c_dec(), "C-DEC"),
            (self.r_mac(), "R-MAC"),
            (self.r_enc(), "R-ENC"),
        ];
        let on: Vec<&str> = names.iter().filter(|(b, _)| *b).map(|(_, n)| *n).collect();
        if on.is_empty() {
            write!(f, "{:02X} (no secure messaging)", self.0)
        } else {
            write!(f, "{:02X} ({})", self.0, on.join("+"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_defined_levels_decode() {
        for p1 in 0..=255u8 {
            let ok = matches!(p1, 0x00 | 0x01 | 0x03 | 0x11 | 0x13 | 0x33);
            assert_eq!(SecurityLevel::from_p1(p1).is_ok(), ok, "P1 {p1:02X}");
        }
        assert_eq!(
            SecurityLevel::FULL.to_string(),
            "33 (C-MAC+C-DEC+R-MAC+R-ENC)"
        );
    }
}

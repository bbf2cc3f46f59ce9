//! Instruction codes and well-known identifiers, declared once: ISO 7816-4, GlobalPlatform,
//! SGP.22 ES10 and the authentication applet, each entry with whether its data carries a
//! secret (what traces redact).

/// One instruction of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instruction {
    pub code: u8,
    /// The constant's name (`PUT_KEY`).
    pub name: &'static str,
    /// Whether the command data carries a secret (PIN, key) that must never be logged.
    pub secret: bool,
}

/// Declare a table's constants and derive its `TABLE` from the same lines, so the two never
/// disagree. `secret` after the code marks commands whose data are secret.
macro_rules! ins_table {
    ($( $(#[$doc:meta])* $name:ident = $code:literal $(, $secret:ident)? ; )*) => {
        $( $(#[$doc])* pub const $name: u8 = $code; )*

        /// Every instruction of this table, in declaration order.
        pub const TABLE: &[super::Instruction] = &[
            $( super::Instruction {
                code: $code,
                name: stringify!($name),
                secret: ins_table!(@secret $($secret)?),
            }, )*
        ];
    };
    (@secret secret) => { true };
    (@secret) => { false };
}

/// ISO 7816-4 interindustry instructions the card implements.
pub mod iso {
    ins_table! {
        /// §11.5.6; the data is the PIN.
        VERIFY = 0x20, secret;
        /// VERIFY with BER-TLV data (odd INS): not implemented, redacted all the same.
        VERIFY_ODD = 0x21, secret;
        /// §11.5.7; the data are the old and new PINs.
        CHANGE_REFERENCE_DATA = 0x24, secret;
        /// §11.5.10; the data are the PUK and the new PIN.
        RESET_RETRY_COUNTER = 0x2C, secret;
        MANAGE_CHANNEL = 0x70;
        GET_CHALLENGE = 0x84;
        SELECT = 0xA4;
        READ_BINARY = 0xB0;
        READ_RECORD = 0xB2;
        GET_RESPONSE = 0xC0;
        GET_DATA = 0xCA;
        UPDATE_BINARY = 0xD6;
        UPDATE_RECORD = 0xDC;
        APPEND_RECORD = 0xE2;
    }
}

/// GlobalPlatform Card Specification v2.3.1 §11 instructions (class `80`, `84` with secure
/// messaging, and their forms on other logical channels); typed commands in [`crate::gp`].
pub mod gp {
    ins_table! {
        /// §11.2 DELETE.
        DELETE = 0xE4;
        /// §11.3 GET DATA (card data, CPLC, key information template).
        GET_DATA = 0xCA;
        /// §11.4 GET STATUS.
        GET_STATUS = 0xF2;
        /// §11.5 INSTALL.
        INSTALL = 0xE6;
        /// §11.6 LOAD (blocks of a load file after INSTALL [for load]).
        LOAD = 0xE8;
        /// §11.8 PUT KEY: the data are keys, encrypted under the DEK; a log of them is as
        /// good as the keys to anyone who holds the DEK (the public test DEK, before rotation).
        PUT_KEY = 0xD8, secret;
        /// §11.11 STORE DATA (DGIs, and SGP.22 ES10 requests).
        STORE_DATA = 0xE2;
        /// §E.5.1 (SCP02) and Amendment D §7.1 (SCP03) INITIALIZE UPDATE.
        INITIALIZE_UPDATE = 0x50;
        /// §E.5.2 (SCP02) and Amendment D §7.2 EXTERNAL AUTHENTICATE.
        EXTERNAL_AUTHENTICATE = 0x82;
    }
}

/// SGP.22 ES10 (local profile assistant to ISD-R): requests travel in GlobalPlatform
/// STORE DATA ([`gp::STORE_DATA`]), answers through ISO GET RESPONSE ([`iso::GET_RESPONSE`]).
pub mod es10 {
    ins_table! {
        /// ETSI TS 102 221 §11.1.19 TERMINAL CAPABILITY, sent by lpac before anything else.
        TERMINAL_CAPABILITIES = 0xAA;
    }
}

/// The authentication applet (CLA 80; `docs/mutual-auth.md`), re-exported as
/// [`crate::auth::ins`].
pub mod auth {
    ins_table! {
        /// `80 10 00 00 Lc {81 service id} 00`: the sealed R (`70`).
        GET_REGISTRATION = 0x10;
        /// `80 12 00 00 Lc {sealed R' 78}`.
        VERIFY_SERVER = 0x12;
        /// `80 14 00 00 Lc {81 call 82 data} 00`: protected `73` up message.
        SECURE_SEND = 0x14;
        /// `80 16 00 00 Lc {73 down message} 00`: `75` result without credential.
        SECURE_RECEIVE = 0x16;
        /// `80 CA 7F 21 00` (certificate) / `80 CA 00 5A 00` (identity).
        GET_DATA = 0xCA;
    }
}

/// Every table, for lookups by code (codes repeat across tables: `E2` is APPEND RECORD in
/// ISO and STORE DATA in GlobalPlatform).
pub const TABLES: [&[Instruction]; 4] = [iso::TABLE, gp::TABLE, es10::TABLE, auth::TABLE];

/// Whether a command with this INS may carry a secret in its data, in any table: a trace
/// sees only bytes, so a code that is secret in one table is redacted in all.
pub fn carries_secrets(ins: u8) -> bool {
    TABLES
        .iter()
        .flat_map(|t| t.iter())
        .any(|i| i.code == ins && i.secret)
}

/// The loggable text of a C-APDU whose data carry a secret ([`carries_secrets`]): its header
/// and the data's length, `00200081 <5 byte(s) redacted>`; `None` for any other command.
/// The card's trace and the terminal's `--trace` both show this, so the rule is written once.
pub fn redacted(apdu: &[u8]) -> Option<String> {
    match apdu {
        [_, ins, ..] if apdu.len() > 4 && carries_secrets(*ins) => Some(format!(
            "{} <{} byte(s) redacted>",
            crate::hexfmt::upper(&apdu[..4]),
            apdu.len() - 4
        )),
        _ => None,
    }
}

/// Whether an INS byte is invalid in every class (ISO 7816-3: 6X and 9X are procedure bytes).
pub const fn is_invalid_ins(ins: u8) -> bool {
    matches!(ins & 0xF0, 0x60 | 0x90)
}

/// Well-known file identifiers.
pub mod fid {
    /// The master file.
    pub const MF: u16 = 0x3F00;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_bearing_instructions_are_the_pin_commands_and_put_key() {
        let secret: Vec<u8> = (0..=255u8).filter(|i| carries_secrets(*i)).collect();
        assert_eq!(secret, [0x20, 0x21, 0x24, 0x2C, 0xD8]);
    }

    #[test]
    fn no_table_declares_a_code_twice_or_a_procedure_byte() {
        for table in TABLES {
            for (n, i) in table.iter().enumerate() {
                assert!(!is_invalid_ins(i.code), "{}", i.name);
                assert!(
                    table[..n].iter().all(|o| o.code != i.code),
                    "{} repeats {:02X}",
                    i.name,
                    i.code
                );
            }
        }
    }

    #[test]
    fn the_table_lists_the_constants() {
        assert_eq!(gp::TABLE.len(), 9);
        assert!(gp::TABLE
            .iter()
            .any(|i| i.name == "PUT_KEY" && i.code == gp::PUT_KEY && i.secret));
        assert_eq!(auth::GET_REGISTRATION, crate::auth::ins::GET_REGISTRATION);
    }
}

//! Instruction codes and well-known identifiers, declared once.

/// ISO 7816-4 interindustry instructions the card implements.
pub mod iso {
    pub const VERIFY: u8 = 0x20;
    pub const CHANGE_REFERENCE_DATA: u8 = 0x24;
    pub const RESET_RETRY_COUNTER: u8 = 0x2C;
    pub const MANAGE_CHANNEL: u8 = 0x70;
    pub const GET_CHALLENGE: u8 = 0x84;
    pub const SELECT: u8 = 0xA4;
    pub const READ_BINARY: u8 = 0xB0;
    pub const READ_RECORD: u8 = 0xB2;
    pub const GET_RESPONSE: u8 = 0xC0;
    pub const GET_DATA: u8 = 0xCA;
    pub const UPDATE_BINARY: u8 = 0xD6;
    pub const UPDATE_RECORD: u8 = 0xDC;
    pub const APPEND_RECORD: u8 = 0xE2;
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

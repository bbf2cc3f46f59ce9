//! GlobalPlatform card management (Card Specification v2.3.1 §11, Amendment D), the typed
//! codec: each command is one type that the host builds (`to_command`) and the card parses
//! (`parse`, whose error is the status word the card answers), and each answer one type
//! with `to_bytes` and `parse`.
//!
//! Pure: no cryptography (keys travel encrypted; `secure-channel` encrypts, decrypts and
//! checks them), no I/O, no card state. Parsers take bytes from outside and never panic.
//! The instruction codes are [`crate::ins::gp`].

pub mod command;
pub mod response;

pub use command::{
    load_file_data, Delete, ExternalAuthenticate, GetData, GetStatus, GpCommand, InitializeUpdate,
    Install, InstallParameters, KeyComponent, KeyType, Load, PutKey, StatusScope, StoreData,
};
pub use response::{
    gp_oid, oid_string, CardRecognitionData, Cplc, Dgi, GpDataError, KeyComponentInfo, KeyInfo,
    KeyInformation, PutKeyConfirmation, RecognitionObject, RegistryEntry,
};

/// The GlobalPlatform class on the basic channel, without secure messaging.
pub const CLA: u8 = 0x80;

/// Data objects of GET DATA, as P1-P2 (§11.3.3.1, §H.2, §H.6).
pub mod object {
    /// Card Data: card recognition data (`66 { 73 { … } }`).
    pub const CARD_DATA: u16 = 0x0066;
    /// Card Production Life Cycle data (`9F7F`, 42 bytes).
    pub const CPLC: u16 = 0x9F7F;
    /// Key Information Template (`E0 { C0 … }`).
    pub const KEY_INFORMATION: u16 = 0x00E0;
    /// The objects the card answers; any other P1-P2 is `6A88`.
    pub const ALL: [u16; 3] = [CARD_DATA, CPLC, KEY_INFORMATION];
}

/// BER-TLV tags of the answers.
pub mod tag {
    pub const CARD_DATA: u32 = 0x66;
    /// Card recognition data inside `66` (§H.2).
    pub const CARD_RECOGNITION_DATA: u32 = 0x73;
    pub const OID: u32 = 0x06;
    /// Card management type and version (`60 { 06 GP.2.<version> }`).
    pub const CARD_MANAGEMENT_TYPE: u32 = 0x60;
    /// Card identification scheme (`63 { 06 GP.3 }`).
    pub const CARD_IDENTIFICATION_SCHEME: u32 = 0x63;
    /// One secure channel protocol with its i parameter (`64 { 06 GP.4.<scp>.<i> }`).
    pub const SECURE_CHANNEL_PROTOCOL: u32 = 0x64;
    pub const CPLC: u32 = 0x9F7F;
    pub const KEY_INFORMATION_TEMPLATE: u32 = 0xE0;
    /// One key of the template.
    pub const KEY_INFORMATION: u32 = 0xC0;
    /// One entry of a GET STATUS answer in tag format (§11.4.3.1).
    pub const REGISTRY_ENTRY: u32 = 0xE3;
    pub const AID: u32 = 0x4F;
    pub const LIFE_CYCLE_STATE: u32 = 0x9F70;
    pub const PRIVILEGES: u32 = 0xC5;
    /// For an application: the executable load file it was installed from (Table 11-36).
    pub const LOAD_FILE_AID: u32 = 0xC4;
    /// The associated security domain's AID (Table 11-36).
    pub const ASSOCIATED_SD: u32 = 0xCC;
    /// For a load file (GET STATUS P1 `10`): one executable module's AID (Table 11-36).
    pub const MODULE_AID: u32 = 0x84;
}

/// Key type codes (Table 11-16).
pub mod key_type {
    /// DES (two- or three-key 3DES); SCP02 keys.
    pub const DES: u8 = 0x80;
    /// AES; SCP03 keys.
    pub const AES: u8 = 0x88;
    /// Marks a component of the extended key information format.
    pub const EXTENDED: u8 = 0xFF;
}

/// GET STATUS P1 (Table 11-33).
pub mod status_p1 {
    pub const ISD: u8 = 0x80;
    pub const APPLICATIONS: u8 = 0x40;
    pub const LOAD_FILES: u8 = 0x20;
    pub const LOAD_FILES_AND_MODULES: u8 = 0x10;
}

/// GET STATUS P2 (Table 11-34): b2 = 1 answers in tag format, b1 = 1 asks for the next
/// occurrences after a `6310`.
pub mod status_p2 {
    pub const FIRST: u8 = 0x02;
    pub const NEXT: u8 = 0x03;
}

/// INSTALL P1 (Table 11-44): which INSTALL.
pub mod install_p1 {
    pub const FOR_LOAD: u8 = 0x02;
    pub const FOR_INSTALL: u8 = 0x04;
    pub const FOR_MAKE_SELECTABLE: u8 = 0x08;
    pub const FOR_EXTRADITION: u8 = 0x10;
    pub const FOR_PERSONALIZATION: u8 = 0x20;
    pub const FOR_REGISTRY_UPDATE: u8 = 0x40;
}

/// STORE DATA P1 (Table 11-89).
pub mod store_data_p1 {
    /// b8: the last block of the sequence.
    pub const LAST_BLOCK: u8 = 0x80;
    /// b7-b6 = 11: the data are encrypted (sensitive DGIs).
    pub const ENCRYPTED: u8 = 0x60;
    /// b5-b4 = 01: the data are DGIs (personalization).
    pub const DGI: u8 = 0x08;
    /// b5-b4 = 10: the data are BER-TLV (SGP.22 ES10 requests).
    pub const BER_TLV: u8 = 0x10;
}

/// PUT KEY P2 (§11.8.2.2): b8 = several keys follow, b7-b1 = identifier of the first.
pub const PUT_KEY_P2_KEY_SET: u8 = 0x81;

/// Life cycle states of the issuer security domain (§5.1.1) and of applications (§5.3.1).
pub mod life_cycle {
    pub const OP_READY: u8 = 0x01;
    pub const INITIALIZED: u8 = 0x07;
    pub const SECURED: u8 = 0x0F;
    pub const CARD_LOCKED: u8 = 0x7F;
    pub const TERMINATED: u8 = 0xFF;
    pub const LOADED: u8 = 0x01;
    pub const INSTALLED: u8 = 0x03;
    pub const SELECTABLE: u8 = 0x07;
    pub const PERSONALIZED: u8 = 0x0F;
}

#[cfg(test)]
mod tests;

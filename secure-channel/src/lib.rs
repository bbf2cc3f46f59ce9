//! Secure messaging shared by the card and the terminal/server: one implementation each.
//!
//! Seed-1 mutual authentication (certificates, signed R/R', ECDH + HKDF, the AES-256-GCM
//! connection) lives in [`mutual`], used by the authentication applet and the server.
//!
//! GlobalPlatform SCP03 ([`scp03`], AES-128/192/256, S8 and S16) and SCP02 ([`scp02`], 3DES,
//! i = 15/55) live in [`scp`]: one session state machine ([`scp::core`]: security level, MAC
//! chaining, the command counter, wrap and unwrap, the abort rule, the channel binding) with
//! each protocol reduced to its key derivation, cryptograms, padding and MAC rules (the
//! [`Protocol`] trait, implemented by [`scp02::Scp02`] and [`scp03::Scp03`]). Its two ends:
//!
//! * the **card** ([`CardSession`], [`scp::card`]; card-emulator) answers INITIALIZE UPDATE
//!   with `CardSession::initialize_update`, checks EXTERNAL AUTHENTICATE with
//!   `external_authenticate`, then per command calls `unwrap_command` (C-APDU on the wire →
//!   plain C-APDU) and `wrap_response` (plain data + SW → R-APDU on the wire);
//! * the **host** ([`HostHandshake`] → [`HostSession`], [`scp::host`]; reader-client) builds
//!   INITIALIZE UPDATE, turns the card's answer into a session plus the EXTERNAL AUTHENTICATE
//!   command, then per command calls `wrap_command` and `unwrap_response`. A transport
//!   decorator is a thin loop around these two.
//!
//! [`AnySession`] (card) and [`AnyHostSession`] (host) hold a session of either protocol;
//! both ends also implement [`CardSecureChannel`] / [`HostSecureChannel`] for trait objects.
//! `scp03::CardSession` and the like name one protocol's sessions.
//!
//! Everything is sans-IO and byte-in/byte-out; every parser of outside bytes returns
//! [`ScpError`] instead of panicking. Keys live in [`StaticKeys`] (zeroized on drop);
//! [`kcv_aes`], [`kcv_des3`] and the sessions' `encrypt_key`/`decrypt_key` serve PUT KEY.
//!
//! Rules the sessions enforce (GP Card Spec v2.3.1 Appendix E, Amendment D v1.2):
//!
//! * C-MAC covers header, Lc and data, never Le; the class byte enters the MAC with the logical
//!   channel zeroed, so a session is bound to the channel its INITIALIZE UPDATE came on and
//!   refuses commands from any other.
//! * SCP03 encrypts first, then MACs; SCP02 MACs the plain command, then encrypts. The
//!   encryption counter counts every command, also those without data (which are not
//!   encrypted).
//! * Responses to error status words (all but `9000`, `62xx`, `63xx`) carry neither data nor
//!   R-MAC; the response to EXTERNAL AUTHENTICATE is never protected.
//! * Any security error aborts a card session: every later command is refused with `6982`
//!   ([`ScpError::Aborted`]) until the caller terminates it (`close`).
//!
//! Layering notes for callers: wrap the *whole* response before splitting it into `61xx`
//! chunks, and unwrap after reassembling them; each C-APDU on the wire (also each link of an
//! ISO command chain) is one wrapped unit. The card persists the sequence counter and passes
//! its value in; it terminates the session on DESELECT, channel close, reset and a new
//! INITIALIZE UPDATE.
//!
//! ```
//! use secure_channel::{
//!     scp03, AnySession, CardChallenge, CardConfig, CardSecureChannel, InitializeUpdate,
//!     SecurityLevel, StaticKeys,
//! };
//!
//! # fn main() -> Result<(), secure_channel::ScpError> {
//! let keys = StaticKeys::gp_default();
//! let card_config = CardConfig::scp03(0x30, &[0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00]);
//!
//! // Host: INITIALIZE UPDATE.
//! let host = scp03::HostHandshake::new(&keys, 0x00)?;
//! let iu = host.initialize_update();
//!
//! // Card: answer it (the card picks its key set by the requested KVN first).
//! let request = InitializeUpdate::parse(&iu)?;
//! let (card, iu_data) =
//!     scp03::CardSession::initialize_update(&keys, &card_config, 1, &request, CardChallenge::FromConfig)?;
//! // A card keeps either protocol's session per logical channel.
//! let mut card = AnySession::from(card);
//! let iu_response = [iu_data.as_slice(), &[0x90, 0x00]].concat();
//!
//! // Host: check the card cryptogram, send EXTERNAL AUTHENTICATE; card: verify it, answer 9000.
//! let (mut host, ext_auth) = host.authenticate(&iu_response, SecurityLevel::FULL)?;
//! assert_eq!(card.external_authenticate(&ext_auth)?, SecurityLevel::FULL);
//! host.confirm(&[0x90, 0x00])?;
//!
//! // One protected exchange: GET STATUS.
//! let wire = host.wrap_command(&[0x80, 0xF2, 0x80, 0x00, 0x02, 0x4F, 0x00, 0x00])?;
//! assert_eq!(card.unwrap_command(&wire)?, [0x80, 0xF2, 0x80, 0x00, 0x02, 0x4F, 0x00, 0x00]);
//! let response = card.wrap_response(&[0xE3, 0x00], 0x9000);
//! assert_eq!(host.unwrap_response(&response)?, (vec![0xE3, 0x00], 0x9000));
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod crypto;
mod error;
pub mod gp;
pub mod keys;
mod level;
pub mod mutual;
pub mod scp;

pub use scp::{scp02, scp03};
pub use scp::{
    AnyHostSession, AnySession, CardSecureChannel, CardSession, HostHandshake, HostSecureChannel,
    HostSession, Protocol,
};

pub use error::ScpError;
pub use gp::{is_protected_status, CardChallenge, CardConfig, InitializeUpdate};
pub use keys::{kcv_aes, kcv_des3, well_known_key, Diversification, StaticKeys};
pub use level::SecurityLevel;

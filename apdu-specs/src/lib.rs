//! The wire contract shared by the card, the terminal and the tests: APDU codec,
//! class byte, status words, TLV and the constants of every table we speak.
//!
//! Nothing here does I/O; everything here is total: any byte string either decodes
//! into a typed value or yields a typed error.
#![forbid(unsafe_code)]

pub mod auth;
pub mod cla;
pub mod command;
pub mod der;
pub mod es10;
pub mod gp;
pub mod hexfmt;
pub mod ins;
pub mod response;
pub mod status;
pub mod tlv;
pub mod virtual_card;

pub use cla::{Cla, ClassKind};
pub use command::{ApduError, Command, Le};
pub use response::{Response, ResponseError};
pub use status::Status;
pub use virtual_card::VirtualCard;

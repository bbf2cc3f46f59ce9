//! The terminal side: talks to cards over PC/SC (and in-process for tests).
//!
//! Layers: [`transport`] (bytes in, bytes out: PC/SC in [`pcsc_reader`], a
//! [`card_emulator::VirtualCard`] in-process, or a tracing decorator) -> [`exchange`]
//! (GET RESPONSE and wrong-Le follow-ups) -> [`script`] (scriptor files) and [`conform`]
//! (conformance suites with expected answers). [`atr`] decodes answers-to-reset.
#![forbid(unsafe_code)]

pub mod atr;
pub mod conform;
pub mod error;
pub mod exchange;
pub mod pcsc_reader;
pub mod script;
pub mod transport;

pub use error::ClientError;
pub use exchange::{transmit_following, Reply};
pub use transport::{InProcess, Traced, Transport};

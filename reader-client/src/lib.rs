//! The terminal side: talks to cards over PC/SC (and in-process for tests).
//!
//! Layers: [`transport`] (bytes in, bytes out: PC/SC in [`pcsc_reader`], a
//! [`card_emulator::VirtualCard`] in-process, or a tracing decorator) -> [`exchange`]
//! (GET RESPONSE and wrong-Le follow-ups) -> [`script`] (scriptor files) and [`conform`]
//! (conformance suites with expected answers). [`atr`] decodes answers-to-reset.
//!
//! Card management: [`scp`] is GlobalPlatform secure messaging as a transport decorator;
//! [`gp`] the GlobalPlatform card-manager commands on top of it; [`es10_client`] the SGP.22
//! ES10c exchange (as lpac sends it) and [`containers`] the `containers` command's output.
#![forbid(unsafe_code)]

pub mod atr;
pub mod conform;
pub mod containers;
pub mod error;
pub mod es10_client;
pub mod exchange;
#[cfg(test)]
mod fake_sd;
pub mod gp;
pub mod pcsc_reader;
pub mod scp;
pub mod script;
pub mod transport;

pub use error::ClientError;
pub use exchange::{transmit_following, Reply};
pub use transport::{InProcess, Traced, Transport};

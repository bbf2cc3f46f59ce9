//! The virtual secure element: a pure state machine `command bytes -> response bytes`
//! over a durable card state, plus the transports that carry APDUs to it.
//!
//! Layers, arrows pointing down: transports (`vpcd`, stdio in the binary) -> [`Card`]
//! (dispatcher: class, channels, chaining, GET RESPONSE) -> `commands` (ISO 7816-4) ->
//! `fs` / `state` -> `store` (snapshot + journal).
#![forbid(unsafe_code)]

pub mod applets;
pub mod atr;
pub mod ca;
mod card;
pub mod channel;
mod commands;
pub mod fs;
pub mod inspect;
pub mod pin;
pub mod profile;
pub mod secure;
pub mod state;
pub mod store;
pub mod trace;
pub mod vm;
pub mod vpcd;

pub use card::{system_clock, Card};

/// What every transport (vpcd, stdio, in-process) drives: a card with power and APDUs.
pub trait VirtualCard {
    /// The ATR; cheap, callable in any power state (vpcd asks on every presence poll).
    fn atr(&self) -> Vec<u8>;
    /// Cold power-on: volatile state cleared; returns the ATR.
    fn power_on(&mut self) -> Vec<u8>;
    /// Power off: volatile state (selection, security status, channels) cleared.
    fn power_off(&mut self);
    /// Warm reset: like power off + on; returns the ATR.
    fn reset(&mut self) -> Vec<u8>;
    /// One C-APDU in, one R-APDU out (always at least the 2 status bytes).
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8>;
}

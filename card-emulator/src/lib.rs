//! The virtual secure element: a pure state machine `command bytes -> response bytes`
//! over a durable card state, plus the transports that carry APDUs to it.
//!
//! Layers, arrows pointing down: transports (`vpcd`, stdio in the binary) -> [`Card`]
//! (dispatcher: class, channels, chaining, GET RESPONSE) -> `commands` (ISO 7816-4) ->
//! `fs` / `state` -> `store` (snapshot + journal).
//!
//! The binaries' tools (command line, PC/SC checks of `doctor`, signal handling, log set-up)
//! sit behind the `cli` feature (default); without it this is the card library alone.
#![forbid(unsafe_code)]

pub mod applet_host;
pub mod applet_sources;
pub mod applets;
pub mod atr;
pub mod ca;
mod card;
pub mod channel;
mod commands;
pub mod fs;
// The text reports of `card-emulator inspect` and `doctor`; nothing else reads them.
#[cfg(feature = "cli")]
pub mod inspect;
pub mod pin;
pub mod pki;
pub mod profile;
pub mod secure;
pub mod state;
pub mod store;
pub mod trace;
pub mod vm;
pub mod vpcd;

pub use card::{system_clock, Card};

// Declared in apdu-specs so the terminal's in-process mode and the card share it without
// depending on each other; re-exported so `card_emulator::VirtualCard` keeps working.
pub use apdu_specs::VirtualCard;

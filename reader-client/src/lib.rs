//! The terminal side: talks to cards over PC/SC (and in-process for tests).
//!
//! Layers: [`transport`] (bytes in, bytes out: PC/SC in [`pcsc_reader`], a
//! [`apdu_specs::VirtualCard`] in-process, or a tracing decorator) -> [`exchange`]
//! (GET RESPONSE and wrong-Le follow-ups) -> [`script`] (scriptor files) and [`conform`]
//! (conformance suites with expected answers). [`atr`] decodes answers-to-reset.
//!
//! Card management: [`scp`] is GlobalPlatform secure messaging as a transport decorator;
//! [`gp`] the GlobalPlatform card-manager commands on top of it; [`es10_client`] the SGP.22
//! ES10c exchange (as lpac sends it) and [`containers`] the `containers` command's output.
//!
//! Mutual authentication (seed document 1): [`auth_client`] drives the card's
//! authentication applet, [`portal_client`] the portal's HTTP API, [`flow`] runs the seed
//! steps 1-6 with a printed transcript, and [`demo`] orchestrates server, portal and card.
//!
//! [`InProcess`] drives any [`apdu_specs::VirtualCard`], so only the `in-process` feature
//! (default) links the card emulator: for the binary's `--in-process` and the demo's
//! fallback. The binary's command line is `src/cli.rs`, what each command does `src/cmd/`.
#![forbid(unsafe_code)]

pub mod atr;
pub mod auth_client;
pub mod conform;
pub mod containers;
pub mod demo;
pub mod error;
pub mod es10_client;
pub mod exchange;
#[cfg(test)]
mod fake_sd;
pub mod flow;
pub mod gp;
pub mod pcsc_reader;
pub mod portal_client;
pub mod scp;
pub mod script;
pub mod transport;

pub use apdu_specs::Response;
pub use error::ClientError;
pub use exchange::transmit_following;
pub use transport::{InProcess, Traced, Transport};

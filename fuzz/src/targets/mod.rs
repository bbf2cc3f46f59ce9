//! The bodies of the fuzz targets, one module each: `run(input)` panics where a target
//! fails. cargo-fuzz (`fuzz/libfuzzer`) calls them under libFuzzer; `cargo test` replays
//! every seed and kept crash input through them (`fuzz/tests/replay.rs`).

pub mod apdu_codec;
pub mod applet_module;
pub mod auth_messages;
pub mod card;
pub mod es10_requests;
pub mod mutual_open;
pub mod portal_body;
pub mod scp_unwrap;
pub mod server_body;
pub mod tlv;
pub mod vpcd_framing;

/// A target's body: panics where the target fails.
pub type Body = fn(&[u8]);

/// Every target by name, as scripts/fuzz.sh and the seed directories name them.
pub const ALL: &[(&str, Body)] = &[
    ("apdu_codec", apdu_codec::run),
    ("applet_module", applet_module::run),
    ("auth_messages", auth_messages::run),
    ("card", card::run),
    ("es10_requests", es10_requests::run),
    ("mutual_open", mutual_open::run),
    ("portal_body", portal_body::run),
    ("scp_unwrap", scp_unwrap::run),
    ("server_body", server_body::run),
    ("tlv", tlv::run),
    ("vpcd_framing", vpcd_framing::run),
];

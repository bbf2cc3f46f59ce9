//! The whole card: arbitrary APDU sequences with power cycles and warm resets against a
//! fresh in-memory card (default profile plus the GP test key sets). Every answer is an
//! R-APDU of 2..=65538 bytes, nothing panics (libFuzzer aborts on a panic even where the
//! card would catch it), and after every step the persistent state still validates.
//!
//! Input: records. Kind 1: power off, then on. Kind 2: warm reset. Kind 3: power off,
//! power on, and the ATR must not change. Any other kind: transmit the bytes.

use crate::{fresh_card, records};
use card_emulator::VirtualCard;

/// One input: panics exactly where the fuzz target reports a failure.
pub fn run(data: &[u8]) {
    let mut card = fresh_card();
    let atr = card.atr();
    for (kind, bytes) in records(data) {
        match kind {
            1 => {
                card.power_off();
                assert_eq!(card.power_on(), atr);
            }
            2 => assert_eq!(card.reset(), atr),
            3 => {
                card.power_off();
                card.power_on();
                assert_eq!(card.atr(), atr);
            }
            _ => {
                let resp = card.transmit(bytes);
                assert!(
                    (2..=65_538).contains(&resp.len()),
                    "answer of {} bytes to {}",
                    resp.len(),
                    hex::encode(bytes)
                );
                let sw = u16::from_be_bytes([resp[resp.len() - 2], resp[resp.len() - 1]]);
                assert_ne!(
                    sw,
                    0x6581,
                    "the card broke (memory failure) on {}",
                    hex::encode(bytes)
                );
            }
        }
        if let Err(e) = card.state().validate() {
            panic!(
                "state no longer validates after {}: {e}",
                hex::encode(bytes)
            );
        }
    }
}

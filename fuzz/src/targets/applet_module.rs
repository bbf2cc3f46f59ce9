//! Loaded applets: arbitrary module bytes loaded over GlobalPlatform into container A of a
//! fresh card (default profile, a small fuel budget), installed, selected and sent a few
//! commands. Every answer is an R-APDU, nothing panics (wasmi included), the persistent
//! state still validates, and the card's own commands still work afterwards.
//!
//! Input: the module bytes (a WebAssembly binary).

use crate::{card_with, fixed_state};
use card_emulator::applet_host::GpHost;
use card_emulator::VirtualCard;
use secure_channel::StaticKeys;

const ISDP_A: &[u8] = &[
    0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x10, 0x00,
];
const PACKAGE: &[u8] = &[0xA0, 0x00, 0x00, 0x00, 0xF1, 0xEC, 0x4F, 0x00];
const APPLET: &[u8] = &[0xA0, 0x00, 0x00, 0x00, 0xF1, 0xEC, 0x4F, 0x00, 0x01];
const COMMANDS: &[&[u8]] = &[
    &[
        0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x00, 0xF1, 0xEC, 0x4F, 0x00, 0x01, 0x00,
    ],
    &[0x80, 0x10, 0x00, 0x00, 0x02, 0xAB, 0xCD, 0x00],
    &[0x80, 0x20, 0x00, 0x00, 0x00],
    &[0x80, 0x01, 0x01, 0x00, 0x00],
    &[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00],
];

/// One input: panics exactly where the fuzz target reports a failure.
pub fn run(data: &[u8]) {
    // A small fuel budget: a looping module costs the fuzzer milliseconds, not seconds.
    let mut state = fixed_state().clone();
    state.applet_limits.fuel = 200_000;
    let mut card = card_with(state);
    let tx = &mut |a: &[u8]| {
        let r = card.transmit(a);
        assert!(
            (2..=65_538).contains(&r.len()),
            "answer of {} bytes",
            r.len()
        );
        r
    };
    let mut gp = GpHost::open(tx, &StaticKeys::gp_default()).expect("SCP03 opens");
    let sw = gp
        .load(tx, ISDP_A, PACKAGE, data)
        .expect("the session holds");
    assert!(
        matches!(sw, 0x9000 | 0x6A80 | 0x6A84),
        "LOAD answered {sw:04X}"
    );
    if sw == 0x9000 {
        let sw = gp.install(tx, PACKAGE, APPLET, &[], Some(16));
        let sw = sw.expect("the session holds");
        assert!(sw != 0x6581, "INSTALL broke the card");
        for cmd in COMMANDS {
            let r = tx(cmd);
            assert_ne!(r[r.len() - 2..], [0x65, 0x81], "the card broke");
        }
    }
    card.state().validate().expect("the state still validates");
    let r = card.transmit(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00]);
    assert_eq!(r, [0x90, 0x00], "SELECT MF after the applet");
}

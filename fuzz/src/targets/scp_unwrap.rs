//! SCP02 and SCP03, card side, through the one card-end and host-end session types, after
//! a real handshake (default keys, fixed host challenge; SCP03 S8 or S16 at each of its six
//! levels, SCP02 i = 55 or 15 at levels 00, 01, 03): arbitrary wire commands never panic,
//! any refusal aborts the session for good, commands the host wrapped unwrap to exactly
//! the plain command, responses the card wraps unwrap on the host to the same data and SW,
//! and a command altered anywhere the C-MAC covers is refused.
//!
//! Input: `config || records`. Config: [`ScpConfig::from_byte`] (bit 4 SCP02, bit 3 S16 or
//! i = 15, bits 0-2 the level). Records:
//! kind 0 a raw wire command; kind 1 a plain command the host wraps (the response data is
//! the reversed command, the SW picked by its length); kind 2 a plain command the host
//! wraps and the last 2 bytes say where to flip which bits.

use crate::{mac_covered_len, records, scp_pair, ScpConfig, RESPONSE_SWS};
use apdu_specs::cla::SecureMessaging;
use apdu_specs::{Cla, Command};
use secure_channel::{
    is_protected_status, CardSecureChannel, HostSecureChannel, ScpError, SecurityLevel,
};

fn same_command(a: &[u8], b: &[u8]) {
    let (a, b) = (
        Command::parse(a).expect("plain parses"),
        Command::parse(b).expect("unwrapped parses"),
    );
    assert_eq!((a.cla, a.ins, a.p1, a.p2), (b.cla, b.ins, b.p1, b.p2));
    assert_eq!(a.data(), b.data());
    assert_eq!(a.le(), b.le());
}

/// One input: panics exactly where the fuzz target reports a failure.
pub fn run(data: &[u8]) {
    let Some((&config, rest)) = data.split_first() else {
        return;
    };
    let config = ScpConfig::from_byte(config);
    let level = config.level;
    let (mut card, mut host) = scp_pair(config).expect("the fixed handshake opens");
    assert_eq!(card.security_level(), Some(level));
    let mut synced = true;
    for (kind, bytes) in records(rest) {
        let was_aborted = card.is_aborted();
        match kind % 3 {
            0 => {
                let r = card.unwrap_command(bytes);
                if was_aborted {
                    assert!(matches!(r, Err(ScpError::Aborted)));
                }
                match r {
                    Ok(plain) => {
                        Command::parse(&plain).expect("an unwrapped command parses");
                        if level == SecurityLevel::NONE {
                            assert_eq!(plain, bytes);
                        } else {
                            // Only a replayed seed gets here; the host is now behind.
                            synced = false;
                        }
                        let _ = card.wrap_response(&[], 0x9000);
                    }
                    Err(e) => {
                        assert!(card.is_aborted(), "{e} did not abort the session");
                        assert_ne!(e.status_word(), 0x9000);
                    }
                }
            }
            1 | 2 => {
                let Ok(mut wire) = host.wrap_command(bytes) else {
                    continue;
                };
                let tamper = kind % 3 == 2 && level != SecurityLevel::NONE && bytes.len() >= 2;
                if tamper {
                    let covered = mac_covered_len(&wire);
                    let at = usize::from(bytes[bytes.len() - 2]) % covered;
                    wire[at] ^= bytes[bytes.len() - 1] | 1;
                }
                let r = card.unwrap_command(&wire);
                if was_aborted {
                    assert!(matches!(r, Err(ScpError::Aborted)));
                    continue;
                }
                if tamper {
                    assert!(
                        r.is_err(),
                        "an altered command was accepted: {}",
                        hex::encode(&wire)
                    );
                    assert!(card.is_aborted());
                    return;
                }
                if !synced {
                    continue;
                }
                let sm_in_plain = bytes
                    .first()
                    .and_then(|c| Cla::decode(*c).ok())
                    .is_none_or(|c| c.secure_messaging() != SecureMessaging::None);
                if sm_in_plain && r.is_err() {
                    // A plain command that already claims secure messaging is refused.
                    assert!(card.is_aborted());
                    return;
                }
                let plain = r.unwrap_or_else(|e| panic!("a wrapped command is refused: {e}"));
                same_command(bytes, &plain);
                let sw = RESPONSE_SWS[bytes.len() % RESPONSE_SWS.len()];
                let resp_data: Vec<u8> = bytes.iter().rev().copied().collect();
                let wire_resp = card.wrap_response(&resp_data, sw);
                let (got, got_sw) = host
                    .unwrap_response(&wire_resp)
                    .unwrap_or_else(|e| panic!("the host refuses the card's response: {e}"));
                assert_eq!(got_sw, sw);
                if is_protected_status(sw) || !level.r_mac() {
                    assert_eq!(got, resp_data);
                } else {
                    assert!(got.is_empty());
                }
            }
            _ => unreachable!(),
        }
    }
}

//! The seed-1 connection after a real (fixed) handshake: the SE end opens arbitrary
//! protected messages without panicking and only ever accepts the next genuine one; a
//! refused message changes nothing; genuine messages open to exactly what was sealed;
//! anything altered, replayed or reordered is refused; calls and results that do not
//! decode are refused without consuming the counter.
//!
//! Input: records. Kind 0: raw bytes to the SE's `open_bytes`. Kind 1: the server seals
//! the bytes, the SE opens them. Kind 2: the same with one byte (position and mask from the
//! last 2 bytes) altered first, then the genuine message. Kind 3: replay the last message.
//! Kind 4: the SE seals the bytes as a call, the server opens it. Kind 5: the server seals
//! the bytes as a call result, the SE opens it.
#![no_main]
#![forbid(unsafe_code)]

use apdu_specs::auth::{Call, CallResult};
use libfuzzer_sys::fuzz_target;
use secure_channel::mutual::Connection;
use std::sync::OnceLock;
use vse_fuzz::{mutual_pair, records};

fuzz_target!(|data: &[u8]| {
    static PAIR: OnceLock<(Connection, Connection)> = OnceLock::new();
    let (mut se, mut server) = PAIR.get_or_init(mutual_pair).clone();
    let mut last: Option<Vec<u8>> = None;
    for (kind, bytes) in records(data) {
        let before = (se.received(), server.received());
        match kind % 6 {
            0 => match se.open_bytes(bytes) {
                Ok(_) => {
                    assert_eq!(se.received(), before.0 + 1);
                    last = Some(bytes.to_vec());
                }
                Err(_) => assert_eq!(
                    se.received(),
                    before.0,
                    "a refused message moved the counter"
                ),
            },
            1 | 2 => {
                // Raw seeds may have carried genuine messages: catch the server end up.
                while server.sent() < se.received() {
                    server.seal(&[]).expect("seal");
                }
                let Ok(msg) = server.seal(bytes) else {
                    continue;
                };
                let wire = msg.to_bytes();
                if kind % 6 == 2 && bytes.len() >= 2 {
                    let mut bad = wire.clone();
                    let at = usize::from(bytes[bytes.len() - 2]) % bad.len();
                    bad[at] ^= bytes[bytes.len() - 1] | 1;
                    assert!(se.open_bytes(&bad).is_err(), "an altered message opened");
                    assert_eq!(se.received(), before.0);
                }
                let plain = se
                    .open_bytes(&wire)
                    .expect("the genuine next message opens");
                assert_eq!(plain.as_slice(), bytes);
                assert_eq!(se.received(), msg.counter);
                last = Some(wire);
            }
            3 => {
                if let Some(old) = &last {
                    assert!(se.open_bytes(old).is_err(), "a replayed message opened");
                    assert_eq!(se.received(), before.0);
                }
            }
            4 => {
                let Ok(msg) = se.seal(bytes) else { continue };
                match (server.open_call(&msg), Call::parse(bytes)) {
                    (Ok(call), Ok(want)) => {
                        assert_eq!(call, want);
                        assert_eq!(server.received(), msg.counter);
                    }
                    (Err(_), Err(_)) => {
                        assert_eq!(server.received(), before.1);
                        // The refusal consumed nothing: the same message still opens.
                        assert_eq!(server.open(&msg).expect("still the next").as_slice(), bytes);
                    }
                    (got, want) => panic!("open_call {got:?} but Call::parse {want:?}"),
                }
            }
            5 => {
                while server.sent() < se.received() {
                    server.seal(&[]).expect("seal");
                }
                let Ok(msg) = server.seal(bytes) else {
                    continue;
                };
                match (se.open_result(&msg), CallResult::parse(bytes)) {
                    (Ok(r), Ok(want)) => assert_eq!(r, want),
                    (Err(_), Err(_)) => {
                        assert_eq!(se.received(), before.0);
                        assert_eq!(se.open(&msg).expect("still the next").as_slice(), bytes);
                    }
                    (got, want) => panic!("open_result {got:?} but CallResult::parse {want:?}"),
                }
            }
            _ => unreachable!(),
        }
    }
});

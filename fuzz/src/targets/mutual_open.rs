//! The seed-1 handshake and connection (protocol version 02) after a real (fixed)
//! handshake: the SE end opens arbitrary protected messages without panicking and only ever
//! accepts the next genuine one; a refused message changes nothing; genuine messages open to
//! exactly what was sealed, padded to the smallest size bucket; anything altered, replayed
//! or reordered is refused; calls and results that do not decode are refused without
//! consuming the counter. The server answers up message n with down message n, and the SE
//! takes only the answer to its last up message, once. The sealed R and R' open only as
//! sent.
//!
//! Input: records. Kind 0: raw bytes to the SE's `open_bytes` as the answer to its last up
//! message (a filler call the server took, when none is outstanding). Kind 1: the server
//! (after an up message) seals the bytes, the SE opens them. Kind 2: the same with one byte
//! (position and mask from the last 2 bytes) altered first, then the genuine message. Kind
//! 3: replay the last message (with any bytes: while the SE awaits a newer answer). Kind 4:
//! the SE seals the bytes as a call, the server opens it. Kind 5: the server seals the
//! bytes as a call result, the SE opens it. Kind 6: the bytes as a sealed R' to VERIFY
//! SERVER's check of the pending R; kind 7: the genuine sealed R' with one byte altered
//! (position and mask from the bytes). Kind 8: the bytes as a sealed R to the server's key;
//! kind 9: the genuine sealed R altered.

use crate::{handshake, mutual_pair, records, FILLER_CALL};
use apdu_specs::auth::{
    Call, CallResult, ProtectedMessage, SealedAnswer, SealedRegistration, GCM_TAG_LEN,
    MESSAGE_BUCKETS,
};
use secure_channel::mutual::{self, Connection};

/// Bring both ends to the same counters. After kind 0 the server still owes the answer to
/// the SE's last up message: it seals it, and the SE takes it unless a raw record already
/// was that answer (seeds carry genuine ones).
fn sync(se: &mut Connection, server: &mut Connection) {
    if server.sent() < server.received() {
        let down = server.seal(&[]).expect("the server answers");
        if se.received() < se.sent() {
            se.open(&down).expect("the SE takes the genuine answer");
        }
    }
    let n = se.sent();
    assert_eq!((se.received(), server.received(), server.sent()), (n, n, n));
}

/// One filler up message the server accepts, so that it may seal the next down message.
fn call_in(se: &mut Connection, server: &mut Connection) {
    sync(se, server);
    let up = se.seal(FILLER_CALL).expect("seal");
    server
        .open(&up)
        .expect("the server takes the SE's next up message");
}

/// The server answers the pending up message with nothing, and the SE takes it.
fn answer_empty(se: &mut Connection, server: &mut Connection) {
    let down = server.seal(&[]).expect("the server answers");
    se.open(&down).expect("the SE takes the genuine answer");
}

/// The ciphertext of `plain_len` bytes is the smallest bucket that holds them and one
/// padding byte: lengths within a bucket look alike.
fn assert_bucket(plain_len: usize, msg: &ProtectedMessage) {
    let bucket = MESSAGE_BUCKETS
        .iter()
        .find(|b| **b > plain_len)
        .expect("fits");
    assert_eq!(
        msg.ciphertext.len(),
        bucket + GCM_TAG_LEN,
        "{plain_len} bytes"
    );
}

/// `genuine` with the byte at `spec[0]` (mod the length) XORed with `spec[1] | 1`.
fn altered(genuine: &[u8], spec: &[u8]) -> Vec<u8> {
    let mut bad = genuine.to_vec();
    let (at, mask) = match spec {
        [a, m, ..] => (usize::from(*a) * 7, *m),
        [a] => (usize::from(*a) * 7, 1),
        [] => (0, 1),
    };
    let at = at % bad.len();
    bad[at] ^= mask | 1;
    bad
}

/// One input: panics exactly where the fuzz target reports a failure.
pub fn run(data: &[u8]) {
    let hs = handshake();
    let (mut se, mut server) = mutual_pair();
    let mut last: Option<Vec<u8>> = None;
    for (kind, bytes) in records(data) {
        match kind % 10 {
            0 => {
                if se.received() == se.sent() {
                    call_in(&mut se, &mut server);
                }
                let before = se.received();
                match se.open_bytes(bytes) {
                    Ok(_) => {
                        assert_eq!(se.received(), se.sent(), "only the awaited answer opens");
                        last = Some(bytes.to_vec());
                    }
                    Err(_) => {
                        assert_eq!(se.received(), before, "a refused message moved the counter")
                    }
                }
            }
            1 | 2 => {
                call_in(&mut se, &mut server);
                let Ok(msg) = server.seal(bytes) else {
                    assert!(bytes.len() > apdu_specs::auth::MAX_PLAINTEXT_LEN);
                    answer_empty(&mut se, &mut server);
                    continue;
                };
                assert_bucket(bytes.len(), &msg);
                let wire = msg.to_bytes();
                let before = se.received();
                if kind % 10 == 2 && bytes.len() >= 2 {
                    let bad = altered(&wire, &bytes[bytes.len() - 2..]);
                    assert!(se.open_bytes(&bad).is_err(), "an altered message opened");
                    assert_eq!(se.received(), before);
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
                    // Also while the SE awaits the answer to a newer call (an old answer
                    // delivered late).
                    if se.received() == se.sent() && !bytes.is_empty() {
                        call_in(&mut se, &mut server);
                    }
                    let before = se.received();
                    assert!(se.open_bytes(old).is_err(), "a replayed message opened");
                    assert_eq!(se.received(), before);
                }
            }
            4 => {
                sync(&mut se, &mut server);
                let before = server.received();
                let Ok(msg) = se.seal(bytes) else { continue };
                assert_bucket(bytes.len(), &msg);
                match (server.open_call(&msg), Call::parse(bytes)) {
                    (Ok(call), Ok(want)) => {
                        assert_eq!(call, want);
                        assert_eq!(server.received(), msg.counter);
                    }
                    (Err(_), Err(_)) => {
                        assert_eq!(server.received(), before);
                        // The refusal consumed nothing: the same message still opens.
                        assert_eq!(server.open(&msg).expect("still the next").as_slice(), bytes);
                    }
                    (got, want) => panic!("open_call {got:?} but Call::parse {want:?}"),
                }
                answer_empty(&mut se, &mut server);
            }
            5 => {
                call_in(&mut se, &mut server);
                let Ok(msg) = server.seal(bytes) else {
                    answer_empty(&mut se, &mut server);
                    continue;
                };
                let before = se.received();
                match (se.open_result(&msg), CallResult::parse(bytes)) {
                    (Ok(r), Ok(want)) => assert_eq!(r, want),
                    (Err(_), Err(_)) => {
                        assert_eq!(se.received(), before);
                        assert_eq!(se.open(&msg).expect("still the next").as_slice(), bytes);
                    }
                    (got, want) => panic!("open_result {got:?} but CallResult::parse {want:?}"),
                }
            }
            // VERIFY SERVER's half: only the genuine sealed R' opens for the pending R (its
            // key needs Z and the hash of R; a forgery needs ECDH and GCM, which blind
            // mutation does not do), and it opens to the SE's end of the connection.
            6 | 7 => {
                let genuine = hs.sealed_r_prime.to_bytes();
                let input = if kind % 10 == 7 {
                    altered(&genuine, bytes)
                } else {
                    bytes.to_vec()
                };
                let Ok(sealed) = SealedAnswer::parse(&input) else {
                    continue;
                };
                match mutual::se_verify_answer(&hs.pending, &hs.server_public, &sealed) {
                    Ok(v) => {
                        assert_eq!(input, genuine, "a sealed R' other than the server's opened");
                        let c = v.open_connection(hs.now).expect("granted");
                        assert!(c == hs.se, "the genuine R' opens the SE's connection");
                    }
                    Err(e) => assert_ne!(input, genuine, "the genuine R' was refused: {e}"),
                }
            }
            // The server's half: only the genuine sealed R opens with the server's key, to
            // the R || sigR the SE signed.
            _ => {
                let genuine = hs.sealed_r.to_bytes();
                let input = if kind % 10 == 9 {
                    altered(&genuine, bytes)
                } else {
                    bytes.to_vec()
                };
                let Ok(sealed) = SealedRegistration::parse(&input) else {
                    continue;
                };
                match mutual::server_open_registration(&hs.server_key, &sealed) {
                    Ok(signed) => {
                        assert_eq!(input, genuine, "a sealed R other than the SE's opened");
                        assert_eq!(&signed, hs.pending.signed());
                    }
                    Err(e) => assert_ne!(input, genuine, "the genuine R was refused: {e}"),
                }
            }
        }
    }
}

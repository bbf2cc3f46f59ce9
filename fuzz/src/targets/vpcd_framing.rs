//! vpcd framing: a byte stream fed in arbitrary chunks is cut into exactly the frames a
//! reference decoder finds, `pending` reports the rest truthfully, and every frame handled
//! against a card gives the reply the protocol asks for (ATR for GetATR, an R-APDU of
//! 2..=65535 bytes for an APDU, nothing for controls).
//!
//! Input: records `kind || len || bytes`; each record is one chunk as read from the socket.
//! Kind bit 0 set: drain complete frames after this chunk (otherwise they wait).

use crate::{fresh_card, records};
use card_emulator::vpcd::{
    encode_frame, handle_frame, FrameDecoder, Request, ServeOptions, MAX_PAYLOAD,
};
use card_emulator::VirtualCard;

/// The reference: frames of the whole stream so far, and the unconsumed tail.
fn reference(stream: &[u8]) -> (Vec<Vec<u8>>, &[u8]) {
    let mut frames = Vec::new();
    let mut rest = stream;
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if tail.len() < len {
            break;
        }
        frames.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    (frames, rest)
}

/// One input: panics exactly where the fuzz target reports a failure.
pub fn run(data: &[u8]) {
    let mut card = fresh_card();
    let opts = ServeOptions::default();
    let mut decoder = FrameDecoder::new();
    let mut stream = Vec::new();
    let mut got: Vec<Vec<u8>> = Vec::new();
    for (kind, chunk) in records(data) {
        decoder.push(chunk);
        stream.extend_from_slice(chunk);
        if kind & 1 == 0 {
            continue;
        }
        while let Some(frame) = decoder.next_frame() {
            assert!(frame.len() <= MAX_PAYLOAD);
            let reply = handle_frame(&mut card, &frame, &opts);
            match Request::parse(&frame) {
                Request::Apdu(_) => {
                    let r = reply.expect("an APDU is answered");
                    assert!(
                        (2..=MAX_PAYLOAD).contains(&r.len()),
                        "reply of {} bytes",
                        r.len()
                    );
                    let framed = encode_frame(&r).expect("the reply fits a frame");
                    assert_eq!(framed.len(), r.len() + 2);
                }
                Request::Control(card_emulator::vpcd::Control::GetAtr) => {
                    assert_eq!(reply, Some(card.atr()));
                }
                _ => assert_eq!(reply, None),
            }
            got.push(frame);
        }
        let (want, rest) = reference(&stream);
        assert_eq!(got, want, "frames differ from the reference");
        match decoder.pending() {
            None => assert!(rest.is_empty()),
            Some((have, need)) => {
                assert_eq!(have, rest.len());
                assert!(have < need, "a complete frame is left pending");
                if let [hi, lo, ..] = rest {
                    assert_eq!(need, 2 + usize::from(u16::from_be_bytes([*hi, *lo])));
                }
            }
        }
    }
    assert!(card.state().validate().is_ok());
}

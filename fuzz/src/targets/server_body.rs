//! The server's request bodies (`register`, `messages`): any bytes decode or are refused
//! with a 400 and a message, never a panic; what decodes is canonical, so the body the
//! terminal would build from it decodes to the same value. A register body is the sealed
//! R (`70`, protocol version 02) alone: the same body with version 01's `signature` beside
//! it is refused as `unsupported_version`, never downgraded to.
//!
//! Input: byte 0 picks the route (even: register, odd: messages); the rest is the body.

use server::service::{parse_message_body, parse_register_body};
use server::ApiError;

fn refused(e: &ApiError) {
    assert_eq!(e.status.as_u16(), 400, "{} {}", e.code, e.message);
    assert!(!e.code.is_empty() && !e.message.is_empty());
}

/// One input: panics exactly where the fuzz target reports a failure.
pub fn run(data: &[u8]) {
    let Some((&route, body)) = data.split_first() else {
        return;
    };
    if route & 1 == 0 {
        match parse_register_body(body) {
            Ok(sealed) => {
                let r = hex::encode(sealed.to_bytes());
                let json = serde_json::json!({ "r": r });
                let again = parse_register_body(json.to_string().as_bytes())
                    .expect("the canonical body decodes");
                assert_eq!(again, sealed);
                let v01 = serde_json::json!({ "r": r, "signature": "00".repeat(64) });
                let e = parse_register_body(v01.to_string().as_bytes())
                    .expect_err("a version 01 body is refused");
                refused(&e);
                assert_eq!(e.code, "unsupported_version", "{}", e.message);
            }
            Err(e) => refused(&e),
        }
    } else {
        match parse_message_body(body) {
            Ok(msg) => {
                let json = serde_json::json!({ "message": hex::encode(msg.to_bytes()) });
                let again = parse_message_body(json.to_string().as_bytes())
                    .expect("the canonical body decodes");
                assert_eq!(again, msg);
            }
            Err(e) => refused(&e),
        }
    }
}

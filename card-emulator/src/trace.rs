//! APDU tracing for every transport: hex with the SW meaning and the time taken, PIN data redacted.

use apdu_specs::hexfmt;
use apdu_specs::ins::iso;
use apdu_specs::Status;
use std::time::Duration;

/// Whether a command's data carries a secret (PIN, PUK) that must never be logged.
pub fn carries_secret(apdu: &[u8]) -> bool {
    matches!(
        apdu.get(1),
        Some(&(iso::VERIFY | iso::CHANGE_REFERENCE_DATA | iso::RESET_RETRY_COUNTER))
    )
}

/// The command as it may appear in a log: header only when it carries a secret.
pub fn redacted_command(apdu: &[u8]) -> String {
    if carries_secret(apdu) && apdu.len() > 5 {
        format!(
            "{} <{} bytes redacted>",
            hexfmt::upper(&apdu[..5]),
            apdu.len() - 5
        )
    } else {
        hexfmt::upper(apdu)
    }
}

/// Log one exchange at debug level.
pub fn exchange(apdu: &[u8], response: &[u8], elapsed: Duration) {
    let status = match response {
        [.., a, b] => Status::from_u16(u16::from_be_bytes([*a, *b])).to_string(),
        _ => "no status".to_string(),
    };
    tracing::debug!(
        "C: {}  R: {}  [{}]  {:.0} µs",
        redacted_command(apdu),
        hexfmt::upper(response),
        status,
        elapsed.as_secs_f64() * 1e6
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_data_is_never_shown() {
        let verify = [0x00, 0x20, 0x00, 0x81, 0x04, b'1', b'2', b'3', b'4'];
        let shown = redacted_command(&verify);
        assert!(!shown.contains("31323334"), "{shown}");
        assert!(shown.starts_with("0020008104"));
        assert_eq!(redacted_command(&[0, 0xB0, 0, 0, 4]), "00B0000004");
    }
}

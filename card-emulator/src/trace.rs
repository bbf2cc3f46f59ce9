//! APDU tracing for every transport: hex with the SW meaning and the time taken, PIN data redacted.

use apdu_specs::hexfmt;
use std::time::Duration;

/// The C-APDU as loggable text: the data of commands that carry secrets (PIN commands, PUT
/// KEY: those flagged in `apdu_specs::ins`) is replaced by its length.
pub fn redacted_command(apdu: &[u8]) -> String {
    apdu_specs::ins::redacted(apdu).unwrap_or_else(|| hexfmt::upper(apdu))
}

/// Log one exchange at debug level (visible with `--trace` or `RUST_LOG=debug`).
pub fn exchange(apdu: &[u8], response: &[u8], elapsed: Duration) {
    exchange_at(false, apdu, response, elapsed)
}

/// Log one exchange, at info level when `loud`.
pub fn exchange_at(loud: bool, apdu: &[u8], response: &[u8], elapsed: Duration) {
    let (data, sw) = response.split_at(response.len().saturating_sub(2));
    let status = match sw {
        [a, b] => apdu_specs::Status::from_u16(u16::from_be_bytes([*a, *b])).to_string(),
        _ => "(no status)".to_string(),
    };
    let cmd = redacted_command(apdu);
    let mut rsp = hexfmt::upper(data);
    if !rsp.is_empty() {
        rsp.push(' ');
    }
    if loud {
        tracing::info!("C: {cmd}  R: {rsp}{status}  ({elapsed:.1?})");
    } else {
        tracing::debug!("C: {cmd}  R: {rsp}{status}  ({elapsed:.1?})");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_command_data_is_redacted_from_traces() {
        let verify = hexfmt::parse("00 20 00 81 06 31 32 33 34 35 36").unwrap();
        let t = redacted_command(&verify);
        assert_eq!(t, "00200081 <7 byte(s) redacted>");
        assert!(!t.contains("313233"));
        for ins in [0x21u8, 0x24, 0x2C] {
            let t = redacted_command(&[0x00, ins, 0x00, 0x01, 0x02, 0x39, 0x39]);
            assert!(!t.contains("3939"), "{t}");
        }
        // PUT KEY: the keys are encrypted under the DEK, which may be the public test DEK.
        let put_key = hexfmt::parse("80 D8 30 81 03 31 88 11").unwrap();
        assert_eq!(redacted_command(&put_key), "80D83081 <4 byte(s) redacted>");
        // A VERIFY without data (retry counter query) shows whole; other commands show whole.
        assert_eq!(redacted_command(&[0x00, 0x20, 0x00, 0x81]), "00200081");
        assert_eq!(
            redacted_command(&[0x00, 0xA4, 0x00, 0x00, 0x02, 0x3F, 0x00]),
            "00A40000023F00"
        );
    }
}

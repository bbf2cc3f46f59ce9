//! One logical command: the C-APDU plus the follow-ups ISO 7816-4 asks of the terminal
//! (GET RESPONSE after `61xx`, resend with the right Le after `6Cxx`).

use crate::{ClientError, Transport};
use apdu_specs::{Cla, Command, Response, Status};

/// Most GET RESPONSE commands one exchange sends before declaring the card broken.
pub const MAX_GET_RESPONSE: usize = 1024;

/// Split a raw R-APDU from the card, as a client error when it is shorter than its SW.
pub fn parse_response(bytes: &[u8]) -> Result<Response, ClientError> {
    Ok(Response::parse(bytes)?)
}

/// The GET RESPONSE that fetches `61xx` data: class `00` with the channel of `cla`.
pub fn get_response_for(cla: u8, sw2: u8) -> [u8; 5] {
    let channel = Cla::decode(cla).map(|c| c.channel()).unwrap_or(0);
    let cla = Cla::encode(false, channel, false, false).unwrap_or(0x00);
    [cla, 0xC0, 0x00, 0x00, sw2]
}

/// `apdu` with its Le replaced by `sw2` of a `6Cxx` (`00` meaning 256); `None` if unparsable.
pub fn with_corrected_le(apdu: &[u8], sw2: u8) -> Option<Vec<u8>> {
    let cmd = Command::parse(apdu).ok()?;
    let le = if sw2 == 0 { 256 } else { sw2 as usize };
    cmd.with_le(le).to_bytes().ok()
}

/// Send `apdu`; when `follow` is set, chase `61xx` with GET RESPONSE and resend once after
/// `6Cxx` with the corrected Le. With `follow` unset this is one raw round trip.
pub fn transmit_following(
    t: &mut dyn Transport,
    apdu: &[u8],
    follow: bool,
) -> Result<Response, ClientError> {
    let cla = apdu.first().copied().unwrap_or(0);
    let mut cmd = apdu.to_vec();
    let mut data = Vec::new();
    let mut le_corrected = false;
    let mut get_responses = 0usize;
    loop {
        let reply = parse_response(&t.transmit(&cmd)?)?;
        match reply.status {
            Status::BytesAvailable(n) if follow => {
                data.extend_from_slice(&reply.data);
                get_responses += 1;
                if get_responses > MAX_GET_RESPONSE {
                    return Err(ClientError::EndlessGetResponse(MAX_GET_RESPONSE));
                }
                cmd = get_response_for(cla, n).to_vec();
                le_corrected = false;
            }
            Status::WrongLe(n) if follow && !le_corrected => match with_corrected_le(&cmd, n) {
                Some(next) => {
                    cmd = next;
                    le_corrected = true;
                }
                None => {
                    data.extend_from_slice(&reply.data);
                    return Ok(Response {
                        data,
                        status: reply.status,
                    });
                }
            },
            status => {
                data.extend_from_slice(&reply.data);
                return Ok(Response { data, status });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::tests::fn_card;

    #[test]
    fn get_response_keeps_the_channel_and_drops_proprietary_and_chaining_bits() {
        assert_eq!(get_response_for(0x00, 0x10), [0x00, 0xC0, 0, 0, 0x10]);
        assert_eq!(get_response_for(0x03, 0x00), [0x03, 0xC0, 0, 0, 0x00]);
        assert_eq!(get_response_for(0x81, 0x05)[0], 0x01);
        assert_eq!(get_response_for(0x93, 0x05)[0], 0x03);
        assert_eq!(get_response_for(0x45, 0x05)[0], 0x45);
        assert_eq!(get_response_for(0xFF, 0x05)[0], 0x00);
    }

    #[test]
    fn follows_61xx_joining_the_data() {
        let mut sent = Vec::new();
        let mut t = fn_card(|apdu| {
            sent.push(apdu.to_vec());
            match apdu {
                [_, 0xA4, ..] => vec![0x61, 0x03],
                [0x01, 0xC0, 0, 0, 0x03] => vec![1, 2, 0x61, 0x01],
                [0x01, 0xC0, 0, 0, 0x01] => vec![3, 0x90, 0x00],
                _ => vec![0x6D, 0x00],
            }
        });
        let r = transmit_following(&mut t, &[0x01, 0xA4, 0x04, 0x00, 0x00], true).unwrap();
        assert_eq!(r.data, vec![1, 2, 3]);
        assert_eq!(r.status, Status::Success);
        let _ = t.into_inner();
        assert_eq!(sent.len(), 3);
    }

    #[test]
    fn resends_once_with_the_corrected_le_after_6cxx() {
        let mut t = fn_card(|apdu| match apdu {
            [0, 0xB0, 0, 0, 0x08] => vec![9, 9, 9, 9, 9, 9, 9, 9, 0x90, 0x00],
            [0, 0xB0, ..] => vec![0x6C, 0x08],
            _ => vec![0x6C, 0x08],
        });
        let r = transmit_following(&mut t, &[0, 0xB0, 0, 0, 0x00], true).unwrap();
        assert_eq!((r.data.len(), r.status), (8, Status::Success));
        // A card that answers 6Cxx forever gets one resend only.
        let r = transmit_following(&mut t, &[0, 0xCA, 0, 0, 0x00], true).unwrap();
        assert_eq!(r.status, Status::WrongLe(8));
    }

    #[test]
    fn raw_mode_returns_the_first_answer() {
        let mut t = fn_card(|_| vec![0xAA, 0x61, 0x10]);
        let r = transmit_following(&mut t, &[0, 0xA4, 0, 0], false).unwrap();
        assert_eq!(
            (r.data, r.status),
            (vec![0xAA], Status::BytesAvailable(0x10))
        );
    }

    #[test]
    fn endless_61xx_is_an_error_not_a_hang() {
        let mut t = fn_card(|_| vec![0x61, 0x01]);
        assert!(matches!(
            transmit_following(&mut t, &[0, 0xA4, 0, 0], true),
            Err(ClientError::EndlessGetResponse(_))
        ));
    }

    #[test]
    fn corrected_le_keeps_data_and_short_form() {
        assert_eq!(
            with_corrected_le(&[0, 0xA4, 4, 0, 1, 0xA0, 0], 0x20).unwrap(),
            vec![0, 0xA4, 4, 0, 1, 0xA0, 0x20]
        );
        assert_eq!(
            with_corrected_le(&[0, 0xB0, 0, 0], 0).unwrap(),
            vec![0, 0xB0, 0, 0, 0]
        );
        assert_eq!(with_corrected_le(&[0, 0xB0], 1), None);
    }
}

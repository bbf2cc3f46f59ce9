//! Response APDUs: data followed by SW1-SW2.

use crate::status::Status;
use thiserror::Error;

/// Why a byte string is not a response APDU.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResponseError {
    #[error("a response APDU needs at least the 2 status bytes, got {0}")]
    TooShort(usize),
}

/// A response APDU: the one type for what a card answers, used by the card's handlers
/// (before the dispatcher fits it to Le), the secure-messaging layer and the terminal
/// (after it joined the GET RESPONSE chunks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<u8>,
    pub status: Status,
}

impl Response {
    pub fn new(data: Vec<u8>, status: Status) -> Response {
        Response { data, status }
    }

    /// Data with `9000`.
    pub fn ok(data: Vec<u8>) -> Response {
        Response::new(data, Status::Success)
    }

    /// `9000` alone.
    pub fn done() -> Response {
        Response::status_only(Status::Success)
    }

    /// Data with a warning (62xx, 63xx) or another completing status.
    pub fn warn(data: Vec<u8>, status: Status) -> Response {
        Response::new(data, status)
    }

    pub fn status_only(status: Status) -> Response {
        Response {
            data: Vec::new(),
            status,
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<Response, ResponseError> {
        match bytes.len() {
            n if n < 2 => Err(ResponseError::TooShort(n)),
            n => Ok(Response {
                data: bytes[..n - 2].to_vec(),
                status: Status::from_u16(u16::from_be_bytes([bytes[n - 2], bytes[n - 1]])),
            }),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.status.to_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn too_short_is_an_error() {
        assert_eq!(Response::parse(&[0x90]), Err(ResponseError::TooShort(1)));
        assert_eq!(
            Response::parse(&[0x90, 0x00]).unwrap().status,
            Status::Success
        );
    }

    proptest! {
        #[test]
        fn any_response_round_trips(bytes in prop::collection::vec(any::<u8>(), 2..300)) {
            prop_assert_eq!(Response::parse(&bytes).unwrap().to_bytes(), bytes);
        }
    }
}

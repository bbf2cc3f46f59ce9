//! The ES10 view of the shared one-level BER-TLV reader ([`crate::der`]).

pub use crate::der::*;

use super::Es10Error;

impl From<DerError> for Es10Error {
    fn from(e: DerError) -> Self {
        match e {
            DerError::Tlv(reason) => Es10Error::Tlv(reason),
            DerError::TrailingData(n) => Es10Error::TrailingData(n),
            DerError::UnexpectedTag { expected, found } => {
                Es10Error::UnexpectedTag { expected, found }
            }
            DerError::Invalid { field, reason } => Es10Error::Invalid { field, reason },
        }
    }
}

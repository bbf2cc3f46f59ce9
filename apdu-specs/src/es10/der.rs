//! The ES10 view of the shared one-level BER-TLV reader ([`crate::der`]): same functions, errors as [`Es10Error`].

pub use crate::der::{find, push_uint, DataObject, DerError};

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

/// [`crate::der::read_tag`].
pub fn read_tag(input: &[u8]) -> Result<(u32, &[u8]), Es10Error> {
    Ok(crate::der::read_tag(input)?)
}

/// [`crate::der::read_one`].
pub fn read_one(input: &[u8]) -> Result<(DataObject<'_>, &[u8]), Es10Error> {
    Ok(crate::der::read_one(input)?)
}

/// [`crate::der::read_all`].
pub fn read_all(input: &[u8]) -> Result<Vec<DataObject<'_>>, Es10Error> {
    Ok(crate::der::read_all(input)?)
}

/// [`crate::der::read_exactly_one`].
pub fn read_exactly_one(input: &[u8]) -> Result<DataObject<'_>, Es10Error> {
    Ok(crate::der::read_exactly_one(input)?)
}

/// [`crate::der::read_expected`].
pub fn read_expected(input: &[u8], expected: u32) -> Result<&[u8], Es10Error> {
    Ok(crate::der::read_expected(input, expected)?)
}

/// [`crate::der::read_tag_list`].
pub fn read_tag_list(input: &[u8]) -> Result<Vec<u32>, Es10Error> {
    Ok(crate::der::read_tag_list(input)?)
}

/// [`crate::der::read_uint`].
pub fn read_uint(value: &[u8], field: &'static str) -> Result<u32, Es10Error> {
    Ok(crate::der::read_uint(value, field)?)
}

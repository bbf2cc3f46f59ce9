//! Tests of the mutual-authentication codecs.
use super::*;

#[test]
fn empty_input_is_an_error() {
    assert!(Registration::parse(&[]).is_err());
}

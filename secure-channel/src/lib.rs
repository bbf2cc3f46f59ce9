//! Secure messaging shared by the card and the terminal/server: one implementation each.
#![forbid(unsafe_code)]

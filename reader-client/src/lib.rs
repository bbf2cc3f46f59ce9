//! The terminal side: talks to cards over PC/SC (and in-process for tests).
#![forbid(unsafe_code)]

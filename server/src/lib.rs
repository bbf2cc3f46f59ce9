//! The remote service server of the mutual authentication (seed document 1).
//!
//! Nothing is implemented yet: the server arrives with the mutual-authentication work.
//! The crate exists so the workspace has the layout of DESIGN.md; it ships no binary
//! until it can do its job.
#![forbid(unsafe_code)]

//! The third-party portal: a stateless relay between the terminal and the service server.
//!
//! Nothing is implemented yet: the relay arrives with the mutual-authentication work
//! (seed document 1). The crate exists so the workspace has the layout of DESIGN.md; it
//! ships no binary until it can do its job.
#![forbid(unsafe_code)]

//! The server and the portal together, in-process over loopback HTTP. The server's harness
//! (`crate::common`) is shared with its own tests, not copied.

mod flow;
mod http;
mod portal;

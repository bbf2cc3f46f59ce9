//! Integration tests, one binary (one link instead of one per file on a 2-core machine):
//! each module is one former test file.

mod cli;
mod common;
mod flow;
mod http;
mod limits;
mod metrics;
mod pg;
mod pg_tls;
mod retention;
mod store_contract;
mod tls;

//! The whole-system tests, one binary (one link instead of one per file on a 2-core
//! machine): each module is one former test file. Tests that need pcscd take the machine's
//! one pcscd through `e2e_tests::Pcscd`, which serializes them.

#[path = "../../../server/tests/suite/common/mod.rs"]
mod common;

// The throw-away PostgreSQL cluster of the server's tests (its TLS cluster is theirs alone).
#[allow(dead_code)]
#[path = "../../../server/tests/suite/pg.rs"]
mod pg;

mod applets;
mod backend_soak;
mod containers;
mod doctor;
mod mutual_auth;
mod pcsc_tools;
mod real_tools;
mod server_portal;
mod tls;

//! The card emulator's integration tests, one binary (linking one per file cost minutes on
//! a 2-core machine): each module is one suite, `common` their shared helpers.

mod allocations;
mod applets;
mod campaigns;
mod case_matrix;
mod common;
mod containers;
mod crash;
mod durability;
mod es10b;
mod es10c;
mod golden;
mod gp;
#[allow(dead_code)]
#[path = "../../src/bin/soak/harness.rs"]
mod harness;
mod identity;
mod iso_commands;
mod isolation_prop;
mod journal;
mod malformed;
mod mutual_auth;
mod pki;
mod robustness;
mod uicc_fcp;
mod vpcd_abuse;

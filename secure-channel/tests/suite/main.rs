//! Integration tests, one binary (one link instead of one per file on a 2-core machine):
//! each module is one former test file.

mod roundtrip;
mod scp02_vectors;
mod scp03_vectors;
mod v02_vectors;

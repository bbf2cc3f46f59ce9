//! Tests of the seed-1 mutual authentication crypto.

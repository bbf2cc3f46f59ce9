//! Harness for end-to-end tests: locating the workspace binaries, starting and stopping them.
#![forbid(unsafe_code)]

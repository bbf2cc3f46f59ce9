//! The shipped conformance suites against the real card core, in-process (no pcscd): the
//! same library call the card's own `cargo test` suites use.

use card_emulator::{profile, Card};
use reader_client::conform::{collect_files, render_table, run_paths, RunOptions};
use reader_client::InProcess;
use std::path::Path;

#[test]
fn shipped_suites_pass_in_process_on_the_default_profile() {
    let state = profile::build(profile::DEFAULT_PROFILE).unwrap();
    let mut card = InProcess::new(Card::in_memory(state));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../apdu-specs/conformance");
    let reports = run_paths(
        &mut card,
        std::slice::from_ref(&dir),
        &RunOptions::default(),
    )
    .unwrap();
    // Every .apdu file of the directory ran, and together they cover the card core (>= 80 cases).
    let files = collect_files(&[dir]).unwrap();
    assert!(files.len() >= 3, "{files:?}");
    assert_eq!(reports.len(), files.len());
    let cases: usize = reports.iter().map(|r| r.cases.len()).sum();
    assert!(cases >= 80, "only {cases} cases");
    for r in &reports {
        assert!(r.passed(), "{}", render_table(r));
    }
}

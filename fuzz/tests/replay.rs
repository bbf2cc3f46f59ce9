//! Every seed (`fuzz/seeds/<target>/`) and every kept crash input
//! (`fuzz/regressions/<target>/`) through its target's body, without sanitizers: what the
//! fuzz smoke checked before, at the cost of a normal test. One test per target, so they run
//! in parallel and a failure names its target; all failing inputs of a target are listed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        out.extend(entries.map(|e| e.expect("a readable directory entry").path()));
    }
    out.sort();
    out
}

fn replay(target: &str) {
    let run = vse_fuzz::targets::ALL
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, run)| *run)
        .expect("the target is listed in targets::ALL");
    let files = inputs(target);
    // A target without seeds would pass while checking nothing.
    assert!(!files.is_empty(), "no seeds for {target}: run gen-seeds");
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("a readable seed");
            catch_unwind(AssertUnwindSafe(|| run(&data))).is_err()
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs failed:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
}

macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { replay(stringify!($name)); })*

        /// The list above names every target (a new one cannot be forgotten here).
        #[test]
        fn every_target_is_replayed() {
            let listed = [$(stringify!($name)),*];
            let all: Vec<&str> = vse_fuzz::targets::ALL.iter().map(|(n, _)| *n).collect();
            assert_eq!(listed.to_vec(), all);
        }
    };
}

replay_tests!(
    apdu_codec,
    applet_module,
    auth_messages,
    card,
    es10_requests,
    mutual_open,
    portal_body,
    scp_unwrap,
    server_body,
    tlv,
    vpcd_framing,
);

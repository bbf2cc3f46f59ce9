//! The `reader-client` binary without pcscd: help texts, ATR decoding, in-process conformance runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn rc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reader-client"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run reader-client: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn suites() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../apdu-specs/conformance")
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["readers", "atr", "send", "script", "conform"] {
        let o = rc(&[sub, "--help"]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("--trace"),
            "{sub}: {}",
            text(&o)
        );
    }
}

#[test]
fn atr_decode_prints_levels_protocols_and_tck() {
    let o = rc(&[
        "atr",
        "--decode",
        "3B F8 13 00 00 81 31 FE 15 59 75 62 69 6B 65 79 34 D4",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    for want in [
        "TA1 = 13",
        "TD2 = 31",
        "IFSC = 254",
        "Protocols offered: T=1",
        "Yubikey4",
        "correct",
    ] {
        assert!(t.contains(want), "{want}: {t}");
    }
    let o = rc(&["atr", "--decode", "3B 80 80 01 00"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[test]
fn conform_in_process_passes_the_shipped_suites_and_writes_junit() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let suites = suites();
    let o = rc(&[
        "conform",
        "--in-process",
        "--junit",
        junit.to_str().unwrap(),
        suites.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("TOTAL:") && t.contains("-> PASS"), "{t}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuites") && xml.contains("failures=\"0\""),
        "{xml}"
    );
}

#[test]
fn conform_exits_1_and_names_the_line_on_a_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.apdu");
    std::fs::write(
        &f,
        "# case: wrong on purpose\n00 A4 00 0C 02 3F 00\n# expect: 6A82\n",
    )
    .unwrap();
    let o = rc(&["conform", "--in-process", f.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("line 2: 00 A4 00 0C 02 3F 00 -> 90 00"), "{t}");
    assert!(t.contains("expected 6A82"), "{t}");
}

#[test]
fn a_file_scriptor_would_misread_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.apdu");
    std::fs::write(&f, "# case: early exit here\n00A4040000\n").unwrap();
    let o = rc(&["conform", "--in-process", f.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("scriptor stops at any line containing \"exit\""),
        "{t}"
    );
}

#[test]
fn bad_hex_is_reported_before_touching_pcsc() {
    let o = rc(&["send", "00A4G0"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("not hex"), "{t}");
}

#[test]
fn gp_status_in_process_lists_the_isd_and_the_containers() {
    let o = rc(&["gp", "--in-process", "status"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("ISD: A000000151000000  SECURED (0F)"), "{t}");
    assert!(t.contains("APP: A0000005591010FFFFFFFF89"), "{t}");
    let o = rc(&["gp", "--in-process", "status", "--json"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let json: String = String::from_utf8_lossy(&o.stdout).into();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {t}"));
    assert!(v["isd"].is_array() && v["applications"].is_array(), "{t}");
    assert!(v["load_files"].is_array(), "{t}");
}

#[test]
fn gp_load_checks_the_file_before_touching_the_card() {
    let dir = tempfile::tempdir().unwrap();
    let args = |f: &std::path::Path| {
        rc(&[
            "gp",
            "--reader",
            "no such reader",
            "load",
            f.to_str().unwrap(),
            "--container",
            "A0000005591010FFFFFFFF8900001000",
            "--package-aid",
            "F0564150504C4554",
        ])
    };
    let bin = dir.path().join("applet.wasm");
    std::fs::write(&bin, "(module)").unwrap();
    let t = text(&args(&bin));
    assert!(t.contains("is not a binary WebAssembly module"), "{t}");
    assert!(t.contains("*.wat"), "{t}");
    let bad = dir.path().join("applet.wat");
    std::fs::write(
        &bad,
        "(module (func (export \"process\") (result i32) nope))",
    )
    .unwrap();
    let t = text(&args(&bad));
    assert!(t.contains("compiling the WebAssembly text"), "{t}");
    let missing = dir.path().join("missing.wasm");
    let t = text(&args(&missing));
    assert!(t.contains("reading") && t.contains("missing.wasm"), "{t}");
    // A short AID is refused before any reader is looked for.
    let good = dir.path().join("ok.wat");
    std::fs::write(&good, "(module (memory (export \"memory\") 1))").unwrap();
    let o = rc(&[
        "gp",
        "load",
        good.to_str().unwrap(),
        "--container",
        "A000",
        "--package-aid",
        "F0564150504C4554",
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("--container has 2 bytes"), "{t}");
}

#[test]
fn gp_applet_subcommands_have_help_with_examples() {
    for sub in ["load", "install", "delete", "status"] {
        let o = rc(&["gp", sub, "--help"]);
        let t = text(&o);
        assert!(o.status.success(), "{t}");
        assert!(t.contains("Example"), "{sub}: {t}");
    }
}

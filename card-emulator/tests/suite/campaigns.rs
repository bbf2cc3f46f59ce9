//! Short versions of the soak campaigns (the `soak` binary): tearing by SIGKILL during mixed write storms, and the power-cut PIN attack (SIGKILL, vpcd power off, SIGKILL over vpcd).

use std::process::Command;

fn soak(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_soak"))
        .args(["--emulator", env!("CARGO_BIN_EXE_card-emulator")])
        .args(args)
        .output()
        .expect("start soak");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "soak {args:?} failed:\n{text}");
    text
}

#[test]
fn fifty_sigkills_during_write_storms_violate_no_invariant() {
    let t = soak(&["tearing", "--kills", "50"]);
    assert!(t.contains("kills 50,") && t.contains("violations 0"), "{t}");
}

#[test]
fn a_wrong_pin_cut_by_sigkill_never_gets_its_try_back() {
    let t = soak(&["pin-cut", "--cuts", "50", "--via", "kill"]);
    assert!(t.contains("cuts 50,") && t.contains("violations 0"), "{t}");
}

#[test]
fn a_wrong_pin_cut_by_vpcd_power_off_never_gets_its_try_back() {
    let t = soak(&["pin-cut", "--cuts", "50", "--via", "power-off"]);
    assert!(t.contains("cuts 50,") && t.contains("violations 0"), "{t}");
}

#[test]
fn a_wrong_pin_cut_by_sigkill_over_vpcd_never_gets_its_try_back() {
    let t = soak(&["pin-cut", "--cuts", "30", "--via", "vpcd-kill"]);
    assert!(t.contains("cuts 30,") && t.contains("violations 0"), "{t}");
}

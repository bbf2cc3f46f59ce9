//! `card-emulator doctor` against the harness's real pcscd: all OK with pcscd up (empty slot or
//! a running card in it), and the "pcscd running" fix when pcscd is stopped.

use e2e_tests::{output_text, run_with_timeout, workspace_bin, Pcscd, RunningCard};
use std::process::{Command, Output};
use std::time::Duration;

const DOCTOR_TIMEOUT: Duration = Duration::from_secs(60);

fn doctor(slot: u16) -> Output {
    let ce = workspace_bin("card-emulator").unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(ce);
    cmd.args(["doctor", "--slot", &slot.to_string()]);
    run_with_timeout(cmd, DOCTOR_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

/// The check lines (`OK`, `FAIL`, `SKIP`) of a report.
fn check_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| ["OK ", "FAIL ", "SKIP "].iter().any(|t| l.starts_with(t)))
        .map(str::to_string)
        .collect()
}

#[test]
fn doctor_passes_every_check_with_pcscd_running_and_an_empty_slot() {
    let Some(_pcscd) =
        Pcscd::start("doctor_passes_every_check_with_pcscd_running_and_an_empty_slot")
            .unwrap_or_else(|e| panic!("{e}"))
    else {
        return;
    };
    let out = doctor(0);
    let lines = check_lines(&out);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(lines.len(), 5, "{}", output_text(&out));
    assert!(
        lines.iter().all(|l| l.starts_with("OK ")),
        "{}",
        output_text(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("throwaway card"), "{}", output_text(&out));
    assert!(text.contains("ATR 3B"), "{}", output_text(&out));
    // The throwaway card is unplugged afterwards: the slot is free for a real card.
    e2e_tests::wait_for_no_card(&e2e_tests::vpcd_reader(0), e2e_tests::CARD_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn doctor_checks_the_card_already_in_the_slot() {
    let Some(_pcscd) = Pcscd::start("doctor_checks_the_card_already_in_the_slot")
        .unwrap_or_else(|e| panic!("{e}"))
    else {
        return;
    };
    let card = RunningCard::start(0).unwrap_or_else(|e| panic!("{e}"));
    let out = doctor(0);
    let lines = check_lines(&out);
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        lines.iter().all(|l| l.starts_with("OK ")),
        "{}",
        output_text(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let atr: String = card.atr.iter().map(|b| format!("{b:02X}")).collect();
    assert!(
        text.contains("holds a card already"),
        "{}",
        output_text(&out)
    );
    assert!(text.contains(&atr), "want ATR {atr}\n{}", output_text(&out));
    // doctor left the running card alone.
    e2e_tests::wait_for_card(&card.reader, Duration::from_secs(1))
        .unwrap_or_else(|e| panic!("{e}\n{}", card.log_text()));
}

#[test]
fn doctor_fails_and_says_how_to_start_pcscd_when_it_is_not_running() {
    let Some(mut pcscd) =
        Pcscd::start("doctor_fails_and_says_how_to_start_pcscd_when_it_is_not_running")
            .unwrap_or_else(|e| panic!("{e}"))
    else {
        return;
    };
    // Holding the harness lock with pcscd stopped: no pcscd runs on the machine.
    pcscd.stop();
    let out = doctor(0);
    assert!(!out.status.success(), "{}", output_text(&out));
    let lines = check_lines(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        lines.iter().any(|l| l.starts_with("FAIL  pcscd running")),
        "{}",
        output_text(&out)
    );
    assert!(
        text.contains(
            "fix: start it: `pcscd --foreground &` (as root), or `systemctl start pcscd`"
        ),
        "{}",
        output_text(&out)
    );
    assert!(
        lines.iter().any(|l| l.starts_with("OK    pcscd installed")),
        "{}",
        output_text(&out)
    );
}

/// A card that offers T=0 and T=1, left in T=1 by opensc-tool: doctor warns that T=0-only
/// clients (lpac) cannot connect, and says how to reset it (issue 13).
#[test]
fn doctor_warns_when_pcscd_keeps_the_card_in_t1() {
    let test = "doctor_warns_when_pcscd_keeps_the_card_in_t1";
    let Some(_pcscd) = Pcscd::start(test).unwrap_or_else(|e| panic!("{e}")) else {
        return;
    };
    if e2e_tests::which("opensc-tool").is_none() {
        e2e_tests::skipped(
            test,
            "opensc-tool is not installed (apt-get install opensc)",
        );
        return;
    }
    let profile = format!(
        "protocols = [\"T=0\", \"T=1\"]\n{}",
        card_emulator::profile::DEFAULT_PROFILE
    );
    let card = RunningCard::start_with_profile(0, Some(&profile)).unwrap_or_else(|e| panic!("{e}"));
    // pcscd negotiates at the first connection after the card appears, and keeps it: here
    // opensc-tool (T=0 or T=1) gets T=1. (Had doctor come first, it asks for T=0 and the
    // card would stay in T=0 for everyone.)
    let mut tool = Command::new("opensc-tool");
    tool.args(["-r", &card.reader, "-a"]);
    let o = run_with_timeout(tool, DOCTOR_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(o.status.success(), "{}", output_text(&o));
    let out = doctor(0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("WARN")
            && text.contains("keeps in T=1")
            && text.contains("protocols = [\"T=0\"]"),
        "{}",
        output_text(&out)
    );
}

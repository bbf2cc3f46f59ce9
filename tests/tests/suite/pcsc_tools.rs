//! Real PC/SC tools against a card served over vpcd, through our own pcscd.

use e2e_tests::{
    output_text, run_with_timeout, vpcd_reader, wait_for_card, wait_for_no_card, which,
    workspace_bin, Pcscd, Proc, CARD_TIMEOUT,
};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
const SLOT: u16 = 0;

fn e2e_card(extra: &[&str]) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_e2e-card"));
    cmd.args(["--slot", &SLOT.to_string()]).args(extra);
    Proc::spawn(cmd, "e2e-card").unwrap_or_else(|e| panic!("{e}"))
}

fn conformance_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../apdu-specs/conformance")
}

#[test]
fn opensc_tool_and_reader_client_see_a_card_served_over_vpcd() {
    let Some(_pcscd) = Pcscd::start("opensc_tool_and_reader_client_see_a_card_served_over_vpcd")
        .unwrap_or_else(|e| panic!("{e}"))
    else {
        return;
    };
    let card = e2e_card(&[]);
    let reader = vpcd_reader(SLOT);
    let info = wait_for_card(&reader, CARD_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}\ncard log:\n{}", card.log_text()));
    assert_eq!(info.atr.first(), Some(&0x3B), "ATR {:02X?}", info.atr);

    if which("opensc-tool").is_some() {
        let mut cmd = Command::new("opensc-tool");
        cmd.args(["--reader", &SLOT.to_string(), "--atr"]);
        let out = run_with_timeout(cmd, TOOL_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
        let want = info
            .atr
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        assert!(
            out.status.success() && text.contains(&want),
            "want {want}\n{}",
            output_text(&out)
        );
    } else {
        e2e_tests::skipped(
            "opensc-tool part",
            "opensc-tool is not installed (apt-get install opensc)",
        );
    }

    let rc = workspace_bin("reader-client").unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(&rc);
    cmd.args([
        "send",
        "--reader",
        &reader,
        "00A4040000",
        "00 A4 00 0C 02 3F 00",
    ]);
    let out = run_with_timeout(cmd, TOOL_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.matches("SW 9000 normal processing").count() == 2,
        "{}",
        output_text(&out)
    );

    let mut cmd = Command::new(&rc);
    cmd.args(["atr", "--reader", &reader]);
    let out = run_with_timeout(cmd, TOOL_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        // T=0 only, as real eUICCs: no interface bytes, no TCK, and T=0 is what pcscd chose.
        out.status.success()
            && text.contains("Protocols offered: T=0\n")
            && text.contains("TCK absent")
            && text.contains("Active protocol: T0"),
        "{}",
        output_text(&out)
    );

    // The format's example suites, checked through pcscd against e2e-card (every suite runs
    // against `card-emulator run` in real_tools.rs).
    let mut cmd = Command::new(&rc);
    cmd.args(["conform", "--reader", &reader]);
    for f in [
        "format-example.apdu",
        "iso-select-read.apdu",
        "iso-verify.apdu",
    ] {
        cmd.arg(conformance_dir().join(f));
    }
    let out = run_with_timeout(cmd, TOOL_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", output_text(&out));

    // scriptor runs a conformance file unchanged.
    if which("scriptor").is_some() {
        let mut cmd = Command::new("scriptor");
        cmd.args(["-r", &reader])
            .arg(conformance_dir().join("iso-select-read.apdu"));
        let out = run_with_timeout(cmd, TOOL_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", output_text(&out));
        assert!(text.contains("< 6A 82 : "), "{}", output_text(&out));
        assert!(
            text.contains("< 48 65 6C 6C 6F 90 00 : Normal processing."),
            "{}",
            output_text(&out)
        );
    } else {
        e2e_tests::skipped(
            "scriptor part",
            "scriptor is not installed (apt-get install pcsc-tools)",
        );
    }
    drop(card);
    wait_for_no_card(&reader, CARD_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_card_reconnects_by_itself_after_pcscd_restarts() {
    let Some(mut pcscd) = Pcscd::start("the_card_reconnects_by_itself_after_pcscd_restarts")
        .unwrap_or_else(|e| panic!("{e}"))
    else {
        return;
    };
    let card = e2e_card(&["--minimal"]);
    let reader = vpcd_reader(SLOT);
    wait_for_card(&reader, CARD_TIMEOUT).unwrap_or_else(|e| panic!("{e}\n{}", card.log_text()));
    pcscd.restart().unwrap_or_else(|e| panic!("{e}"));
    wait_for_card(&reader, CARD_TIMEOUT)
        .unwrap_or_else(|e| panic!("after restart: {e}\ncard log:\n{}", card.log_text()));
    let rc = workspace_bin("reader-client").unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(&rc);
    cmd.args(["send", "--reader", &reader, "00B0000000"]);
    let out = run_with_timeout(cmd, TOOL_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", output_text(&out));
    let log = card.log_text();
    assert_eq!(log.matches("waiting for vpcd").count(), 1, "{log}");
}

#[test]
fn extended_apdus_of_65000_bytes_pass_both_ways() {
    let Some(_pcscd) = Pcscd::start("extended_apdus_of_65000_bytes_pass_both_ways")
        .unwrap_or_else(|e| panic!("{e}"))
    else {
        return;
    };
    let card = e2e_card(&["--echo"]);
    let reader = vpcd_reader(SLOT);
    wait_for_card(&reader, CARD_TIMEOUT).unwrap_or_else(|e| panic!("{e}\n{}", card.log_text()));
    let pcsc = reader_client::pcsc_reader::Pcsc::establish().unwrap_or_else(|e| panic!("{e}"));
    let mut t = pcsc.open(Some(&reader)).unwrap_or_else(|e| panic!("{e}"));
    let data: Vec<u8> = (0..65_000u32).map(|i| (i % 251) as u8).collect();
    let apdu = apdu_specs::Command::new(0x80, 0x10, 0, 0)
        .with_data(data.clone())
        .with_le(65_536)
        .to_bytes()
        .unwrap_or_else(|e| panic!("{e}"));
    use reader_client::Transport;
    let resp = t
        .transmit(&apdu)
        .unwrap_or_else(|e| panic!("{e}\ncard log:\n{}", card.log_text()));
    assert_eq!(resp.len(), 65_002);
    assert_eq!(&resp[..65_000], &data[..]);
    assert_eq!(&resp[65_000..], &[0x90, 0x00]);
}

/// Debian's pyscard, run by the system python (not a venv's).
const PYSCARD_SCRIPT: &str = r#"
import sys
from smartcard.System import readers
want = sys.argv[1]
r = [r for r in readers() if str(r) == want][0]
c = r.createConnection()
c.connect()
data, sw1, sw2 = c.transmit([0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00])
print("ATR %s" % "".join("%02X" % b for b in c.getATR()))
print("SW %02X%02X" % (sw1, sw2))
c.disconnect()
"#;

#[test]
fn pyscard_transmits_through_pcscd() {
    let Some(python) = e2e_tests::pyscard_python("pyscard_transmits_through_pcscd") else {
        return;
    };
    let Some(_pcscd) =
        Pcscd::start("pyscard_transmits_through_pcscd").unwrap_or_else(|e| panic!("{e}"))
    else {
        return;
    };
    let card = e2e_card(&[]);
    let reader = vpcd_reader(SLOT);
    wait_for_card(&reader, CARD_TIMEOUT).unwrap_or_else(|e| panic!("{e}\n{}", card.log_text()));
    let mut cmd = Command::new(python);
    cmd.args(["-c", PYSCARD_SCRIPT, &reader]);
    let out = run_with_timeout(cmd, TOOL_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("SW 9000") && text.contains("ATR 3B"),
        "{}",
        output_text(&out)
    );
}

#[test]
fn card_emulator_run_serves_pcsc_clients_and_stops_cleanly_on_sigterm() {
    let Some(_pcscd) =
        Pcscd::start("card_emulator_run_serves_pcsc_clients_and_stops_cleanly_on_sigterm")
            .unwrap_or_else(|e| panic!("{e}"))
    else {
        return;
    };
    let ce = workspace_bin("card-emulator").unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let state = dir.path().join("card.json");
    let mut init = Command::new(&ce);
    init.args(["init", "--state"]).arg(&state);
    let out = run_with_timeout(init, TOOL_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", output_text(&out));

    let mut cmd = Command::new(&ce);
    cmd.args(["run", "--slot", &SLOT.to_string(), "--state"])
        .arg(&state);
    let mut card = Proc::spawn(cmd, "card-emulator").unwrap_or_else(|e| panic!("{e}"));
    let reader = vpcd_reader(SLOT);
    wait_for_card(&reader, CARD_TIMEOUT).unwrap_or_else(|e| panic!("{e}\n{}", card.log_text()));

    let rc = workspace_bin("reader-client").unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(&rc);
    cmd.args([
        "send",
        "--reader",
        &reader,
        "00A4040000",
        "00 A4 00 0C 02 3F 00",
    ]);
    let out = run_with_timeout(cmd, TOOL_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}\ncard log:\n{}",
        output_text(&out),
        card.log_text()
    );

    card.terminate(Duration::from_secs(5));
    let status = card.exited();
    assert!(
        status.is_some_and(|s| s.success()),
        "card-emulator did not exit cleanly on SIGTERM: {status:?}\n{}",
        card.log_text()
    );
    wait_for_no_card(&reader, CARD_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
}

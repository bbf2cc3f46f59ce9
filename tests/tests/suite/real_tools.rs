//! Real PC/SC tools (opensc-tool, opensc-explorer, scriptor, pcsc_scan, reader-client conform)
//! against the real `card-emulator run --slot 0` on a fresh `card-emulator init` state.

use card_emulator::{profile, Card, VirtualCard};
use e2e_tests::{
    output_text, run_with_timeout, skipped, which, workspace_bin, Pcscd, RunningCard, CARD_TIMEOUT,
};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
const SLOT: u16 = 0;

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../apdu-specs/conformance")
}

/// pcscd plus a fresh running card, or `None` (skip notice printed) when a tool or pcscd is missing.
fn setup(test: &str, tool: &str, package: &str) -> Option<(Pcscd, RunningCard)> {
    if which(tool).is_none() {
        skipped(
            test,
            &format!("{tool} is not installed (apt-get install {package})"),
        );
        return None;
    }
    let pcscd = Pcscd::start(test).unwrap_or_else(|e| panic!("{e}"))?;
    let card = RunningCard::start(SLOT).unwrap_or_else(|e| panic!("{e}"));
    Some((pcscd, card))
}

fn run(program: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args);
    run_with_timeout(cmd, TOOL_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

/// Run `program` with `input` on its standard input, with a deadline (killed by PID after it).
fn run_with_stdin(program: &str, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(TOOL_TIMEOUT) {
        Ok(r) => r.unwrap_or_else(|e| panic!("{program}: {e}")),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{program} did not finish within {TOOL_TIMEOUT:?}");
        }
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The ATR of the default profile, computed in-process (what `card-emulator init` personalizes).
fn default_atr() -> Vec<u8> {
    let state = profile::build(profile::DEFAULT_PROFILE).unwrap_or_else(|e| panic!("{e}"));
    Card::in_memory(state).atr()
}

#[test]
fn opensc_tool_lists_the_vpcd_reader_holding_the_card() {
    let test = "opensc_tool_lists_the_vpcd_reader_holding_the_card";
    let Some((_pcscd, card)) = setup(test, "opensc-tool", "opensc") else {
        return;
    };
    let out = run("opensc-tool", &["--list-readers"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let text = stdout(&out);
    // "Nr.  Card  Features  Name" then "0    Yes             Virtual PCD 00 00".
    let line = text
        .lines()
        .find(|l| l.trim_end().ends_with(&card.reader))
        .unwrap_or_else(|| panic!("{} not listed\n{}", card.reader, output_text(&out)));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols.first(), Some(&"0"), "{line}");
    assert_eq!(cols.get(1), Some(&"Yes"), "{line}");
}

#[test]
fn opensc_tool_shows_the_atr_of_the_default_profile() {
    let test = "opensc_tool_shows_the_atr_of_the_default_profile";
    let Some((_pcscd, card)) = setup(test, "opensc-tool", "opensc") else {
        return;
    };
    let want = default_atr();
    assert_eq!(card.atr, want, "pcscd saw another ATR than the card's");
    let out = run("opensc-tool", &["-r", "0", "-a"]);
    let colon_hex = want
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(stdout(&out).trim(), colon_hex, "{}", output_text(&out));
}

#[test]
fn opensc_tool_sends_apdus_and_shows_their_status_words() {
    let test = "opensc_tool_sends_apdus_and_shows_their_status_words";
    let Some((_pcscd, card)) = setup(test, "opensc-tool", "opensc") else {
        return;
    };
    // SELECT the demo application by AID (no answer data), then READ BINARY with no current EF.
    let out = run(
        "opensc-tool",
        &[
            "-r",
            "0",
            "-s",
            "00A4040C08F056534544454D4F",
            "-s",
            "00B0000005",
        ],
    );
    assert!(out.status.success(), "{}", output_text(&out));
    let text = stdout(&out);
    let received: Vec<&str> = text.lines().filter(|l| l.starts_with("Received")).collect();
    assert_eq!(
        received,
        [
            "Received (SW1=0x90, SW2=0x00)",
            "Received (SW1=0x69, SW2=0x86)"
        ],
        "{}\ncard log:\n{}",
        output_text(&out),
        card.log_text()
    );
}

#[test]
fn opensc_explorer_changes_directory_and_reads_transparent_efs() {
    let test = "opensc_explorer_changes_directory_and_reads_transparent_efs";
    let Some((_pcscd, card)) = setup(test, "opensc-explorer", "opensc") else {
        return;
    };
    let script = "cd 5000\nls\ncat 5001\ncd ..\ncat 2F02\n";
    let out = run_with_stdin("opensc-explorer", &["-r", "0"], script);
    let text = stdout(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    let ctx = || format!("{}\ncard log:\n{}", output_text(&out), card.log_text());
    assert!(out.status.success(), "{}", ctx());
    assert!(
        text.contains("OpenSC [3F00/5000]>"),
        "cd 5000 failed\n{}",
        ctx()
    );
    // EF 5001: 256 bytes, personalized as zeros; opensc-explorer dumps 16 bytes per line.
    assert!(
        text.contains("00000000: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 ................")
            && text.contains("000000F0: "),
        "cat 5001 failed\n{}",
        ctx()
    );
    // EF 2F02 at the MF: the text of the default profile.
    assert!(
        text.contains("00000000: 48 65 6C 6C 6F 20 66 72 6F 6D 20 74 68 65 20 76 Hello from the v"),
        "cat 2F02 failed\n{}",
        ctx()
    );
    // OpenSC 0.23 binds our (unknown) ATR to its "default" driver, which has no list_files,
    // so plain `ls` reports "Not supported"; with the tcos driver it sends 80 AA 01|02 00 00,
    // which the card answers (see the next test).
    assert!(
        err.contains("Unable to receive file listing: Not supported")
            || text.contains("FileID\tType  Size"),
        "ls neither listed nor reported the known limitation\n{}",
        ctx()
    );
}

#[test]
fn opensc_explorer_lists_directories_with_the_tcos_driver() {
    let test = "opensc_explorer_lists_directories_with_the_tcos_driver";
    let Some((_pcscd, card)) = setup(test, "opensc-explorer", "opensc") else {
        return;
    };
    let out = run_with_stdin(
        "opensc-explorer",
        &["-c", "tcos", "-r", "0"],
        "ls\ncd 5000\nls\n",
    );
    let text = stdout(&out);
    let ctx = || format!("{}\ncard log:\n{}", output_text(&out), card.log_text());
    assert!(out.status.success(), "{}", ctx());
    for fid in ["2F00", "2F02", "5000", "5001", "5003", "5006"] {
        assert!(text.contains(fid), "ls did not show {fid}\n{}", ctx());
    }
}

#[test]
fn scriptor_runs_every_conformance_file_unchanged() {
    let test = "scriptor_runs_every_conformance_file_unchanged";
    let Some((_pcscd, card)) = setup(test, "scriptor", "pcsc-tools") else {
        return;
    };
    let files = reader_client::conform::collect_files(&[conformance_dir()])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(files.len() >= 3, "{files:?}");
    for f in &files {
        let path = f.to_string_lossy();
        let out = run("scriptor", &["-r", &card.reader, &path]);
        let text = stdout(&out);
        let ctx = || {
            format!(
                "{path}\n{}\ncard log:\n{}",
                output_text(&out),
                card.log_text()
            )
        };
        assert!(out.status.success(), "{}", ctx());
        // Every command line scriptor sent ("> ...") got an answer ("< ...").
        let sent = text.lines().filter(|l| l.starts_with("> ")).count();
        let answered = text.lines().filter(|l| l.starts_with("< ")).count();
        assert!(
            sent > 0 && sent == answered,
            "sent {sent}, answered {answered}\n{}",
            ctx()
        );
        assert!(!text.contains("Transmit failed"), "{}", ctx());
    }
    let out = run(
        "scriptor",
        &[
            "-r",
            &card.reader,
            &conformance_dir()
                .join("iso-select-read.apdu")
                .to_string_lossy(),
        ],
    );
    assert!(
        stdout(&out).contains("< 48 65 6C 6C 6F 90 00 : Normal processing."),
        "{}",
        output_text(&out)
    );
}

/// pcsc_scan's output, line by line, as it prints it.
struct LineReader {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: String,
}

impl LineReader {
    fn spawn(program: &str, args: &[&str]) -> LineReader {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        let out = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        });
        LineReader {
            child,
            lines,
            seen: String::new(),
        }
    }

    /// Read until a line satisfies `pred` (given the lines since the last match); panics at the deadline.
    fn wait_for(&mut self, what: &str, timeout: Duration, mut pred: impl FnMut(&[String]) -> bool) {
        let deadline = Instant::now() + timeout;
        let mut window: Vec<String> = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push_str(&l);
                    self.seen.push('\n');
                    window.push(l);
                    if pred(&window) {
                        return;
                    }
                }
                Err(_) => panic!(
                    "pcsc_scan did not report {what} within {timeout:?}:\n{}",
                    self.seen
                ),
            }
        }
    }
}

impl Drop for LineReader {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// pcsc_scan's state block for `reader` in `lines`: its "Card state:" line, if printed yet.
fn card_state_of(lines: &[String], reader: &str) -> Option<String> {
    let at = lines
        .iter()
        .rposition(|l| l.trim_end().ends_with(reader) && l.contains("Reader "))?;
    lines[at..]
        .iter()
        .find(|l| l.contains("Card state:"))
        .cloned()
}

#[test]
fn pcsc_scan_sees_the_card_inserted_then_removed() {
    let test = "pcsc_scan_sees_the_card_inserted_then_removed";
    if which("pcsc_scan").is_none() {
        skipped(
            test,
            "pcsc_scan is not installed (apt-get install pcsc-tools)",
        );
        return;
    }
    let Some(_pcscd) = Pcscd::start(test).unwrap_or_else(|e| panic!("{e}")) else {
        return;
    };
    let reader = e2e_tests::vpcd_reader(SLOT);
    // -n: no ATR analysis; -t: pcsc_scan ends by itself even if this test dies.
    let mut scan = LineReader::spawn("pcsc_scan", &["-n", "-t", "120"]);
    scan.wait_for("the empty reader", CARD_TIMEOUT, |w| {
        card_state_of(w, &reader).is_some_and(|s| s.contains("Card removed"))
    });
    let mut card = RunningCard::start(SLOT).unwrap_or_else(|e| panic!("{e}"));
    let atr = card
        .atr
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ");
    scan.wait_for("the card inserted", CARD_TIMEOUT, |w| {
        card_state_of(w, &reader).is_some_and(|s| s.contains("Card inserted"))
            && w.iter().any(|l| l.trim() == format!("ATR: {atr}"))
    });
    card.stop().unwrap_or_else(|e| panic!("{e}"));
    scan.wait_for("the card removed", CARD_TIMEOUT, |w| {
        card_state_of(w, &reader).is_some_and(|s| s.contains("Card removed"))
    });
}

#[test]
fn every_conformance_suite_passes_through_pcscd() {
    let test = "every_conformance_suite_passes_through_pcscd";
    let Some(_pcscd) = Pcscd::start(test).unwrap_or_else(|e| panic!("{e}")) else {
        return;
    };
    let card = RunningCard::start(SLOT).unwrap_or_else(|e| panic!("{e}"));
    let rc = workspace_bin("reader-client").unwrap_or_else(|e| panic!("{e}"));
    let dir = e2e_tests::fresh_dir("junit").unwrap_or_else(|e| panic!("{e}"));
    let junit = dir.join("conformance.xml");
    let mut cmd = Command::new(&rc);
    cmd.args(["conform", "--reader", &card.reader, "--junit"])
        .arg(&junit)
        .arg(conformance_dir());
    let out = run_with_timeout(cmd, Duration::from_secs(300)).unwrap_or_else(|e| panic!("{e}"));
    let text = stdout(&out);
    let ctx = || format!("{}\ncard log:\n{}", output_text(&out), card.log_text());
    assert!(out.status.success(), "{}", ctx());
    let files = reader_client::conform::collect_files(&[conformance_dir()])
        .unwrap_or_else(|e| panic!("{e}"));
    let total = text
        .lines()
        .find(|l| l.starts_with("TOTAL:"))
        .unwrap_or_else(|| panic!("no TOTAL line\n{}", ctx()));
    assert!(
        total.starts_with(&format!("TOTAL: {} file(s)", files.len())) && total.ends_with("-> PASS"),
        "{}",
        ctx()
    );
    let xml = std::fs::read_to_string(&junit).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        xml.contains("<testsuite") && !xml.contains("<failure"),
        "{xml}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// pyscard as an eSIM LPA connects (lpac: T=0 only, exclusive), or with its default
/// (T=0 or T=1): prints the protocol pcsc-lite chose and the SW of SELECT ISD-R.
const PYSCARD_CONNECT: &str = r#"
import sys
from smartcard.System import readers
from smartcard.CardConnection import CardConnection
from smartcard.scard import SCARD_SHARE_EXCLUSIVE
r = [r for r in readers() if str(r) == sys.argv[1]][0]
c = r.createConnection()
if sys.argv[2] == "t0-exclusive":
    c.connect(CardConnection.T0_protocol, mode=SCARD_SHARE_EXCLUSIVE)
else:
    c.connect()
isd_r = [0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x01, 0x00]
data, sw1, sw2 = c.transmit([0x00, 0xA4, 0x04, 0x00, len(isd_r)] + isd_r)
print("PROTOCOL %d SW %02X%02X" % (c.getProtocol(), sw1, sw2))
c.disconnect()
"#;

/// Issue 13's first sentence: the tools work in any order, without a card reset between
/// them. A card that offered T=1 too was left in T=1 by the first tool that accepts it,
/// and a T=0-only connection (lpac's) then failed with SCARD_E_PROTO_MISMATCH.
#[test]
fn every_tool_works_in_any_order_without_a_reset_between_them() {
    let test = "every_tool_works_in_any_order_without_a_reset_between_them";
    let Some(python) = e2e_tests::pyscard_python(test) else {
        return;
    };
    let python = python.to_string_lossy();
    let Some((_pcscd, card)) = setup(test, "scriptor", "pcsc-tools") else {
        return;
    };
    if which("opensc-tool").is_none() {
        skipped(
            test,
            "opensc-tool is not installed (apt-get install opensc)",
        );
        return;
    }
    if which("pcsc_scan").is_none() {
        skipped(
            test,
            "pcsc_scan is not installed (apt-get install pcsc-tools)",
        );
        return;
    }
    let rc = workspace_bin("reader-client").unwrap_or_else(|e| panic!("{e}"));
    let rc = rc.to_string_lossy().into_owned();
    let pyscard = |mode: &str| {
        let out = run(&python, &["-c", PYSCARD_CONNECT, &card.reader, mode]);
        let text = stdout(&out);
        assert!(
            out.status.success() && (text.contains("SW 61") || text.contains("SW 9000")),
            "pyscard {mode}: {}\ncard log:\n{}",
            output_text(&out),
            card.log_text()
        );
        text
    };
    // Each step must succeed after every step before it. A T=0-only connection to the
    // freshly inserted card first, then the issue's order exactly.
    let t0 = pyscard("t0-exclusive");
    assert!(t0.contains("PROTOCOL 1"), "{t0}"); // pyscard's T0_protocol is 1
    let out = run("opensc-tool", &["-r", &card.reader, "-a"]);
    assert!(
        out.status.success(),
        "opensc-tool -a: {}",
        output_text(&out)
    );
    let out = run(&rc, &["containers", "list", "--reader", &card.reader]);
    assert!(out.status.success(), "reader-client: {}", output_text(&out));
    let out = run_with_stdin("scriptor", &["-r", &card.reader], "00 A4 00 0C 02 3F 00\n");
    assert!(
        out.status.success() && stdout(&out).contains("< 90 00"),
        "scriptor: {}",
        output_text(&out)
    );
    let t0 = pyscard("t0-exclusive");
    assert!(t0.contains("PROTOCOL 1"), "after scriptor: {t0}");
    pcsc_scan_once_reports(&card.reader, &card.atr);
    let default = pyscard("default");
    assert!(default.contains("PROTOCOL 1"), "pyscard default: {default}");
    let t0 = pyscard("t0-exclusive");
    assert!(t0.contains("PROTOCOL 1"), "at the end: {t0}");
}

/// pcsc_scan's one-shot: `-c` ("only lists cards", pcsc-tools >= 1.6) makes one
/// SCardGetStatusChange from SCARD_STATE_UNAWARE, prints every reader's state block with its
/// ATR, and exits; `-n` skips the ATR analysis (a Perl script that may look for an update
/// of its list); `-t 30` makes pcsc_scan itself quit should it wait anyway, and `run` kills
/// it by PID after TOOL_TIMEOUT.
fn pcsc_scan_once_reports(reader: &str, atr: &[u8]) {
    assert_eq!(atr, default_atr(), "pcscd saw another ATR than the card's");
    let out = run("pcsc_scan", &["-c", "-n", "-t", "30"]);
    assert!(out.status.success(), "pcsc_scan -c: {}", output_text(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    let state = card_state_of(&lines, reader)
        .unwrap_or_else(|| panic!("pcsc_scan -c: no state for {reader}\n{}", output_text(&out)));
    assert!(
        state.contains("Card inserted"),
        "pcsc_scan -c: {state}\n{}",
        output_text(&out)
    );
    let hex = atr
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ");
    let at = lines
        .iter()
        .rposition(|l| l.trim_end().ends_with(reader) && l.contains("Reader "))
        .unwrap_or_default();
    let block_atr = lines[at..]
        .iter()
        .skip(1)
        .take_while(|l| !l.contains(" Reader "))
        .find_map(|l| l.trim().strip_prefix("ATR: "))
        .map(str::trim);
    assert_eq!(
        block_atr,
        Some(hex.as_str()),
        "pcsc_scan -c did not show our ATR\n{}",
        output_text(&out)
    );
}

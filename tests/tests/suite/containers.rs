//! `reader-client containers` through real pcscd + vpcd against `card-emulator run`: switching
//! containers over ES10c changes what opensc-tool reads, and none enabled answers 6A82.

use e2e_tests::{output_text, run_with_timeout, skipped, which, workspace_bin, Pcscd, RunningCard};
use reader_client::containers::parse_list_json;
use std::process::{Command, Output};
use std::time::Duration;

const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
const SLOT: u16 = 0;
const ICCID_A: &str = "8944476500001224158";
const ICCID_B: &str = "89000123456789012341";
const AID_A: &str = "A0000005591010FFFFFFFF8900001000";
/// SELECT the containers' application DF, its EF 6F01, READ BINARY of 24 bytes.
const READ_PUBLIC: [&str; 3] = ["00A4040C08F0565345434F4E54", "00A4020C026F01", "00B0000018"];

/// pcscd plus a fresh running card, or `None` (skip notice printed) when a tool or pcscd is missing.
fn setup(test: &str) -> Option<(Pcscd, RunningCard)> {
    if which("opensc-tool").is_none() {
        skipped(
            test,
            "opensc-tool is not installed (apt-get install opensc)",
        );
        return None;
    }
    let pcscd = Pcscd::start(test).unwrap_or_else(|e| panic!("{e}"))?;
    let card = RunningCard::start(SLOT).unwrap_or_else(|e| panic!("{e}"));
    Some((pcscd, card))
}

/// `reader-client <args> --reader <the card's reader>`.
fn reader_client(card: &RunningCard, args: &[&str]) -> Output {
    let rc = workspace_bin("reader-client").unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(rc);
    cmd.args(args).args(["--reader", &card.reader]);
    run_with_timeout(cmd, TOOL_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

fn ok(card: &RunningCard, args: &[&str]) -> String {
    let out = reader_client(card, args);
    assert!(
        out.status.success(),
        "reader-client {args:?}\n{}\ncard log:\n{}",
        output_text(&out),
        card.log_text()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `containers list --json`, as (iccid, state, nickname) triples.
fn list(card: &RunningCard) -> Vec<(String, String, String)> {
    let text = ok(card, &["containers", "list", "--json"]);
    parse_list_json(&text)
        .unwrap_or_else(|e| panic!("{e}: {text}"))
        .into_iter()
        .map(|c| {
            (
                c.iccid.unwrap_or_default(),
                c.state.unwrap_or_default(),
                c.nickname.unwrap_or_default(),
            )
        })
        .collect()
}

fn states(card: &RunningCard) -> Vec<(String, String)> {
    list(card).into_iter().map(|(i, s, _)| (i, s)).collect()
}

/// opensc-tool's answers to `apdus` on reader 0: per APDU, (data bytes, "SW1=0x.., SW2=0x..").
fn opensc_tool(card: &RunningCard, apdus: &[&str]) -> Vec<(Vec<u8>, String)> {
    let mut cmd = Command::new("opensc-tool");
    cmd.args(["-r", "0"]);
    for a in apdus {
        cmd.args(["-s", a]);
    }
    let out = run_with_timeout(cmd, TOOL_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut answers: Vec<(Vec<u8>, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Received (") {
            let sw = rest.trim_end_matches([')', ':']).to_string();
            answers.push((Vec::new(), sw));
        } else if let Some((data, _)) = answers.last_mut() {
            // Hex dump lines: up to 16 hex bytes, then the ASCII column.
            for tok in line.split_whitespace() {
                match u8::from_str_radix(tok, 16) {
                    Ok(b) if tok.len() == 2 => data.push(b),
                    _ => break,
                }
            }
        }
    }
    assert_eq!(
        answers.len(),
        apdus.len(),
        "{}\ncard log:\n{}",
        output_text(&out),
        card.log_text()
    );
    answers
}

const SW_OK: &str = "SW1=0x90, SW2=0x00";

#[test]
fn enabling_a_container_switches_what_opensc_tool_reads_and_disabling_it_leaves_6a82() {
    let test = "enabling_a_container_switches_what_opensc_tool_reads_and_disabling_it_leaves_6a82";
    let Some((_pcscd, card)) = setup(test) else {
        return;
    };
    assert_eq!(
        states(&card),
        [
            (ICCID_A.to_string(), "enabled".to_string()),
            (ICCID_B.to_string(), "disabled".to_string())
        ]
    );
    let a = opensc_tool(&card, &READ_PUBLIC);
    assert_eq!(
        a[2],
        (b"container A: public data".to_vec(), SW_OK.to_string())
    );

    let text = ok(&card, &["containers", "enable", ICCID_B]);
    assert_eq!(text.trim(), "EnableProfile: ok");
    assert_eq!(
        states(&card),
        [
            (ICCID_A.to_string(), "disabled".to_string()),
            (ICCID_B.to_string(), "enabled".to_string())
        ]
    );
    let b = opensc_tool(&card, &READ_PUBLIC);
    assert_eq!(
        b[2],
        (b"container B: public data".to_vec(), SW_OK.to_string())
    );

    ok(&card, &["containers", "disable", ICCID_B]);
    assert!(states(&card).iter().all(|(_, s)| s == "disabled"));
    let none = opensc_tool(&card, &READ_PUBLIC[..1]);
    assert_eq!(none[0], (Vec::new(), "SW1=0x6A, SW2=0x82".to_string()));

    // Disabling it again is refused with its SGP.22 name and a non-zero exit.
    let out = reader_client(&card, &["containers", "disable", ICCID_B]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("profileNotInEnabledState"),
        "{}",
        output_text(&out)
    );
}

#[test]
fn nickname_and_delete_of_a_disabled_container_show_in_the_list() {
    let test = "nickname_and_delete_of_a_disabled_container_show_in_the_list";
    let Some((_pcscd, card)) = setup(test) else {
        return;
    };
    // By ISD-P AID: reader-client resolves it to the ICCID SetNickname needs.
    ok(&card, &["containers", "nickname", AID_A, "travel"]);
    assert_eq!(list(&card)[0].2, "travel");

    // The enabled container cannot be deleted.
    let out = reader_client(&card, &["containers", "delete", ICCID_A, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(r#""result":"profileNotInDisabledState""#),
        "{}",
        output_text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("disable it first"),
        "{}",
        output_text(&out)
    );

    // The disabled one can, and is gone for good.
    let text = ok(&card, &["containers", "delete", ICCID_B]);
    assert_eq!(text.trim(), "DeleteProfile: ok");
    assert_eq!(
        states(&card),
        [(ICCID_A.to_string(), "enabled".to_string())]
    );
    let out = reader_client(&card, &["containers", "enable", ICCID_B]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("iccidOrAidNotFound"),
        "{}",
        output_text(&out)
    );
    // The text table shows the remaining container.
    let table = ok(&card, &["containers", "list"]);
    assert!(table.starts_with("ICCID"), "{table}");
    assert!(
        table.contains(ICCID_A) && !table.contains(ICCID_B),
        "{table}"
    );
}

/// `reader-client gp` through pcscd: GET STATUS inside SCP03 and SCP02 lists both ISD-Ps
/// with their life cycles; PUT KEY replaces the SCP03 key set, after which only the new
/// keys open a channel.
#[test]
fn gp_status_and_put_key_through_pcscd() {
    let test = "gp_status_and_put_key_through_pcscd";
    let Some((_pcscd, card)) = setup(test) else {
        return;
    };
    for scp in ["03", "02"] {
        let text = ok(&card, &["gp", "--scp", scp, "status"]);
        assert!(text.contains("ISD: A000000151000000"), "{text}");
        assert!(text.contains(&format!("{AID_A}  3F")), "{text}");
        assert!(
            text.contains("A0000005591010FFFFFFFF8900001100  1F"),
            "{text}"
        );
    }
    let new_key = "2122232425262728292A2B2C2D2E2F30";
    let text = ok(
        &card,
        &["gp", "put-key", "--new-key", new_key, "--new-kvn", "31"],
    );
    assert!(text.contains("replaced by key set 31"), "{text}");
    let old = reader_client(&card, &["gp", "status"]);
    assert!(!old.status.success(), "the old keys still open a channel");
    let text = ok(&card, &["gp", "--key", new_key, "--kvn", "31", "status"]);
    assert!(text.contains("ISD: A000000151000000"), "{text}");
}

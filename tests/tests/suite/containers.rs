//! `reader-client containers` through real pcscd + vpcd against `card-emulator run`: switching
//! containers over ES10c changes what opensc-tool reads, and none enabled answers 6A82.

use e2e_tests::{output_text, run_with_timeout, skipped, which, Pcscd, RunningCard};
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

fn reader_client(card: &RunningCard, args: &[&str]) -> Output {
    card.reader_client(args)
}

fn ok(card: &RunningCard, args: &[&str]) -> String {
    card.reader_client_ok(args)
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

fn openssl(dir: &std::path::Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir).args(args);
    run_with_timeout(cmd, TOOL_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

/// Issue 13: enable and disable through pcscd leave notifications that `reader-client
/// containers notifications` lists; each is signed by the eUICC, whose certificate chains
/// to the CI certificate `card-emulator init` exported; OpenSSL, not our code, verifies the
/// chain and every signature; `--remove` clears one and the numbers go on.
#[test]
fn notifications_through_pcscd_verify_with_openssl_against_the_exported_ci() {
    use apdu_specs::es10::{NotificationEvent, OtherSignedNotification};
    let test = "notifications_through_pcscd_verify_with_openssl_against_the_exported_ci";
    if which("openssl").is_none() {
        skipped(test, "openssl is not installed (apt-get install openssl)");
        return;
    }
    let Some((_pcscd, card)) = setup(test) else {
        return;
    };
    ok(&card, &["containers", "disable", ICCID_A]);
    ok(&card, &["containers", "enable", ICCID_B]);
    let text = ok(
        &card,
        &["containers", "notifications", "--json", "--signed"],
    );
    let rows = reader_client::containers::parse_notifications_json(&text)
        .unwrap_or_else(|e| panic!("{e}: {text}"));
    let seen: Vec<(u32, &str, Option<&str>)> = rows
        .iter()
        .map(|r| (r.seq, r.operation.as_str(), r.iccid.as_deref()))
        .collect();
    assert_eq!(
        seen,
        vec![(1, "disable", Some(ICCID_A)), (2, "enable", Some(ICCID_B))]
    );
    // The chain `containers info` shows is the one in every notification.
    let info: reader_client::containers::EuiccInfoView =
        serde_json::from_str(&ok(&card, &["containers", "info", "--json"])).unwrap();
    assert_eq!(info.chain.len(), 2, "{info:?}");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ci = format!("{}.ci.pem", card.state_path().display());
    for (name, row) in [("eum", &info.chain[0]), ("euicc", &info.chain[1])] {
        std::fs::write(
            d.join(format!("{name}.der")),
            hex::decode(&row.der).unwrap(),
        )
        .unwrap();
        let o = openssl(
            d,
            &[
                "x509",
                "-inform",
                "der",
                "-in",
                &format!("{name}.der"),
                "-out",
                &format!("{name}.pem"),
            ],
        );
        assert!(o.status.success(), "{}", output_text(&o));
    }
    let o = openssl(
        d,
        &[
            "verify",
            "-CAfile",
            &ci,
            "-untrusted",
            "eum.pem",
            "euicc.pem",
        ],
    );
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("euicc.pem: OK"),
        "{}",
        output_text(&o)
    );
    let o = openssl(
        d,
        &[
            "x509",
            "-in",
            "euicc.pem",
            "-pubkey",
            "-noout",
            "-out",
            "pub.pem",
        ],
    );
    assert!(o.status.success(), "{}", output_text(&o));
    for row in &rows {
        let signed = hex::decode(row.signed.as_deref().expect("--signed")).unwrap();
        let value = apdu_specs::der::read_expected(&signed, 0x30).unwrap();
        let n = OtherSignedNotification::parse_value(value).unwrap();
        assert_eq!(n.metadata.seq, row.seq);
        assert_eq!(
            n.metadata.event,
            NotificationEvent::from_name(&row.operation).unwrap()
        );
        assert_eq!(hex::encode_upper(&n.euicc_certificate), info.chain[1].der);
        assert_eq!(hex::encode_upper(&n.eum_certificate), info.chain[0].der);
        // SGP.22 signs r || s; OpenSSL reads the DER form of the same two integers.
        let sig = p256::ecdsa::Signature::from_slice(&n.signature).unwrap();
        std::fs::write(d.join("sig.der"), sig.to_der().as_bytes()).unwrap();
        let verify = |message: &[u8]| {
            std::fs::write(d.join("tbs.bin"), message).unwrap();
            let args = [
                "dgst",
                "-sha256",
                "-verify",
                "pub.pem",
                "-signature",
                "sig.der",
                "tbs.bin",
            ];
            openssl(d, &args)
        };
        let o = verify(&n.tbs);
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Verified OK"),
            "seq {}: {}",
            row.seq,
            output_text(&o)
        );
        let mut forged = n.tbs.clone();
        let last = forged.len() - 1;
        forged[last] ^= 0x01;
        let o = verify(&forged);
        assert!(
            !o.status.success(),
            "a changed notification verified: {}",
            output_text(&o)
        );
    }
    // The LPA delivered seq 1: remove it; removing it again finds nothing (exit 1).
    assert!(ok(&card, &["containers", "notifications", "--remove", "1"]).contains("ok"));
    let again = reader_client(&card, &["containers", "notifications", "--remove", "1"]);
    assert_eq!(again.status.code(), Some(1), "{}", output_text(&again));
    assert!(
        output_text(&again).contains("nothingToDelete"),
        "{}",
        output_text(&again)
    );
    ok(&card, &["containers", "disable", ICCID_B]);
    let text = ok(&card, &["containers", "notifications"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[1].starts_with("2 ") && lines[2].starts_with("3 "),
        "{text}"
    );
}

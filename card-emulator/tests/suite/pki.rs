//! The eUICC's SGP.22 identity: its CI -> EUM -> eUICC chain and signatures checked by an
//! independent verifier (OpenSSL), kept across the state file, exported by `init` and shown
//! by `inspect`.

use card_emulator::pki::EuiccIdentity;
use card_emulator::profile;
use card_emulator::state::CardState;
use card_emulator::store::{decode, encode};
use std::path::Path;
use std::process::{Command, Output};

const EID: &str = profile::DEFAULT_EID;

/// Whether `openssl` runs; if not, says loudly that `test` is skipped.
fn openssl_or_skip(test: &str) -> bool {
    match Command::new("openssl").arg("version").output() {
        Ok(o) if o.status.success() => true,
        _ => {
            eprintln!("SKIPPED {test}: openssl is not installed (apt-get install openssl)");
            false
        }
    }
}

fn openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn pem(der: &[u8]) -> String {
    x509_cert::der::pem::encode_string("CERTIFICATE", x509_cert::der::pem::LineEnding::LF, der)
        .unwrap()
}

/// A card's identity with its three certificates written as PEM in `dir`.
fn identity_in(dir: &Path) -> EuiccIdentity {
    let state = profile::build(profile::DEFAULT_PROFILE).unwrap();
    let id = state
        .euicc_identity()
        .expect("every built card has one")
        .clone();
    std::fs::write(dir.join("ci.pem"), id.ci_pem()).unwrap();
    std::fs::write(dir.join("eum.pem"), pem(&id.eum_certificate)).unwrap();
    std::fs::write(dir.join("euicc.pem"), pem(&id.euicc_certificate)).unwrap();
    id
}

#[test]
fn openssl_verifies_the_chain_and_reads_the_sgp22_policies_and_the_eid() {
    if !openssl_or_skip("openssl_verifies_the_chain_and_reads_the_sgp22_policies_and_the_eid") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    identity_in(dir.path());
    let v = openssl(
        dir.path(),
        &[
            "verify",
            "-CAfile",
            "ci.pem",
            "-untrusted",
            "eum.pem",
            "euicc.pem",
        ],
    );
    assert!(v.status.success(), "{}", text(&v));
    assert!(text(&v).contains("euicc.pem: OK"), "{}", text(&v));

    // Without the EUM the eUICC certificate has no path to the CI.
    let v = openssl(dir.path(), &["verify", "-CAfile", "ci.pem", "euicc.pem"]);
    assert!(!v.status.success(), "{}", text(&v));

    let show = |file: &str| {
        let o = openssl(dir.path(), &["x509", "-noout", "-text", "-in", file]);
        assert!(o.status.success(), "{}", text(&o));
        text(&o)
    };
    let ci = show("ci.pem");
    for want in [
        "Signature Algorithm: ecdsa-with-SHA256",
        "Version: 3",
        "CN = vSE Test CI",
        "CA:TRUE",
        "Certificate Sign, CRL Sign",
        "X509v3 Certificate Policies: critical",
        "Policy: 2.23.146.1.2.1.0",
        "X509v3 Subject Key Identifier",
    ] {
        assert!(ci.contains(want), "CI lacks {want:?}:\n{ci}");
    }
    let eum = show("eum.pem");
    for want in [
        "CN = vSE Test EUM",
        "CA:TRUE, pathlen:0",
        "X509v3 Key Usage: critical",
        "Certificate Sign",
        "Policy: 2.23.146.1.2.1.2",
        "X509v3 Authority Key Identifier",
    ] {
        assert!(eum.contains(want), "EUM lacks {want:?}:\n{eum}");
    }
    assert!(!eum.contains("CRL Sign"), "{eum}");
    let euicc = show("euicc.pem");
    for want in [
        EID,
        "CN = vSE Test eUICC",
        "Digital Signature",
        "Policy: 2.23.146.1.2.1.1",
        "Not After : Dec 31 23:59:59 9999 GMT",
        "ASN1 OID: prime256v1",
        "X509v3 Authority Key Identifier",
    ] {
        assert!(euicc.contains(want), "eUICC lacks {want:?}:\n{euicc}");
    }
    assert!(!euicc.contains("CA:TRUE"), "{euicc}");
}

/// `r || s` (32 + 32 bytes) as the DER ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }
/// OpenSSL reads.
fn der_signature(plain: &[u8; 64]) -> Vec<u8> {
    fn integer(v: &[u8]) -> Vec<u8> {
        let mut v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        if !matches!(v.first(), Some(b) if b & 0x80 == 0) {
            v.insert(0, 0); // positive, or zero
        }
        let mut out = vec![0x02, v.len() as u8];
        out.extend(v);
        out
    }
    let mut body = integer(&plain[..32]);
    body.extend(integer(&plain[32..]));
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

#[test]
fn a_signature_of_sign_verifies_with_openssl_and_a_flipped_message_byte_fails() {
    if !openssl_or_skip(
        "a_signature_of_sign_verifies_with_openssl_and_a_flipped_message_byte_fails",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let id = identity_in(dir.path());
    let public = openssl(
        dir.path(),
        &["x509", "-pubkey", "-noout", "-in", "euicc.pem"],
    );
    assert!(public.status.success(), "{}", text(&public));
    std::fs::write(dir.path().join("pub.pem"), &public.stdout).unwrap();

    let message = b"SGP.22 NotificationMetadata, DER".to_vec();
    let sig = id.sign(&message);
    assert_eq!(sig.len(), 64);
    std::fs::write(dir.path().join("sig.der"), der_signature(&sig)).unwrap();
    std::fs::write(dir.path().join("msg.bin"), &message).unwrap();
    let args = [
        "dgst",
        "-sha256",
        "-verify",
        "pub.pem",
        "-signature",
        "sig.der",
        "msg.bin",
    ];
    let ok = openssl(dir.path(), &args);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("Verified OK"), "{}", text(&ok));

    let mut flipped = message.clone();
    flipped[0] ^= 0x01;
    std::fs::write(dir.path().join("msg.bin"), &flipped).unwrap();
    let bad = openssl(dir.path(), &args);
    assert!(!bad.status.success(), "{}", text(&bad));
    assert!(
        text(&bad).contains("Verification failure"),
        "{}",
        text(&bad)
    );
}

#[test]
fn the_state_file_keeps_the_identity_and_a_state_without_it_loads_with_none() {
    let state = profile::build(profile::DEFAULT_PROFILE).unwrap();
    let id = state.euicc_identity().unwrap().clone();

    let json = serde_json::to_string(&state).unwrap();
    let back: CardState = serde_json::from_str(&json).unwrap();
    assert_eq!(back.euicc_identity(), Some(&id));
    assert_eq!(back.euicc_identity().unwrap().sign(b"m"), id.sign(b"m"));
    let stored = decode(&encode(&state), "encoded").unwrap();
    assert_eq!(stored.euicc_identity(), Some(&id));
    assert_eq!(stored, state);

    let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(old.as_object_mut().unwrap().remove("euicc").is_some());
    let old: CardState = serde_json::from_value(old).unwrap();
    assert_eq!(old.euicc_identity(), None);
    assert!(
        !serde_json::to_string(&old).unwrap().contains("euicc\""),
        "an absent identity is not written"
    );

    // The released formats have none and still load.
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/card-state-v1.json");
    let v1 = decode(&std::fs::read(&golden).unwrap(), "v1").unwrap();
    assert_eq!(v1.euicc_identity(), None);
}

#[test]
fn debug_of_a_card_state_never_shows_the_euicc_private_key() {
    let state = profile::build(profile::DEFAULT_PROFILE).unwrap();
    let json = serde_json::to_value(state.euicc_identity().unwrap()).unwrap();
    let key = json["private_key"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 64);
    let debug = format!("{state:?}");
    assert!(!debug.contains(&key) && !debug.contains(&key.to_lowercase()));
}

fn emulator(args: &[&str], state: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_card-emulator"))
        .args(args)
        .arg("--state")
        .arg(state)
        .output()
        .unwrap()
}

#[test]
fn init_exports_the_ci_pem_and_inspect_shows_the_eid_and_the_three_certificates() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("card.json");
    let ci = dir.path().join("card.json.ci.pem");

    let out = emulator(&["init"], &state);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&ci.display().to_string()) && said.contains("openssl verify -CAfile"),
        "{said}"
    );
    let exported = std::fs::read_to_string(&ci).unwrap();
    assert!(
        exported.starts_with("-----BEGIN CERTIFICATE-----"),
        "{exported}"
    );
    // The state file holds the eUICC key (as it holds the GP keys): owner only.
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // `inspect --json` is the state file: the key is in it, the exported CI is its CI.
    let json = emulator(&["inspect", "--json"], &state);
    assert!(json.status.success(), "{}", text(&json));
    let card = decode(&json.stdout, "inspect --json").unwrap();
    let id = card.euicc_identity().expect("init made the identity");
    assert_eq!(exported, id.ci_pem());

    let report = emulator(&["inspect"], &state);
    assert!(report.status.success(), "{}", text(&report));
    let report = String::from_utf8_lossy(&report.stdout).to_string();
    assert!(report.contains(&format!("EID: {EID}")), "{report}");
    for c in id.summary() {
        assert!(
            report.contains(&c.subject) && report.contains(&c.serial) && report.contains(&c.ski),
            "{} missing from:\n{report}",
            c.role
        );
    }
    let key = serde_json::to_value(id).unwrap()["private_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !report.contains(&key),
        "inspect printed the eUICC private key"
    );

    // A CI file that exists is kept: init refuses before writing the card, --force replaces.
    let other = dir.path().join("other.json");
    let out = emulator(&["init", "--ci-cert", ci.to_str().unwrap()], &other);
    assert!(!out.status.success());
    assert!(text(&out).contains("already exists") && text(&out).contains("--force"));
    assert!(!other.exists(), "nothing written after the refusal");
    assert_eq!(std::fs::read_to_string(&ci).unwrap(), exported);
    let out = emulator(
        &["init", "--force", "--ci-cert", ci.to_str().unwrap()],
        &other,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_ne!(
        std::fs::read_to_string(&ci).unwrap(),
        exported,
        "a new card, a new CI"
    );
}

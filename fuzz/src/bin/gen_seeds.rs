//! Writes the seed corpora of every fuzz target from the conformance scripts
//! (`apdu-specs/conformance/*.apdu`: every APDU, the default PIN 1234 and PUK 12345678, the
//! ES10c payloads) and from real protocol messages (R, R', sealed R and R' of protocol
//! version 02, certificates, protected messages sealed by the shared crypto, SCP03/SCP02
//! commands wrapped at each level), so that the fuzzer starts past authentication.
//!
//! `gen-seeds [OUT]` writes `OUT/<target>/<name>` (default `fuzz/seeds`, relative to the
//! repository root). `gen-seeds --rehandshake` runs a new seed-1 handshake and rewrites
//! `fuzz/fixtures/mutual.json` (then rebuild and run `gen-seeds` again).
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use apdu_specs::auth::{
    pad, AuthCommand, Call, CallResult, CallStatus, ConnectionSummary, ContainerIdentity,
    GetRegistration, TrustAnchor, ANSWER_BUCKETS, MESSAGE_BUCKETS, REGISTRATION_BUCKETS,
    SUBJECT_LEN,
};
use apdu_specs::es10::{EuiccInfo1, EuiccInfo2, ExtCardResource};
use apdu_specs::Command;
use card_emulator::VirtualCard;
use secure_channel::mutual::{self, Grant, SigningKey, VerifyingKey};
use secure_channel::{scp02, scp03, HostSecureChannel, StaticKeys};
use vse_fuzz::{
    fresh_card, handshake, mutual_pair, push_record, scp_pair, script_steps, ScpConfig,
    FILLER_CALL, HOST_CHALLENGE, SCP02_LEVELS, SCP03_LEVELS,
};

const NOW: u64 = 1_700_000_000;

/// Seeds of one target, de-duplicated, written as `seed-NNN`.
#[derive(Default)]
struct Seeds(BTreeSet<Vec<u8>>);

impl Seeds {
    fn add(&mut self, seed: impl Into<Vec<u8>>) {
        let s = seed.into();
        if !s.is_empty() && s.len() <= 16_384 {
            self.0.insert(s);
        }
    }

    fn write(&self, dir: &Path) -> std::io::Result<usize> {
        fs::create_dir_all(dir)?;
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
            {
                fs::remove_file(path)?;
            }
        }
        for (i, s) in self.0.iter().enumerate() {
            fs::write(dir.join(format!("seed-{i:03}")), s)?;
        }
        Ok(self.0.len())
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn records(steps: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, d) in steps {
        push_record(&mut out, *k, d);
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--rehandshake") {
        return rehandshake();
    }
    let out = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("fuzz/seeds"));

    // Conformance scripts: (file name, steps); `None` is a reset.
    let mut scripts = Vec::new();
    let mut dir: Vec<_> =
        fs::read_dir(repo_root().join("apdu-specs/conformance"))?.collect::<Result<_, _>>()?;
    dir.sort_by_key(|e| e.path());
    for e in dir {
        let path = e.path();
        if path.extension().is_some_and(|x| x == "apdu") {
            scripts.push(script_steps(&fs::read_to_string(&path)?));
        }
    }
    let apdus: BTreeSet<Vec<u8>> = scripts.iter().flatten().flatten().cloned().collect();

    let mut t = std::collections::BTreeMap::<&str, Seeds>::new();

    // apdu_codec, tlv, es10_requests from every APDU of the scripts.
    for a in &apdus {
        t.entry("apdu_codec").or_default().add(a.clone());
        if let Ok(cmd) = Command::parse(a) {
            if !cmd.data().is_empty() {
                t.entry("tlv").or_default().add(cmd.data());
            }
            if cmd.ins == 0xE2 {
                t.entry("es10_requests").or_default().add(cmd.data());
            }
            if cmd.cla & 0x80 != 0 {
                t.entry("auth_messages").or_default().add(a.clone());
            }
        }
    }
    // Structured build seeds: header, flags, Le, data.
    for (flags, le, data) in [
        (0u8, [0u8, 0u8], &b""[..]),
        (1, [0, 0xFF], b"\x3F\x00"),
        (3, [0xFF, 0xFF], b"\xA0\x00\x00\x05\x59\x10\x10"),
        (0xF5, [0x01, 0x00], b"0123456789abcdef"),
    ] {
        let mut s = vec![0x00, 0xA4, 0x04, 0x00, flags];
        s.extend_from_slice(&le);
        s.extend_from_slice(data);
        t.entry("apdu_codec").or_default().add(s);
    }

    // ES10c requests and responses built by the codec.
    t.entry("es10_requests")
        .or_default()
        .add(EuiccInfo1::plausible().to_bytes());
    t.entry("es10_requests")
        .or_default()
        .add(EuiccInfo2::plausible(ExtCardResource::default()).to_bytes());

    // The card and vpcd: one seed per script; power cycles where the script resets.
    for steps in &scripts {
        let mut card = Vec::new();
        let mut vpcd_stream = Vec::new();
        for s in steps {
            match s {
                None => {
                    push_record(&mut card, 2, &[]);
                    vpcd_stream.extend_from_slice(&[0, 1, 1]); // reset control
                }
                Some(a) => {
                    push_record(&mut card, 0, a);
                    vpcd_stream.extend_from_slice(&(a.len() as u16).to_be_bytes());
                    vpcd_stream.extend_from_slice(a);
                }
            }
        }
        t.entry("card").or_default().add(card);
        // vpcd: power on, GetATR, then the stream cut into 7-byte chunks (frames straddle).
        let mut v = Vec::new();
        push_record(&mut v, 1, &[0, 1, 1, 0, 1, 4]);
        for chunk in vpcd_stream.chunks(7) {
            push_record(&mut v, 1, chunk);
        }
        t.entry("vpcd_framing").or_default().add(v);
    }
    let mut v = Vec::new();
    push_record(
        &mut v,
        1,
        &[0, 1, 0, 0, 1, 1, 0, 1, 2, 0, 1, 4, 0, 0, 0, 1, 9],
    );
    push_record(&mut v, 0, &[0xFF, 0xFF, 0x00]);
    t.entry("vpcd_framing").or_default().add(v);

    // The card with a GlobalPlatform secure channel opened the way a host does.
    for seed in card_scp_seeds() {
        t.entry("card").or_default().add(seed);
    }

    // SCP03 and SCP02 sessions: plain commands to wrap, their wire forms, tampering.
    let plains: Vec<Vec<u8>> = vec![
        hex::decode("80F28000024F0000")?,
        hex::decode("80CA006600")?,
        hex::decode("80E2910003BF2D00")?,
        hex::decode("00A4040008A000000151000000")?,
        hex::decode("8050000008111111111111111100")?,
    ];
    for config in ScpConfig::all() {
        let byte = config.to_byte();
        let (mut wrap, mut raw) = (vec![byte], vec![byte]);
        let (_, mut host) = scp_pair(config).ok_or("scp handshake")?;
        for p in &plains {
            push_record(&mut wrap, 1, p);
            if let Ok(w) = host.wrap_command(p) {
                push_record(&mut raw, 0, &w);
            }
        }
        let mut tamper = vec![byte];
        push_record(&mut tamper, 2, &[plains[0].as_slice(), &[3, 0x80]].concat());
        for s in [wrap, raw, tamper] {
            t.entry("scp_unwrap").or_default().add(s);
        }
    }

    // Seed-1 messages: a real sealed R and sealed R' (fresh keys) and what is inside them,
    // and protected messages on the fixed connection of fixtures/mutual.json (the server
    // answers one down message per up message it took).
    let w = world()?;
    let server_public = w.server.verifying_key();
    let (_, sealed_r) =
        mutual::se_build_registration(&w.se, &w.cert, "echo-service", 7, &server_public)?;
    let r = mutual::server_open_registration(&w.server, &sealed_r)?;
    mutual::server_verify_registration(&w.ca, &r, "echo-service", NOW)?;
    let (answer, _) = mutual::server_answer(&w.server, &r, granted(), NOW)?;
    let (refusal, _) = mutual::server_answer(&w.server, &r, Grant::Refused, NOW)?;
    // The R' inside the fixed handshake's sealed R' (the fresh one above needs its pending R).
    let hs = handshake();
    let inner = mutual::se_verify_answer(&hs.pending, &hs.server_public, &hs.sealed_r_prime)?;
    let r_prime = inner.answer().clone();
    let summary = ConnectionSummary {
        scope: r_prime.answer.scope.clone(),
        expiry: r_prime.answer.expiry,
    };
    let (mut se, mut server) = mutual_pair();
    let call = Call {
        name: "echo".into(),
        data: b"hello".to_vec(),
    };
    let result = CallResult {
        status: CallStatus::Ok,
        data: b"hello".to_vec(),
        credential: Some(vec![0x42; 32]),
    };
    let up = se.seal_call(&call)?;
    server.open_call(&up)?;
    let down = server.seal_result(&result)?;
    let padded = |plain: &[u8], buckets: &[usize]| pad(plain, buckets).unwrap_or_default();
    let messages = [
        w.cert.to_bytes(),
        r.registration.to_bytes(),
        r.to_bytes(),
        r_prime.answer.to_bytes(),
        r_prime.to_bytes(),
        sealed_r.to_bytes(),
        answer.to_bytes(),
        refusal.to_bytes(),
        hs.sealed_r.to_bytes(),
        hs.sealed_r_prime.to_bytes(),
        summary.to_bytes(),
        padded(&r.to_bytes(), &REGISTRATION_BUCKETS),
        padded(&r_prime.to_bytes(), &ANSWER_BUCKETS),
        padded(&call.to_bytes(), &MESSAGE_BUCKETS),
        up.to_bytes(),
        down.to_bytes(),
        call.to_bytes(),
        call.body_bytes(),
        result.to_bytes(),
        GetRegistration {
            service_id: "echo-service".into(),
        }
        .to_bytes(),
        TrustAnchor {
            service_id: "echo-service".into(),
            server_public_key: w.server.verifying_key().to_sec1(),
        }
        .to_bytes(),
        ContainerIdentity {
            iccid: [0x98, 0x44, 0x47, 0x56, 0x00, 0x00, 0x21, 0x42, 0x51, 0xF8],
            isd_p_aid: hex::decode("A0000005591010FFFFFFFF8900001000")?,
            subject: [0x89; SUBJECT_LEN],
        }
        .to_bytes(),
    ];
    for m in &messages {
        t.entry("auth_messages").or_default().add(m.clone());
        t.entry("tlv").or_default().add(m.clone());
    }
    for c in [
        AuthCommand::GetRegistration(GetRegistration {
            service_id: "echo-service".into(),
        }),
        AuthCommand::VerifyServer(answer.clone()),
        AuthCommand::SecureSend(call.clone()),
        AuthCommand::SecureReceive(down.clone()),
        AuthCommand::GetCertificate,
        AuthCommand::GetIdentity,
    ] {
        let bytes = c.to_command().to_bytes()?;
        t.entry("auth_messages").or_default().add(bytes.clone());
        t.entry("card").or_default().add(records(&[(0, bytes)]));
    }

    // applet_module: the example applet and the hostile modules of card-emulator/applets
    // (each one the fuzzer can mutate into a nearby valid or invalid module).
    let mut names = vec!["echo.wat".to_string()];
    let hostile = card_emulator::applet_sources::dir().join("hostile");
    let mut files: Vec<_> = std::fs::read_dir(&hostile)?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".wat"))
        .collect();
    files.sort();
    names.extend(files.into_iter().map(|n| format!("hostile/{n}")));
    for name in names {
        let text = card_emulator::applet_sources::wat_text(&name)?;
        t.entry("applet_module")
            .or_default()
            .add(wat::parse_str(text)?);
    }

    // mutual_open: genuine down messages from the fixed server end, in order (each the
    // answer to a filler up message, as the target's server end gives them), plus the
    // operations that seal them in the target, and the fixed handshake's sealed R and R'.
    let (mut se, mut server) = mutual_pair();
    let mut raw = Vec::new();
    for plain in [result.to_bytes(), b"second".to_vec(), Vec::new()] {
        server.open(&se.seal(FILLER_CALL)?)?;
        push_record(&mut raw, 0, &server.seal(&plain)?.to_bytes());
    }
    t.entry("mutual_open").or_default().add(raw);
    t.entry("mutual_open").or_default().add(records(&[
        (1, b"hello".to_vec()),
        (1, vec![0x41; 255]),
        (1, vec![0x42; 256]),
        (2, [result.to_bytes(), vec![5, 0x40]].concat()),
        (3, Vec::new()),
        (3, vec![1]),
        (0, b"not the answer".to_vec()),
        (1, b"after".to_vec()),
        (4, call.to_bytes()),
        (4, b"not a call".to_vec()),
        (5, result.to_bytes()),
        (5, b"not a result".to_vec()),
    ]));
    t.entry("mutual_open").or_default().add(records(&[
        (6, hs.sealed_r_prime.to_bytes()),
        (7, vec![40, 0x10]),
        (8, hs.sealed_r.to_bytes()),
        (9, vec![3, 0x80]),
        (6, answer.to_bytes()),
    ]));

    // Server and portal bodies: the sealed R alone (version 02), and version 01's shape
    // (R in clear and its signature), which the server refuses by name.
    let register = serde_json::json!({ "r": hex::encode_upper(sealed_r.to_bytes()) }).to_string();
    let v01 = serde_json::json!({
        "r": hex::encode_upper(r.registration.to_bytes()),
        "signature": hex::encode_upper(r.signature),
    })
    .to_string();
    let message = serde_json::json!({ "message": hex::encode_upper(up.to_bytes()) }).to_string();
    for (route, body) in [
        (0u8, register.as_str()),
        (0, v01.as_str()),
        (1, message.as_str()),
        (0, r#"{"r":"7000"}"#),
        (1, r#"{"message":"73 00"}"#),
        (0, r#"{"r":"70","extra":1}"#),
        (1, "[]"),
    ] {
        t.entry("server_body")
            .or_default()
            .add([&[route][..], body.as_bytes()].concat());
        for service in ["demo", "echo-service", "a b/é?", "unknown"] {
            let mut s = vec![route, service.len() as u8];
            s.extend_from_slice(service.as_bytes());
            s.extend_from_slice(body.as_bytes());
            t.entry("portal_body").or_default().add(s);
        }
    }

    let mut total = 0;
    for (name, seeds) in &t {
        let n = seeds.write(&out.join(name))?;
        total += seeds.0.iter().map(Vec::len).sum::<usize>();
        println!("{name:>14}: {n} seeds");
    }
    println!("{total} bytes in all, in {}", out.display());
    Ok(())
}

/// Card seeds: SELECT the ISD, INITIALIZE UPDATE and EXTERNAL AUTHENTICATE (SCP03 KVN 30
/// and SCP02 KVN 20, each level), then GET STATUS wrapped, all computed against a fresh card.
fn card_scp_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let keys = StaticKeys::gp_default();
    let select = hex::decode("00A4040008A000000151000000").unwrap_or_default();
    let get_status = hex::decode("80F28000024F0000").unwrap_or_default();
    for level in SCP03_LEVELS {
        let mut card = fresh_card();
        let mut steps = vec![(0u8, select.clone())];
        card.transmit(&select);
        let Ok(host) = scp03::HostHandshake::with_challenge(&keys, 0x30, &HOST_CHALLENGE) else {
            continue;
        };
        let iu = host.initialize_update();
        let resp = card.transmit(&iu);
        steps.push((0, iu));
        let Ok((mut host, ext)) = host.authenticate(&resp, level) else {
            continue;
        };
        if card.transmit(&ext) != [0x90, 0x00] {
            continue;
        }
        steps.push((0, ext));
        if let Ok(w) = host.wrap_command(&get_status) {
            card.transmit(&w);
            steps.push((0, w));
        }
        seeds.push(records(&steps));
    }
    for level in SCP02_LEVELS {
        let mut card = fresh_card();
        let mut steps = vec![(0u8, select.clone())];
        card.transmit(&select);
        let Ok(host) = scp02::HostHandshake::with_challenge(&keys, 0x20, &HOST_CHALLENGE) else {
            continue;
        };
        let iu = host.initialize_update();
        let resp = card.transmit(&iu);
        steps.push((0, iu));
        let Ok((mut host, ext)) = host.authenticate(&resp, level) else {
            continue;
        };
        if card.transmit(&ext) != [0x90, 0x00] {
            continue;
        }
        steps.push((0, ext));
        if let Ok(w) = host.wrap_command(&get_status) {
            card.transmit(&w);
            steps.push((0, w));
        }
        seeds.push(records(&steps));
    }
    seeds
}

struct World {
    ca: VerifyingKey,
    se: SigningKey,
    cert: apdu_specs::auth::Certificate,
    server: SigningKey,
}

fn world() -> Result<World, mutual::MutualError> {
    let ca = SigningKey::generate()?;
    let se = SigningKey::generate()?;
    let cert = mutual::issue_certificate(
        &ca,
        &[0x01],
        "VSE fuzz CA",
        [0x89; SUBJECT_LEN],
        (NOW + 86_400) as u32,
        &se.verifying_key(),
    )?;
    Ok(World {
        ca: ca.verifying_key(),
        se,
        cert,
        server: SigningKey::generate()?,
    })
}

fn granted() -> Grant {
    Grant::Granted {
        scope: vec!["echo".into(), "provision".into()],
        expiry: NOW + 3600,
    }
}

/// A real handshake (protocol version 02, test keys), stored for the targets to start
/// from: the server's key, the SE's pending registration, the sealed R and R' that crossed
/// the portal, and both ends of the connection.
fn rehandshake() -> Result<(), Box<dyn std::error::Error>> {
    let w = world()?;
    let server_public = w.server.verifying_key();
    let (pending, sealed_r) =
        mutual::se_build_registration(&w.se, &w.cert, "echo-service", 1, &server_public)?;
    let signed = mutual::server_open_registration(&w.server, &sealed_r)?;
    mutual::server_verify_registration(&w.ca, &signed, "echo-service", NOW)?;
    let (sealed_r_prime, server) = mutual::server_answer(&w.server, &signed, granted(), NOW)?;
    let server = server.ok_or("granted answer without connection")?;
    let se = mutual::se_accept_answer(&pending, &server_public, &sealed_r_prime, NOW)?.connection;
    let fixture = serde_json::json!({
        "version": 2,
        "now": NOW,
        "server_key": hex::encode_upper(w.server.to_bytes().as_slice()),
        "pending": pending,
        "sealed_r": hex::encode_upper(sealed_r.to_bytes()),
        "sealed_r_prime": hex::encode_upper(sealed_r_prime.to_bytes()),
        "se": se,
        "server": server,
    });
    let path = repo_root().join("fuzz/fixtures/mutual.json");
    fs::write(&path, serde_json::to_string_pretty(&fixture)? + "\n")?;
    println!("wrote {}", path.display());
    Ok(())
}

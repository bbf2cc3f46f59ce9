//! The published test vectors of mutual authentication version 02
//! (`apdu-specs/docs/mutual-auth-v02-vectors.json`): one flow with fixed keys and randomness.
//!
//! `the_code_reproduces_the_published_vectors` runs SE and server through `mutual` and
//! requires every value of the file byte for byte (ECDSA nonces are RFC 6979, so the whole
//! flow is deterministic). `the_published_vectors_follow_the_documented_formulas` rebuilds
//! every value of the file from its inputs with the primitives alone (p256, SHA-256, HKDF,
//! AES-GCM and a TLV writer of its own), as an independent implementation would.
//!
//! Regenerate the file only for an intended protocol change:
//! `VSE_WRITE_VECTORS=1 cargo test -p secure-channel --test v02_vectors`.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use apdu_specs::auth::{
    pad, Call, CallResult, CallStatus, SealedAnswer, SealedRegistration, SignedServerAnswer,
    ANSWER_BUCKETS, REGISTRATION_BUCKETS,
};
use hkdf::Hkdf;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use secure_channel::mutual::{
    answer_key, derive_keys, gcm_nonce, issue_certificate, registration_hash, registration_key,
    se_accept_answer, se_build_registration_with, server_answer_with, server_open_registration,
    server_verify_registration, transcript_hash, EphemeralKey, Fresh, Grant, SigningKey,
    DIRECTION_DOWN, DIRECTION_UP,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

const FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../apdu-specs/docs/mutual-auth-v02-vectors.json"
);

const DESCRIPTION: &[&str] = &[
    "Mutual authentication version 02 (apdu-specs/docs/mutual-auth.md): one registration and two calls with fixed keys and randomness, every message in hex (uppercase). Times are Unix seconds.",
    "Generated and checked by secure-channel/tests/v02_vectors.rs; regenerate only for an intended protocol change: VSE_WRITE_VECTORS=1 cargo test -p secure-channel --test v02_vectors.",
    "Private keys are SHA-256(\"vse mutual auth v02 test vectors: \" || label) for the labels CA key, SE key, server key, SE ephemeral key, server ephemeral key; nonces are the first 16 bytes of SHA-256 of the labels SE nonce, server nonce.",
    "Signatures: ECDSA P-256 / SHA-256 with RFC 6979 nonces, raw r || s, s normalised to s <= n/2. The certificate is signed by the CA over its body (7F21 value without 5F37), r by the SE key, r_prime by the server key.",
    "registration.r_and_signature = r || 5F37 40 r_signature; registration_hash = SHA-256(r_and_signature).",
    "registration.ecdh_se_ephemeral_server_key = X of ECDH(SE ephemeral key, server key); k_r = HKDF-SHA256(salt = se_ephemeral_public_key, IKM = that X, info = \"vse mutual auth v2 R\", L = 32).",
    "registration.sealed_r = 70 { sealed_r_aad, 86 AES-256-GCM(k_r, nonce 00 x 12, aad = sealed_r_aad, sealed_r_plaintext) } with sealed_r_aad = 80 01 02 || 81 service_id || 83 se_ephemeral_public_key and sealed_r_plaintext = r_and_signature || 80 00.. (512 bytes).",
    "answer.r_prime = 72 { 80 01 02, 8B registration_hash, 82 se_nonce, 85 server_nonce, 81 service_id, 86 01 (granted), 87 grant_scope joined by commas, 88 grant_expiry (8), 8C server_time (8), 89 server_ephemeral_public_key }; r_prime_and_signature = r_prime || 5F37 40 r_prime_signature.",
    "answer.z = X of ECDH(SE ephemeral key, server ephemeral key); k_a = HKDF-SHA256(salt = registration_hash, IKM = z, info = \"vse mutual auth v2 R'\", L = 32); sealed_r_prime = 78 { sealed_r_prime_aad, 86 AES-256-GCM(k_a, nonce 00 x 12, aad = sealed_r_prime_aad, sealed_r_prime_plaintext) } with sealed_r_prime_aad = 80 01 02 || 89 server_ephemeral_public_key and sealed_r_prime_plaintext = r_prime_and_signature || 80 00.. (640 bytes).",
    "session.th = SHA-256(r || r_signature || r_prime || r_prime_signature), the signatures as 64 raw bytes (without 5F37 40); HKDF-SHA256(salt = th, IKM = z, info = \"vse mutual auth v2\", L = 96) = k_up || k_down || k_credential; cid = th[0..16].",
    "calls: up = 73 { 80 01 02, 83 cid, 84 counter (8), 86 AES-256-GCM(k_up, up_nonce = 75 70 00 00 || counter (8), aad = 80 || 83 || 84 TLVs, call padded 80 00.. to the smallest of 256, 1024, 4096, 5376 bytes that holds it and one padding byte) }; down: the same with k_down, down_nonce = 64 6E 00 00 || counter, the result as plaintext and the counter of the up message it answers.",
    "The provision credential = HKDF-SHA256(salt = cid, IKM = k_credential, info = \"vse credential\" || counter (8), L = 32), counter = the provision call's; the SE accepts R' while max(se_time, server_time) < grant_expiry.",
];

fn label_hash(label: &str) -> [u8; 32] {
    Sha256::digest(format!("vse mutual auth v02 test vectors: {label}")).into()
}

fn nonce_of(label: &str) -> [u8; 16] {
    let mut n = [0u8; 16];
    n.copy_from_slice(&label_hash(label)[..16]);
    n
}

fn hx(bytes: impl AsRef<[u8]>) -> String {
    hex::encode_upper(bytes)
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("{s:?} is not hex: {e}"))
}

fn arr<const N: usize>(s: &str) -> [u8; N] {
    <[u8; N]>::try_from(unhex(s).as_slice()).unwrap_or_else(|_| panic!("{s:?}: {N} bytes expected"))
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vectors {
    description: Vec<String>,
    inputs: Inputs,
    registration: RegistrationVectors,
    answer: AnswerVectors,
    session: SessionVectors,
    calls: Vec<CallVectors>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Inputs {
    ca_private_key: String,
    ca_public_key: String,
    se_private_key: String,
    se_public_key: String,
    server_private_key: String,
    server_public_key: String,
    certificate_serial: String,
    certificate_issuer: String,
    /// EID (16) || ICCID (10).
    subject: String,
    certificate_expiry: u32,
    service_id: String,
    registration_counter: u32,
    se_nonce: String,
    se_ephemeral_private_key: String,
    se_ephemeral_public_key: String,
    server_nonce: String,
    server_ephemeral_private_key: String,
    server_ephemeral_public_key: String,
    grant_scope: Vec<String>,
    grant_expiry: u64,
    server_time: u64,
    se_time: u64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrationVectors {
    certificate: String,
    r: String,
    r_signature: String,
    r_and_signature: String,
    registration_hash: String,
    ecdh_se_ephemeral_server_key: String,
    k_r: String,
    sealed_r_aad: String,
    sealed_r_plaintext: String,
    sealed_r: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerVectors {
    r_prime: String,
    r_prime_signature: String,
    r_prime_and_signature: String,
    z: String,
    k_a: String,
    sealed_r_prime_aad: String,
    sealed_r_prime_plaintext: String,
    sealed_r_prime: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionVectors {
    th: String,
    k_up: String,
    k_down: String,
    k_credential: String,
    cid: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallVectors {
    name: String,
    data: String,
    counter: u64,
    call: String,
    up_nonce: String,
    up: String,
    result: String,
    credential: Option<String>,
    down_nonce: String,
    down: String,
}

/// The flow, run through `secure_channel::mutual` from the labels.
fn generate() -> Vectors {
    let ca = SigningKey::from_bytes(&label_hash("CA key")).unwrap();
    let se = SigningKey::from_bytes(&label_hash("SE key")).unwrap();
    let server = SigningKey::from_bytes(&label_hash("server key")).unwrap();
    let se_eph = EphemeralKey::from_bytes(&label_hash("SE ephemeral key")).unwrap();
    let server_eph = EphemeralKey::from_bytes(&label_hash("server ephemeral key")).unwrap();
    let se_nonce = nonce_of("SE nonce");
    let server_nonce = nonce_of("server nonce");
    let serial = [0x20, 0x25, 0x00, 0x01];
    let issuer = "VSE test CA";
    let subject: [u8; 26] = arr(&format!(
        "{}{}",
        "89049032123451234512345678901235", "98940123456789012345"
    ));
    let cert_expiry = 1_900_000_000u32;
    let service = "echo-service";
    let counter = 7u32;
    let server_time = 1_750_000_000u64;
    let se_time = server_time - 5;
    let scope = vec!["echo".to_string(), "provision".to_string()];
    let grant_expiry = server_time + 3600;

    let cert = issue_certificate(
        &ca,
        &serial,
        issuer,
        subject,
        cert_expiry,
        &se.verifying_key(),
    )
    .unwrap();
    let server_public = server.verifying_key();

    // SE: GET REGISTRATION.
    let (pending, sealed_r) = se_build_registration_with(
        &se,
        &cert,
        service,
        counter,
        &server_public,
        Fresh {
            nonce: se_nonce,
            ephemeral: se_eph.clone(),
        },
    )
    .unwrap();
    let signed_r = pending.signed().clone();
    let h_r = registration_hash(&signed_r);
    let dh_r = se_eph.diffie_hellman(&server_public.to_sec1()).unwrap();
    let k_r = registration_key(&dh_r, &se_eph.public_sec1());

    // Server: open, verify, answer.
    let opened = server_open_registration(&server, &sealed_r).unwrap();
    assert_eq!(opened, signed_r);
    server_verify_registration(&ca.verifying_key(), &opened, service, server_time).unwrap();
    let (sealed_rp, server_conn) = server_answer_with(
        &server,
        &opened,
        Grant::Granted {
            scope: scope.clone(),
            expiry: grant_expiry,
        },
        server_time,
        Fresh {
            nonce: server_nonce,
            ephemeral: server_eph.clone(),
        },
    )
    .unwrap();
    let mut server_conn = server_conn.unwrap();
    let z = se_eph.diffie_hellman(&server_eph.public_sec1()).unwrap();
    let k_a = answer_key(&z, &h_r);
    let rp_padded = Aes256Gcm::new_from_slice(k_a.as_slice())
        .unwrap()
        .decrypt(
            Nonce::from_slice(&[0; 12]),
            Payload {
                msg: &sealed_rp.sealed,
                aad: &sealed_rp.aad(),
            },
        )
        .unwrap();
    let rp_plain = apdu_specs::auth::unpad(&rp_padded, &ANSWER_BUCKETS, "R'").unwrap();
    let signed_rp = SignedServerAnswer::parse(rp_plain).unwrap();

    // SE: VERIFY SERVER.
    let accepted = se_accept_answer(&pending, &server_public, &sealed_rp, se_time).unwrap();
    assert_eq!(accepted.server_time, server_time);
    let mut se_conn = accepted.connection;
    let th = transcript_hash(&signed_r, &signed_rp);
    let keys = derive_keys(&z, &th);
    assert_eq!(se_conn.cid(), server_conn.cid());
    assert_eq!(se_conn.cid(), th[..16]);

    // Two calls: echo, then provision.
    let mut calls = Vec::new();
    for call in [
        Call {
            name: "echo".into(),
            data: b"hello, v02".to_vec(),
        },
        Call {
            name: "provision".into(),
            data: Vec::new(),
        },
    ] {
        let up = se_conn.seal_call(&call).unwrap();
        let got = server_conn.open_call(&up).unwrap();
        assert_eq!(got, call);
        let credential = (call.name == "provision").then(|| {
            server_conn
                .derive_credential(server_conn.received())
                .unwrap()
                .to_vec()
        });
        let result = CallResult {
            status: CallStatus::Ok,
            data: if call.name == "echo" {
                call.data.clone()
            } else {
                Vec::new()
            },
            credential: credential.clone(),
        };
        let down = server_conn.seal_result(&result).unwrap();
        assert_eq!(se_conn.open_result(&down).unwrap(), result);
        calls.push(CallVectors {
            name: call.name.clone(),
            data: hx(&call.data),
            counter: up.counter,
            call: hx(call.to_bytes()),
            up_nonce: hx(gcm_nonce(DIRECTION_UP, up.counter)),
            up: hx(up.to_bytes()),
            result: hx(result.to_bytes()),
            credential: credential.map(hx),
            down_nonce: hx(gcm_nonce(DIRECTION_DOWN, down.counter)),
            down: hx(down.to_bytes()),
        });
    }

    Vectors {
        description: DESCRIPTION.iter().map(|s| s.to_string()).collect(),
        inputs: Inputs {
            ca_private_key: hx(ca.to_bytes().as_slice()),
            ca_public_key: hx(ca.verifying_key().to_sec1()),
            se_private_key: hx(se.to_bytes().as_slice()),
            se_public_key: hx(se.verifying_key().to_sec1()),
            server_private_key: hx(server.to_bytes().as_slice()),
            server_public_key: hx(server_public.to_sec1()),
            certificate_serial: hx(serial),
            certificate_issuer: issuer.into(),
            subject: hx(subject),
            certificate_expiry: cert_expiry,
            service_id: service.into(),
            registration_counter: counter,
            se_nonce: hx(se_nonce),
            se_ephemeral_private_key: hx(se_eph.to_bytes().as_slice()),
            se_ephemeral_public_key: hx(se_eph.public_sec1()),
            server_nonce: hx(server_nonce),
            server_ephemeral_private_key: hx(server_eph.to_bytes().as_slice()),
            server_ephemeral_public_key: hx(server_eph.public_sec1()),
            grant_scope: scope,
            grant_expiry,
            server_time,
            se_time,
        },
        registration: RegistrationVectors {
            certificate: hx(cert.to_bytes()),
            r: hx(signed_r.registration.to_bytes()),
            r_signature: hx(signed_r.signature),
            r_and_signature: hx(signed_r.to_bytes()),
            registration_hash: hx(h_r),
            ecdh_se_ephemeral_server_key: hx(dh_r.as_slice()),
            k_r: hx(k_r.as_slice()),
            sealed_r_aad: hx(sealed_r.aad()),
            sealed_r_plaintext: hx(pad(&signed_r.to_bytes(), &REGISTRATION_BUCKETS).unwrap()),
            sealed_r: hx(sealed_r.to_bytes()),
        },
        answer: AnswerVectors {
            r_prime: hx(signed_rp.answer.to_bytes()),
            r_prime_signature: hx(signed_rp.signature),
            r_prime_and_signature: hx(signed_rp.to_bytes()),
            z: hx(z.as_slice()),
            k_a: hx(k_a.as_slice()),
            sealed_r_prime_aad: hx(sealed_rp.aad()),
            sealed_r_prime_plaintext: hx(&rp_padded),
            sealed_r_prime: hx(sealed_rp.to_bytes()),
        },
        session: SessionVectors {
            th: hx(th),
            k_up: hx(keys.k_up),
            k_down: hx(keys.k_down),
            k_credential: hx(keys.k_credential),
            cid: hx(se_conn.cid()),
        },
        calls,
    }
}

/// Paths where two JSON values differ, with both values.
fn differences(path: &str, file: &Value, code: &Value, out: &mut Vec<String>) {
    match (file, code) {
        (Value::Object(f), Value::Object(c)) => {
            let mut keys: Vec<&String> = f.keys().chain(c.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (fv, cv) = (
                    f.get(k).unwrap_or(&Value::Null),
                    c.get(k).unwrap_or(&Value::Null),
                );
                differences(&format!("{path}.{k}"), fv, cv, out);
            }
        }
        (Value::Array(f), Value::Array(c)) if f.len() == c.len() => {
            for (i, (fv, cv)) in f.iter().zip(c).enumerate() {
                differences(&format!("{path}[{i}]"), fv, cv, out);
            }
        }
        _ if file != code => out.push(format!("{path}:\n  file {file}\n  code {code}")),
        _ => {}
    }
}

fn read_file() -> String {
    std::fs::read_to_string(FILE).unwrap_or_else(|e| {
        panic!(
            "cannot read {FILE}: {e}. Create it with \
             VSE_WRITE_VECTORS=1 cargo test -p secure-channel --test v02_vectors"
        )
    })
}

/// Write `text` to `path` through a temporary file and a rename (a reader never sees half).
fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::File::open(&tmp).unwrap().sync_all().unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn the_code_reproduces_the_published_vectors() {
    let code = generate();
    let text = serde_json::to_string_pretty(&code).unwrap() + "\n";
    if std::env::var_os("VSE_WRITE_VECTORS").is_some_and(|v| v == "1") {
        write_atomically(Path::new(FILE), &text);
        eprintln!("wrote {FILE}");
    }
    let file: Value = serde_json::from_str(&read_file()).expect("the vector file is JSON");
    let mut diffs = Vec::new();
    differences("", &file, &serde_json::to_value(&code).unwrap(), &mut diffs);
    assert!(
        diffs.is_empty(),
        "the code no longer reproduces {FILE}:\n{}\n\
         A compatible implementation relies on this file: if version 02 changed on purpose, \
         regenerate it with VSE_WRITE_VECTORS=1 cargo test -p secure-channel --test v02_vectors \
         and tell the implementers; otherwise the change broke the protocol.",
        diffs.join("\n")
    );
    // Also the exact text, so the published file is what the generator writes.
    assert_eq!(read_file(), text, "{FILE} is not formatted as generated");
}

// ---------------------------------------------------------------------------------------
// An independent reading of the file: primitives only, no `secure_channel::mutual`.

/// A BER-TLV of a one- or two-byte tag, with a minimal length.
fn tlv(tag: u16, value: &[u8]) -> Vec<u8> {
    let mut out = if tag > 0xFF {
        tag.to_be_bytes().to_vec()
    } else {
        vec![tag as u8]
    };
    match value.len() {
        n @ 0..=0x7F => out.push(n as u8),
        n @ 0x80..=0xFF => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(value);
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn secret(hex: &str) -> p256::SecretKey {
    p256::SecretKey::from_slice(&unhex(hex)).unwrap()
}

fn public_of(hex: &str) -> Vec<u8> {
    secret(hex)
        .public_key()
        .to_encoded_point(false)
        .as_bytes()
        .to_vec()
}

fn ecdh_x(private: &str, public: &[u8]) -> Vec<u8> {
    let peer = p256::PublicKey::from_sec1_bytes(public).unwrap();
    p256::ecdh::diffie_hellman(secret(private).to_nonzero_scalar(), peer.as_affine())
        .raw_secret_bytes()
        .to_vec()
}

fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let mut okm = vec![0u8; len];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut okm)
        .unwrap();
    okm
}

fn gcm(key: &[u8], nonce: &[u8], aad: &[u8], plain: &[u8]) -> Vec<u8> {
    Aes256Gcm::new_from_slice(key)
        .unwrap()
        .encrypt(Nonce::from_slice(nonce), Payload { msg: plain, aad })
        .unwrap()
}

/// ISO/IEC 7816-4 padding to the smallest size that holds the data and `80`.
fn iso_pad(data: &[u8], sizes: &[usize]) -> Vec<u8> {
    let size = *sizes.iter().find(|s| **s > data.len()).unwrap();
    let mut out = data.to_vec();
    out.push(0x80);
    out.resize(size, 0);
    out
}

/// Sign as the document says (RFC 6979, low s) and check the file's signature is that one
/// and verifies.
fn check_signature(private: &str, public: &[u8], message: &[u8], file_signature: &str) {
    let key = p256::ecdsa::SigningKey::from_slice(&unhex(private)).unwrap();
    let sig: p256::ecdsa::Signature = key.sign(message);
    let sig = sig.normalize_s().unwrap_or(sig);
    assert_eq!(hx(sig.to_bytes()), file_signature);
    let file_sig = p256::ecdsa::Signature::from_slice(&unhex(file_signature)).unwrap();
    assert!(file_sig.normalize_s().is_none(), "high s");
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(public).unwrap();
    assert!(vk.verify(message, &file_sig).is_ok());
}

#[test]
fn the_published_vectors_follow_the_documented_formulas() {
    let v: Vectors = serde_json::from_str(&read_file()).expect("the vector file's schema");
    let i = &v.inputs;
    const VERSION: &[u8] = &[0x80, 0x01, 0x02];

    // Keys.
    for (label, private, public) in [
        ("CA key", &i.ca_private_key, &i.ca_public_key),
        ("SE key", &i.se_private_key, &i.se_public_key),
        ("server key", &i.server_private_key, &i.server_public_key),
        (
            "SE ephemeral key",
            &i.se_ephemeral_private_key,
            &i.se_ephemeral_public_key,
        ),
        (
            "server ephemeral key",
            &i.server_ephemeral_private_key,
            &i.server_ephemeral_public_key,
        ),
    ] {
        assert_eq!(*private, hx(label_hash(label)), "{label}");
        assert_eq!(*public, hx(public_of(private)), "{label}");
    }
    assert_eq!(i.se_nonce, hx(nonce_of("SE nonce")));
    assert_eq!(i.server_nonce, hx(nonce_of("server nonce")));
    let se_eph_pub = unhex(&i.se_ephemeral_public_key);
    let server_eph_pub = unhex(&i.server_ephemeral_public_key);

    // Certificate.
    let body = cat(&[
        &tlv(0x93, &unhex(&i.certificate_serial)),
        &tlv(0x42, i.certificate_issuer.as_bytes()),
        &tlv(0x5F20, &unhex(&i.subject)),
        &tlv(0x95, &[0x80]),
        &tlv(0x5F24, &i.certificate_expiry.to_be_bytes()),
        &tlv(0x7F49, &tlv(0xB0, &unhex(&i.se_public_key))),
    ]);
    let r = &v.registration;
    let cert = unhex(&r.certificate);
    let cert_sig = &cert[cert.len() - 64..];
    check_signature(
        &i.ca_private_key,
        &unhex(&i.ca_public_key),
        &body,
        &hx(cert_sig),
    );
    assert_eq!(cert, tlv(0x7F21, &cat(&[&body, &tlv(0x5F37, cert_sig)])));

    // R, sigR, H(R).
    let r_bytes = tlv(
        0x71,
        &cat(&[
            VERSION,
            &cert,
            &tlv(0x81, i.service_id.as_bytes()),
            &tlv(0x82, &unhex(&i.se_nonce)),
            &tlv(0x83, &se_eph_pub),
            &tlv(0x84, &i.registration_counter.to_be_bytes()),
        ]),
    );
    assert_eq!(hx(&r_bytes), r.r);
    check_signature(
        &i.se_private_key,
        &unhex(&i.se_public_key),
        &r_bytes,
        &r.r_signature,
    );
    let r_and_sig = cat(&[&r_bytes, &tlv(0x5F37, &unhex(&r.r_signature))]);
    assert_eq!(hx(&r_and_sig), r.r_and_signature);
    let h_r = Sha256::digest(&r_and_sig).to_vec();
    assert_eq!(hx(&h_r), r.registration_hash);

    // Sealed R, from both ends of the ECDH.
    let dh = ecdh_x(&i.se_ephemeral_private_key, &unhex(&i.server_public_key));
    assert_eq!(dh, ecdh_x(&i.server_private_key, &se_eph_pub));
    assert_eq!(hx(&dh), r.ecdh_se_ephemeral_server_key);
    let k_r = hkdf_sha256(&se_eph_pub, &dh, b"vse mutual auth v2 R", 32);
    assert_eq!(hx(&k_r), r.k_r);
    let aad = cat(&[
        VERSION,
        &tlv(0x81, i.service_id.as_bytes()),
        &tlv(0x83, &se_eph_pub),
    ]);
    assert_eq!(hx(&aad), r.sealed_r_aad);
    let plain = iso_pad(&r_and_sig, &[512]);
    assert_eq!(hx(&plain), r.sealed_r_plaintext);
    let sealed = gcm(&k_r, &[0; 12], &aad, &plain);
    assert_eq!(
        hx(tlv(0x70, &cat(&[&aad, &tlv(0x86, &sealed)]))),
        r.sealed_r
    );

    // R', sigR', Z, sealed R'.
    let a = &v.answer;
    let rp = tlv(
        0x72,
        &cat(&[
            VERSION,
            &tlv(0x8B, &h_r),
            &tlv(0x82, &unhex(&i.se_nonce)),
            &tlv(0x85, &unhex(&i.server_nonce)),
            &tlv(0x81, i.service_id.as_bytes()),
            &tlv(0x86, &[0x01]),
            &tlv(0x87, i.grant_scope.join(",").as_bytes()),
            &tlv(0x88, &i.grant_expiry.to_be_bytes()),
            &tlv(0x8C, &i.server_time.to_be_bytes()),
            &tlv(0x89, &server_eph_pub),
        ]),
    );
    assert_eq!(hx(&rp), a.r_prime);
    check_signature(
        &i.server_private_key,
        &unhex(&i.server_public_key),
        &rp,
        &a.r_prime_signature,
    );
    let rp_and_sig = cat(&[&rp, &tlv(0x5F37, &unhex(&a.r_prime_signature))]);
    assert_eq!(hx(&rp_and_sig), a.r_prime_and_signature);
    let z = ecdh_x(&i.se_ephemeral_private_key, &server_eph_pub);
    assert_eq!(z, ecdh_x(&i.server_ephemeral_private_key, &se_eph_pub));
    assert_eq!(hx(&z), a.z);
    let k_a = hkdf_sha256(&h_r, &z, b"vse mutual auth v2 R'", 32);
    assert_eq!(hx(&k_a), a.k_a);
    let aad = cat(&[VERSION, &tlv(0x89, &server_eph_pub)]);
    assert_eq!(hx(&aad), a.sealed_r_prime_aad);
    let plain = iso_pad(&rp_and_sig, &[640]);
    assert_eq!(hx(&plain), a.sealed_r_prime_plaintext);
    let sealed = gcm(&k_a, &[0; 12], &aad, &plain);
    assert_eq!(
        hx(tlv(0x78, &cat(&[&aad, &tlv(0x86, &sealed)]))),
        a.sealed_r_prime
    );
    assert!(i.se_time.max(i.server_time) < i.grant_expiry);

    // Session.
    let s = &v.session;
    let th = Sha256::digest(cat(&[
        &r_bytes,
        &unhex(&r.r_signature),
        &rp,
        &unhex(&a.r_prime_signature),
    ]))
    .to_vec();
    assert_eq!(hx(&th), s.th);
    let okm = hkdf_sha256(&th, &z, b"vse mutual auth v2", 96);
    assert_eq!(hx(&okm[..32]), s.k_up);
    assert_eq!(hx(&okm[32..64]), s.k_down);
    assert_eq!(hx(&okm[64..]), s.k_credential);
    assert_eq!(hx(&th[..16]), s.cid);

    // Calls: echo, then provision, counters 1 and 2, each answered at its own counter.
    let names: Vec<&str> = v.calls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["echo", "provision"]);
    let sizes = [256, 1024, 4096, 5376];
    for (n, c) in v.calls.iter().enumerate() {
        let counter = n as u64 + 1;
        assert_eq!(c.counter, counter);
        let call = tlv(
            0x74,
            &cat(&[&tlv(0x81, c.name.as_bytes()), &tlv(0x82, &unhex(&c.data))]),
        );
        assert_eq!(hx(&call), c.call);
        let credential = (c.name == "provision").then(|| {
            let info = cat(&[b"vse credential", &counter.to_be_bytes()]);
            hkdf_sha256(&th[..16], &okm[64..], &info, 32)
        });
        assert_eq!(c.credential, credential.as_ref().map(hx));
        let data = if c.name == "echo" {
            unhex(&c.data)
        } else {
            Vec::new()
        };
        let mut result = cat(&[&tlv(0x80, &[0x00]), &tlv(0x82, &data)]);
        if let Some(cred) = &credential {
            result.extend(tlv(0x90, cred));
        }
        let result = tlv(0x75, &result);
        assert_eq!(hx(&result), c.result);
        let header = cat(&[
            VERSION,
            &tlv(0x83, &th[..16]),
            &tlv(0x84, &counter.to_be_bytes()),
        ]);
        for (key, direction, plain, nonce_hex, wire) in [
            (&okm[..32], b"up\0\0", &call, &c.up_nonce, &c.up),
            (&okm[32..64], b"dn\0\0", &result, &c.down_nonce, &c.down),
        ] {
            let nonce = cat(&[direction, &counter.to_be_bytes()]);
            assert_eq!(hx(&nonce), *nonce_hex);
            let padded = iso_pad(plain, &sizes);
            assert_eq!(padded.len(), 256, "echo and provision fit the first size");
            let ct = gcm(key, &nonce, &header, &padded);
            assert_eq!(hx(tlv(0x73, &cat(&[&header, &tlv(0x86, &ct)]))), *wire);
        }
    }
}

/// The file's messages parse with the codecs, and the sealed R opens with the server key.
#[test]
fn the_published_messages_are_accepted_by_the_codecs_and_the_server() {
    let v: Vectors = serde_json::from_str(&read_file()).unwrap();
    let sealed_r = SealedRegistration::parse(&unhex(&v.registration.sealed_r)).unwrap();
    let server = SigningKey::from_bytes(&unhex(&v.inputs.server_private_key)).unwrap();
    let r = server_open_registration(&server, &sealed_r).unwrap();
    assert_eq!(hx(r.to_bytes()), v.registration.r_and_signature);
    let ca = SigningKey::from_bytes(&unhex(&v.inputs.ca_private_key)).unwrap();
    server_verify_registration(
        &ca.verifying_key(),
        &r,
        &v.inputs.service_id,
        v.inputs.server_time,
    )
    .unwrap();
    let sealed_rp = SealedAnswer::parse(&unhex(&v.answer.sealed_r_prime)).unwrap();
    assert_eq!(hx(sealed_rp.to_bytes()), v.answer.sealed_r_prime);
    for c in &v.calls {
        for wire in [&c.up, &c.down] {
            let m = apdu_specs::auth::ProtectedMessage::parse(&unhex(wire)).unwrap();
            assert_eq!(m.counter, c.counter);
            assert_eq!(hx(m.cid), v.session.cid);
        }
        assert!(Call::parse(&unhex(&c.call)).is_ok());
        assert!(CallResult::parse(&unhex(&c.result)).is_ok());
    }
}

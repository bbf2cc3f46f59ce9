//! Tests of the seed-1 mutual authentication crypto (version 02): known answers, the full handshake, tampering, the attacks v02 closes.
use super::*;
use apdu_specs::auth::{pad, unpad};
use apdu_specs::{der, tlv};
use hex_literal::hex;
use proptest::prelude::*;

const NOW: u64 = 1_700_000_000;
const SERVICE: &str = "echo-service";
/// EID (16) || ICCID (10): distinctive bytes, searched for in the wire bytes.
const SUBJECT: [u8; SUBJECT_LEN] = hex!(
    "89049032123451234512345678901235"
    "98940123456789012345"
);

struct World {
    ca: SigningKey,
    se: SigningKey,
    cert: Certificate,
    server: SigningKey,
}

/// A certified SE key under `ca`.
fn certified_se(ca: &SigningKey, subject: [u8; SUBJECT_LEN]) -> (SigningKey, Certificate) {
    let se = SigningKey::generate().unwrap();
    let cert = issue_certificate(
        ca,
        &[0x01],
        "VSE test CA",
        subject,
        (NOW + 86_400) as u32,
        &se.verifying_key(),
    )
    .unwrap();
    (se, cert)
}

fn world() -> World {
    let ca = SigningKey::generate().unwrap();
    let (se, cert) = certified_se(&ca, SUBJECT);
    World {
        ca,
        se,
        cert,
        server: SigningKey::generate().unwrap(),
    }
}

fn granted() -> Grant {
    Grant::Granted {
        scope: vec!["echo".into(), "provision".into()],
        expiry: NOW + 3600,
    }
}

/// One registration as the portal relays it (bytes only), and what each end keeps.
struct Flow {
    pending: PendingRegistration,
    /// The sealed R on the wire (`70`).
    r_wire: Vec<u8>,
    /// The R the server opened.
    signed_r: SignedRegistration,
    /// The sealed R' on the wire (`78`).
    rp_wire: Vec<u8>,
    se: Connection,
    server: Connection,
    server_time: u64,
}

fn register(w: &World, counter: u32) -> Flow {
    let server_public = w.server.verifying_key();
    // SE: GET REGISTRATION.
    let (pending, sealed_r) =
        se_build_registration(&w.se, &w.cert, SERVICE, counter, &server_public).unwrap();
    let r_wire = sealed_r.to_bytes();
    // Server: open, check, answer.
    let sealed_r = SealedRegistration::parse(&r_wire).unwrap();
    let signed_r = server_open_registration(&w.server, &sealed_r).unwrap();
    let se_public =
        server_verify_registration(&w.ca.verifying_key(), &signed_r, SERVICE, NOW).unwrap();
    assert_eq!(se_public, w.se.verifying_key());
    let (sealed_rp, server_conn) = server_answer(&w.server, &signed_r, granted(), NOW).unwrap();
    let rp_wire = sealed_rp.to_bytes();
    // SE: VERIFY SERVER.
    let sealed_rp = SealedAnswer::parse(&rp_wire).unwrap();
    let accepted = se_accept_answer(&pending, &server_public, &sealed_rp, NOW).unwrap();
    Flow {
        pending,
        r_wire,
        signed_r,
        rp_wire,
        se: accepted.connection,
        server: server_conn.unwrap(),
        server_time: accepted.server_time,
    }
}

/// Both ends of a fresh connection.
fn handshake(w: &World) -> (Connection, Connection) {
    let f = register(w, 1);
    (f.se, f.server)
}

fn echo(data: &[u8]) -> Call {
    Call {
        name: "echo".into(),
        data: data.to_vec(),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What a holder of the SE's ephemeral key reads inside a sealed R' (the SE's view).
fn open_answer(pending: &PendingRegistration, sealed: &SealedAnswer) -> SignedServerAnswer {
    let z = pending
        .ephemeral
        .diffie_hellman(&sealed.server_ephemeral)
        .unwrap();
    let key = answer_key(&z, &registration_hash(&pending.signed));
    let padded = gcm_open(&key, &SINGLE_USE_NONCE, &sealed.aad(), &sealed.sealed).unwrap();
    SignedServerAnswer::parse(unpad(&padded, &ANSWER_BUCKETS, "R'").unwrap()).unwrap()
}

/// Seal any R' encoding as a party holding `eph` would for an R with SE ephemeral key
/// `se_ephemeral` and hash `h_r`: the forger's tool.
fn seal_answer(
    eph: &EphemeralKey,
    se_ephemeral: &[u8; PUBLIC_KEY_LEN],
    h_r: &[u8; 32],
    inner: &[u8],
) -> SealedAnswer {
    let z = eph.diffie_hellman(se_ephemeral).unwrap();
    seal_answer_with_key(&answer_key(&z, h_r), eph.public_sec1(), inner)
}

fn seal_answer_with_key(
    key: &[u8; 32],
    server_ephemeral: [u8; PUBLIC_KEY_LEN],
    inner: &[u8],
) -> SealedAnswer {
    let mut s = SealedAnswer {
        server_ephemeral,
        sealed: Vec::new(),
    };
    let plain = pad(inner, &ANSWER_BUCKETS).unwrap();
    s.sealed = gcm_seal(key, &SINGLE_USE_NONCE, &s.aad(), &plain).unwrap();
    s
}

/// Seal any R encoding to `server_public` as an SE holding `eph` would, with the clear
/// service id `service` and clear SE ephemeral key `eph`.
fn seal_registration(
    eph: &EphemeralKey,
    server_public: &VerifyingKey,
    service: &str,
    inner: &[u8],
) -> SealedRegistration {
    let dh = eph.diffie_hellman(&server_public.to_sec1()).unwrap();
    let key = registration_key(&dh, &eph.public_sec1());
    let mut s = SealedRegistration {
        service_id: service.into(),
        se_ephemeral: eph.public_sec1(),
        sealed: Vec::new(),
    };
    let plain = pad(inner, &REGISTRATION_BUCKETS).unwrap();
    s.sealed = gcm_seal(&key, &SINGLE_USE_NONCE, &s.aad(), &plain).unwrap();
    s
}

/// Re-encode one `outer` object with its version byte set to `version` and the tags in
/// `drop` left out.
fn reencode(bytes: &[u8], outer: u32, version: u8, drop: &[u32]) -> Vec<u8> {
    let value = der::read_expected(bytes, outer).unwrap();
    let mut v = Vec::new();
    for d in der::read_all(value).unwrap() {
        if drop.contains(&d.tag) {
            continue;
        }
        let value = if d.tag == 0x80 {
            &[version][..]
        } else {
            d.value
        };
        tlv::push(&mut v, d.tag, value);
    }
    tlv::build(outer, &v)
}

fn signed_bytes(object: &[u8], key: &SigningKey) -> Vec<u8> {
    let mut out = object.to_vec();
    tlv::push(&mut out, 0x5F37, &key.sign(object));
    out
}

// ---------------------------------------------------------------------------------------
// Known answers

/// RFC 5869 Appendix A.1 (Test Case 1, HKDF-SHA256), through the `hkdf` crate as
/// `derive_keys` uses it.
#[test]
fn hkdf_sha256_matches_rfc5869_test_case_1() {
    let ikm = [0x0b; 22];
    let salt = hex!("000102030405060708090a0b0c");
    let info = hex!("f0f1f2f3f4f5f6f7f8f9");
    let (prk, hk) = Hkdf::<Sha256>::extract(Some(&salt), &ikm);
    assert_eq!(
        prk.as_slice(),
        hex!("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")
    );
    let mut okm = [0u8; 42];
    hk.expand(&info, &mut okm).unwrap();
    assert_eq!(
        okm,
        hex!(
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        )
    );
    // The private helper is the same function.
    assert_eq!(*hkdf::<42>(&salt, &ikm, &info), okm);
}

#[test]
fn derive_keys_is_hkdf_with_th_as_salt_the_v2_info_and_96_bytes() {
    assert_eq!(KDF_INFO, b"vse mutual auth v2");
    assert_eq!(KDF_INFO_R, b"vse mutual auth v2 R");
    assert_eq!(KDF_INFO_RP, b"vse mutual auth v2 R'");
    let z = [0x5A; 32];
    let th = [0xA5; 32];
    let mut okm = [0u8; 96];
    Hkdf::<Sha256>::new(Some(&th), &z)
        .expand(b"vse mutual auth v2", &mut okm)
        .unwrap();
    let keys = derive_keys(&z, &th);
    assert_eq!(keys.k_up, okm[..32]);
    assert_eq!(keys.k_down, okm[32..64]);
    assert_eq!(keys.k_credential, okm[64..]);
    // Not the v1 keys (other info, 64 bytes): a v1 peer derives nothing in common.
    let mut v1 = [0u8; 64];
    Hkdf::<Sha256>::new(Some(&th), &z)
        .expand(b"vse mutual auth v1", &mut v1)
        .unwrap();
    assert_ne!(keys.k_up, v1[..32]);
    assert_ne!(keys.k_down, v1[32..]);
    assert_eq!(connection_id(&th), [0xA5; 16]);
    assert_eq!(
        gcm_nonce(DIRECTION_UP, 1),
        hex!("75700000 0000000000000001")
    );
    assert_eq!(
        gcm_nonce(DIRECTION_DOWN, 0x0102),
        hex!("646E0000 0000000000000102")
    );
}

#[test]
fn sealing_keys_are_hkdf_with_the_documented_salts_and_infos() {
    let dh = [0x11; 32];
    let se_eph = {
        let mut p = [0x22; PUBLIC_KEY_LEN];
        p[0] = 0x04;
        p
    };
    let mut k_r = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&se_eph), &dh)
        .expand(b"vse mutual auth v2 R", &mut k_r)
        .unwrap();
    assert_eq!(*registration_key(&dh, &se_eph), k_r);

    let z = [0x33; 32];
    let h_r = [0x44; 32];
    let mut k_a = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&h_r), &z)
        .expand(b"vse mutual auth v2 R'", &mut k_a)
        .unwrap();
    assert_eq!(*answer_key(&z, &h_r), k_a);
    assert_eq!(SINGLE_USE_NONCE, [0u8; 12]);
}

#[test]
fn hashes_cover_the_documented_bytes() {
    let w = world();
    let f = register(&w, 1);
    let r = &f.signed_r;
    let rp = open_answer(&f.pending, &SealedAnswer::parse(&f.rp_wire).unwrap());
    // H(R) = SHA-256(71 TLV || 5F37 TLV).
    let mut r_tlvs = r.registration.to_bytes();
    tlv::push(&mut r_tlvs, 0x5F37, &r.signature);
    assert_eq!(
        registration_hash(r),
        <[u8; 32]>::from(Sha256::digest(&r_tlvs))
    );
    assert_eq!(rp.answer.registration_hash, registration_hash(r));
    // TH = SHA-256(71 TLV || sigR (64 raw bytes) || 72 TLV || sigR' (64 raw bytes)).
    let th_input = [
        r.registration.to_bytes(),
        r.signature.to_vec(),
        rp.answer.to_bytes(),
        rp.signature.to_vec(),
    ]
    .concat();
    let th: [u8; 32] = Sha256::digest(&th_input).into();
    assert_eq!(transcript_hash(r, &rp), th);
    assert_eq!(f.se.cid(), th[..16]);
    // The session keys are those of Z and TH.
    let z = f
        .pending
        .ephemeral
        .diffie_hellman(&rp.answer.server_ephemeral)
        .unwrap();
    let keys = derive_keys(&z, &th);
    assert_eq!(f.se.send_key.0, keys.k_up);
    assert_eq!(f.se.receive_key.0, keys.k_down);
    assert_eq!(f.server.send_key.0, keys.k_down);
    assert_eq!(f.server.receive_key.0, keys.k_up);
    assert_eq!(
        f.server.credential_key.as_ref().unwrap().0,
        keys.k_credential
    );
}

/// The sealed R and R' are exactly the documented construction: a party that follows the
/// document with the same keys produces the same bytes.
#[test]
fn sealing_reproduces_the_documented_construction() {
    let w = world();
    let server_public = w.server.verifying_key();
    let se_eph = EphemeralKey::generate().unwrap();
    let (pending, sealed_r) = se_build_registration_with(
        &w.se,
        &w.cert,
        SERVICE,
        5,
        &server_public,
        Fresh {
            nonce: [0x42; NONCE_LEN],
            ephemeral: se_eph.clone(),
        },
    )
    .unwrap();
    assert_eq!(pending.signed().registration.se_nonce, [0x42; NONCE_LEN]);
    assert_eq!(pending.signed().registration.counter, 5);
    let expected = seal_registration(
        &se_eph,
        &server_public,
        SERVICE,
        &pending.signed().to_bytes(),
    );
    assert_eq!(sealed_r, expected);
    assert_eq!(sealed_r.sealed.len(), REGISTRATION_BUCKETS[0] + 16);
    assert_eq!(
        server_open_registration(&w.server, &sealed_r).unwrap(),
        *pending.signed()
    );

    let server_eph = EphemeralKey::generate().unwrap();
    let (sealed_rp, conn) = server_answer_with(
        &w.server,
        pending.signed(),
        granted(),
        NOW,
        Fresh {
            nonce: [0x43; NONCE_LEN],
            ephemeral: server_eph.clone(),
        },
    )
    .unwrap();
    let inner = open_answer(&pending, &sealed_rp);
    assert_eq!(inner.answer.server_nonce, [0x43; NONCE_LEN]);
    assert_eq!(inner.answer.server_ephemeral, server_eph.public_sec1());
    assert_eq!(inner.answer.server_time, NOW);
    let expected = seal_answer(
        &server_eph,
        &pending.signed().registration.se_ephemeral,
        &registration_hash(pending.signed()),
        &inner.to_bytes(),
    );
    assert_eq!(sealed_rp, expected);
    assert_eq!(sealed_rp.sealed.len(), ANSWER_BUCKETS[0] + 16);
    // Same randomness, same bytes (RFC 6979 signatures, deterministic sealing).
    let (again, _) = server_answer_with(
        &w.server,
        pending.signed(),
        granted(),
        NOW,
        Fresh {
            nonce: [0x43; NONCE_LEN],
            ephemeral: server_eph,
        },
    )
    .unwrap();
    assert_eq!(again, sealed_rp);
    let se = se_accept_answer(&pending, &server_public, &sealed_rp, NOW).unwrap();
    assert_eq!(se.connection.cid(), conn.unwrap().cid());
}

/// NIST CAVS ECC CDH primitive test vectors (SP 800-56A, `KAS_ECC_CDH_PrimitiveTest.txt`),
/// curve P-256, COUNT = 0.
#[test]
fn ecdh_matches_nist_cavs_p256_count_0() {
    let d_iut = hex!("7d7dc5f71eb29ddaf80d6214632eeae03d9058af1fb6d22ed80badb62bc1a534");
    let q_cavs = hex!(
        "04"
        "700c48f77f56584c5cc632ca65640db91b6bacce3a4df6b42ce7cc838833d287"
        "db71e509e3fd9b060ddb20ba5c51dcc5948d46fbf640dfe0441782cab85fa4ac"
    );
    let q_iut = hex!(
        "04"
        "ead218590119e8876b29146ff89ca61770c4edbbf97d38ce385ed281d8a6b230"
        "28af61281fd35e2fa7002523acc85a429cb06ee6648325389f59edfce1405141"
    );
    let k = EphemeralKey::from_bytes(&d_iut).unwrap();
    assert_eq!(k.public_sec1(), q_iut);
    assert_eq!(
        *k.diffie_hellman(&q_cavs).unwrap(),
        hex!("46fc62106420ff012e54a434fbdd2d25ccc5852060561e68040dd7778997bd7b")
    );
}

/// McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", test cases 14 and 16
/// (AES-256), through the same helpers the connection uses.
#[test]
fn aes_256_gcm_matches_the_gcm_specification_test_cases() {
    let sealed = gcm_seal(&[0; 32], &[0; 12], &[], &[0; 16]).unwrap();
    assert_eq!(
        sealed,
        hex!("cea7403d4d606b6e074ec5d3baf39d18 d0d1c8a799996bf0265b98b5d48ab919")
    );
    let key = hex!("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
    let iv = hex!("cafebabefacedbaddecaf888");
    let aad = hex!("feedfacedeadbeeffeedfacedeadbeefabaddad2");
    let plain = hex!(
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
    );
    let expected = hex!(
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
        "76fc6ece0f4e1768cddf8853bb2d551b"
    );
    assert_eq!(gcm_seal(&key, &iv, &aad, &plain).unwrap(), expected);
    assert_eq!(
        gcm_open(&key, &iv, &aad, &expected).unwrap().as_slice(),
        plain
    );
    let mut bad = expected;
    bad[0] ^= 1;
    assert!(gcm_open(&key, &iv, &aad, &bad).is_err());
}

/// RFC 6979 A.2.5 (P-256, SHA-256, message "sample"): same r; the RFC's s is high, so we
/// emit n - s and refuse the RFC's own encoding.
#[test]
fn ecdsa_matches_rfc6979_with_low_s() {
    let x = hex!("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721");
    let key = SigningKey::from_bytes(&x).unwrap();
    assert_eq!(
        key.verifying_key().to_sec1(),
        hex!(
            "04"
            "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"
            "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299"
        )
    );
    let rfc = hex!(
        "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"
        "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"
    );
    let ours = key.sign(b"sample");
    assert_eq!(ours[..32], rfc[..32]);
    let normalized = Signature::from_slice(&rfc).unwrap().normalize_s().unwrap();
    assert_eq!(ours[..], normalized.to_bytes()[..]);
    assert!(key.verifying_key().verify(b"sample", &ours));
    assert!(!key.verifying_key().verify(b"sample", &rfc));
    assert!(!key.verifying_key().verify(b"samplf", &ours));
    assert!(!key.verifying_key().verify(b"sample", &[0; 64]));
}

/// Verification runs on ring while signing and key parsing stay on `p256`: the two agree
/// on genuine signatures and on every single-bit change of message or signature.
#[test]
fn ring_verification_agrees_with_p256_on_genuine_and_altered_signatures() {
    use p256::ecdsa::signature::Verifier;
    for round in 0..24u32 {
        let key = SigningKey::generate().unwrap();
        let public = key.verifying_key();
        let reference = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public.to_sec1()).unwrap();
        let message = format!("message {round}").into_bytes();
        let sig = key.sign(&message);
        assert!(public.verify(&message, &sig));
        let bit = (round as usize * 37) % (SIGNATURE_LEN * 8);
        let mut altered = sig;
        altered[bit / 8] ^= 1 << (bit % 8);
        let p256_says = Signature::from_slice(&altered)
            .is_ok_and(|s| s.normalize_s().is_none() && reference.verify(&message, &s).is_ok());
        assert_eq!(public.verify(&message, &altered), p256_says);
        assert!(!public.verify(&message, &altered) || altered == sig);
        let mut other = message.clone();
        other[round as usize % message.len()] ^= 0x80;
        assert!(!public.verify(&other, &sig));
        let other_key = SigningKey::generate().unwrap().verifying_key();
        assert!(!other_key.verify(&message, &sig));
    }
}

#[test]
fn keys_refuse_invalid_encodings() {
    assert!(SigningKey::from_bytes(&[0; 32]).is_err());
    assert!(SigningKey::from_bytes(&[0xFF; 32]).is_err());
    assert!(SigningKey::from_bytes(&[1; 31]).is_err());
    let good = SigningKey::generate().unwrap().verifying_key().to_sec1();
    assert!(VerifyingKey::from_sec1(&good).is_ok());
    let mut off_curve = good;
    off_curve[64] ^= 1;
    assert!(VerifyingKey::from_sec1(&off_curve).is_err());
    assert!(VerifyingKey::from_sec1(&good[..33]).is_err());
    let e = EphemeralKey::generate().unwrap();
    assert!(e.diffie_hellman(&off_curve).is_err());
    assert!(e.diffie_hellman(&[0x04; 65]).is_err());
}

// ---------------------------------------------------------------------------------------
// Handshake

#[test]
fn full_handshake_over_bytes_then_calls_both_ways() {
    let w = world();
    let f = register(&w, 1);
    assert_eq!(f.server_time, NOW);
    let (mut se, mut server) = (f.se, f.server);
    assert_eq!(se.cid(), server.cid());
    assert_eq!((se.role(), server.role()), (Role::Se, Role::Server));
    assert_eq!(se.service_id(), SERVICE);
    assert_eq!(se.scope(), ["echo", "provision"]);
    assert_eq!(server.scope(), se.scope());
    assert_eq!(se.expiry(), NOW + 3600);
    assert!(se.check_fresh(NOW + 3599).is_ok());
    assert!(se.check_fresh(NOW + 3600).is_err());
    assert!(se.check_scope("echo").is_ok() && se.check_scope("delete").is_err());
    assert!(!server.confirmed());

    for i in 1..=5u8 {
        let call = echo(&vec![i; usize::from(i) * 100]);
        let up = se.seal_call(&call).unwrap();
        assert_eq!(up.counter, u64::from(i));
        let wire = up.to_bytes();
        assert!(!contains(&wire, &call.data));
        let got = server
            .open_call(&ProtectedMessage::parse(&wire).unwrap())
            .unwrap();
        assert!(server.confirmed());
        assert_eq!(got, call);
        let result = CallResult {
            status: CallStatus::Ok,
            data: got.data,
            credential: (i == 3).then(|| vec![0xC5; 24]),
        };
        let down = server.seal_result(&result).unwrap();
        let back = se
            .open_result(&ProtectedMessage::parse(&down.to_bytes()).unwrap())
            .unwrap();
        assert_eq!(back, result);
    }
    assert_eq!((se.sent(), se.received()), (5, 5));
    assert_eq!((server.sent(), server.received()), (5, 5));
}

#[test]
fn connections_and_pending_registrations_survive_serde() {
    let w = world();
    let (mut se, server) = handshake(&w);
    let up = se.seal(b"before").unwrap();
    let json = serde_json::to_string(&server).unwrap();
    let mut server2: Connection = serde_json::from_str(&json).unwrap();
    assert_eq!(server2, server);
    assert_eq!(server2.open(&up).unwrap().as_slice(), b"before");
    assert!(server2.confirmed());
    let se_json = serde_json::to_string(&se).unwrap();
    let mut se2: Connection = serde_json::from_str(&se_json).unwrap();
    assert_eq!(se2, se);
    let up2 = se2.seal(b"after").unwrap();
    assert_eq!(up2.counter, 2);
    assert_eq!(server2.open(&up2).unwrap().as_slice(), b"after");
    // Debug never shows keys.
    for debug in [format!("{se:?}"), format!("{server:?}")] {
        assert!(debug.contains("cid"));
        for key in ["send_key", "receive_key", "credential_key"] {
            assert!(!debug.contains(key), "{debug}");
        }
    }

    let server_public = w.server.verifying_key();
    let (pending, sealed) =
        se_build_registration(&w.se, &w.cert, SERVICE, 9, &server_public).unwrap();
    let pending_json = serde_json::to_string(&pending).unwrap();
    let back: PendingRegistration = serde_json::from_str(&pending_json).unwrap();
    assert_eq!(back.signed(), pending.signed());
    assert_eq!(back.service_id(), SERVICE);
    let r = server_open_registration(&w.server, &sealed).unwrap();
    let (answer, _) = server_answer(&w.server, &r, granted(), NOW).unwrap();
    let a = se_accept_answer(&pending, &server_public, &answer, NOW).unwrap();
    let b = se_accept_answer(&back, &server_public, &answer, NOW).unwrap();
    assert_eq!(a.connection, b.connection);

    let key: SigningKey = serde_json::from_str(&serde_json::to_string(&w.se).unwrap()).unwrap();
    assert_eq!(key.verifying_key(), w.se.verifying_key());
    let vk: VerifyingKey =
        serde_json::from_str(&serde_json::to_string(&w.ca.verifying_key()).unwrap()).unwrap();
    assert_eq!(vk, w.ca.verifying_key());
    assert!(serde_json::from_str::<Connection>(&pending_json).is_err());
}

#[test]
fn a_pending_registration_with_another_ephemeral_key_does_not_load() {
    let w = world();
    let (pending, _) =
        se_build_registration(&w.se, &w.cert, SERVICE, 1, &w.server.verifying_key()).unwrap();
    let mut value = serde_json::to_value(&pending).unwrap();
    let other = EphemeralKey::generate().unwrap();
    value["ephemeral"] = serde_json::to_value(&other).unwrap();
    assert!(serde_json::from_value::<PendingRegistration>(value).is_err());
}

#[test]
fn certificates_are_checked_against_the_ca_usage_and_expiry() {
    let w = world();
    let ca = w.ca.verifying_key();
    assert_eq!(
        verify_certificate(&ca, &w.cert, NOW).unwrap(),
        w.se.verifying_key()
    );
    let expiry = u64::from(w.cert.expiry);
    assert!(verify_certificate(&ca, &w.cert, expiry - 1).is_ok());
    assert_eq!(
        verify_certificate(&ca, &w.cert, expiry),
        Err(MutualError::CertificateExpired {
            expiry,
            now: expiry
        })
    );
    let other_ca = SigningKey::generate().unwrap().verifying_key();
    assert_eq!(
        verify_certificate(&other_ca, &w.cert, NOW),
        Err(MutualError::BadCertificateSignature)
    );
    // Any change of the body breaks the CA signature.
    let mut c = w.cert.clone();
    c.subject[0] ^= 1;
    assert!(verify_certificate(&ca, &c, NOW).is_err());
    // A correctly signed certificate with another key usage is refused.
    let mut usage = w.cert.clone();
    usage.key_usage = 0x40;
    usage.signature = w.ca.sign(&usage.body_bytes());
    assert_eq!(
        verify_certificate(&ca, &usage, NOW),
        Err(MutualError::WrongKeyUsage(0x40))
    );
    assert!(issue_certificate(&w.ca, &[], "x", [0; 26], 1, &ca).is_err());
    assert!(issue_certificate(&w.ca, &[1], &"x".repeat(33), [0; 26], 1, &ca).is_err());
}

#[test]
fn server_refuses_wrong_ca_expired_certificate_and_swapped_service() {
    let w = world();
    let f = register(&w, 1);
    let r = &f.signed_r;
    let ca = w.ca.verifying_key();
    let other_ca = SigningKey::generate().unwrap().verifying_key();
    assert_eq!(
        server_verify_registration(&other_ca, r, SERVICE, NOW),
        Err(MutualError::BadCertificateSignature)
    );
    assert!(matches!(
        server_verify_registration(&ca, r, SERVICE, u64::from(w.cert.expiry)),
        Err(MutualError::CertificateExpired { .. })
    ));
    assert!(matches!(
        server_verify_registration(&ca, r, "provision-service", NOW),
        Err(MutualError::WrongService { .. })
    ));
    // R signed by another key than the certified one.
    let impostor = SigningKey::generate().unwrap();
    let forged = sign_registration(&impostor, r.registration.clone());
    assert_eq!(
        server_verify_registration(&ca, &forged, SERVICE, NOW),
        Err(MutualError::BadSignature("registration (R)"))
    );
    // The service id inside R rewritten: the SE signature breaks.
    let mut swapped = r.clone();
    swapped.registration.service_id = "provision-service".into();
    assert!(matches!(
        server_verify_registration(&ca, &swapped, "provision-service", NOW),
        Err(MutualError::BadSignature(_))
    ));

    // The portal rewrites the clear service id (it routes by it): the AAD breaks.
    let mut sealed = SealedRegistration::parse(&f.r_wire).unwrap();
    sealed.service_id = "provision-service".into();
    assert!(matches!(
        server_open_registration(&w.server, &sealed),
        Err(MutualError::Authentication(_))
    ));
    // A sealed R whose clear fields disagree with the R inside (correctly sealed).
    let eph = EphemeralKey::generate().unwrap();
    let other_service = seal_registration(
        &eph,
        &w.server.verifying_key(),
        "provision-service",
        &r.to_bytes(),
    );
    assert!(matches!(
        server_open_registration(&w.server, &other_service),
        Err(MutualError::WrongService { .. })
    ));
    let other_ephemeral =
        seal_registration(&eph, &w.server.verifying_key(), SERVICE, &r.to_bytes());
    assert_eq!(
        server_open_registration(&w.server, &other_ephemeral),
        Err(MutualError::Authentication(
            "sealed R: the ephemeral key inside differs from the one outside"
        ))
    );
}

#[test]
fn every_byte_of_the_sealed_r_is_protected() {
    let w = world();
    let ca = w.ca.verifying_key();
    let (_, sealed) =
        se_build_registration(&w.se, &w.cert, SERVICE, 1, &w.server.verifying_key()).unwrap();
    let wire = sealed.to_bytes();
    let accept = |b: &[u8]| {
        SealedRegistration::parse(b)
            .ok()
            .and_then(|s| server_open_registration(&w.server, &s).ok())
            .and_then(|r| server_verify_registration(&ca, &r, SERVICE, NOW).ok())
            .is_some()
    };
    assert!(accept(&wire));
    for i in 0..wire.len() {
        for bit in [0x01, 0x80] {
            let mut m = wire.clone();
            m[i] ^= bit;
            assert!(!accept(&m), "byte {i} ^ {bit:02X} accepted");
        }
    }
    for n in 0..wire.len() {
        assert!(!accept(&wire[..n]), "truncated to {n} accepted");
    }
    let mut longer = wire.clone();
    longer.push(0);
    assert!(!accept(&longer));
}

#[test]
fn every_byte_of_the_sealed_r_prime_is_protected() {
    let w = world();
    let f = register(&w, 1);
    let server_public = w.server.verifying_key();
    let wire = f.rp_wire.clone();
    let accept = |b: &[u8]| {
        SealedAnswer::parse(b)
            .ok()
            .and_then(|a| se_accept_answer(&f.pending, &server_public, &a, NOW).ok())
            .is_some()
    };
    assert!(accept(&wire));
    for i in 0..wire.len() {
        for bit in [0x01, 0x80] {
            let mut m = wire.clone();
            m[i] ^= bit;
            assert!(!accept(&m), "byte {i} ^ {bit:02X} accepted");
        }
    }
    for n in 0..wire.len() {
        assert!(!accept(&wire[..n]), "truncated to {n} accepted");
    }
    let mut longer = wire.clone();
    longer.push(0);
    assert!(!accept(&longer));
}

#[test]
fn se_checks_signature_grant_and_expiry_of_the_answer() {
    let w = world();
    let f = register(&w, 1);
    let server_public = w.server.verifying_key();
    let r = &f.signed_r;

    // Signed by another server key (wrong trust anchor), sealed correctly: 9301.
    let other = SigningKey::generate().unwrap();
    let (foreign, _) = server_answer(&other, r, granted(), NOW).unwrap();
    let e = se_accept_answer(&f.pending, &server_public, &foreign, NOW).unwrap_err();
    assert_eq!(e, MutualError::BadSignature("server answer (R')"));
    assert_eq!(e.status(), Status::BadServerSignature);

    // Refused: 9302, and the server opens no connection.
    let (refusal, conn) = server_answer(&w.server, r, Grant::Refused, NOW).unwrap();
    assert!(conn.is_none());
    let inner = open_answer(&f.pending, &refusal);
    assert!(!inner.answer.granted && inner.answer.scope.is_empty() && inner.answer.expiry == 0);
    let e = se_accept_answer(&f.pending, &server_public, &refusal, NOW).unwrap_err();
    assert_eq!(
        (e.clone(), e.status()),
        (MutualError::NotGranted, Status::ServiceNotGranted)
    );

    // Expired grant: 9303 at expiry, fine one second before.
    let expiry = NOW + 10;
    let short = Grant::Granted {
        scope: vec!["echo".into()],
        expiry,
    };
    let (answer, _) = server_answer(&w.server, r, short.clone(), NOW).unwrap();
    let ok = se_accept_answer(&f.pending, &server_public, &answer, expiry - 1).unwrap();
    assert_eq!(ok.server_time, NOW);
    assert_eq!(ok.connection.scope(), ["echo"]);
    let e = se_accept_answer(&f.pending, &server_public, &answer, expiry).unwrap_err();
    assert_eq!(
        e,
        MutualError::GrantExpired {
            expiry,
            now: expiry
        }
    );
    assert_eq!(e.status(), Status::GrantExpired);

    // The SE's clock is behind (rolled back): the server's signed time is the floor.
    let (late, _) = server_answer(&w.server, r, short, expiry).unwrap();
    let e = se_accept_answer(&f.pending, &server_public, &late, NOW).unwrap_err();
    assert_eq!(
        e,
        MutualError::GrantExpired {
            expiry,
            now: expiry
        }
    );
    // The SE's clock ahead of the server's: its own clock counts.
    let (answer, _) = server_answer(&w.server, r, granted(), NOW).unwrap();
    assert!(matches!(
        se_accept_answer(&f.pending, &server_public, &answer, NOW + 3600),
        Err(MutualError::GrantExpired { .. })
    ));
}

/// VERIFY SERVER in two halves: an authenticated R' (even a refusal) yields the server's
/// signed time for the card's time floor; a forged one yields nothing.
#[test]
fn a_verified_answer_carries_the_server_time_even_when_refused() {
    let w = world();
    let f = register(&w, 1);
    let server_public = w.server.verifying_key();
    let later = NOW + 1000;
    let (refusal, _) = server_answer(&w.server, &f.signed_r, Grant::Refused, later).unwrap();
    let verified = se_verify_answer(&f.pending, &server_public, &refusal).unwrap();
    assert_eq!(verified.server_time(), later);
    assert!(!verified.answer().answer.granted);
    assert_eq!(
        verified.open_connection(NOW).unwrap_err(),
        MutualError::NotGranted
    );
    // A refusal signed by another key: not verified, no time learnt.
    let other = SigningKey::generate().unwrap();
    let (forged, _) = server_answer(&other, &f.signed_r, Grant::Refused, u64::MAX).unwrap();
    assert!(se_verify_answer(&f.pending, &server_public, &forged).is_err());
    // Granted: the connection opens while max(now, server time) < expiry.
    let expiry = later + 10;
    let grant = Grant::Granted {
        scope: vec!["echo".into()],
        expiry,
    };
    let (answer, server_conn) = server_answer(&w.server, &f.signed_r, grant, later).unwrap();
    let verified = se_verify_answer(&f.pending, &server_public, &answer).unwrap();
    assert_eq!(verified.server_time(), later);
    let conn = verified.open_connection(NOW).unwrap();
    assert_eq!(conn.cid(), server_conn.unwrap().cid());
    assert!(verified.open_connection(expiry - 1).is_ok());
    assert_eq!(
        verified.open_connection(expiry).unwrap_err(),
        MutualError::GrantExpired {
            expiry,
            now: expiry
        }
    );
    // se_accept_answer is both halves.
    let accepted = se_accept_answer(&f.pending, &server_public, &answer, NOW).unwrap();
    assert_eq!(accepted.connection, conn);
    assert_eq!(accepted.server_time, later);
}

// ---------------------------------------------------------------------------------------
// The attacks of the issue

/// (a) v01's "R' not bound to R": the trusted server validly signs an R' for another SE's
/// R (same server, same service, even the victim's nonce); the victim refuses it, by the
/// sealing key (Z and H(R)) and, should the sealing ever be right, by H(R) inside.
#[test]
fn an_r_prime_made_for_another_r_is_refused_by_the_victim() {
    let w = world();
    let server_public = w.server.verifying_key();
    let (victim, victim_sealed) =
        se_build_registration(&w.se, &w.cert, SERVICE, 1, &server_public).unwrap();
    let nonce = victim.signed().registration.se_nonce;

    // A second SE of the same issuer registers with the same service, same nonce.
    let mut other_subject = SUBJECT;
    other_subject[0] ^= 0xFF;
    let (se_b, cert_b) = certified_se(&w.ca, other_subject);
    let server_eph = EphemeralKey::generate().unwrap();
    let (b, b_sealed) = se_build_registration_with(
        &se_b,
        &cert_b,
        SERVICE,
        1,
        &server_public,
        Fresh {
            nonce,
            ephemeral: EphemeralKey::generate().unwrap(),
        },
    )
    .unwrap();
    let b_r = server_open_registration(&w.server, &b_sealed).unwrap();
    server_verify_registration(&w.ca.verifying_key(), &b_r, SERVICE, NOW).unwrap();
    let (for_b, _) = server_answer_with(
        &w.server,
        &b_r,
        granted(),
        NOW,
        Fresh {
            nonce: [0x55; NONCE_LEN],
            ephemeral: server_eph.clone(),
        },
    )
    .unwrap();
    // Genuine for B.
    assert!(se_accept_answer(&b, &server_public, &for_b, NOW).is_ok());
    let genuine = open_answer(&b, &for_b);
    assert!(verify_answer(&server_public, &genuine).is_ok());
    assert_eq!(genuine.answer.se_nonce, nonce);
    assert_eq!(genuine.answer.service_id, SERVICE);

    // Relayed to the victim as is: it does not open (other Z, other H(R)).
    let e = se_accept_answer(&victim, &server_public, &for_b, NOW).unwrap_err();
    assert!(matches!(e, MutualError::AnswerMismatch(_)), "{e:?}");
    assert_eq!(e.status(), Status::BadServerSignature);
    // Sealed with the victim's Z but B's H(R) (the key binds H(R)): does not open either.
    let victim_r = server_open_registration(&w.server, &victim_sealed).unwrap();
    let half = seal_answer(
        &server_eph,
        &victim_r.registration.se_ephemeral,
        &registration_hash(&b_r),
        &genuine.to_bytes(),
    );
    assert!(matches!(
        se_accept_answer(&victim, &server_public, &half, NOW),
        Err(MutualError::AnswerMismatch(_))
    ));
    // Even sealed exactly for the victim (its Z and its H(R)), the signed H(R) inside
    // names B's R: refused.
    let resealed = seal_answer(
        &server_eph,
        &victim_r.registration.se_ephemeral,
        &registration_hash(&victim_r),
        &genuine.to_bytes(),
    );
    let e = se_accept_answer(&victim, &server_public, &resealed, NOW).unwrap_err();
    assert_eq!(e, MutualError::AnswerMismatch("hash of R"));
    assert_eq!(e.status(), Status::BadServerSignature);

    // A genuine R' of the victim's own earlier registration, replayed: refused.
    let (earlier, earlier_sealed) =
        se_build_registration(&w.se, &w.cert, SERVICE, 0, &server_public).unwrap();
    let earlier_r = server_open_registration(&w.server, &earlier_sealed).unwrap();
    let (old, _) = server_answer(&w.server, &earlier_r, granted(), NOW).unwrap();
    assert!(se_accept_answer(&earlier, &server_public, &old, NOW).is_ok());
    assert!(matches!(
        se_accept_answer(&victim, &server_public, &old, NOW),
        Err(MutualError::AnswerMismatch(_))
    ));
    // And the victim's own answer still works.
    let (own, _) = server_answer(&w.server, &victim_r, granted(), NOW).unwrap();
    assert!(se_accept_answer(&victim, &server_public, &own, NOW).is_ok());
}

/// (b) Whoever seals R' with another Z than ECDH(SE ephemeral, the named server
/// ephemeral), or names another ephemeral than it used, fails closed: the SE opens nothing.
#[test]
fn an_answer_sealed_under_another_z_fails_closed() {
    let w = world();
    let f = register(&w, 1);
    let server_public = w.server.verifying_key();
    let pending = &f.pending;
    let se_eph = pending.signed().registration.se_ephemeral;
    let h_r = registration_hash(pending.signed());
    let sealed = SealedAnswer::parse(&f.rp_wire).unwrap();
    let genuine = open_answer(pending, &sealed);
    let inner = genuine.to_bytes();
    let refused = |s: &SealedAnswer| {
        let e = se_accept_answer(pending, &server_public, s, NOW).unwrap_err();
        assert_eq!(e.status(), Status::BadServerSignature, "{e:?}");
        e
    };

    // The genuine R' sealed with a key from a wrong Z (ECDH with another ephemeral), with
    // the salt or the info of another key, or with Z itself.
    let wrong_z = EphemeralKey::generate()
        .unwrap()
        .diffie_hellman(&se_eph)
        .unwrap();
    let z_no_salt = {
        let mut k = [0u8; 32];
        let z = f
            .pending
            .ephemeral
            .diffie_hellman(&sealed.server_ephemeral)
            .unwrap();
        Hkdf::<Sha256>::new(None, z.as_slice())
            .expand(KDF_INFO_RP, &mut k)
            .unwrap();
        k
    };
    let z = f
        .pending
        .ephemeral
        .diffie_hellman(&sealed.server_ephemeral)
        .unwrap();
    let th = transcript_hash(pending.signed(), &genuine);
    for key in [
        *answer_key(&wrong_z, &h_r),
        z_no_salt,
        *registration_key(&z, &se_eph),
        derive_keys(&z, &th).k_down,
        *z,
    ] {
        let s = seal_answer_with_key(&key, sealed.server_ephemeral, &inner);
        assert!(matches!(refused(&s), MutualError::AnswerMismatch(_)));
    }

    // The clear server ephemeral swapped for another valid point, or an invalid one.
    let mut swapped = sealed.clone();
    swapped.server_ephemeral = EphemeralKey::generate().unwrap().public_sec1();
    assert!(matches!(refused(&swapped), MutualError::AnswerMismatch(_)));
    let mut off_curve = sealed.clone();
    off_curve.server_ephemeral[64] ^= 1;
    assert!(matches!(
        refused(&off_curve),
        MutualError::InvalidPublicKey(_)
    ));

    // A forger (no server key) derives the right Z with its own ephemeral (the SE's is in
    // clear) and seals its own R', signed by itself: the signature fails.
    let forger_key = SigningKey::generate().unwrap();
    let forger_eph = EphemeralKey::generate().unwrap();
    let mut forged = genuine.answer.clone();
    forged.server_ephemeral = forger_eph.public_sec1();
    let forged = sign_answer(&forger_key, forged);
    let s = seal_answer(&forger_eph, &se_eph, &h_r, &forged.to_bytes());
    assert_eq!(refused(&s), MutualError::BadSignature("server answer (R')"));
    // The forger reseals the genuine signed R' (which names the server's ephemeral key)
    // under its own ephemeral: the named key differs from the one used.
    let s = seal_answer(&forger_eph, &se_eph, &h_r, &inner);
    assert_eq!(
        refused(&s),
        MutualError::AnswerMismatch("server ephemeral key")
    );

    // A server that signs one ephemeral key but seals with another: it names X (inside)
    // and uses Y (outside and for Z) -> mismatch; names X outside too -> does not open.
    let x = EphemeralKey::generate().unwrap();
    let y = EphemeralKey::generate().unwrap();
    let mut answer = genuine.answer.clone();
    answer.server_ephemeral = x.public_sec1();
    let signed = sign_answer(&w.server, answer);
    let s = seal_answer(&y, &se_eph, &h_r, &signed.to_bytes());
    assert_eq!(
        refused(&s),
        MutualError::AnswerMismatch("server ephemeral key")
    );
    let mut s = seal_answer(&y, &se_eph, &h_r, &signed.to_bytes());
    s.server_ephemeral = x.public_sec1();
    assert!(matches!(refused(&s), MutualError::AnswerMismatch(_)));
    // Sealed right with X: accepted (the construction above differs only in the key).
    let s = seal_answer(&x, &se_eph, &h_r, &signed.to_bytes());
    assert!(se_accept_answer(pending, &server_public, &s, NOW).is_ok());
}

/// (c) The sealed R is for one server: another server's key does not open it.
#[test]
fn the_sealed_r_does_not_open_with_another_servers_key() {
    let w = world();
    let (_, sealed) =
        se_build_registration(&w.se, &w.cert, SERVICE, 1, &w.server.verifying_key()).unwrap();
    let other = SigningKey::generate().unwrap();
    assert_eq!(
        server_open_registration(&other, &sealed),
        Err(MutualError::Authentication(
            "sealed R does not open with this server's key"
        ))
    );
    assert!(server_open_registration(&w.server, &sealed).is_ok());
    // Sealed to the other server, it is the intended server that cannot open it.
    let (_, to_other) =
        se_build_registration(&w.se, &w.cert, SERVICE, 2, &other.verifying_key()).unwrap();
    assert!(server_open_registration(&w.server, &to_other).is_err());
    assert!(server_open_registration(&other, &to_other).is_ok());
}

/// (d) Version 01 is refused at every layer, never downgraded to, even when correctly
/// signed and sealed.
#[test]
fn version_01_structures_are_refused() {
    let w = world();
    let f = register(&w, 1);
    let v01 = MutualError::Codec(AuthError::UnsupportedVersion(0x01));

    // The clear structures.
    let sealed_r = reencode(&f.r_wire, 0x70, 0x01, &[]);
    assert_eq!(
        SealedRegistration::parse(&sealed_r),
        Err(AuthError::UnsupportedVersion(0x01))
    );
    let sealed_rp = reencode(&f.rp_wire, 0x78, 0x01, &[]);
    assert_eq!(
        SealedAnswer::parse(&sealed_rp),
        Err(AuthError::UnsupportedVersion(0x01))
    );
    let (mut se, mut server) = (f.se.clone(), f.server.clone());
    let up = se.seal_call(&echo(b"v1")).unwrap().to_bytes();
    let up_v01 = reencode(&up, 0x73, 0x01, &[]);
    assert_eq!(
        ProtectedMessage::parse(&up_v01),
        Err(AuthError::UnsupportedVersion(0x01))
    );
    assert!(server.open_bytes(&up_v01).is_err());
    assert_eq!(server, f.server);

    // A v01 R (signed by the SE), sealed correctly to the server.
    let r_v01 = reencode(&f.signed_r.registration.to_bytes(), 0x71, 0x01, &[]);
    let r_v01 = signed_bytes(&r_v01, &w.se);
    let sealed = seal_registration(
        &f.pending.ephemeral,
        &w.server.verifying_key(),
        SERVICE,
        &r_v01,
    );
    assert_eq!(
        server_open_registration(&w.server, &sealed),
        Err(v01.clone())
    );

    // A v01 R' (signed by the server), sealed correctly to the SE: in the v02 layout and in
    // the v01 layout (without 8B hash of R and 8C server time).
    let sealed = SealedAnswer::parse(&f.rp_wire).unwrap();
    let genuine = open_answer(&f.pending, &sealed);
    let server_eph_used = sealed.server_ephemeral;
    let z = f
        .pending
        .ephemeral
        .diffie_hellman(&server_eph_used)
        .unwrap();
    let key = answer_key(&z, &registration_hash(f.pending.signed()));
    let layouts: [&[u32]; 2] = [&[], &[0x8B, 0x8C]];
    for drop in layouts {
        let rp_v01 = reencode(&genuine.answer.to_bytes(), 0x72, 0x01, drop);
        let rp_v01 = signed_bytes(&rp_v01, &w.server);
        let s = seal_answer_with_key(&key, server_eph_used, &rp_v01);
        assert_eq!(
            se_accept_answer(&f.pending, &w.server.verifying_key(), &s, NOW).unwrap_err(),
            v01
        );
    }

    // The v01 wire forms (R || sigR and R' || sigR' in clear) are not sealed structures.
    assert!(SealedRegistration::parse(&r_v01).is_err());
    let rp_v01 = signed_bytes(
        &reencode(&genuine.answer.to_bytes(), 0x72, 0x01, &[0x8B, 0x8C]),
        &w.server,
    );
    assert!(SealedAnswer::parse(&rp_v01).is_err());
    assert!(SealedAnswer::parse(&genuine.to_bytes()).is_err());
}

/// (e) One answer per call: the down message carries the counter of the up message it
/// answers, is the same bytes when sealed again from the same state (a restored server
/// running the call again reuses no nonce with other plaintext), and the server refuses a
/// second answer for one up message.
#[test]
fn the_down_counter_is_the_answered_up_counter_and_sealing_is_deterministic() {
    let w = world();
    let (mut se, mut server) = handshake(&w);
    assert!(matches!(
        server.seal(b"unasked"),
        Err(MutualError::Authentication(_))
    ));
    assert_eq!(server.sent(), 0);
    for n in 1..=4u64 {
        let up = se.seal_call(&echo(&n.to_be_bytes())).unwrap();
        assert_eq!(up.counter, n);
        let call = server.open_call(&up).unwrap();
        let result = CallResult {
            status: CallStatus::Ok,
            data: call.data,
            credential: None,
        };
        let mut restored: Connection =
            serde_json::from_str(&serde_json::to_string(&server).unwrap()).unwrap();
        let mut twin = server.clone();
        let down = server.seal_result(&result).unwrap();
        assert_eq!(down.counter, up.counter);
        assert_eq!(server.sent(), n);
        assert_eq!(twin.seal_result(&result).unwrap(), down);
        assert_eq!(restored.seal_result(&result).unwrap(), down);
        // A second answer to the same up message.
        let before = server.clone();
        assert!(matches!(
            server.seal_result(&result),
            Err(MutualError::Authentication(_))
        ));
        assert_eq!(server, before);
        assert_eq!(se.open_result(&down).unwrap(), result);
    }
    // The SE's up counters are its own: last + 1.
    let up = se.seal(b"x").unwrap();
    assert_eq!(up.counter, 5);
}

/// (f) Credentials are derived, per connection and counter, by the server only.
#[test]
fn derive_credential_is_deterministic_per_connection_and_counter_and_server_only() {
    let w = world();
    let (se, server) = handshake(&w);
    let (_, other) = handshake(&w);
    let c1 = server.derive_credential(1).unwrap();
    assert_eq!(c1, server.derive_credential(1).unwrap());
    assert_ne!(c1, server.derive_credential(2).unwrap());
    assert_ne!(c1, server.derive_credential(0).unwrap());
    assert_ne!(c1, other.derive_credential(1).unwrap());
    let restored: Connection =
        serde_json::from_str(&serde_json::to_string(&server).unwrap()).unwrap();
    assert_eq!(restored.derive_credential(1).unwrap(), c1);
    // HKDF-SHA256(salt = CID, IKM = K_credential, info = "vse credential" || counter (8)).
    let key = server.credential_key.as_ref().unwrap();
    let mut expected = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&server.cid()), &key.0)
        .expand(b"vse credential\0\0\0\0\0\0\0\x01", &mut expected)
        .unwrap();
    assert_eq!(*c1, expected);
    // Neither session key.
    assert_ne!(key.0, server.send_key.0);
    assert_ne!(key.0, server.receive_key.0);
    // The SE has no credential key, and does not store one.
    assert!(se.derive_credential(1).is_err());
    assert!(se.credential_key.is_none());
    assert!(!serde_json::to_string(&se)
        .unwrap()
        .contains("credential_key"));
    assert!(serde_json::to_string(&server)
        .unwrap()
        .contains("credential_key"));
}

/// (g) Calls and results of different sizes and kinds are indistinguishable by length
/// within a bucket: echo of 0 and 200 bytes, provision, and their results.
#[test]
fn echo_and_provision_calls_and_results_have_one_padded_size() {
    let w = world();
    let (mut se, mut server) = handshake(&w);
    let expected = MESSAGE_BUCKETS[0] + apdu_specs::auth::GCM_TAG_LEN;
    let calls = [
        echo(&[]),
        echo(&[0xEC; 200]),
        Call {
            name: "provision".into(),
            data: Vec::new(),
        },
    ];
    let mut lengths = Vec::new();
    for call in calls {
        let up = se.seal_call(&call).unwrap();
        let call = server.open_call(&up).unwrap();
        let credential = (call.name == "provision").then(|| {
            server
                .derive_credential(server.received())
                .unwrap()
                .to_vec()
        });
        let result = CallResult {
            status: CallStatus::Ok,
            data: call.data,
            credential,
        };
        let down = server.seal_result(&result).unwrap();
        assert_eq!(se.open_result(&down).unwrap(), result);
        lengths.push((up.ciphertext.len(), up.to_bytes().len()));
        lengths.push((down.ciphertext.len(), down.to_bytes().len()));
    }
    let first = lengths[0];
    assert_eq!(first.0, expected);
    assert!(lengths.iter().all(|l| *l == first), "{lengths:?}");
}

#[test]
fn protected_messages_are_padded_to_the_smallest_bucket_at_each_boundary() {
    let w = world();
    let (mut se, mut server) = handshake(&w);
    let tag = apdu_specs::auth::GCM_TAG_LEN;
    let max = apdu_specs::auth::MAX_PLAINTEXT_LEN;
    let cases = [
        (0, MESSAGE_BUCKETS[0]),
        (MESSAGE_BUCKETS[0] - 1, MESSAGE_BUCKETS[0]),
        (MESSAGE_BUCKETS[0], MESSAGE_BUCKETS[1]),
        (MESSAGE_BUCKETS[1] - 1, MESSAGE_BUCKETS[1]),
        (MESSAGE_BUCKETS[1], MESSAGE_BUCKETS[2]),
        (MESSAGE_BUCKETS[2] - 1, MESSAGE_BUCKETS[2]),
        (MESSAGE_BUCKETS[2], MESSAGE_BUCKETS[3]),
        (max, MESSAGE_BUCKETS[3]),
    ];
    for (len, bucket) in cases {
        let plain = vec![0x80; len];
        let up = se.seal(&plain).unwrap();
        assert_eq!(up.ciphertext.len(), bucket + tag, "plaintext of {len}");
        assert_eq!(server.open(&up).unwrap().as_slice(), plain);
    }
    let before = se.clone();
    assert_eq!(
        se.seal(&vec![0; max + 1]),
        Err(MutualError::TooLong(max + 1))
    );
    assert_eq!(se, before);
}

/// (h) Only the service id and the ephemeral keys cross the portal in clear: nothing that
/// identifies the SE, nor the counter, scope, expiry or any signed content.
#[test]
fn no_identifying_or_granted_plaintext_crosses_the_portal() {
    let w = world();
    let counter = 0x0A0B_0C0D;
    let f = register(&w, counter);
    let r = f.pending.signed();
    let rp = open_answer(&f.pending, &SealedAnswer::parse(&f.rp_wire).unwrap());
    let tlv_of = |tag: u32, value: &[u8]| tlv::build(tag, value);
    let needles: Vec<(&str, Vec<u8>)> = vec![
        ("subject", w.cert.subject.to_vec()),
        ("EID", w.cert.eid().to_vec()),
        ("ICCID", w.cert.iccid().to_vec()),
        ("certificate TLV", w.cert.to_bytes()),
        ("certificate body", w.cert.body_bytes()),
        ("certificate signature", w.cert.signature.to_vec()),
        ("SE public key", w.cert.public_key.to_vec()),
        (
            "certificate expiry TLV",
            tlv_of(0x5F24, &w.cert.expiry.to_be_bytes()),
        ),
        ("issuer", b"VSE test CA".to_vec()),
        ("counter TLV", tlv_of(0x84, &counter.to_be_bytes())),
        ("SE nonce", r.registration.se_nonce.to_vec()),
        ("R", r.registration.to_bytes()),
        ("sigR", r.signature.to_vec()),
        ("scope", b"echo,provision".to_vec()),
        ("scope name", b"provision".to_vec()),
        ("scope TLV", tlv_of(0x87, b"echo,provision")),
        ("grant expiry", (NOW + 3600).to_be_bytes().to_vec()),
        (
            "grant expiry TLV",
            tlv_of(0x88, &(NOW + 3600).to_be_bytes()),
        ),
        ("server time", NOW.to_be_bytes().to_vec()),
        ("server nonce", rp.answer.server_nonce.to_vec()),
        ("hash of R", rp.answer.registration_hash.to_vec()),
        ("R'", rp.answer.to_bytes()),
        ("sigR'", rp.signature.to_vec()),
    ];
    for (name, wire) in [("sealed R", &f.r_wire), ("sealed R'", &f.rp_wire)] {
        for (what, needle) in &needles {
            assert!(!contains(wire, needle), "{what} in clear in the {name}");
        }
    }
    // What is in clear, exactly: version, service id and SE ephemeral key; version and
    // server ephemeral key.
    let sealed_r = SealedRegistration::parse(&f.r_wire).unwrap();
    let mut clear = sealed_r.aad();
    clear.extend([0x86, 0x82, 0x02, 0x10]);
    assert_eq!(f.r_wire[4..4 + clear.len()], clear[..]);
    assert_eq!(
        f.r_wire.len(),
        4 + clear.len() + REGISTRATION_BUCKETS[0] + 16
    );
    let sealed_rp = SealedAnswer::parse(&f.rp_wire).unwrap();
    let mut clear = sealed_rp.aad();
    clear.extend([0x86, 0x82, 0x02, 0x90]);
    assert_eq!(f.rp_wire[4..4 + clear.len()], clear[..]);
    assert_eq!(f.rp_wire.len(), 4 + clear.len() + ANSWER_BUCKETS[0] + 16);
}

/// The sealed sizes do not tell certificates, counters or scopes apart: the smallest and
/// the largest encodings seal to the same length (and the largest still fit).
#[test]
fn sealed_sizes_do_not_depend_on_certificate_counter_or_scope() {
    let ca = SigningKey::generate().unwrap();
    let server = SigningKey::generate().unwrap();
    let server_public = server.verifying_key();
    let se = SigningKey::generate().unwrap();
    let small = issue_certificate(&ca, &[1], "C", SUBJECT, u32::MAX, &se.verifying_key()).unwrap();
    let large = issue_certificate(
        &ca,
        &[0xFF; 16],
        &"C".repeat(32),
        SUBJECT,
        u32::MAX,
        &se.verifying_key(),
    )
    .unwrap();
    let names: Vec<String> = (0..8).map(|i| format!("{i}{}", "c".repeat(30))).collect();
    assert_eq!(names.join(",").len(), 255);
    let mut r_sizes = Vec::new();
    let mut rp_sizes = Vec::new();
    for (cert, counter) in [(&small, 0), (&large, u32::MAX)] {
        let (pending, sealed) =
            se_build_registration(&se, cert, SERVICE, counter, &server_public).unwrap();
        r_sizes.push(sealed.to_bytes().len());
        let r = server_open_registration(&server, &sealed).unwrap();
        assert_eq!(&r, pending.signed());
        for grant in [
            Grant::Refused,
            Grant::Granted {
                scope: vec!["e".into()],
                expiry: NOW + 1,
            },
            Grant::Granted {
                scope: names.clone(),
                expiry: u64::MAX,
            },
        ] {
            let (answer, _) = server_answer(&server, &r, grant.clone(), NOW).unwrap();
            rp_sizes.push(answer.to_bytes().len());
            match (
                grant,
                se_accept_answer(&pending, &server_public, &answer, NOW),
            ) {
                (Grant::Refused, Err(MutualError::NotGranted)) => {}
                (Grant::Granted { scope, .. }, Ok(a)) => assert_eq!(a.connection.scope(), scope),
                (g, other) => panic!("{g:?}: {other:?}"),
            }
        }
    }
    assert!(r_sizes.windows(2).all(|p| p[0] == p[1]), "{r_sizes:?}");
    assert!(rp_sizes.windows(2).all(|p| p[0] == p[1]), "{rp_sizes:?}");
    // A service id beyond the limit is refused before anything is sealed.
    assert!(se_build_registration(&se, &large, &"s".repeat(33), 1, &server_public).is_err());
}

// ---------------------------------------------------------------------------------------
// Protected messages

#[test]
fn every_tampering_of_a_protected_message_is_refused_and_changes_nothing() {
    let w = world();
    let (mut se, mut server) = handshake(&w);
    let call = echo(b"hello");
    let up = se.seal_call(&call).unwrap();
    let wire = up.to_bytes();
    let before = server.clone();
    for i in 0..wire.len() {
        for bit in [0x01, 0x80] {
            let mut m = wire.clone();
            m[i] ^= bit;
            let e = server.open_bytes(&m).unwrap_err();
            assert_eq!(e.status(), Status::MessageAuthenticationFailed, "byte {i}");
            assert_eq!(server, before);
        }
    }
    for n in 0..wire.len() {
        assert!(server.open_bytes(&wire[..n]).is_err());
        assert_eq!(server, before);
    }
    // Reflection: the SE's own up message is not a down message.
    assert!(se.open(&up).is_err());
    // The genuine message still opens once, then is a replay.
    assert_eq!(
        server.open_bytes(&wire).unwrap().as_slice(),
        call.to_bytes()
    );
    let after = server.clone();
    assert!(server.open_bytes(&wire).is_err());
    assert_eq!(server, after);
    // The down answer too: every flipped byte refused, the SE unchanged.
    let down = server
        .seal_result(&CallResult {
            status: CallStatus::Ok,
            data: b"hello".to_vec(),
            credential: None,
        })
        .unwrap()
        .to_bytes();
    let se_before = se.clone();
    for i in 0..down.len() {
        let mut m = down.clone();
        m[i] ^= 0x01;
        assert!(se.open_bytes(&m).is_err(), "byte {i}");
        assert_eq!(se, se_before);
    }
    assert!(se.open_bytes(&down).is_ok());
}

#[test]
fn replayed_reordered_and_foreign_messages_are_refused() {
    let w = world();
    let (mut se, mut server) = handshake(&w);
    let m1 = se.seal(b"one").unwrap();
    let m2 = se.seal(b"two").unwrap();
    let m3 = se.seal(b"three").unwrap();
    // Reordered: 2 before 1.
    assert!(server.open(&m2).is_err());
    assert_eq!(server.open(&m1).unwrap().as_slice(), b"one");
    // Replayed.
    assert!(server.open(&m1).is_err());
    // Dropped message: 3 before 2.
    assert!(server.open(&m3).is_err());
    assert_eq!(server.open(&m2).unwrap().as_slice(), b"two");
    // Counter rewritten (2 -> 3) on a genuine ciphertext: AAD and nonce mismatch.
    let mut moved = m2.clone();
    moved.counter = 3;
    assert!(server.open(&moved).is_err());
    assert_eq!(server.open(&m3).unwrap().as_slice(), b"three");

    // Down direction: reordered and replayed answers refused.
    let (mut se_d, mut server_d) = handshake(&w);
    let mut downs = Vec::new();
    for text in [&b"one"[..], b"two"] {
        let up = se_d.seal(text).unwrap();
        server_d.open(&up).unwrap();
        downs.push(server_d.seal(text).unwrap());
    }
    // The SE takes only the answer to its last up message, once: the answer to the
    // earlier call (lost, then arriving late) is refused, before and after.
    assert!(se_d.open(&downs[0]).is_err());
    assert_eq!(se_d.open(&downs[1]).unwrap().as_slice(), b"two");
    assert!(se_d.open(&downs[1]).is_err());
    assert!(se_d.open(&downs[0]).is_err());
    assert_eq!(se_d.received(), 2);

    // A message of another connection (another registration of the same SE).
    let (mut se_b, _server_b) = handshake(&w);
    assert_ne!(se_b.cid(), server.cid());
    let foreign = se_b.seal(b"x").unwrap();
    assert!(server.open(&foreign).is_err());
    let mut relabelled = foreign;
    relabelled.cid = server.cid();
    relabelled.counter = 4;
    assert!(server.open(&relabelled).is_err());
    assert_eq!(server.received(), 3);
}

#[test]
fn an_answer_lost_before_the_next_call_breaks_nothing() {
    let w = world();
    let (mut se, mut server) = handshake(&w);
    let up1 = se.seal(b"one").unwrap();
    server.open(&up1).unwrap();
    let _lost = server.seal(b"one").unwrap();
    let up2 = se.seal(b"two").unwrap();
    server.open(&up2).unwrap();
    let down2 = server.seal(b"two").unwrap();
    assert_eq!(down2.counter, up2.counter);
    assert_eq!(se.open(&down2).unwrap().as_slice(), b"two");
    let up3 = se.seal(b"three").unwrap();
    server.open(&up3).unwrap();
    assert_eq!(
        se.open(&server.seal(b"3").unwrap()).unwrap().as_slice(),
        b"3"
    );
}

#[test]
fn authenticated_garbage_is_refused_without_advancing() {
    let w = world();
    let (mut se, mut server) = handshake(&w);
    let up = se.seal(&[0x74, 0x00]).unwrap();
    assert!(server.open_call(&up).is_err());
    assert_eq!(server.received(), 0);
    assert!(!server.confirmed());
    // Accept it as raw bytes so the server may answer, then answer garbage.
    assert!(server.open(&up).is_ok());
    let down = server.seal(b"not a 75 object").unwrap();
    let before = se.clone();
    assert!(matches!(se.open_result(&down), Err(MutualError::Codec(_))));
    assert_eq!(se, before);

    // Authenticated, but not padded (no 80 00.. at the end): refused, nothing changes.
    let counter = 1;
    let mut m = ProtectedMessage {
        cid: se.cid(),
        counter,
        ciphertext: Vec::new(),
    };
    m.ciphertext = gcm_seal(
        &server.send_key.0,
        &gcm_nonce(DIRECTION_DOWN, counter),
        &m.aad(),
        &[0x42; 256],
    )
    .unwrap();
    assert_eq!(
        se.open(&m),
        Err(MutualError::Authentication(
            "authenticated but badly padded"
        ))
    );
    assert_eq!(se, before);
    assert!(se
        .seal(&vec![0; apdu_specs::auth::MAX_PLAINTEXT_LEN + 1])
        .is_err());
}

#[test]
fn statuses_match_the_documented_status_words() {
    assert_eq!(MutualError::BadSignature("R'").status().to_u16(), 0x9301);
    assert_eq!(MutualError::AnswerMismatch("x").status().to_u16(), 0x9301);
    assert_eq!(MutualError::NotGranted.status().to_u16(), 0x9302);
    assert_eq!(
        MutualError::OutsideScope("x".into()).status().to_u16(),
        0x9302
    );
    assert_eq!(
        MutualError::GrantExpired { expiry: 1, now: 2 }
            .status()
            .to_u16(),
        0x9303
    );
    assert_eq!(MutualError::Authentication("x").status().to_u16(), 0x9305);
    assert_eq!(
        MutualError::Codec(AuthError::UnsupportedVersion(1))
            .status()
            .to_u16(),
        0x6A80
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_bytes_to_open_never_panic_and_change_nothing(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let w = world();
        let (mut se, mut server) = handshake(&w);
        let (se0, server0) = (se.clone(), server.clone());
        prop_assert!(server.open_bytes(&bytes).is_err());
        prop_assert!(se.open_bytes(&bytes).is_err());
        prop_assert_eq!(se, se0);
        prop_assert_eq!(server, server0);
    }

    /// Well-formed sealed R and R' whose ciphertext is anything else: nothing opens.
    #[test]
    fn any_sealed_contents_open_nothing(
        r in prop::collection::vec(any::<u8>(), REGISTRATION_BUCKETS[0] + 16),
        rp in prop::collection::vec(any::<u8>(), ANSWER_BUCKETS[0] + 16),
    ) {
        let w = world();
        let f = register(&w, 1);
        let mut sealed_r = SealedRegistration::parse(&f.r_wire).unwrap();
        sealed_r.sealed = r;
        let sealed_r = SealedRegistration::parse(&sealed_r.to_bytes()).unwrap();
        prop_assert!(server_open_registration(&w.server, &sealed_r).is_err());
        let mut sealed_rp = SealedAnswer::parse(&f.rp_wire).unwrap();
        sealed_rp.sealed = rp;
        let sealed_rp = SealedAnswer::parse(&sealed_rp.to_bytes()).unwrap();
        prop_assert!(
            se_accept_answer(&f.pending, &w.server.verifying_key(), &sealed_rp, NOW).is_err()
        );
    }
}

#[test]
fn the_certificate_cache_skips_only_the_ca_signature_check_never_expiry_or_forgery() {
    let w = world();
    let server_public = w.server.verifying_key();
    let (_, sealed) = se_build_registration(&w.se, &w.cert, SERVICE, 1, &server_public).unwrap();
    let signed = server_open_registration(&w.server, &sealed).unwrap();
    let cache = CertificateCache::new(2);
    let ca = w.ca.verifying_key();
    for _ in 0..2 {
        let key =
            server_verify_registration_cached(&ca, &signed, SERVICE, NOW, Some(&cache)).unwrap();
        assert_eq!(key, w.se.verifying_key());
    }
    // Cached, yet expired at a later time.
    let late = u64::from(w.cert.expiry);
    assert!(matches!(
        server_verify_registration_cached(&ca, &signed, SERVICE, late, Some(&cache)),
        Err(MutualError::CertificateExpired { .. })
    ));
    // A certificate the CA did not sign (another serial, same key) is never taken from it.
    let mut forged = signed.clone();
    forged.registration.certificate.serial = vec![0x02];
    assert_eq!(
        server_verify_registration_cached(&ca, &forged, SERVICE, NOW, Some(&cache)).unwrap_err(),
        MutualError::BadCertificateSignature
    );
    // Another CA: the cache is keyed by the certificate, so a hit must not skip the CA; a
    // cache is per server configuration (one CA), and a different CA fails on a miss.
    let other_ca = SigningKey::generate().unwrap().verifying_key();
    let fresh = CertificateCache::new(2);
    assert_eq!(
        server_verify_registration_cached(&other_ca, &signed, SERVICE, NOW, Some(&fresh))
            .unwrap_err(),
        MutualError::BadCertificateSignature
    );
}

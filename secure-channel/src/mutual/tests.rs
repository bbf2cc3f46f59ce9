//! Tests of the seed-1 mutual authentication crypto: known answers, the full handshake, tampering.
use super::*;
use hex_literal::hex;
use proptest::prelude::*;

const NOW: u64 = 1_700_000_000;
const SERVICE: &str = "echo-service";

struct World {
    ca: SigningKey,
    se: SigningKey,
    cert: Certificate,
    server: SigningKey,
}

fn world() -> World {
    let ca = SigningKey::generate().unwrap();
    let se = SigningKey::generate().unwrap();
    let cert = issue_certificate(
        &ca,
        &[0x01],
        "VSE test CA",
        [0x89; SUBJECT_LEN],
        (NOW + 86_400) as u32,
        &se.verifying_key(),
    )
    .unwrap();
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

/// Run the handshake over bytes, as the portal relays it; both ends of the connection.
fn handshake(w: &World) -> (Connection, Connection) {
    let pending = se_build_registration(&w.se, &w.cert, SERVICE, 1).unwrap();
    let r_wire = pending.signed().to_bytes();

    let r = SignedRegistration::parse(&r_wire).unwrap();
    let se_public = server_verify_registration(&w.ca.verifying_key(), &r, SERVICE, NOW).unwrap();
    assert_eq!(se_public, w.se.verifying_key());
    let (answer, server_conn) = server_answer(&w.server, &r, granted()).unwrap();
    let rp_wire = answer.to_bytes();

    let rp = SignedServerAnswer::parse(&rp_wire).unwrap();
    let se_conn = se_accept_answer(&pending, &w.server.verifying_key(), &rp, NOW).unwrap();
    (se_conn, server_conn.unwrap())
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
}

#[test]
fn derive_keys_is_hkdf_with_th_as_salt_and_the_documented_info() {
    let z = [0x5A; 32];
    let th = [0xA5; 32];
    let mut okm = [0u8; 64];
    Hkdf::<Sha256>::new(Some(&th), &z)
        .expand(b"vse mutual auth v1", &mut okm)
        .unwrap();
    let keys = derive_keys(&z, &th);
    assert_eq!(keys.k_up, okm[..32]);
    assert_eq!(keys.k_down, okm[32..]);
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
fn full_handshake_then_echo_both_ways() {
    let w = world();
    let (mut se, mut server) = handshake(&w);
    assert_eq!(se.cid(), server.cid());
    assert_eq!((se.role(), server.role()), (Role::Se, Role::Server));
    assert_eq!(se.scope(), ["echo", "provision"]);
    assert_eq!(se.expiry(), NOW + 3600);
    assert!(se.check_fresh(NOW + 3599).is_ok());
    assert!(se.check_fresh(NOW + 3600).is_err());
    assert!(se.check_scope("echo").is_ok() && se.check_scope("delete").is_err());

    for i in 1..=5u8 {
        let call = Call {
            name: "echo".into(),
            data: vec![i; usize::from(i) * 100],
        };
        let up = se.seal_call(&call).unwrap();
        assert_eq!(up.counter, u64::from(i));
        let wire = up.to_bytes();
        assert!(!wire.windows(call.data.len()).any(|w| w == call.data));
        let got = server
            .open_call(&ProtectedMessage::parse(&wire).unwrap())
            .unwrap();
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
    let se_json = serde_json::to_string(&se).unwrap();
    let mut se2: Connection = serde_json::from_str(&se_json).unwrap();
    let up2 = se2.seal(b"after").unwrap();
    assert_eq!(up2.counter, 2);
    assert_eq!(server2.open(&up2).unwrap().as_slice(), b"after");
    // Debug never shows keys.
    let debug = format!("{se:?}");
    assert!(!debug.contains("send_key") && debug.contains("cid"));

    let pending = se_build_registration(&w.se, &w.cert, SERVICE, 9).unwrap();
    let json = serde_json::to_string(&pending).unwrap();
    let back: PendingRegistration = serde_json::from_str(&json).unwrap();
    assert_eq!(back.signed(), pending.signed());
    let (answer, _) = server_answer(&w.server, pending.signed(), granted()).unwrap();
    let a = se_accept_answer(&pending, &w.server.verifying_key(), &answer, NOW).unwrap();
    let b = se_accept_answer(&back, &w.server.verifying_key(), &answer, NOW).unwrap();
    assert_eq!(a, b);

    let key: SigningKey = serde_json::from_str(&serde_json::to_string(&w.se).unwrap()).unwrap();
    assert_eq!(key.verifying_key(), w.se.verifying_key());
    let vk: VerifyingKey =
        serde_json::from_str(&serde_json::to_string(&w.ca.verifying_key()).unwrap()).unwrap();
    assert_eq!(vk, w.ca.verifying_key());
    assert!(serde_json::from_str::<Connection>(&json).is_err());
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
    let pending = se_build_registration(&w.se, &w.cert, SERVICE, 1).unwrap();
    let r = pending.signed();
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
    // The portal rewrites the service id inside R: the SE signature breaks.
    let mut swapped = r.clone();
    swapped.registration.service_id = "provision-service".into();
    assert!(matches!(
        server_verify_registration(&ca, &swapped, "provision-service", NOW),
        Err(MutualError::BadSignature(_))
    ));
}

#[test]
fn every_byte_of_r_is_protected() {
    let w = world();
    let ca = w.ca.verifying_key();
    let pending = se_build_registration(&w.se, &w.cert, SERVICE, 1).unwrap();
    let wire = pending.signed().to_bytes();
    let accept = |b: &[u8]| {
        SignedRegistration::parse(b)
            .ok()
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
fn every_byte_of_r_prime_is_protected_and_checked_in_order() {
    let w = world();
    let server_pk = w.server.verifying_key();
    let pending = se_build_registration(&w.se, &w.cert, SERVICE, 1).unwrap();
    let (answer, _) = server_answer(&w.server, pending.signed(), granted()).unwrap();
    let wire = answer.to_bytes();
    let accept = |b: &[u8]| {
        SignedServerAnswer::parse(b)
            .ok()
            .and_then(|a| se_accept_answer(&pending, &server_pk, &a, NOW).ok())
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

    // Signed by another server key (wrong trust anchor): 9301.
    let other = SigningKey::generate().unwrap();
    let (foreign, _) = server_answer(&other, pending.signed(), granted()).unwrap();
    let e = se_accept_answer(&pending, &server_pk, &foreign, NOW).unwrap_err();
    assert_eq!(e.status(), Status::BadServerSignature);

    // A genuine R' that answers another R (replayed from an earlier registration): 9301.
    let earlier = se_build_registration(&w.se, &w.cert, SERVICE, 0).unwrap();
    let (old, _) = server_answer(&w.server, earlier.signed(), granted()).unwrap();
    let e = se_accept_answer(&pending, &server_pk, &old, NOW).unwrap_err();
    assert_eq!(e, MutualError::AnswerMismatch("SE nonce"));
    assert_eq!(e.status(), Status::BadServerSignature);

    // A genuine R' for the same nonce but another service (same server key): 9301.
    let mut other_service = answer.answer.clone();
    other_service.service_id = "provision-service".into();
    let swapped = sign_answer(&w.server, other_service);
    assert_eq!(
        se_accept_answer(&pending, &server_pk, &swapped, NOW).unwrap_err(),
        MutualError::AnswerMismatch("service id")
    );

    // Refused: 9302, and the server opens no connection.
    let (refusal, conn) = server_answer(&w.server, pending.signed(), Grant::Refused).unwrap();
    assert!(conn.is_none() && !refusal.answer.granted && refusal.answer.scope.is_empty());
    let e = se_accept_answer(&pending, &server_pk, &refusal, NOW).unwrap_err();
    assert_eq!(
        (e.clone(), e.status()),
        (MutualError::NotGranted, Status::ServiceNotGranted)
    );

    // Expired grant: 9303 at expiry, fine one second before.
    let expiry = NOW + 10;
    let (short, _) = server_answer(
        &w.server,
        pending.signed(),
        Grant::Granted {
            scope: vec!["echo".into()],
            expiry,
        },
    )
    .unwrap();
    assert!(se_accept_answer(&pending, &server_pk, &short, expiry - 1).is_ok());
    let e = se_accept_answer(&pending, &server_pk, &short, expiry).unwrap_err();
    assert_eq!(e.status(), Status::GrantExpired);
}

// ---------------------------------------------------------------------------------------
// Protected messages

#[test]
fn every_tampering_of_a_protected_message_is_refused_and_changes_nothing() {
    let w = world();
    let (mut se, mut server) = handshake(&w);
    let up = se
        .seal_call(&Call {
            name: "echo".into(),
            data: b"hello".to_vec(),
        })
        .unwrap();
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
    assert_eq!(server.open_bytes(&wire).unwrap().as_slice(), up_plain());
    let after = server.clone();
    assert!(server.open_bytes(&wire).is_err());
    assert_eq!(server, after);
}

fn up_plain() -> Vec<u8> {
    Call {
        name: "echo".into(),
        data: b"hello".to_vec(),
    }
    .to_bytes()
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
fn authenticated_garbage_is_refused_without_advancing() {
    let w = world();
    let (mut se, mut server) = handshake(&w);
    let down = server.seal(b"not a 75 object").unwrap();
    let before = se.clone();
    assert!(matches!(se.open_result(&down), Err(MutualError::Codec(_))));
    assert_eq!(se, before);
    let up = se.seal(&[0x74, 0x00]).unwrap();
    assert!(server.open_call(&up).is_err());
    assert_eq!(server.received(), 0);
    assert!(se
        .seal(&vec![0; apdu_specs::auth::MAX_PLAINTEXT_LEN + 1])
        .is_err());
}

#[test]
fn statuses_match_the_documented_status_words() {
    assert_eq!(MutualError::BadSignature("R'").status().to_u16(), 0x9301);
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
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_bytes_to_open_never_panic_and_change_nothing(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let w = world();
        let (mut se, mut server) = handshake(&w);
        let (se0, server0) = (se.clone(), server.clone());
        prop_assert!(server.open_bytes(&bytes).is_err());
        prop_assert!(se.open_bytes(&bytes).is_err());
        prop_assert_eq!(se, se0);
        prop_assert_eq!(server, server0);
    }

    #[test]
    fn any_answer_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let w = world();
        let pending = se_build_registration(&w.se, &w.cert, SERVICE, 1).unwrap();
        if let Ok(a) = SignedServerAnswer::parse(&bytes) {
            prop_assert!(se_accept_answer(&pending, &w.server.verifying_key(), &a, NOW).is_err());
        }
        if let Ok(r) = SignedRegistration::parse(&bytes) {
            prop_assert!(server_verify_registration(&w.ca.verifying_key(), &r, SERVICE, NOW).is_err());
        }
    }
}

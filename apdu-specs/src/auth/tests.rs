//! Tests of the mutual-authentication codecs (version 02): round trips, strict parsing, padding, no panics.
use super::*;
use proptest::prelude::*;

fn point(fill: u8) -> [u8; PUBLIC_KEY_LEN] {
    let mut p = [fill; PUBLIC_KEY_LEN];
    p[0] = 0x04;
    p
}

fn cert() -> Certificate {
    Certificate {
        serial: vec![0x01, 0x02],
        issuer: "VSE test CA".into(),
        subject: [0x89; SUBJECT_LEN],
        key_usage: KEY_USAGE_DIGITAL_SIGNATURE,
        expiry: 2_000_000_000,
        public_key: point(0x11),
        signature: [0x5A; SIGNATURE_LEN],
    }
}

fn registration() -> Registration {
    Registration {
        certificate: cert(),
        service_id: "echo-service".into(),
        se_nonce: [0x22; NONCE_LEN],
        se_ephemeral: point(0x33),
        counter: 7,
    }
}

fn answer() -> ServerAnswer {
    ServerAnswer {
        registration_hash: [0x8B; 32],
        se_nonce: [0x22; NONCE_LEN],
        server_nonce: [0x44; NONCE_LEN],
        service_id: "echo-service".into(),
        granted: true,
        scope: vec!["echo".into(), "provision".into()],
        expiry: 1_900_000_000,
        server_time: 1_800_000_000,
        server_ephemeral: point(0x55),
    }
}

/// The first padded size of a protected message's ciphertext.
const FIRST_CIPHERTEXT: usize = MESSAGE_BUCKETS[0] + GCM_TAG_LEN;

fn protected() -> ProtectedMessage {
    ProtectedMessage {
        cid: [0x66; CID_LEN],
        counter: 1,
        ciphertext: vec![0x77; FIRST_CIPHERTEXT],
    }
}

fn sealed_registration() -> SealedRegistration {
    SealedRegistration {
        service_id: "echo-service".into(),
        se_ephemeral: point(0x33),
        sealed: vec![0x70; REGISTRATION_BUCKETS[0] + GCM_TAG_LEN],
    }
}

fn sealed_answer() -> SealedAnswer {
    SealedAnswer {
        server_ephemeral: point(0x55),
        sealed: vec![0x78; ANSWER_BUCKETS[0] + GCM_TAG_LEN],
    }
}

fn summary() -> ConnectionSummary {
    ConnectionSummary {
        scope: vec!["echo".into(), "provision".into()],
        expiry: 1_900_000_000,
    }
}

/// The direct children of the single `outer` object in `bytes`, as owned pairs.
fn fields_of(bytes: &[u8], outer: u32) -> Vec<(u32, Vec<u8>)> {
    let value = der::read_expected(bytes, outer).unwrap();
    der::read_all(value)
        .unwrap()
        .into_iter()
        .map(|d| (d.tag, d.value.to_vec()))
        .collect()
}

fn rebuild(outer: u32, fields: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut v = Vec::new();
    for (t, val) in fields {
        tlv::push(&mut v, *t, val);
    }
    tlv::build(outer, &v)
}

/// Replace the value of `tag` in the encoding of a structure.
fn with_field(bytes: &[u8], outer: u32, tag: u32, value: &[u8]) -> Vec<u8> {
    let mut f = fields_of(bytes, outer);
    let slot = f.iter_mut().find(|(t, _)| *t == tag).unwrap();
    slot.1 = value.to_vec();
    rebuild(outer, &f)
}

#[test]
fn certificate_body_is_the_signed_part() {
    let c = cert();
    let bytes = c.to_bytes();
    let mut expected_value = c.body_bytes();
    tlv::push(&mut expected_value, tag::SIGNATURE, &c.signature);
    assert_eq!(bytes, tlv::build(0x7F21, &expected_value));
    // The body starts with the serial and ends with the public key.
    let body = c.body_bytes();
    assert_eq!(&body[..4], &[0x93, 0x02, 0x01, 0x02]);
    assert_eq!(
        &body[body.len() - 70..body.len() - 65],
        &[0x7F, 0x49, 0x43, 0xB0, 0x41]
    );
    assert_eq!(Certificate::parse(&bytes).unwrap(), c);
    assert_eq!(c.eid(), [0x89; 16]);
    assert_eq!(c.iccid(), [0x89; 10]);
}

#[test]
fn every_structure_round_trips() {
    let r = registration();
    assert_eq!(Registration::parse(&r.to_bytes()).unwrap(), r);
    let sr = SignedRegistration {
        registration: r,
        signature: [0x99; 64],
    };
    assert_eq!(SignedRegistration::parse(&sr.to_bytes()).unwrap(), sr);
    let a = answer();
    assert_eq!(ServerAnswer::parse(&a.to_bytes()).unwrap(), a);
    assert!(a.allows("echo") && !a.allows("delete"));
    let sa = SignedServerAnswer {
        answer: a,
        signature: [0x98; 64],
    };
    assert_eq!(SignedServerAnswer::parse(&sa.to_bytes()).unwrap(), sa);
    let p = protected();
    assert_eq!(ProtectedMessage::parse(&p.to_bytes()).unwrap(), p);
    let sr = sealed_registration();
    assert_eq!(SealedRegistration::parse(&sr.to_bytes()).unwrap(), sr);
    let sa = sealed_answer();
    assert_eq!(SealedAnswer::parse(&sa.to_bytes()).unwrap(), sa);
    let cs = summary();
    assert_eq!(ConnectionSummary::parse(&cs.to_bytes()).unwrap(), cs);
    let empty = ConnectionSummary {
        scope: vec![],
        expiry: 0,
    };
    assert_eq!(ConnectionSummary::parse(&empty.to_bytes()).unwrap(), empty);
    let call = Call {
        name: "echo".into(),
        data: vec![1, 2, 3],
    };
    assert_eq!(Call::parse(&call.to_bytes()).unwrap(), call);
    assert_eq!(Call::parse_body(&call.body_bytes()).unwrap(), call);
    let res = CallResult {
        status: CallStatus::Ok,
        data: vec![],
        credential: Some(vec![0xC0; 32]),
    };
    assert_eq!(CallResult::parse(&res.to_bytes()).unwrap(), res);
    assert_eq!(res.without_credential().credential, None);
    let g = GetRegistration {
        service_id: "echo".into(),
    };
    assert_eq!(GetRegistration::parse(&g.to_bytes()).unwrap(), g);
    let t = TrustAnchor {
        service_id: "echo".into(),
        server_public_key: point(1),
    };
    assert_eq!(TrustAnchor::parse(&t.to_bytes()).unwrap(), t);
    let id = ContainerIdentity {
        iccid: [0x98; 10],
        isd_p_aid: vec![0xA0, 0, 0, 5, 0x59, 0x10, 0x10],
        subject: [1; 26],
    };
    assert_eq!(ContainerIdentity::parse(&id.to_bytes()).unwrap(), id);
}

#[test]
fn protected_message_aad_is_version_cid_counter() {
    let p = protected();
    let mut expected = vec![0x80, 0x01, 0x02, 0x83, 0x10];
    expected.extend([0x66; 16]);
    expected.extend([0x84, 0x08, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(p.aad(), expected);
    let bytes = p.to_bytes();
    let len = expected.len() + 4 + FIRST_CIPHERTEXT;
    assert_eq!(&bytes[..4], &[0x73, 0x82, (len >> 8) as u8, len as u8]);
    assert_eq!(&bytes[4..4 + expected.len()], expected.as_slice());
    assert_eq!(
        &bytes[4 + expected.len()..8 + expected.len()],
        &[0x86, 0x82, 0x01, 0x10]
    );
}

#[test]
fn sealed_structures_carry_exactly_the_documented_clear_fields() {
    // 70 { 80 01 02, 81 service, 83 SE ephemeral, 86 sealed }; AAD = 80 || 81 || 83.
    let r = sealed_registration();
    let mut aad = vec![0x80, 0x01, 0x02, 0x81, 12];
    aad.extend(b"echo-service");
    aad.extend([0x83, 0x41]);
    aad.extend(point(0x33));
    assert_eq!(r.aad(), aad);
    let mut value = aad.clone();
    value.extend([0x86, 0x82, 0x02, 0x10]);
    value.extend(&r.sealed);
    assert_eq!(r.to_bytes(), tlv::build(0x70, &value));
    // 78 { 80 01 02, 89 server ephemeral, 86 sealed }; AAD = 80 || 89.
    let a = sealed_answer();
    let mut aad = vec![0x80, 0x01, 0x02, 0x89, 0x41];
    aad.extend(point(0x55));
    assert_eq!(a.aad(), aad);
    let mut value = aad.clone();
    value.extend([0x86, 0x82, 0x02, 0x90]);
    value.extend(&a.sealed);
    assert_eq!(a.to_bytes(), tlv::build(0x78, &value));
    // R' puts the hash of R right after the version and the server time before the key.
    let rp = answer().to_bytes();
    let tags: Vec<u32> = fields_of(&rp, 0x72).iter().map(|(t, _)| *t).collect();
    assert_eq!(
        tags,
        [0x80, 0x8B, 0x82, 0x85, 0x81, 0x86, 0x87, 0x88, 0x8C, 0x89]
    );
    // The connection summary: 87 scope || 88 expiry, without a wrapper.
    let mut expected = tlv::build(0x87, b"echo,provision");
    tlv::push(&mut expected, 0x88, &1_900_000_000u64.to_be_bytes());
    assert_eq!(summary().to_bytes(), expected);
}

#[test]
fn fixed_lengths_are_enforced_at_limit_minus_one_and_plus_one() {
    let r = registration().to_bytes();
    for (tag, good, field) in [
        (tag::SE_NONCE, NONCE_LEN, "SE nonce (82)"),
        (tag::SE_EPHEMERAL, PUBLIC_KEY_LEN, "SE ephemeral key (83)"),
        (tag::REGISTRATION_COUNTER, 4, "registration counter (84)"),
    ] {
        for len in [good - 1, good + 1] {
            let mut v = vec![0x04; len];
            v[0] = 0x04;
            let bad = with_field(&r, 0x71, tag, &v);
            assert_eq!(
                Registration::parse(&bad),
                Err(AuthError::WrongLength {
                    field,
                    expected: good,
                    found: len
                }),
                "tag {tag:X} len {len}"
            );
        }
    }
    let p = protected().to_bytes();
    for (tag, good) in [(tag::CID, CID_LEN), (tag::COUNTER, 8)] {
        for len in [good - 1, good + 1] {
            let bad = with_field(&p, 0x73, tag, &vec![0; len]);
            assert!(matches!(
                ProtectedMessage::parse(&bad),
                Err(AuthError::WrongLength { expected, found, .. }) if expected == good && found == len
            ));
        }
    }
    // Certificate: subject 26, signature 64.
    let c = cert().to_bytes();
    for len in [25, 27] {
        let bad = with_field(&c, 0x7F21, tag::SUBJECT, &vec![0; len]);
        assert!(matches!(
            Certificate::parse(&bad),
            Err(AuthError::WrongLength { expected: 26, .. })
        ));
    }
    for len in [63, 65] {
        let bad = with_field(&c, 0x7F21, tag::SIGNATURE, &vec![0; len]);
        assert!(matches!(
            Certificate::parse(&bad),
            Err(AuthError::WrongLength { expected: 64, .. })
        ));
        let mut signed = registration().to_bytes();
        tlv::push(&mut signed, tag::SIGNATURE, &vec![0; len]);
        assert!(matches!(
            SignedRegistration::parse(&signed),
            Err(AuthError::WrongLength { expected: 64, .. })
        ));
    }
    // R': hash of R, both nonces, both times and the key.
    let a = answer().to_bytes();
    for (tag, good) in [
        (tag::REGISTRATION_HASH, 32),
        (tag::SERVER_TIME, 8),
        (tag::SE_NONCE, 16),
        (tag::SERVER_NONCE, 16),
        (tag::GRANT_EXPIRY, 8),
        (tag::SERVER_EPHEMERAL, 65),
    ] {
        let mut v = vec![0x04; good + 1];
        let bad = with_field(&a, 0x72, tag, &v);
        assert!(
            matches!(ServerAnswer::parse(&bad), Err(AuthError::WrongLength { expected, found, .. }) if expected == good && found == good + 1),
            "tag {tag:X}"
        );
        v.truncate(good - 1);
        let bad = with_field(&a, 0x72, tag, &v);
        assert!(
            matches!(ServerAnswer::parse(&bad), Err(AuthError::WrongLength { expected, found, .. }) if expected == good && found == good - 1),
            "tag {tag:X}"
        );
    }
    // Sealed R and R': the ephemeral keys, and the sealed value (one padded size each).
    let sr = sealed_registration().to_bytes();
    for len in [64, 66] {
        let bad = with_field(&sr, 0x70, tag::SE_EPHEMERAL, &vec![0x04; len]);
        assert!(matches!(
            SealedRegistration::parse(&bad),
            Err(AuthError::WrongLength { expected: 65, .. })
        ));
    }
    let sa = sealed_answer().to_bytes();
    for len in [64, 66] {
        let bad = with_field(&sa, 0x78, tag::SERVER_EPHEMERAL, &vec![0x04; len]);
        assert!(matches!(
            SealedAnswer::parse(&bad),
            Err(AuthError::WrongLength { expected: 65, .. })
        ));
    }
    let size = REGISTRATION_BUCKETS[0] + GCM_TAG_LEN;
    for len in [size - 1, size + 1, GCM_TAG_LEN, 0] {
        let bad = with_field(&sr, 0x70, tag::SEALED, &vec![0; len]);
        assert_eq!(
            SealedRegistration::parse(&bad),
            Err(AuthError::LengthOutOfRange {
                field: "sealed R (86)",
                min: size,
                max: size,
                found: len
            })
        );
    }
    assert!(SealedRegistration::parse(&with_field(&sr, 0x70, tag::SEALED, &vec![0; size])).is_ok());
    let size = ANSWER_BUCKETS[0] + GCM_TAG_LEN;
    for len in [size - 1, size + 1, GCM_TAG_LEN, 0] {
        let bad = with_field(&sa, 0x78, tag::SEALED, &vec![0; len]);
        assert_eq!(
            SealedAnswer::parse(&bad),
            Err(AuthError::LengthOutOfRange {
                field: "sealed R' (86)",
                min: size,
                max: size,
                found: len
            })
        );
    }
    assert!(SealedAnswer::parse(&with_field(&sa, 0x78, tag::SEALED, &vec![0; size])).is_ok());
    // Connection summary: expiry 8 bytes.
    let cs = summary().to_bytes();
    let mut f: Vec<(u32, Vec<u8>)> = der::read_all(&cs)
        .unwrap()
        .into_iter()
        .map(|d| (d.tag, d.value.to_vec()))
        .collect();
    f[1].1 = vec![0; 7];
    let mut bad = Vec::new();
    for (t, v) in &f {
        tlv::push(&mut bad, *t, v);
    }
    assert!(matches!(
        ConnectionSummary::parse(&bad),
        Err(AuthError::WrongLength {
            expected: 8,
            found: 7,
            ..
        })
    ));
}

#[test]
fn variable_lengths_accept_the_limit_and_refuse_limit_plus_one() {
    let r = registration().to_bytes();
    let ok = with_field(&r, 0x71, tag::SERVICE_ID, &[b'a'; MAX_ID_LEN]);
    assert!(Registration::parse(&ok).is_ok());
    let bad = with_field(&r, 0x71, tag::SERVICE_ID, &[b'a'; MAX_ID_LEN + 1]);
    assert!(matches!(
        Registration::parse(&bad),
        Err(AuthError::LengthOutOfRange {
            max: 32,
            found: 33,
            ..
        })
    ));
    let empty = with_field(&r, 0x71, tag::SERVICE_ID, &[]);
    assert!(Registration::parse(&empty).is_err());

    let call = |n: usize| Call {
        name: "echo".into(),
        data: vec![0; n],
    };
    assert!(Call::parse(&call(MAX_DATA_LEN).to_bytes()).is_ok());
    assert!(matches!(
        Call::parse(&call(MAX_DATA_LEN + 1).to_bytes()),
        Err(AuthError::LengthOutOfRange { max: 4096, .. })
    ));
    let cred = |n: usize| CallResult {
        status: CallStatus::Ok,
        data: vec![0; MAX_DATA_LEN],
        credential: Some(vec![1; n]),
    };
    let biggest = cred(MAX_CREDENTIAL_LEN).to_bytes();
    assert_eq!(biggest.len(), MAX_PLAINTEXT_LEN);
    assert!(CallResult::parse(&biggest).is_ok());
    assert!(CallResult::parse(&cred(MAX_CREDENTIAL_LEN + 1).to_bytes()).is_err());
    assert!(CallResult::parse(&cred(0).to_bytes()).is_err());

    let c = cert().to_bytes();
    assert!(Certificate::parse(&with_field(&c, 0x7F21, tag::SERIAL, &[1; 16])).is_ok());
    assert!(Certificate::parse(&with_field(&c, 0x7F21, tag::SERIAL, &[1; 17])).is_err());
    assert!(Certificate::parse(&with_field(&c, 0x7F21, tag::SERIAL, &[])).is_err());
    assert!(Certificate::parse(&with_field(&c, 0x7F21, tag::ISSUER, &[b'x'; 33])).is_err());

    let a = answer().to_bytes();
    let scope_256 = ["abcdefghijklmnopqrstuvwxyz012345"; 8].map(str::to_string);
    let long: Vec<String> = scope_256
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{}{i}", &s[..30]))
        .collect();
    let joined = long.join(",");
    assert!(joined.len() <= MAX_SCOPE_LEN);
    assert!(ServerAnswer::parse(&with_field(&a, 0x72, tag::SCOPE, joined.as_bytes())).is_ok());
    assert!(ServerAnswer::parse(&with_field(&a, 0x72, tag::SCOPE, &[b'a'; 257])).is_err());

    // Sealed R: the clear service id, 1..=32 bytes of UTF-8.
    let sr = sealed_registration().to_bytes();
    let ok = with_field(&sr, 0x70, tag::SERVICE_ID, &[b'a'; MAX_ID_LEN]);
    assert!(SealedRegistration::parse(&ok).is_ok());
    for bad in [&[b'a'; MAX_ID_LEN + 1][..], &[], &[0xFF]] {
        assert!(SealedRegistration::parse(&with_field(&sr, 0x70, tag::SERVICE_ID, bad)).is_err());
    }
}

/// ProtectedMessage: the ciphertext is one padded size + tag, nothing in between; each
/// bucket at -1, exactly, +1.
#[test]
fn protected_messages_accept_only_padded_sizes() {
    let p = protected().to_bytes();
    let parse =
        |len: usize| ProtectedMessage::parse(&with_field(&p, 0x73, tag::CIPHERTEXT, &vec![0; len]));
    for bucket in MESSAGE_BUCKETS {
        let good = bucket + GCM_TAG_LEN;
        assert_eq!(parse(good).unwrap().ciphertext.len(), good);
        for bad in [good - 1, good + 1] {
            assert!(
                matches!(parse(bad), Err(AuthError::LengthOutOfRange { found, .. }) if found == bad),
                "{bad}"
            );
        }
    }
    // v01's sizes: tag only, 40 bytes.
    for bad in [0, GCM_TAG_LEN, GCM_TAG_LEN + 1, 40, MESSAGE_BUCKETS[0]] {
        assert!(parse(bad).is_err(), "{bad}");
    }
    assert_eq!(MAX_CIPHERTEXT_LEN, MESSAGE_BUCKETS[3] + GCM_TAG_LEN);
    assert!(parse(MAX_CIPHERTEXT_LEN).is_ok());
    assert!(parse(MAX_CIPHERTEXT_LEN + 1).is_err());
}

/// ISO/IEC 7816-4 padding to the smallest bucket that holds the data and one padding byte.
#[test]
fn pad_and_unpad_at_each_bucket_boundary() {
    for bucket in MESSAGE_BUCKETS {
        // bucket - 1 bytes: fits, one padding byte.
        let plain = vec![0xA5; bucket - 1];
        let padded = pad(&plain, &MESSAGE_BUCKETS).unwrap();
        assert_eq!(padded.len(), bucket);
        assert_eq!(padded[bucket - 1], 0x80);
        assert_eq!(unpad(&padded, &MESSAGE_BUCKETS, "m").unwrap(), plain);
        // bucket bytes: the next bucket, or nothing after the last.
        let next = MESSAGE_BUCKETS.iter().find(|b| **b > bucket).copied();
        for len in [bucket, bucket + 1] {
            let plain = vec![0xA5; len];
            let padded = pad(&plain, &MESSAGE_BUCKETS);
            assert_eq!(padded.as_ref().map(Vec::len), next, "{len}");
            if let Some(padded) = padded {
                assert_eq!(padded[len], 0x80);
                assert!(padded[len + 1..].iter().all(|b| *b == 0));
                assert_eq!(unpad(&padded, &MESSAGE_BUCKETS, "m").unwrap(), plain);
            }
        }
    }
    for buckets in [&REGISTRATION_BUCKETS[..], &ANSWER_BUCKETS[..]] {
        let b = buckets[0];
        assert_eq!(pad(&vec![1; b - 1], buckets).unwrap().len(), b);
        assert_eq!(pad(&vec![1; b], buckets), None);
        assert_eq!(pad(&vec![1; b + 1], buckets), None);
    }
    assert_eq!(pad(&[], &MESSAGE_BUCKETS).unwrap(), {
        let mut v = vec![0; 256];
        v[0] = 0x80;
        v
    });
    assert_eq!(pad(&[], &[]), None);
    // Data ending in 80 or 00 is kept whole.
    for tail in [[0x80], [0x00]] {
        let plain = [&[1, 2][..], &tail].concat();
        let padded = pad(&plain, &MESSAGE_BUCKETS).unwrap();
        assert_eq!(unpad(&padded, &MESSAGE_BUCKETS, "m").unwrap(), plain);
    }
}

#[test]
fn unpad_refuses_every_other_padding_and_size() {
    fn bad(padded: &[u8]) -> Result<&[u8]> {
        unpad(padded, &MESSAGE_BUCKETS, "protected message")
    }
    let err = Err(AuthError::BadPadding("protected message"));
    let good = pad(b"data", &MESSAGE_BUCKETS).unwrap();
    assert_eq!(bad(&good).unwrap(), b"data");
    // Sizes: bucket - 1, bucket + 1, a larger bucket than needed (not minimal), empty.
    let mut short = good.clone();
    short.pop();
    assert_eq!(bad(&short), err);
    let mut long = good.clone();
    long.push(0);
    assert_eq!(bad(&long), err);
    let mut roomy = good.clone();
    roomy.resize(MESSAGE_BUCKETS[1], 0);
    assert_eq!(bad(&roomy), err);
    assert_eq!(bad(&[]), err);
    // The largest plaintext of the first bucket, padded into the second: refused.
    let mut not_minimal = vec![1; MESSAGE_BUCKETS[0] - 1];
    not_minimal.push(0x80);
    not_minimal.resize(MESSAGE_BUCKETS[1], 0);
    assert_eq!(bad(&not_minimal), err);
    // Padding bytes: all zero (no 80), a non-zero byte after 80, no zero padding at all
    // where 80 is missing.
    assert_eq!(bad(&[0; 256]), err);
    let mut after = good.clone();
    after[255] = 0x01;
    assert_eq!(bad(&after), err);
    assert_eq!(bad(&[0x42; 256]), err);
    let mut other_marker = good.clone();
    other_marker[4] = 0x81;
    assert_eq!(bad(&other_marker), err);
    // A registration-sized buffer is not a message size, and the reverse.
    let r = pad(b"r", &REGISTRATION_BUCKETS).unwrap();
    assert_eq!(bad(&r), err);
    assert!(unpad(&good, &REGISTRATION_BUCKETS, "sealed R").is_err());
    assert_eq!(unpad(&r, &REGISTRATION_BUCKETS, "sealed R").unwrap(), b"r");
}

/// The buckets hold the largest structures they are documented for, and `echo` and
/// `provision` fit the first.
#[test]
fn buckets_hold_the_largest_structures() {
    let largest_cert = Certificate {
        serial: vec![0xFF; MAX_SERIAL_LEN],
        issuer: "i".repeat(MAX_ID_LEN),
        ..cert()
    };
    let largest_r = SignedRegistration {
        registration: Registration {
            certificate: largest_cert,
            service_id: "s".repeat(MAX_ID_LEN),
            counter: u32::MAX,
            ..registration()
        },
        signature: [0xFF; SIGNATURE_LEN],
    };
    let bytes = largest_r.to_bytes();
    assert!(SignedRegistration::parse(&bytes).is_ok());
    assert!(bytes.len() < REGISTRATION_BUCKETS[0], "{}", bytes.len());
    let names: Vec<String> = (0..8).map(|i| format!("{i}{}", "c".repeat(30))).collect();
    let largest_rp = SignedServerAnswer {
        answer: ServerAnswer {
            service_id: "s".repeat(MAX_ID_LEN),
            scope: names,
            ..answer()
        },
        signature: [0xFF; SIGNATURE_LEN],
    };
    let bytes = largest_rp.to_bytes();
    assert!(SignedServerAnswer::parse(&bytes).is_ok());
    assert!(bytes.len() < ANSWER_BUCKETS[0], "{}", bytes.len());
    assert!(MAX_PLAINTEXT_LEN < MESSAGE_BUCKETS[3]);
    // echo of 200 bytes, provision with a 32-byte credential: first bucket.
    let echo = Call {
        name: "echo".into(),
        data: vec![0; 200],
    };
    let provision = CallResult {
        status: CallStatus::Ok,
        data: vec![],
        credential: Some(vec![0; 32]),
    };
    assert!(echo.to_bytes().len() < MESSAGE_BUCKETS[0]);
    assert!(provision.to_bytes().len() < MESSAGE_BUCKETS[0]);
}

#[test]
fn unknown_missing_duplicate_and_misordered_tags_are_refused() {
    let r = registration().to_bytes();
    let mut f = fields_of(&r, 0x71);
    // Unknown.
    let mut unknown = f.clone();
    unknown.push((0x8F, vec![0]));
    assert_eq!(
        Registration::parse(&rebuild(0x71, &unknown)),
        Err(AuthError::UnknownTag {
            structure: "registration (71)",
            tag: 0x8F
        })
    );
    // Duplicate.
    let mut dup = f.clone();
    dup.push(f[5].clone());
    assert!(matches!(
        Registration::parse(&rebuild(0x71, &dup)),
        Err(AuthError::DuplicateTag { tag: 0x84, .. })
    ));
    // Missing, one at a time.
    for i in 0..f.len() {
        let mut missing = f.clone();
        let (t, _) = missing.remove(i);
        assert_eq!(
            Registration::parse(&rebuild(0x71, &missing)),
            Err(AuthError::MissingTag {
                structure: "registration (71)",
                tag: t
            })
        );
    }
    // Out of order.
    f.swap(2, 3);
    assert_eq!(
        Registration::parse(&rebuild(0x71, &f)),
        Err(AuthError::OutOfOrder {
            structure: "registration (71)"
        })
    );
    // The optional credential may be absent, never unknown.
    let res = CallResult {
        status: CallStatus::Failed,
        data: vec![],
        credential: None,
    };
    let mut rf = fields_of(&res.to_bytes(), 0x75);
    rf.push((0x91, vec![1]));
    assert!(matches!(
        CallResult::parse(&rebuild(0x75, &rf)),
        Err(AuthError::UnknownTag { tag: 0x91, .. })
    ));
}

#[test]
fn sealed_structures_and_summary_are_parsed_strictly() {
    type Parse = fn(&[u8]) -> Result<()>;
    let cases: [(u32, Vec<u8>, Parse, &str); 2] = [
        (
            0x70,
            sealed_registration().to_bytes(),
            |b| SealedRegistration::parse(b).map(drop),
            "sealed registration (70)",
        ),
        (
            0x78,
            sealed_answer().to_bytes(),
            |b| SealedAnswer::parse(b).map(drop),
            "sealed server answer (78)",
        ),
    ];
    for (outer, bytes, parse, structure) in cases {
        let f = fields_of(&bytes, outer);
        let mut unknown = f.clone();
        unknown.insert(1, (0x8F, vec![0]));
        assert_eq!(
            parse(&rebuild(outer, &unknown)),
            Err(AuthError::UnknownTag {
                structure,
                tag: 0x8F
            })
        );
        let mut dup = f.clone();
        dup.insert(1, f[1].clone());
        assert!(matches!(
            parse(&rebuild(outer, &dup)),
            Err(AuthError::DuplicateTag { .. })
        ));
        for i in 0..f.len() {
            let mut missing = f.clone();
            let (t, _) = missing.remove(i);
            assert_eq!(
                parse(&rebuild(outer, &missing)),
                Err(AuthError::MissingTag { structure, tag: t })
            );
        }
        let mut swapped = f.clone();
        swapped.swap(1, 2);
        assert_eq!(
            parse(&rebuild(outer, &swapped)),
            Err(AuthError::OutOfOrder { structure })
        );
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            parse(&trailing),
            Err(AuthError::Der(DerError::TrailingData(1)))
        ));
        // The other sealed structure's tag, and a non-minimal length of the version.
        let other = if outer == 0x70 { 0x78 } else { 0x70 };
        assert!(matches!(
            parse(&rebuild(other, &f)),
            Err(AuthError::Der(DerError::UnexpectedTag { .. }))
        ));
        let value = der::read_expected(&bytes, outer).unwrap();
        let mut long_form = vec![0x80, 0x81, 0x01, 0x02];
        long_form.extend_from_slice(&value[3..]);
        assert_eq!(
            parse(&tlv::build(outer, &long_form)),
            Err(AuthError::NonCanonical(structure))
        );
        // A compressed point where the ephemeral key goes.
        let mut compressed = point(1).to_vec();
        compressed[0] = 0x02;
        let key_tag = f[f.len() - 2].0;
        assert!(matches!(
            parse(&with_field(&bytes, outer, key_tag, &compressed)),
            Err(AuthError::Invalid { .. })
        ));
    }

    let cs = summary().to_bytes();
    let fields: Vec<(u32, Vec<u8>)> = der::read_all(&cs)
        .unwrap()
        .into_iter()
        .map(|d| (d.tag, d.value.to_vec()))
        .collect();
    let flat = |f: &[(u32, Vec<u8>)]| {
        let mut v = Vec::new();
        for (t, val) in f {
            tlv::push(&mut v, *t, val);
        }
        v
    };
    assert_eq!(flat(&fields), cs);
    let reversed: Vec<_> = fields.iter().rev().cloned().collect();
    assert!(matches!(
        ConnectionSummary::parse(&flat(&reversed)),
        Err(AuthError::OutOfOrder { .. })
    ));
    for i in 0..2 {
        let mut missing = fields.clone();
        missing.remove(i);
        assert!(matches!(
            ConnectionSummary::parse(&flat(&missing)),
            Err(AuthError::MissingTag { .. })
        ));
    }
    let mut unknown = fields.clone();
    unknown.push((0x89, vec![1]));
    assert!(matches!(
        ConnectionSummary::parse(&flat(&unknown)),
        Err(AuthError::UnknownTag { tag: 0x89, .. })
    ));
    for bad in [&b"echo,,x"[..], b"echo,echo", b",echo"] {
        let mut f = fields.clone();
        f[0].1 = bad.to_vec();
        assert!(ConnectionSummary::parse(&flat(&f)).is_err());
    }
    let mut long_form = vec![0x87, 0x81, 14];
    long_form.extend(b"echo,provision");
    long_form.extend_from_slice(&cs[16..]);
    assert_eq!(
        ConnectionSummary::parse(&long_form),
        Err(AuthError::NonCanonical("connection summary"))
    );
    let mut trailing = cs.clone();
    trailing.push(0x00);
    assert!(ConnectionSummary::parse(&trailing).is_err());
}

#[test]
fn trailing_bytes_wrong_outer_tag_and_non_minimal_lengths_are_refused() {
    let mut r = registration().to_bytes();
    r.push(0x00);
    assert!(matches!(
        Registration::parse(&r),
        Err(AuthError::Der(DerError::TrailingData(1)))
    ));
    let mut sr = SignedRegistration {
        registration: registration(),
        signature: [1; 64],
    }
    .to_bytes();
    sr.extend([0x90, 0x00]);
    assert!(matches!(
        SignedRegistration::parse(&sr),
        Err(AuthError::Der(DerError::TrailingData(2)))
    ));
    // R where R' is expected.
    assert!(matches!(
        ServerAnswer::parse(&registration().to_bytes()),
        Err(AuthError::Der(DerError::UnexpectedTag {
            expected: 0x72,
            found: 0x71
        }))
    ));
    // Non-minimal length: 80 81 01 02 instead of 80 01 02.
    let p = protected().to_bytes();
    let mut value = vec![0x80, 0x81, 0x01, 0x02];
    value.extend_from_slice(&der::read_expected(&p, 0x73).unwrap()[3..]);
    let bytes = tlv::build(0x73, &value);
    assert_eq!(
        ProtectedMessage::parse(&bytes),
        Err(AuthError::NonCanonical("protected message (73)"))
    );
    // Non-minimal length of the signature object.
    let mut sr = registration().to_bytes();
    sr.extend([0x5F, 0x37, 0x81, 0x40]);
    sr.extend([1; 64]);
    assert!(matches!(
        SignedRegistration::parse(&sr),
        Err(AuthError::NonCanonical(_))
    ));
}

#[test]
fn values_are_checked() {
    let r = registration().to_bytes();
    for v in [0x00, 0x01, 0x03, 0xFF] {
        assert_eq!(
            Registration::parse(&with_field(&r, 0x71, tag::VERSION, &[v])),
            Err(AuthError::UnsupportedVersion(v))
        );
    }
    assert!(matches!(
        Registration::parse(&with_field(&r, 0x71, tag::VERSION, &[2, 0])),
        Err(AuthError::WrongLength { .. })
    ));
    assert_eq!(
        Registration::parse(&with_field(&r, 0x71, tag::SERVICE_ID, &[0xFF, 0xFE])),
        Err(AuthError::NotUtf8("service id (81)"))
    );
    let mut compressed = point(1).to_vec();
    compressed[0] = 0x02;
    assert!(matches!(
        Registration::parse(&with_field(&r, 0x71, tag::SE_EPHEMERAL, &compressed)),
        Err(AuthError::Invalid { .. })
    ));
    let a = answer().to_bytes();
    assert!(ServerAnswer::parse(&with_field(&a, 0x72, tag::GRANT, &[2])).is_err());
    // A refusal with a scope.
    let refused = with_field(&a, 0x72, tag::GRANT, &[0]);
    assert!(matches!(
        ServerAnswer::parse(&refused),
        Err(AuthError::Invalid {
            field: "scope (87)",
            ..
        })
    ));
    let refused = with_field(&refused, 0x72, tag::SCOPE, &[]);
    let parsed = ServerAnswer::parse(&refused).unwrap();
    assert!(!parsed.granted && parsed.scope.is_empty() && !parsed.allows("echo"));
    for bad in [&b"echo,"[..], b",echo", b"echo,,x", b"echo,echo"] {
        assert!(ServerAnswer::parse(&with_field(&a, 0x72, tag::SCOPE, bad)).is_err());
    }
    let res = CallResult {
        status: CallStatus::Ok,
        data: vec![],
        credential: None,
    }
    .to_bytes();
    assert!(CallResult::parse(&with_field(&res, 0x75, tag::STATUS, &[3])).is_err());
}

/// Version 01 in any structure is refused with `UnsupportedVersion(1)`, never read as v02
/// (also in the v01 layout of R', without the hash of R and the server time).
#[test]
fn version_01_is_refused_in_every_structure() {
    let v01: Result<()> = Err(AuthError::UnsupportedVersion(0x01));
    let r = with_field(&registration().to_bytes(), 0x71, tag::VERSION, &[1]);
    assert_eq!(Registration::parse(&r).map(drop), v01);
    let mut signed = r.clone();
    tlv::push(&mut signed, tag::SIGNATURE, &[1; 64]);
    assert_eq!(SignedRegistration::parse(&signed).map(drop), v01);
    let a = with_field(&answer().to_bytes(), 0x72, tag::VERSION, &[1]);
    assert_eq!(ServerAnswer::parse(&a).map(drop), v01);
    // The v01 layout of R': 80 82 85 81 86 87 88 89.
    let v01_layout: Vec<(u32, Vec<u8>)> = fields_of(&a, 0x72)
        .into_iter()
        .filter(|(t, _)| *t != tag::REGISTRATION_HASH && *t != tag::SERVER_TIME)
        .collect();
    let a_v01 = rebuild(0x72, &v01_layout);
    assert_eq!(ServerAnswer::parse(&a_v01).map(drop), v01);
    let mut signed = a_v01.clone();
    tlv::push(&mut signed, tag::SIGNATURE, &[1; 64]);
    assert_eq!(SignedServerAnswer::parse(&signed).map(drop), v01);
    // ... nor is a v01 R' what VERIFY SERVER takes now.
    assert!(SealedAnswer::parse(&signed).is_err());
    let sr = with_field(&sealed_registration().to_bytes(), 0x70, tag::VERSION, &[1]);
    assert_eq!(SealedRegistration::parse(&sr).map(drop), v01);
    let sa = with_field(&sealed_answer().to_bytes(), 0x78, tag::VERSION, &[1]);
    assert_eq!(SealedAnswer::parse(&sa).map(drop), v01);
    let p = with_field(&protected().to_bytes(), 0x73, tag::VERSION, &[1]);
    assert_eq!(ProtectedMessage::parse(&p).map(drop), v01);
    // The message tells the human what to do.
    let text = AuthError::UnsupportedVersion(1).to_string();
    assert!(
        text.contains("version 01") && text.contains("only version 02"),
        "{text}"
    );
    assert_eq!(AuthError::UnsupportedVersion(1).status().to_u16(), 0x6A80);
    assert_eq!(VERSION, 0x02);
}

#[test]
fn status_words_come_from_the_table() {
    assert_eq!(sw::BAD_SERVER_SIGNATURE.to_u16(), 0x9301);
    assert_eq!(sw::NOT_GRANTED.to_u16(), 0x9302);
    assert_eq!(sw::EXPIRED.to_u16(), 0x9303);
    assert_eq!(sw::NO_SECURE_CONNECTION.to_u16(), 0x9304);
    assert_eq!(sw::AUTHENTICATION_FAILED.to_u16(), 0x9305);
    assert_eq!(sw::NO_TRUST_ANCHOR.to_u16(), 0x9306);
    assert_eq!(sw::PIN_NOT_VERIFIED.to_u16(), 0x6982);
    assert_eq!(sw::NO_PENDING_REGISTRATION.to_u16(), 0x6985);
    assert_eq!(AuthError::NotUtf8("x").status().to_u16(), 0x6A80);
}

#[test]
fn commands_built_by_the_client_are_parsed_by_the_card() {
    let big = ProtectedMessage {
        cid: [1; 16],
        counter: 9,
        ciphertext: vec![2; MESSAGE_BUCKETS[1] + GCM_TAG_LEN],
    };
    let all = [
        AuthCommand::GetRegistration(GetRegistration {
            service_id: "echo-service".into(),
        }),
        AuthCommand::VerifyServer(sealed_answer()),
        AuthCommand::SecureSend(Call {
            name: "echo".into(),
            data: vec![4; 10],
        }),
        AuthCommand::SecureReceive(big),
        AuthCommand::GetCertificate,
        AuthCommand::GetIdentity,
    ];
    for c in all {
        let apdu = c.to_command();
        let bytes = apdu.to_bytes().unwrap();
        let parsed = Command::parse(&bytes).unwrap();
        assert_eq!(AuthCommand::parse(&parsed), Ok(c.clone()), "{c:?}");
    }
    let cert = AuthCommand::GetCertificate.to_command().to_bytes().unwrap();
    assert_eq!(cert, [0x80, 0xCA, 0x7F, 0x21, 0x00]);
    let id = AuthCommand::GetIdentity.to_command().to_bytes().unwrap();
    assert_eq!(id, [0x80, 0xCA, 0x00, 0x5A, 0x00]);
    let reg = AuthCommand::GetRegistration(GetRegistration {
        service_id: "e".into(),
    });
    assert_eq!(
        reg.to_command().to_bytes().unwrap(),
        [0x80, 0x10, 0x00, 0x00, 0x03, 0x81, 0x01, b'e', 0x00]
    );
    // VERIFY SERVER carries the sealed R' (extended length) and asks for the summary.
    let verify = AuthCommand::VerifyServer(sealed_answer()).to_command();
    let data = sealed_answer().to_bytes();
    assert_eq!(verify.data(), data.as_slice());
    assert!(verify.is_extended() && verify.le().is_some());
    let bytes = verify.to_bytes().unwrap();
    assert_eq!(
        &bytes[..7],
        &[
            0x80,
            0x12,
            0x00,
            0x00,
            0x00,
            (data.len() >> 8) as u8,
            data.len() as u8
        ]
    );
}

#[test]
fn malformed_commands_get_the_documented_status_words() {
    let parse = |b: &[u8]| AuthCommand::parse(&Command::parse(b).unwrap());
    assert_eq!(
        parse(&[0x00, 0x10, 0, 0, 3, 0x81, 1, b'e']),
        Err(Status::ClaNotSupported)
    );
    assert_eq!(
        parse(&[0x84, 0x10, 0, 0, 3, 0x81, 1, b'e']),
        Err(Status::ClaNotSupported)
    );
    assert!(parse(&[0x81, 0x10, 0, 0, 3, 0x81, 1, b'e']).is_ok());
    assert_eq!(
        parse(&[0x80, 0x10, 0, 1, 3, 0x81, 1, b'e']),
        Err(Status::IncorrectP1P2)
    );
    assert_eq!(parse(&[0x80, 0x10, 0, 0]), Err(Status::WrongLength));
    assert_eq!(
        parse(&[0x80, 0x10, 0, 0, 3, 0x82, 1, b'e']),
        Err(Status::IncorrectData)
    );
    assert_eq!(parse(&[0x80, 0x18, 0, 0]), Err(Status::InsNotSupported));
    assert_eq!(
        parse(&[0x80, 0xCA, 0x9F, 0x7F, 0x00]),
        Err(Status::ReferencedDataNotFound)
    );
    assert_eq!(
        parse(&[0x80, 0x16, 0, 0, 2, 0x73, 0x00]),
        Err(Status::IncorrectData)
    );
    // VERIFY SERVER with a v01 R' in clear (R' || sigR'), or a sealed R' of version 01.
    let mut v01 = rebuild(
        0x72,
        &fields_of(&answer().to_bytes(), 0x72)
            .into_iter()
            .filter(|(t, _)| *t != tag::REGISTRATION_HASH && *t != tag::SERVER_TIME)
            .map(|(t, v)| {
                if t == tag::VERSION {
                    (t, vec![1])
                } else {
                    (t, v)
                }
            })
            .collect::<Vec<_>>(),
    );
    tlv::push(&mut v01, tag::SIGNATURE, &[1; 64]);
    let sealed_v01 = with_field(&sealed_answer().to_bytes(), 0x78, tag::VERSION, &[1]);
    for data in [v01, sealed_v01] {
        let cmd = Command::new(0x80, 0x12, 0, 0).with_data(data).with_le(256);
        let bytes = cmd.to_bytes().unwrap();
        assert_eq!(parse(&bytes), Err(Status::IncorrectData));
    }
}

// ---------------------------------------------------------------------------------------
// Properties

fn arb_point() -> impl Strategy<Value = [u8; PUBLIC_KEY_LEN]> {
    prop::collection::vec(any::<u8>(), 64).prop_map(|v| {
        let mut p = [0x04; PUBLIC_KEY_LEN];
        p[1..].copy_from_slice(&v);
        p
    })
}

fn arb_id() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.-]{1,32}"
}

fn arb_array<const N: usize>() -> impl Strategy<Value = [u8; N]> {
    prop::collection::vec(any::<u8>(), N).prop_map(|v| {
        let mut a = [0u8; N];
        a.copy_from_slice(&v);
        a
    })
}

prop_compose! {
    fn arb_cert()(
        serial in prop::collection::vec(any::<u8>(), 1..=16),
        issuer in "\\PC{1,8}",
        subject in arb_array::<26>(),
        key_usage in any::<u8>(),
        expiry in any::<u32>(),
        public_key in arb_point(),
        signature in arb_array::<64>(),
    ) -> Certificate {
        Certificate { serial, issuer, subject, key_usage, expiry, public_key, signature }
    }
}

prop_compose! {
    fn arb_registration()(
        certificate in arb_cert(),
        service_id in arb_id(),
        se_nonce in arb_array::<16>(),
        se_ephemeral in arb_point(),
        counter in any::<u32>(),
    ) -> Registration {
        Registration { certificate, service_id, se_nonce, se_ephemeral, counter }
    }
}

prop_compose! {
    fn arb_answer()(
        registration_hash in arb_array::<32>(),
        se_nonce in arb_array::<16>(),
        server_nonce in arb_array::<16>(),
        service_id in arb_id(),
        granted in any::<bool>(),
        scope in prop::collection::btree_set("[a-z]{1,32}", 0..6),
        expiry in any::<u64>(),
        server_time in any::<u64>(),
        server_ephemeral in arb_point(),
    ) -> ServerAnswer {
        let scope = if granted { scope.into_iter().collect() } else { Vec::new() };
        ServerAnswer {
            registration_hash, se_nonce, server_nonce, service_id, granted, scope, expiry,
            server_time, server_ephemeral,
        }
    }
}

prop_compose! {
    fn arb_sealed_registration()(
        service_id in arb_id(),
        se_ephemeral in arb_point(),
        sealed in prop::collection::vec(any::<u8>(), REGISTRATION_BUCKETS[0] + GCM_TAG_LEN),
    ) -> SealedRegistration {
        SealedRegistration { service_id, se_ephemeral, sealed }
    }
}

prop_compose! {
    fn arb_sealed_answer()(
        server_ephemeral in arb_point(),
        sealed in prop::collection::vec(any::<u8>(), ANSWER_BUCKETS[0] + GCM_TAG_LEN),
    ) -> SealedAnswer {
        SealedAnswer { server_ephemeral, sealed }
    }
}

fn arb_status() -> impl Strategy<Value = CallStatus> {
    prop::sample::select(vec![
        CallStatus::Ok,
        CallStatus::Refused,
        CallStatus::Failed,
    ])
}

type Parser = fn(&[u8]) -> bool;

/// Every parser of outside bytes, erased to "did it accept".
const PARSERS: [Parser; 15] = [
    |b| Certificate::parse(b).is_ok(),
    |b| Registration::parse(b).is_ok(),
    |b| SignedRegistration::parse(b).is_ok(),
    |b| ServerAnswer::parse(b).is_ok(),
    |b| SignedServerAnswer::parse(b).is_ok(),
    |b| ProtectedMessage::parse(b).is_ok(),
    |b| Call::parse(b).is_ok() | Call::parse_body(b).is_ok(),
    |b| CallResult::parse(b).is_ok(),
    |b| GetRegistration::parse(b).is_ok(),
    |b| TrustAnchor::parse(b).is_ok(),
    |b| ContainerIdentity::parse(b).is_ok() | parse_scope(b).is_ok(),
    |b| Command::parse(b).is_ok_and(|c| AuthCommand::parse(&c).is_ok()),
    |b| SealedRegistration::parse(b).is_ok(),
    |b| SealedAnswer::parse(b).is_ok(),
    |b| ConnectionSummary::parse(b).is_ok() | unpad(b, &MESSAGE_BUCKETS, "m").is_ok(),
];

proptest! {
    #[test]
    fn certificates_round_trip(c in arb_cert()) {
        prop_assert_eq!(Certificate::parse(&c.to_bytes()).unwrap(), c);
    }

    #[test]
    fn registrations_round_trip(r in arb_registration(), signature in arb_array::<64>()) {
        prop_assert_eq!(Registration::parse(&r.to_bytes()).unwrap(), r.clone());
        let s = SignedRegistration { registration: r, signature };
        prop_assert_eq!(SignedRegistration::parse(&s.to_bytes()).unwrap(), s);
    }

    #[test]
    fn answers_round_trip(a in arb_answer(), signature in arb_array::<64>()) {
        prop_assert_eq!(ServerAnswer::parse(&a.to_bytes()).unwrap(), a.clone());
        let s = SignedServerAnswer { answer: a, signature };
        prop_assert_eq!(SignedServerAnswer::parse(&s.to_bytes()).unwrap(), s);
    }

    #[test]
    fn protected_messages_round_trip(
        cid in arb_array::<16>(),
        counter in any::<u64>(),
        bucket in prop::sample::select(MESSAGE_BUCKETS.to_vec()),
        fill in any::<u8>(),
        other_len in 0..MAX_CIPHERTEXT_LEN + 2,
    ) {
        let m = ProtectedMessage { cid, counter, ciphertext: vec![fill; bucket + GCM_TAG_LEN] };
        prop_assert_eq!(ProtectedMessage::parse(&m.to_bytes()).unwrap(), m);
        // Any other length is refused.
        let sizes = MESSAGE_BUCKETS.map(|b| b + GCM_TAG_LEN);
        let other = ProtectedMessage { cid, counter, ciphertext: vec![fill; other_len] };
        prop_assert_eq!(
            ProtectedMessage::parse(&other.to_bytes()).is_ok(),
            sizes.contains(&other_len)
        );
    }

    #[test]
    fn sealed_structures_and_summaries_round_trip(
        r in arb_sealed_registration(),
        a in arb_sealed_answer(),
        scope in prop::collection::btree_set("[a-z]{1,32}", 0..6),
        expiry in any::<u64>(),
    ) {
        prop_assert_eq!(SealedRegistration::parse(&r.to_bytes()).unwrap(), r);
        prop_assert_eq!(SealedAnswer::parse(&a.to_bytes()).unwrap(), a);
        let s = ConnectionSummary { scope: scope.into_iter().collect(), expiry };
        prop_assert_eq!(ConnectionSummary::parse(&s.to_bytes()).unwrap(), s);
    }

    /// `unpad` inverts `pad`, and whatever it accepts has exactly one padded form.
    #[test]
    fn padding_is_invertible_and_unique(
        plain in prop::collection::vec(any::<u8>(), 0..1100),
        head in prop::collection::vec(prop::sample::select(vec![0x00u8, 0x80, 0x01]), 0..24),
        size in prop::sample::select(vec![255usize, 256, 257, 1024]),
    ) {
        let p = pad(&plain, &MESSAGE_BUCKETS).unwrap();
        prop_assert!(MESSAGE_BUCKETS.contains(&p.len()));
        prop_assert_eq!(unpad(&p, &MESSAGE_BUCKETS, "m").unwrap(), plain.as_slice());
        // Any short head followed by zeros: accepted exactly when it is pad()'s output.
        let mut candidate = head.clone();
        candidate.resize(size, 0);
        let marker = head.iter().rposition(|b| *b != 0).filter(|i| head[*i] == 0x80);
        let expected = marker.is_some() && size == 256;
        match unpad(&candidate, &MESSAGE_BUCKETS, "m") {
            Ok(u) => {
                prop_assert!(expected);
                prop_assert_eq!(pad(u, &MESSAGE_BUCKETS).unwrap(), candidate);
            }
            Err(e) => {
                prop_assert!(!expected);
                prop_assert_eq!(e, AuthError::BadPadding("m"));
            }
        }
    }

    #[test]
    fn calls_and_results_round_trip(
        name in arb_id(),
        data in prop::collection::vec(any::<u8>(), 0..300),
        status in arb_status(),
        credential in prop::option::of(prop::collection::vec(any::<u8>(), 1..200)),
    ) {
        let c = Call { name, data: data.clone() };
        prop_assert_eq!(Call::parse(&c.to_bytes()).unwrap(), c.clone());
        prop_assert_eq!(Call::parse_body(&c.body_bytes()).unwrap(), c);
        let r = CallResult { status, data, credential };
        prop_assert_eq!(CallResult::parse(&r.to_bytes()).unwrap(), r);
    }

    #[test]
    fn any_bytes_parse_or_error(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        for p in PARSERS {
            let _ = p(&bytes);
        }
    }

    /// Valid encodings with one byte changed, truncated or extended: never a panic, and
    /// whatever is accepted re-encodes to the same bytes.
    #[test]
    fn mutated_encodings_never_panic(
        r in arb_registration(),
        a in arb_answer(),
        pos in any::<prop::sample::Index>(),
        xor in 1u8..,
        cut in any::<prop::sample::Index>(),
    ) {
        let signed_r = SignedRegistration { registration: r, signature: [7; 64] }.to_bytes();
        let signed_a = SignedServerAnswer { answer: a, signature: [9; 64] }.to_bytes();
        let sealed = [
            sealed_registration().to_bytes(),
            sealed_answer().to_bytes(),
            summary().to_bytes(),
        ];
        for valid in [signed_r, signed_a, protected().to_bytes()].into_iter().chain(sealed) {
            let mut flipped = valid.clone();
            let i = pos.index(flipped.len());
            flipped[i] ^= xor;
            let truncated = &valid[..cut.index(valid.len())];
            for bytes in [&flipped[..], truncated] {
                for p in PARSERS {
                    let _ = p(bytes);
                }
                if let Ok(s) = SignedRegistration::parse(bytes) {
                    prop_assert_eq!(s.to_bytes(), bytes);
                }
                if let Ok(s) = SignedServerAnswer::parse(bytes) {
                    prop_assert_eq!(s.to_bytes(), bytes);
                }
                if let Ok(m) = ProtectedMessage::parse(bytes) {
                    prop_assert_eq!(m.to_bytes(), bytes);
                }
                if let Ok(m) = SealedRegistration::parse(bytes) {
                    prop_assert_eq!(m.to_bytes(), bytes);
                }
                if let Ok(m) = SealedAnswer::parse(bytes) {
                    prop_assert_eq!(m.to_bytes(), bytes);
                }
                if let Ok(m) = ConnectionSummary::parse(bytes) {
                    prop_assert_eq!(m.to_bytes(), bytes);
                }
            }
        }
    }
}

#[test]
fn deep_nesting_is_not_recursed_into() {
    // 10,000 nested 7F21 objects: the one-level reader never descends further than the schema.
    let mut v: Vec<u8> = Vec::new();
    for _ in 0..10_000 {
        v = tlv::build(0x7F21, &v);
    }
    for p in PARSERS {
        assert!(!p(&v));
    }
    let mut r = Vec::new();
    tlv::push(&mut r, 0x80, &[1]);
    r.extend_from_slice(&v);
    assert!(Registration::parse(&tlv::build(0x71, &r)).is_err());
}

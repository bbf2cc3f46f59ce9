//! Tests of the mutual-authentication codecs: round trips, strict parsing, no panics.
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
        se_nonce: [0x22; NONCE_LEN],
        server_nonce: [0x44; NONCE_LEN],
        service_id: "echo-service".into(),
        granted: true,
        scope: vec!["echo".into(), "provision".into()],
        expiry: 1_900_000_000,
        server_ephemeral: point(0x55),
    }
}

fn protected() -> ProtectedMessage {
    ProtectedMessage {
        cid: [0x66; CID_LEN],
        counter: 1,
        ciphertext: vec![0x77; 40],
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
    let mut expected = vec![0x80, 0x01, 0x01, 0x83, 0x10];
    expected.extend([0x66; 16]);
    expected.extend([0x84, 0x08, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(p.aad(), expected);
    let bytes = p.to_bytes();
    assert_eq!(&bytes[..2], &[0x73, (expected.len() + 2 + 40) as u8]);
    assert_eq!(&bytes[2..2 + expected.len()], expected.as_slice());
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
    // R': both nonces and the key.
    let a = answer().to_bytes();
    for (tag, good) in [
        (tag::SE_NONCE, 16),
        (tag::SERVER_NONCE, 16),
        (tag::GRANT_EXPIRY, 8),
        (tag::SERVER_EPHEMERAL, 65),
    ] {
        let mut v = vec![0x04; good + 1];
        let bad = with_field(&a, 0x72, tag, &v);
        assert!(ServerAnswer::parse(&bad).is_err());
        v.truncate(good - 1);
        let bad = with_field(&a, 0x72, tag, &v);
        assert!(ServerAnswer::parse(&bad).is_err());
    }
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

    let p = protected().to_bytes();
    assert!(ProtectedMessage::parse(&with_field(&p, 0x73, tag::CIPHERTEXT, &[0; 16])).is_ok());
    assert!(ProtectedMessage::parse(&with_field(&p, 0x73, tag::CIPHERTEXT, &[0; 15])).is_err());
    let max = vec![0; MAX_CIPHERTEXT_LEN];
    assert!(ProtectedMessage::parse(&with_field(&p, 0x73, tag::CIPHERTEXT, &max)).is_ok());
    let over = vec![0; MAX_CIPHERTEXT_LEN + 1];
    assert!(ProtectedMessage::parse(&with_field(&p, 0x73, tag::CIPHERTEXT, &over)).is_err());
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
    // Non-minimal length: 80 81 01 01 instead of 80 01 01.
    let p = protected().to_bytes();
    let mut value = vec![0x80, 0x81, 0x01, 0x01];
    value.extend_from_slice(&p[5..]);
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
    assert_eq!(
        Registration::parse(&with_field(&r, 0x71, tag::VERSION, &[2])),
        Err(AuthError::UnsupportedVersion(2))
    );
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
        ciphertext: vec![2; 1000],
    };
    let all = [
        AuthCommand::GetRegistration(GetRegistration {
            service_id: "echo-service".into(),
        }),
        AuthCommand::VerifyServer(SignedServerAnswer {
            answer: answer(),
            signature: [3; 64],
        }),
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
        se_nonce in arb_array::<16>(),
        server_nonce in arb_array::<16>(),
        service_id in arb_id(),
        granted in any::<bool>(),
        scope in prop::collection::btree_set("[a-z]{1,32}", 0..6),
        expiry in any::<u64>(),
        server_ephemeral in arb_point(),
    ) -> ServerAnswer {
        let scope = if granted { scope.into_iter().collect() } else { Vec::new() };
        ServerAnswer { se_nonce, server_nonce, service_id, granted, scope, expiry, server_ephemeral }
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
const PARSERS: [Parser; 12] = [
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
        ciphertext in prop::collection::vec(any::<u8>(), 16..600),
    ) {
        let m = ProtectedMessage { cid, counter, ciphertext };
        prop_assert_eq!(ProtectedMessage::parse(&m.to_bytes()).unwrap(), m);
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
        for valid in [signed_r, signed_a, protected().to_bytes()] {
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

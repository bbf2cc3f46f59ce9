//! Every message of the seed-1 mutual authentication, protocol version 02 (certificate, R,
//! R || sigR, R', R' || sigR', the sealed R and R' that cross the portal, the connection
//! summary of VERIFY SERVER, protected message, call, call result, GET REGISTRATION data,
//! trust anchor, container identity) and the applet's commands: any bytes parse or fail with
//! a typed error, and every structure that parses re-encodes to exactly the input (the
//! parsers are strict and canonical). The padding of sealed and protected plaintexts has
//! exactly one form per plaintext and bucket set.

use apdu_specs::auth::{
    pad, unpad, AuthCommand, Call, CallResult, Certificate, ConnectionSummary, ContainerIdentity,
    GetRegistration, ProtectedMessage, Registration, SealedAnswer, SealedRegistration,
    ServerAnswer, SignedRegistration, SignedServerAnswer, TrustAnchor, ANSWER_BUCKETS, GCM_TAG_LEN,
    MESSAGE_BUCKETS, REGISTRATION_BUCKETS, VERSION,
};
use apdu_specs::Command;

macro_rules! canonical {
    ($data:expr, $($ty:ty),+) => {
        $(
            if let Ok(v) = <$ty>::parse($data) {
                assert_eq!(v.to_bytes(), $data, concat!(stringify!($ty), " re-encodes identically"));
                assert_eq!(<$ty>::parse(&v.to_bytes()).as_ref(), Ok(&v));
            }
        )+
    };
}

/// One input: panics exactly where the fuzz target reports a failure.
pub fn run(data: &[u8]) {
    canonical!(
        data,
        Certificate,
        Registration,
        SignedRegistration,
        ServerAnswer,
        SignedServerAnswer,
        SealedRegistration,
        SealedAnswer,
        ConnectionSummary,
        ProtectedMessage,
        Call,
        CallResult,
        GetRegistration,
        TrustAnchor,
        ContainerIdentity
    );
    if let Ok(c) = Call::parse_body(data) {
        assert_eq!(c.body_bytes(), data);
    }
    if let Ok(r) = SignedRegistration::parse(data) {
        assert!(r.registration.certificate.eid().len() == 16);
        assert_eq!(r.registration.certificate.iccid().len(), 10);
    }
    if let Ok(a) = ServerAnswer::parse(data) {
        for call in &a.scope {
            assert!(a.allows(call) || !a.granted);
        }
    }
    // What crosses the portal: only version 02, and the sealed part of exactly one size.
    if let Ok(r) = SealedRegistration::parse(data) {
        assert_eq!(r.sealed.len(), REGISTRATION_BUCKETS[0] + GCM_TAG_LEN);
        assert!(r.aad().starts_with(&[0x80, 0x01, VERSION]));
    }
    if let Ok(a) = SealedAnswer::parse(data) {
        assert_eq!(a.sealed.len(), ANSWER_BUCKETS[0] + GCM_TAG_LEN);
        assert!(a.aad().starts_with(&[0x80, 0x01, VERSION]));
    }
    if let Ok(m) = ProtectedMessage::parse(data) {
        assert!(MESSAGE_BUCKETS
            .iter()
            .any(|b| b + GCM_TAG_LEN == m.ciphertext.len()));
    }
    for buckets in [&MESSAGE_BUCKETS[..], &REGISTRATION_BUCKETS, &ANSWER_BUCKETS] {
        check_padding(data, buckets);
    }

    // The applet's commands: data as a C-APDU, and the tail as the data of each INS.
    if let Ok(cmd) = Command::parse(data) {
        check_command(&cmd);
    }
    if let [ins, p1, p2, rest @ ..] = data {
        let cmd = Command::new(0x80, *ins, *p1, *p2)
            .with_data(rest)
            .with_le(256);
        check_command(&cmd);
    }
}

/// `pad` and `unpad` are inverse, and a padded plaintext has one form: the smallest bucket
/// that holds the plaintext and one padding byte.
fn check_padding(data: &[u8], buckets: &[usize]) {
    match pad(data, buckets) {
        Some(p) => {
            let size = buckets.iter().find(|b| **b > data.len()).expect("fits");
            assert_eq!(p.len(), *size);
            assert_eq!(unpad(&p, buckets, "fuzz"), Ok(data));
        }
        None => assert!(data.len() >= buckets[buckets.len() - 1]),
    }
    if let Ok(plain) = unpad(data, buckets, "fuzz") {
        assert_eq!(
            pad(plain, buckets).as_deref(),
            Some(data),
            "one padded form"
        );
    }
}

fn check_command(cmd: &Command<'_>) {
    if let Ok(parsed) = AuthCommand::parse(cmd) {
        // What the card parsed, the client builds back: same command, same meaning.
        let rebuilt = parsed.to_command();
        assert_eq!(AuthCommand::parse(&rebuilt).as_ref(), Ok(&parsed));
        assert_eq!(rebuilt.ins, cmd.ins);
        assert_eq!(rebuilt.data(), cmd.data(), "the data is canonical");
        let bytes = rebuilt.to_bytes().expect("the client's command serializes");
        let reparsed = Command::parse(&bytes).expect("and parses");
        assert_eq!(AuthCommand::parse(&reparsed).as_ref(), Ok(&parsed));
    }
}

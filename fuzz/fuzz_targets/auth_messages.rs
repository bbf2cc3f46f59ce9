//! Every message of the seed-1 mutual authentication (certificate, R, R || sigR, R',
//! R' || sigR', protected message, call, call result, GET REGISTRATION data, trust anchor,
//! container identity) and the applet's commands: any bytes parse or fail with a typed
//! error, and every structure that parses re-encodes to exactly the input (the parsers
//! are strict and canonical).
#![no_main]
#![forbid(unsafe_code)]

use apdu_specs::auth::{
    AuthCommand, Call, CallResult, Certificate, ContainerIdentity, GetRegistration,
    ProtectedMessage, Registration, ServerAnswer, SignedRegistration, SignedServerAnswer,
    TrustAnchor,
};
use apdu_specs::Command;
use libfuzzer_sys::fuzz_target;

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

fuzz_target!(|data: &[u8]| {
    canonical!(
        data,
        Certificate,
        Registration,
        SignedRegistration,
        ServerAnswer,
        SignedServerAnswer,
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
});

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

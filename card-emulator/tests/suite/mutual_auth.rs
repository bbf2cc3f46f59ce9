//! The authentication applet (seed document 1) against the server side of the same shared
//! crypto: registration, verification, the secure connection, the credential, and every
//! refusal the card must make.

use crate::common;
use apdu_specs::auth::{
    Call, CallResult, CallStatus, ConnectionSummary, SealedAnswer, SealedRegistration,
    SignedRegistration,
};
use apdu_specs::{tlv, Status};
use card_emulator::ca::IssuerCa;
use card_emulator::{profile, Card, VirtualCard};
use common::tx;
use secure_channel::mutual::{self, Connection, Grant, SigningKey, VerifyingKey};
use secure_channel::{scp03, SecurityLevel, StaticKeys};

const NOW: u64 = 1_800_000_000;
const SELECT_AUTH: &str = "00A4040007F04D415554480100";

fn now() -> u64 {
    NOW
}

fn later() -> u64 {
    NOW + 7200
}

/// The secret keys of the card's key set `i` (KVN 30 SCP03, then KVN 20 SCP02).
fn owner_keys(i: u8) -> StaticKeys {
    let b = 0x21 + 3 * i;
    StaticKeys::new(&[b; 16], &[b + 1; 16], &[b + 2; 16]).unwrap()
}

struct World {
    card: Card,
    ca: VerifyingKey,
    server: SigningKey,
    se_secret: Vec<u8>,
    responses: Vec<Vec<u8>>,
}

impl World {
    /// A personalized card whose container A trusts `server` for service "demo", installed
    /// the admin way: SCP03 + INSTALL [for personalization] + DGI A001, under the card's own
    /// GlobalPlatform keys (the card refuses anchors while any key set is a public test key).
    fn new() -> World {
        let mut state = profile::build(profile::DEFAULT_PROFILE).unwrap();
        for (i, set) in state.gp.key_sets.iter_mut().enumerate() {
            let k = owner_keys(i as u8);
            (set.enc, set.mac, set.dek) = (k.enc().to_vec(), k.mac().to_vec(), k.dek().to_vec());
        }
        let issuer = IssuerCa::generate("test CA").unwrap();
        issuer.personalize(&mut state, NOW).unwrap();
        let ca = VerifyingKey::from_sec1(&apdu_specs::hexfmt::parse(&issuer.public_hex()).unwrap())
            .unwrap();
        let se_secret = state.containers()[0].auth.se_key.clone();
        let mut card = Card::in_memory(state);
        card.set_clock(now);
        card.power_on();
        let server = SigningKey::generate().unwrap();
        let mut w = World {
            card,
            ca,
            server,
            se_secret,
            responses: Vec::new(),
        };
        w.install_anchor("A0000005591010FFFFFFFF8900001000", "demo");
        w
    }

    fn install_anchor(&mut self, isdp: &str, service: &str) {
        let c = &mut self.card;
        assert!(tx(c, "00A4040008A00000015100000000").ends_with("9000"));
        let hs = scp03::HostHandshake::new(&owner_keys(0), 0x30).unwrap();
        let r = c.transmit(&hs.initialize_update());
        let (mut host, ea) = hs.authenticate(&r, SecurityLevel::FULL).unwrap();
        assert_eq!(c.transmit(&ea), [0x90, 0x00]);
        let mut send = |plain: Vec<u8>| {
            let wire = host.wrap_command(&plain).unwrap();
            host.unwrap_response(&c.transmit(&wire)).unwrap().1
        };
        let aid = apdu_specs::hexfmt::parse(isdp).unwrap();
        let mut install = vec![
            0x80,
            0xE6,
            0x20,
            0x00,
            (aid.len() + 6) as u8,
            0,
            0,
            aid.len() as u8,
        ];
        install.extend(&aid);
        install.extend([0, 0, 0, 0]);
        assert_eq!(send(install), 0x9000);
        let mut anchor = tlv::build(0x80, service.as_bytes());
        anchor.extend(tlv::build(0x81, &self.server.verifying_key().to_sec1()));
        let mut store = vec![
            0x80,
            0xE2,
            0x88,
            0x00,
            (anchor.len() + 3) as u8,
            0xA0,
            0x01,
            anchor.len() as u8,
        ];
        store.extend(&anchor);
        assert_eq!(send(store), 0x9000);
    }

    /// Send, following 61xx with GET RESPONSE as every terminal does.
    fn send(&mut self, apdu: &[u8]) -> (Vec<u8>, Status) {
        let mut data = Vec::new();
        let mut r = self.card.transmit(apdu);
        loop {
            self.responses.push(r.clone());
            let (d, sw) = r.split_at(r.len() - 2);
            data.extend_from_slice(d);
            match Status::from_u16(u16::from_be_bytes([sw[0], sw[1]])) {
                Status::BytesAvailable(n) => r = self.card.transmit(&[0x00, 0xC0, 0x00, 0x00, n]),
                s => return (data, s),
            }
        }
    }

    fn cmd(&mut self, ins: u8, data: &[u8]) -> (Vec<u8>, Status) {
        let mut apdu = vec![0x80, ins, 0x00, 0x00];
        if data.len() > 255 {
            apdu.push(0);
            apdu.extend((data.len() as u16).to_be_bytes());
            apdu.extend(data);
            apdu.extend([0, 0]);
        } else {
            apdu.push(data.len() as u8);
            apdu.extend(data);
            apdu.push(0);
        }
        self.send(&apdu)
    }

    fn select_and_verify(&mut self) {
        assert!(tx(&mut self.card, SELECT_AUTH).ends_with("9000"));
        assert_eq!(tx(&mut self.card, "002000810431323334"), "9000");
    }

    fn register(&mut self, service: &str) -> (Vec<u8>, Status) {
        self.cmd(0x10, &tlv::build(0x81, service.as_bytes()))
    }

    /// What the server does with the sealed R the card answered: open it with its key.
    fn open_r(&self, sealed: &[u8]) -> SignedRegistration {
        let sealed = SealedRegistration::parse(sealed).unwrap();
        mutual::server_open_registration(&self.server, &sealed).unwrap()
    }

    /// The server's sealed R' for `signed`, at server time `at`.
    fn answer(
        &self,
        signed: &SignedRegistration,
        grant: Grant,
        at: u64,
    ) -> (SealedAnswer, Option<Connection>) {
        mutual::server_answer(&self.server, signed, grant, at).unwrap()
    }

    /// Steps 1-5 with the server granting `grant`; the server's connection.
    fn connect(&mut self, grant: Grant) -> (Status, Option<Connection>) {
        self.select_and_verify();
        let (r, sw) = self.register("demo");
        assert_eq!(sw, Status::Success);
        let signed = self.open_r(&r);
        mutual::server_verify_registration(&self.ca, &signed, "demo", NOW).unwrap();
        let (answer, conn) = self.answer(&signed, grant, NOW);
        let (summary, sw) = self.cmd(0x12, &answer.to_bytes());
        if sw == Status::Success {
            let summary = ConnectionSummary::parse(&summary).unwrap();
            assert_eq!(summary.expiry, conn.as_ref().unwrap().expiry());
        }
        (sw, conn)
    }
}

fn granted() -> Grant {
    Grant::Granted {
        scope: vec!["echo".into(), "provision".into()],
        expiry: NOW + 3600,
    }
}

#[test]
fn registration_needs_the_container_pin_and_a_trust_anchor() {
    let mut w = World::new();
    assert!(tx(&mut w.card, SELECT_AUTH).ends_with("9000"));
    assert_eq!(w.register("demo").1, Status::SecurityStatusNotSatisfied);
    assert_eq!(tx(&mut w.card, "002000810431323334"), "9000");
    assert_eq!(w.register("other").1, Status::NoTrustAnchor);
    let (r, sw) = w.register("demo");
    assert_eq!(sw, Status::Success);
    let signed = w.open_r(&r);
    assert_eq!(signed.registration.counter, 1);
    assert!(mutual::server_verify_registration(&w.ca, &signed, "demo", NOW).is_ok());
}

#[test]
fn the_full_flow_echoes_and_provisions_a_credential_readable_after_verify() {
    let mut w = World::new();
    let (sw, conn) = w.connect(granted());
    assert_eq!(sw, Status::Success);
    let mut server = conn.unwrap();
    // echo
    let call = [tlv::build(0x81, b"echo"), tlv::build(0x82, b"hello card")].concat();
    let (up, sw) = w.cmd(0x14, &call);
    assert_eq!(sw, Status::Success);
    let up = apdu_specs::auth::ProtectedMessage::parse(&up).unwrap();
    let got = server.open_call(&up).unwrap();
    assert_eq!(
        got,
        Call {
            name: "echo".into(),
            data: b"hello card".to_vec()
        }
    );
    let down = server
        .seal_result(&CallResult {
            status: CallStatus::Ok,
            data: got.data,
            credential: None,
        })
        .unwrap();
    let (result, sw) = w.cmd(0x16, &down.to_bytes());
    assert_eq!(sw, Status::Success);
    assert_eq!(CallResult::parse(&result).unwrap().data, b"hello card");
    // The same down message again: a replay.
    assert_eq!(
        w.cmd(0x16, &down.to_bytes()).1,
        Status::MessageAuthenticationFailed
    );
    // provision
    let (up, _) = w.cmd(
        0x14,
        &[tlv::build(0x81, b"provision"), tlv::build(0x82, b"")].concat(),
    );
    server
        .open_call(&apdu_specs::auth::ProtectedMessage::parse(&up).unwrap())
        .unwrap();
    let credential = b"CREDENTIAL-0001".to_vec();
    let down = server
        .seal_result(&CallResult {
            status: CallStatus::Ok,
            data: vec![],
            credential: Some(credential.clone()),
        })
        .unwrap();
    let (result, sw) = w.cmd(0x16, &down.to_bytes());
    assert_eq!(sw, Status::Success);
    assert_eq!(CallResult::parse(&result).unwrap().credential, None);
    // READ BINARY of EF 6F10 after VERIFY of the container PIN.
    assert_eq!(tx(&mut w.card, "00A4020C026F10"), "9000");
    let r = tx(&mut w.card, "00B000000F");
    assert_eq!(r, format!("{}9000", apdu_specs::hexfmt::upper(&credential)));
    assert_eq!(tx(&mut w.card, "0020FF81"), "9000");
    assert_eq!(tx(&mut w.card, "00B000000F"), "6982");
    // The SE private key never appeared in any answer.
    let secret = &w.se_secret;
    assert!(w
        .responses
        .iter()
        .all(|r| !r.windows(secret.len()).any(|x| x == secret)));
}

#[test]
fn a_tampered_or_foreign_answer_is_refused_and_opens_nothing() {
    let mut w = World::new();
    w.select_and_verify();
    let (r, _) = w.register("demo");
    let signed = w.open_r(&r);
    let (answer, _) = w.answer(&signed, granted(), NOW);
    let bytes = answer.to_bytes();
    for i in [5usize, 20, 40, 200, bytes.len() - 10] {
        let mut bad = bytes.clone();
        bad[i] ^= 0x01;
        let sw = w.cmd(0x12, &bad).1;
        assert!(
            matches!(sw, Status::BadServerSignature | Status::IncorrectData),
            "byte {i}: {sw}"
        );
    }
    // Signed by another key.
    let other = SigningKey::generate().unwrap();
    let (forged, _) = mutual::server_answer(&other, &signed, granted(), NOW).unwrap();
    assert_eq!(
        w.cmd(0x12, &forged.to_bytes()).1,
        Status::BadServerSignature
    );
    // No connection was opened.
    let call = [tlv::build(0x81, b"echo"), tlv::build(0x82, b"")].concat();
    assert_eq!(w.cmd(0x14, &call).1, Status::NoSecureConnection);
    // The genuine answer still works.
    assert_eq!(w.cmd(0x12, &bytes).1, Status::Success);
}

#[test]
fn refusal_expiry_and_missing_registration_have_their_own_status_words() {
    let mut w = World::new();
    w.select_and_verify();
    let (r, _) = w.register("demo");
    let signed = w.open_r(&r);
    let (answer, _) = w.answer(&signed, Grant::Refused, NOW);
    assert_eq!(w.cmd(0x12, &answer.to_bytes()).1, Status::ServiceNotGranted);
    let (answer, _) = w.answer(&signed, granted(), NOW);
    w.card.set_clock(later);
    assert_eq!(w.cmd(0x12, &answer.to_bytes()).1, Status::GrantExpired);
    w.card.set_clock(now);
    assert_eq!(w.cmd(0x12, &answer.to_bytes()).1, Status::Success);
    // Pending registration consumed: the same answer again has nothing to answer.
    assert_eq!(
        w.cmd(0x12, &answer.to_bytes()).1,
        Status::ConditionsNotSatisfied
    );
    // A call outside the scope, and after expiry.
    let call = [tlv::build(0x81, b"transfer"), tlv::build(0x82, b"")].concat();
    assert_eq!(w.cmd(0x14, &call).1, Status::ServiceNotGranted);
    w.card.set_clock(later);
    let call = [tlv::build(0x81, b"echo"), tlv::build(0x82, b"")].concat();
    assert_eq!(w.cmd(0x14, &call).1, Status::GrantExpired);
}

#[test]
fn a_container_switch_discards_the_connection_and_the_selected_instance() {
    let mut w = World::new();
    let (sw, _) = w.connect(granted());
    assert_eq!(sw, Status::Success);
    assert!(w.card.state().containers()[0].auth.connection.is_some());
    // Switch to B and back through the ISD-R on channel 1.
    assert_eq!(tx(&mut w.card, "0070000001"), "019000");
    assert_eq!(
        tx(&mut w.card, "01A4040C10A0000005591010FFFFFFFF8900000100"),
        "9000"
    );
    assert_eq!(
        tx(
            &mut w.card,
            "81E2910014BF3111A00C5A0A9800103254769810321481010000"
        ),
        "BF31038001009000"
    );
    // Channel 0's instance of container A's applet is gone.
    let call = [tlv::build(0x81, b"echo"), tlv::build(0x82, b"")].concat();
    assert_eq!(w.cmd(0x14, &call).1, Status::ClaNotSupported);
    assert_eq!(
        tx(
            &mut w.card,
            "81E2910014BF3111A00C5A0A984474560000214251F881010000"
        ),
        "BF31038001009000"
    );
    assert!(w.card.state().containers()[0].auth.connection.is_none());
    w.select_and_verify();
    assert_eq!(w.cmd(0x14, &call).1, Status::NoSecureConnection);
}

#[test]
fn with_no_enabled_container_the_applet_is_not_found() {
    let mut w = World::new();
    assert_eq!(tx(&mut w.card, "0070000001"), "019000");
    assert_eq!(
        tx(&mut w.card, "01A4040C10A0000005591010FFFFFFFF8900000100"),
        "9000"
    );
    assert_eq!(
        tx(
            &mut w.card,
            "81E2910014BF3211A00C5A0A984474560000214251F881010000"
        ),
        "BF32038001009000"
    );
    assert_eq!(tx(&mut w.card, SELECT_AUTH), "6A82");
}

fn echo_call() -> Vec<u8> {
    [tlv::build(0x81, b"echo"), tlv::build(0x82, b"hi")].concat()
}

#[test]
fn using_the_connection_needs_the_pin_on_this_channel_since_the_last_reset() {
    let mut w = World::new();
    let (sw, _) = w.connect(granted());
    assert_eq!(sw, Status::Success);
    // A terminal that does not know the PIN, after a power cycle: 6982 and nothing else,
    // for SECURE SEND and SECURE RECEIVE alike, and the connection is still there.
    w.card.power_off();
    w.card.power_on();
    assert!(tx(&mut w.card, SELECT_AUTH).ends_with("9000"));
    assert_eq!(
        w.cmd(0x14, &echo_call()).1,
        Status::SecurityStatusNotSatisfied
    );
    let fake_down = apdu_specs::auth::ProtectedMessage {
        cid: [0; 16],
        counter: 1,
        ciphertext: vec![0; 256 + 16],
    };
    assert_eq!(
        w.cmd(0x16, &fake_down.to_bytes()).1,
        Status::SecurityStatusNotSatisfied
    );
    assert!(w.card.state().containers()[0].auth.connection.is_some());
    // Another logical channel does not inherit channel 0's PIN.
    assert_eq!(tx(&mut w.card, "002000810431323334"), "9000");
    assert_eq!(tx(&mut w.card, "0070000001"), "019000");
    assert!(tx(&mut w.card, "01A4040007F04D415554480100").ends_with("9000"));
    let mut on_1 = vec![0x81, 0x14, 0x00, 0x00, echo_call().len() as u8];
    on_1.extend(echo_call());
    on_1.push(0);
    assert_eq!(w.card.transmit(&on_1), [0x69, 0x82]);
    // The cardholder's channel works.
    assert_eq!(w.cmd(0x14, &echo_call()).1, Status::Success);
}

#[test]
fn a_pin_less_terminal_learns_nothing_about_the_connection() {
    // With and without an open connection the answer is the same 6982.
    let mut w = World::new();
    assert!(tx(&mut w.card, SELECT_AUTH).ends_with("9000"));
    let without = w.cmd(0x14, &echo_call());
    let (sw, _) = w.connect(granted());
    assert_eq!(sw, Status::Success);
    w.card.reset();
    assert!(tx(&mut w.card, SELECT_AUTH).ends_with("9000"));
    let with = w.cmd(0x14, &echo_call());
    assert_eq!(without, with);
    assert_eq!(with.1, Status::SecurityStatusNotSatisfied);
}

#[test]
fn rolling_the_host_clock_back_revives_no_expired_connection() {
    let mut w = World::new();
    let (sw, _) = w.connect(granted()); // expiry NOW + 3600, server time NOW
    assert_eq!(sw, Status::Success);
    assert_eq!(w.card.state().time_floor, NOW);
    // Later the server (at NOW + 7200) refuses a new registration; its signed time is
    // trusted once R' is authenticated, and the card's floor rises durably.
    let (r, _) = w.register("demo");
    let signed = w.open_r(&r);
    let (refusal, _) = w.answer(&signed, Grant::Refused, NOW + 7200);
    assert_eq!(
        w.cmd(0x12, &refusal.to_bytes()).1,
        Status::ServiceNotGranted
    );
    assert_eq!(w.card.state().time_floor, NOW + 7200);
    // The host clock still says NOW (rolled back): the old connection stays expired.
    assert_eq!(w.cmd(0x14, &echo_call()).1, Status::GrantExpired);
}

#[test]
fn an_answer_to_an_earlier_registration_is_refused() {
    // R' answers exactly one R (its hash is inside, and the sealing key depends on it):
    // an answer to the SE's previous R, validly signed by the trusted server, opens nothing.
    let mut w = World::new();
    w.select_and_verify();
    let (r1, _) = w.register("demo");
    let signed1 = w.open_r(&r1);
    let (answer1, _) = w.answer(&signed1, granted(), NOW);
    let (r2, _) = w.register("demo");
    assert_ne!(r1, r2);
    assert_eq!(
        w.cmd(0x12, &answer1.to_bytes()).1,
        Status::BadServerSignature
    );
    let signed2 = w.open_r(&r2);
    let (answer2, _) = w.answer(&signed2, granted(), NOW);
    assert_eq!(w.cmd(0x12, &answer2.to_bytes()).1, Status::Success);
}

//! Golden files of each released state format (under the workspace's tests/golden/) must
//! keep loading, with their content intact.

use card_emulator::store::{decode, encode};
use card_emulator::{Card, VirtualCard};

fn golden(name: &str) -> (String, Vec<u8>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden")
        .join(name);
    (
        path.display().to_string(),
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
}

#[test]
fn version_1_state_still_loads_and_serves_its_content() {
    let (path, bytes) = golden("card-state-v1.json");
    let state = decode(&bytes, &path).unwrap();
    assert_eq!(state.label, "vSE virtual secure element");
    assert_eq!(
        state.pins[0].tries_left, 2,
        "the golden card had one wrong PIN try"
    );
    let mut card = Card::in_memory(state);
    card.power_on();
    let r = card.transmit(&[0x00, 0xA4, 0x08, 0x0C, 0x04, 0x50, 0x00, 0x50, 0x05]);
    assert_eq!(r, [0x90, 0x00]);
    let r = card.transmit(&[0x00, 0xB0, 0x00, 0x00, 0x05]);
    assert_eq!(r, b"GOLD1\x90\x00");
    // The PIN still verifies against its stored hash.
    let r = card.transmit(&[0x00, 0x20, 0x00, 0x81, 0x04, b'1', b'2', b'3', b'4']);
    assert_eq!(r, [0x90, 0x00]);
}

#[test]
fn current_writer_output_loads_back_identically() {
    let (path, bytes) = golden("card-state-v1.json");
    let state = decode(&bytes, &path).unwrap();
    assert_eq!(decode(&encode(&state), "re-encoded").unwrap(), state);
}

#[test]
fn version_2_state_with_containers_still_loads_and_serves_its_content() {
    let (path, bytes) = golden("card-state-v2.json");
    let state = decode(&bytes, &path).unwrap();
    assert_eq!(state.containers().len(), 2);
    assert_eq!(state.enabled_container(), Some(0));
    assert_eq!(state.containers()[0].pins[0].tries_left, 2);
    let mut card = Card::in_memory(state);
    card.power_on();
    let select = [
        0x00, 0xA4, 0x04, 0x0C, 0x08, 0xF0, 0x56, 0x53, 0x45, 0x43, 0x4F, 0x4E, 0x54,
    ];
    assert_eq!(card.transmit(&select), [0x90, 0x00]);
    assert_eq!(
        card.transmit(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x6F, 0x01]),
        [0x90, 0x00]
    );
    assert_eq!(
        card.transmit(&[0x00, 0xB0, 0x00, 0x00, 0x04]),
        b"GOLD\x90\x00"
    );
}

/// The v3 golden: a snapshot and its journal, with container A holding an open secure
/// connection and a pending registration (the `secure-channel` values in their stored
/// form). `VSE_WRITE_GOLDEN=1` writes it anew (only when the format is released again).
mod v3 {
    use super::*;
    use apdu_specs::auth::SealedRegistration;
    use apdu_specs::tlv;
    use card_emulator::ca::IssuerCa;
    use card_emulator::profile;
    use card_emulator::state::TrustAnchor;
    use card_emulator::store::{FileStore, Store};
    use secure_channel::mutual::{self, Grant, SigningKey};

    const NOW: u64 = 1_800_000_000;

    fn now() -> u64 {
        NOW
    }

    fn golden_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden")
    }

    fn ok(r: Vec<u8>) -> Vec<u8> {
        assert!(r.ends_with(&[0x90, 0x00]), "{r:02X?}");
        r[..r.len() - 2].to_vec()
    }

    fn extended(ins: u8, data: &[u8]) -> Vec<u8> {
        let mut a = vec![0x80, ins, 0x00, 0x00, 0x00];
        a.extend((data.len() as u16).to_be_bytes());
        a.extend(data);
        a.extend([0x00, 0x00]);
        a
    }

    /// Build the golden card in `dir` (card-state-v3.json and its journal).
    fn write(dir: &std::path::Path) {
        let mut state = profile::build(profile::DEFAULT_PROFILE).unwrap();
        let issuer = IssuerCa::generate("golden CA").unwrap();
        issuer.personalize(&mut state, NOW).unwrap();
        let server = SigningKey::generate().unwrap();
        state.containers_mut()[0].trust_anchors.push(TrustAnchor {
            service: "demo".into(),
            public_key: server.verifying_key().to_sec1().to_vec(),
        });
        let path = dir.join("card-state-v3.json");
        let store = FileStore::create(&path, &state, true).unwrap();
        let mut card = Card::open(Box::new(store)).unwrap();
        card.set_clock(now);
        card.power_on();
        ok(card.transmit(&[
            0x00, 0xA4, 0x04, 0x00, 0x07, 0xF0, 0x4D, 0x41, 0x55, 0x54, 0x48, 0x01, 0x00,
        ]));
        ok(card.transmit(&[0x00, 0x20, 0x00, 0x81, 0x04, b'1', b'2', b'3', b'4']));
        let service = tlv::build(0x81, b"demo");
        let sealed = ok(card.transmit(&extended(0x10, &service)));
        let sealed = SealedRegistration::parse(&sealed).unwrap();
        let signed = mutual::server_open_registration(&server, &sealed).unwrap();
        let grant = Grant::Granted {
            scope: vec!["echo".into()],
            expiry: NOW + 3600,
        };
        let (answer, _) = mutual::server_answer(&server, &signed, grant, NOW).unwrap();
        ok(card.transmit(&extended(0x12, &answer.to_bytes())));
        // A second registration stays pending.
        ok(card.transmit(&extended(0x10, &service)));
    }

    #[test]
    fn version_3_snapshot_and_journal_load_with_connection_and_pending_registration() {
        let dir = golden_dir();
        if std::env::var_os("VSE_WRITE_GOLDEN").is_some() {
            write(&dir);
        }
        let path = dir.join("card-state-v3.json");
        let store = FileStore::open(&path).unwrap();
        let state = store.load().unwrap();
        let a = &state.containers()[0];
        assert!(a.enabled);
        assert_eq!(a.auth.counter, 2);
        let conn = a.auth.connection.as_ref().expect("the open connection");
        assert_eq!(conn.scope(), ["echo".to_string()]);
        assert_eq!(conn.expiry(), NOW + 3600);
        let pending = a.auth.pending.as_ref().expect("the pending registration");
        assert_eq!(pending.0.service_id(), "demo");
        assert_eq!(state.time_floor, NOW);
        let (_, storage) = store.inspect().unwrap();
        assert!(storage.applied() > 0, "the golden has journal entries");
        let again = decode(&encode(&state), "re-encoded").unwrap();
        assert_eq!(again, state);
        // The stored forms of the secure-channel values did not change: today's encoding
        // of the authentication applet's state is byte for byte the text the golden
        // journal holds (a refactor of secure-channel that changes it must bump the form).
        let journal = std::fs::read(dir.join("card-state-v3.json.journal")).unwrap();
        let auth = serde_json::to_vec(&a.auth).unwrap();
        assert!(
            journal.windows(auth.len()).any(|w| w == auth.as_slice()),
            "the stored form of the connection or pending registration changed"
        );
    }
}
